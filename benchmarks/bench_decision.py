"""Where one decision's time goes, in-process: each stage of the decision path timed.

    python benchmarks/bench_decision.py [--size 1] [--calls 100] [--passes 1] [--threads 1]
        [--invoices 20000] [--seed 7] [--work /tmp/smartretry-bench]

Decides ``--calls`` calls of ``--size`` held-out requests each (different requests every
call) through ``training.api.service.recommend`` with the model of ``bench_world.py``, the
stages of ``ModelDecider.decide`` wrapped with timers, and prints the mean time per call
(wall clock, and the process's CPU time, which waits less on a busy machine) and of
each stage (both) (stages nest: ``plan`` contains the searches, ``plan_retries`` its
refinement). Every matrix the models score is kept, and afterwards scored again alone:
the *bare predict* of the rows the decisions scored (the models' own cost, the floor of
a decision), with the compiled trees the decider uses and with LightGBM's ``predict``.
Run with ``OMP_NUM_THREADS=1`` for one-core figures. The model's load (with its warm-up,
``serving/warm_up.py``) is not timed. After loading the model, the heap
is frozen as ``smartretry serve`` freezes it (``serving.model_loader.freeze_heap``: the
garbage collector's full passes then skip the libraries and the model; without it, a
1,000-item call pays ~0.1 s of them that the server does not); ``--no-freeze`` measures
without, as the figures before 2026-12-06 10:00 UTC were.

The tail: each call's CPU time is kept, and the p50/p90/p99/max per call printed. With
``--passes N`` the same calls are decided N times over (the stage means are then over all
of them) and each call's fastest pass is printed too: a call slow in one pass and not in
the others was the machine's (another process, an interrupt), one slow in every pass its
own (more rows, a memo's first sight of its inputs).
"""

from __future__ import annotations

import argparse
import functools
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from bench_world import prepare

from training.models.calibrated import CalibratedModel


def _timed(
    totals: dict[str, float], label: str, function: Callable[..., Any]
) -> Callable[..., Any]:
    """``function`` adding its wall time to ``totals[label]`` and its CPU time to
    ``totals[label + " cpu"]``."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - start
            totals[label + " cpu"] += time.process_time() - cpu

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1, help="requests per call")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument(
        "--passes", type=int, default=1, help="decide the same calls this many times (the tail)"
    )
    parser.add_argument("--threads", type=int, default=1, help="LightGBM threads for big calls")
    parser.add_argument("--invoices", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/smartretry-bench"))
    parser.add_argument(
        "--compare-lightgbm",
        type=int,
        default=0,
        metavar="N",
        help="also decide N held-out requests with the compiled trees and with LightGBM, "
        "exploration off, and count the decisions that differ",
    )
    parser.add_argument(
        "--same-decisions",
        type=Path,
        metavar="FILE",
        help="decide --decisions-count held-out requests (exploration off) in batches of 100 "
        "and one at a time; write them to FILE when it does not exist, else count the "
        "decisions that differ from those in FILE (a before/after check of a change)",
    )
    parser.add_argument(
        "--ignore-reported",
        action="store_true",
        help="with --same-decisions: leave the reported probability and the reasons (which "
        "quote it) out of the comparison, for a change meant to move only that figure",
    )
    parser.add_argument("--decisions-count", type=int, default=2000)
    parser.add_argument(
        "--no-freeze", action="store_true", help="leave the heap unfrozen (see above)"
    )
    args = parser.parse_args()

    import training.api.service as service
    import training.policy.decider as decider_module
    import training.policy.retry_search as search
    from serving.artifact_decider import load_artifact_decider

    world = prepare(args.work, args.invoices, args.seed)
    if args.compare_lightgbm:
        compare_lightgbm(world, args.compare_lightgbm)
    if args.same_decisions:
        same_decisions(world, args.decisions_count, args.same_decisions, args.ignore_reported)
        return
    totals: dict[str, float] = defaultdict(float)
    stages = [
        (decider_module.ModelDecider, "decide"), (decider_module.ModelDecider, "plan"),
        (decider_module.ModelDecider, "score_schedules"), (decider_module, "plan_messages"),
        (decider_module, "plan_retries"), (search, "_refine"), (decider_module, "retry_windows"),
        (decider_module, "fixed_schedule_columns"), (decider_module, "fixed_schedule"),
        (decider_module, "model_reasons"),
        (decider_module, "past_rows"), (decider_module, "past_table"),
        (service, "requests_to_frames"), (service, "requests_to_tables"),
        (service, "responses_from_decisions"),
    ]  # fmt: skip
    for owner, name in stages:
        if hasattr(owner, name):  # (an older tree, run for a before/after, may lack one)
            setattr(owner, name, _timed(totals, name, getattr(owner, name)))
    decider = load_artifact_decider(str(world.model_dir), threads=args.threads)
    if not args.no_freeze:
        from serving.model_loader import freeze_heap

        freeze_heap()  # as the server does after loading its model
    rules, scorer = decider.decider.rules, decider.decider.scorer
    rules.decide_many = _timed(totals, "rules.decide_many", rules.decide_many)
    if hasattr(rules, "decide_table"):
        rules.decide_table = _timed(totals, "rules.decide_table", rules.decide_table)
    scorer.event_features = _timed(totals, "event_features", scorer.event_features)

    scored: list[tuple[Any, np.ndarray, int]] = []  # every model call: model, matrix, threads
    predict_matrix = CalibratedModel.predict_matrix

    def recorded(
        model: CalibratedModel, matrix: np.ndarray, threads: int = 1, owned: bool = False
    ) -> np.ndarray:
        # (an owned matrix is kept clipped: clipping it again in the bare predict below
        # gives the same rows, at the same cost)
        scored.append((model, matrix, threads))
        return predict_matrix(model, matrix, threads, owned)

    requests = world.sample(args.size * (args.calls + 1), known_share=0.2)
    service.recommend(decider, requests[: args.size])  # warm-up: caches, first model calls
    totals.clear()
    CalibratedModel.predict_matrix = recorded  # type: ignore[method-assign]
    calls_cpu = np.zeros((args.passes, args.calls), dtype=np.int64)  # ns, per pass and call
    start, cpu = time.perf_counter(), time.process_time()
    for done in range(args.passes):
        for call in range(1, args.calls + 1):
            began = time.process_time_ns()
            service.recommend(decider, requests[call * args.size : (call + 1) * args.size])
            calls_cpu[done, call - 1] = time.process_time_ns() - began
    count = args.calls * args.passes  # the means below are per call decided
    total = (time.perf_counter() - start) / count
    cpu = (time.process_time() - cpu) / count
    CalibratedModel.predict_matrix = predict_matrix  # type: ignore[method-assign]
    compiled = all(model.compiled for model, _, _ in scored)
    passes = f" x {args.passes} passes" if args.passes > 1 else ""
    print(
        f"{args.calls} calls of {args.size} request(s){passes}: {total * 1e3:.2f} ms per call "
        f"({cpu * 1e3:.2f} ms of the process's CPU)"
    )
    print(f"  CPU per call: {_tail(calls_cpu.ravel())}")
    if args.passes > 1:
        print(f"  each call's fastest pass: {_tail(calls_cpu.min(axis=0))}")
    print(f"  {'stage':28s} {'wall':>9s}    {'CPU':>9s}")
    walls = {label: s for label, s in totals.items() if not label.endswith(" cpu")}
    for label, seconds in sorted(walls.items(), key=lambda item: -item[1]):
        cpu_stage = totals[label + " cpu"] / count * 1e3
        print(f"  {label:28s} {seconds / count * 1e3:9.2f} ms {cpu_stage:9.2f} ms")
    rows = sum(len(matrix) for _, matrix, _ in scored)
    print(
        f"bare predict of the same rows ({len(scored) / count:.1f} model calls, "
        f"{rows / count:,.0f} rows per decision call):"
    )
    per_model: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for model, matrix, _ in scored:
        per_model[model.name][0] += 1
        per_model[model.name][1] += len(matrix)
    print("  " + ", ".join(
        f"{name}: {calls / count:.1f} calls, {rows / count:,.0f} rows"
        for name, (calls, rows) in per_model.items()
    ))  # fmt: skip
    bare = _bare_predict(scored, lambda m, x, t: m.predict_matrix(x, t, owned=True)) / count
    label = "compiled trees (as decided)" if compiled else "LightGBM (as decided)"
    print(f"  {label:28s} {bare * 1e3:9.2f} ms  (decision / bare: {total / bare:.1f}x)")
    lightgbm = _bare_predict(
        scored,
        lambda m, x, t: m.calibrator.predict(
            m.booster.predict(x, num_iteration=m.best_iteration, num_threads=t)
        ),
    )
    print(f"  {'LightGBM predict':28s} {lightgbm / count * 1e3:9.2f} ms")


def _tail(ns: np.ndarray) -> str:
    """p50, p90, p99 and max of CPU times given in ns, in ms."""
    p50, p90, p99 = np.percentile(ns, [50, 90, 99]) / 1e6
    return f"p50 {p50:.2f} ms, p90 {p90:.2f} ms, p99 {p99:.2f} ms, max {ns.max() / 1e6:.2f} ms"


def compare_lightgbm(world: Any, count: int) -> None:
    """Decide the same requests with compiled trees and with LightGBM (no exploration,
    batches of 100) and print how many decisions differ in any retry, message or
    probability (to 6 decimals, as the golden tests compare)."""
    from serving.artifact_decider import load_artifact_decider
    from training.api.service import recommend

    requests = world.sample(count, known_share=0.2)
    answers = []
    for compiled in (True, False):
        decider = load_artifact_decider(str(world.model_dir), compiled=compiled)
        decider.decider.config = decider.decider.config.model_copy(update={"exploration_rate": 0.0})
        start = time.perf_counter()
        results = [
            r for i in range(0, count, 100) for r in recommend(decider, requests[i : i + 100])
        ]
        print(f"{'compiled' if compiled else 'LightGBM'}: {count} requests in "
              f"{time.perf_counter() - start:.2f} s (batches of 100)")  # fmt: skip
        answers.append([_comparable(r.model_dump(mode="json")) for r in results])
    differ = sum(a != b for a, b in zip(*answers, strict=True))
    print(f"decisions that differ (compiled trees vs LightGBM): {differ} of {count}")


def same_decisions(world: Any, count: int, path: Path, ignore_reported: bool = False) -> None:
    """Decide ``count`` held-out requests (exploration off) in batches of 100 and one at a
    time; keep them in ``path``, or count those that differ from the ones kept there
    (``ignore_reported``: all but the reported probability and the reasons)."""
    import json

    from serving.artifact_decider import load_artifact_decider
    from training.api.service import recommend

    requests = world.sample(count, known_share=0.2)
    decider = load_artifact_decider(str(world.model_dir))
    decider.decider.config = decider.decider.config.model_copy(update={"exploration_rate": 0.0})
    answers: dict[str, list[Any]] = {}
    for size in (100, 1):
        results = [
            r for i in range(0, count, size) for r in recommend(decider, requests[i : i + size])
        ]
        answers[f"batches of {size}"] = [_comparable(r.model_dump(mode="json")) for r in results]
    if not path.exists():
        path.write_text(json.dumps(answers))
        print(f"{count} decisions (batches of 100 and lone) written to {path}")
        return
    kept = json.loads(path.read_text())  # the first ``count`` of those kept (same requests)
    for label, mine in answers.items():
        if len(kept[label]) < count:
            raise SystemExit(f"{path} holds {len(kept[label])} decisions, fewer than {count}")
        pairs = zip(kept[label][:count], mine, strict=True)
        if ignore_reported:
            pairs = ((_decision_only(a), _decision_only(b)) for a, b in pairs)
        differ = sum(a != b for a, b in pairs)
        print(f"{label}: {differ} of {count} decisions differ from {path}")


def _decision_only(answer: Any) -> Any:
    """An answer without the reported probability and the reasons that quote it."""
    if not isinstance(answer, dict):
        return answer
    return {
        k: v for k, v in answer.items() if k not in ("expected_recovery_probability", "reasons")
    }


def _comparable(answer: Any) -> Any:
    """An answer without its random ids, probabilities to 6 decimals."""
    if isinstance(answer, dict):
        return {k: _comparable(v) for k, v in answer.items() if k != "decision_id"}
    if isinstance(answer, list):
        return [_comparable(v) for v in answer]
    if isinstance(answer, float):
        return round(answer, 6)
    return answer


def _bare_predict(scored: list[tuple[Any, np.ndarray, int]], predict: Callable) -> float:
    """Seconds to score the recorded matrices again, one call each, as the decisions did
    (best of three)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for model, matrix, threads in scored:
            predict(model, matrix, threads)
        best = min(best, time.perf_counter() - start)
    return best


if __name__ == "__main__":
    main()
