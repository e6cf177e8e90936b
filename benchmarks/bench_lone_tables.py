"""A lone decision with and without its per-decision tables, alternating in one process.

    python benchmarks/bench_lone_tables.py [--calls 200] [--rounds 6] [--work DIR]

Decides ``--calls`` lone held-out requests with the model of ``bench_world.py``, keeping
each ``ModelDecider.decide`` call, then replays them ``--rounds`` times in turn with the
one event's time tables (``training/features/time_table.py``) and the direct call of the
compiled trees off (the general calendar path, lleaves' own ``predict``) and on. Both
sides run in the same process under the same load, so on a shared machine their
difference is steadier than that of two trees run one after the other. Prints the
process CPU time per decision, best and median of the rounds. Run with
``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench_stages import _capture, _fresh_calls
from bench_world import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--invoices", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/smartretry-bench"))
    args = parser.parse_args()

    import training.api.service as service
    import training.models.matrix as matrix_module
    import training.policy.decider as decider_module
    from serving.artifact_decider import load_artifact_decider

    world = prepare(args.work, args.invoices, args.seed)
    decider = load_artifact_decider(str(world.model_dir))
    captured: dict[str, list[Any]] = {}
    undo = _capture(captured, decider_module.ModelDecider, "decide", "decide")
    service.recommend(decider, world.sample(1))  # warm-up
    captured.clear()
    for request in world.sample(args.calls + 1, known_share=0.2)[1:]:
        service.recommend(decider, [request])
    undo()
    tables = matrix_module.EventMatrix._time_table

    class _NoTable:
        def columns(self, utc_ns: Any) -> None:
            return None  # the general calendar path, as before the tables

    def general(self: Any, zone: str) -> _NoTable:
        return _NoTable()

    models = decider.decider.scorer.models
    compiled = [m._compiled for m in (models.retry, models.message, models.self_cure) if m]
    entries = [c._entry for c in compiled]
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.rounds):
        for on in (False, True):
            matrix_module.EventMatrix._time_table = tables if on else general
            for trees, entry in zip(compiled, entries, strict=True):
                trees._entry = entry if on else None
            calls = _fresh_calls(captured["decide"])
            start = time.process_time()
            for function, call_args, kwargs in calls:
                function(*call_args, **kwargs)
            times[on].append((time.process_time() - start) / len(calls) * 1e3)
    matrix_module.EventMatrix._time_table = tables
    for on, label in (
        (False, "general calendar, lleaves predict"),
        (True, "time tables, direct trees"),
    ):
        values = sorted(times[on])
        print(
            f"  {label:36s} best {values[0]:7.3f}  median {values[len(values) // 2]:7.3f} ms CPU per decision"
        )


if __name__ == "__main__":
    main()
