"""CPU time of each stage of a lone decision, replayed alone on fresh frames.

    python benchmarks/bench_stages.py [STAGE ...] [--calls 200] [--size 1] [--passes 5]
        [--work /tmp/smartretry-bench] [--profile [--sort cumulative] [--lines 30]]

Decides ``--calls`` calls of ``--size`` held-out requests each (lone requests by
default; ``--size 1000 --calls 2`` replays the stages of 1,000-item batches) through
``training.api.service.recommend``
with the model of ``bench_world.py``, keeping each stage's arguments (frames copied
shallowly, so their pandas column caches start empty, as in a real decision); then
replays every stage's calls alone and prints the process CPU time per call, best of
``--passes`` (each pass on fresh copies). On a shared machine the whole decision's
figures vary by ±30 %; a stage replayed alone, best of five, varies far less, so two
trees (``PYTHONPATH`` pointing at each) compare stage by stage. ``--profile``: cProfile
of the last stage named. Run with ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import pstats
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from bench_world import prepare

Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def _fresh(value: Any) -> Any:
    return value.copy(deep=False) if isinstance(value, pd.DataFrame) else value


def _fresh_calls(calls: list[Call]) -> list[Call]:
    return [
        (f, tuple(_fresh(a) for a in args), {k: _fresh(v) for k, v in kwargs.items()})
        for f, args, kwargs in calls
    ]


def _capture(
    captured: dict[str, list[Call]], owner: Any, name: str, label: str
) -> Callable[[], None]:
    """Keep every call of ``owner.name`` under ``label``; returns the undo."""
    function = getattr(owner, name)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        captured.setdefault(label, []).append(_fresh_calls([(function, args, kwargs)])[0])
        return function(*args, **kwargs)

    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, function)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", help="stages to replay (default: all)")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--size", type=int, default=1, help="requests per call")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--invoices", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/smartretry-bench"))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime", help="cProfile order (tottime, cumulative)")
    parser.add_argument("--lines", type=int, default=30, help="cProfile lines shown")
    args = parser.parse_args()

    import training.api.service as service
    import training.policy.decider as decider_module
    from serving.artifact_decider import load_artifact_decider

    world = prepare(args.work, args.invoices, args.seed)
    decider = load_artifact_decider(str(world.model_dir))
    captured: dict[str, list[Call]] = {}
    undo = []
    for name in ("fixed_schedule_columns", "model_reasons", "past_rows", "past_table",
                 "retry_windows", "plan_retries", "plan_messages"):  # fmt: skip
        if hasattr(decider_module, name):  # (an older tree may lack one)
            undo.append(_capture(captured, decider_module, name, name))
    for name in ("requests_to_frames", "requests_to_tables"):
        if hasattr(service, name):
            undo.append(_capture(captured, service, name, name))
    undo.append(_capture(captured, service, "responses_from_decisions", "responses_from_decisions"))
    undo.append(
        _capture(captured, decider_module.ModelDecider, "score_schedules", "score_schedules")
    )
    undo.append(_capture(captured, decider.decider.rules, "decide_many", "rules.decide_many"))
    if hasattr(decider.decider.rules, "decide_table"):
        rules = decider.decider.rules
        undo.append(_capture(captured, rules, "decide_table", "rules.decide_table"))
    undo.append(_capture(captured, decider.decider.scorer, "event_features", "event_features"))
    undo.append(_capture(captured, decider_module.ModelDecider, "_explore", "explore"))
    undo.append(_capture(captured, decider_module.ModelDecider, "decide", "decide"))
    service.recommend(decider, world.sample(1))  # warm-up: caches, first model calls
    captured.clear()
    requests = world.sample(args.size * (args.calls + 1), known_share=0.2)[args.size :]
    for call in range(args.calls):
        service.recommend(decider, requests[call * args.size : (call + 1) * args.size])
    for restore in undo:  # replays run without the capture (a whole decision's stages
        restore()  # would otherwise copy their frames again)
    stages = args.stages or list(captured)
    for label in stages:
        best = float("inf")
        for _ in range(args.passes):
            calls = _fresh_calls(captured[label])
            start = time.process_time()
            for function, call_args, kwargs in calls:
                function(*call_args, **kwargs)
            best = min(best, (time.process_time() - start) / len(calls))
        print(f"  {label:28s} {best * 1e3:8.3f} ms CPU per call", flush=True)
    if args.profile:
        profile = cProfile.Profile()
        calls = _fresh_calls(captured[stages[-1]])
        profile.enable()
        for function, call_args, kwargs in calls:
            function(*call_args, **kwargs)
        profile.disable()
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.lines)


if __name__ == "__main__":
    main()
