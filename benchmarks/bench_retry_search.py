"""What each retry search costs (rows the retry model scores) and what it loses (the
schedules' value by the model) against the dynamic programme over every hour.

    python benchmarks/bench_retry_search.py [--events 300] [--invoices 20000] [--seed 7]
        [--work /tmp/smartretry-bench]

On held-out failures of the world of ``bench_world.py`` (their messages planned first, as
the decision does), runs ``plan_retries`` with each search setting below and prints the
retry rows scored per event and the mean P(some planned retry succeeds) by the model
(each retry after its actual predecessors failed), with the mean and largest loss in
points against the hourly programme, the exact optimum of the search's objective.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench_world import prepare

SEARCHES: list[tuple[str, dict[str, Any]]] = [
    ("every hour", {"retry_grid_hours": 1, "fine_grids_hours": (), "refine_steps_hours": ()}),
    (
        "3 h grid, refined +-2 h (before)",
        {"retry_grid_hours": 3, "fine_grids_hours": (), "refine_steps_hours": (2, 1)},
    ),
    ("12 h grid, then 3 h and 1 h (default)", {}),
    ("12 h grid, then 1 h", {"fine_grids_hours": (1,)}),
    (
        "12 h grid, refined +-6, 3, 1 h",
        {"fine_grids_hours": (), "refine_steps_hours": (6, 3, 1)},
    ),
    ("24 h grid, then 3 h and 1 h", {"retry_grid_hours": 24}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--invoices", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/smartretry-bench"))
    args = parser.parse_args()

    from serving.artifact_decider import load_artifact_decider
    from training.config.params import load_params
    from training.contract.io import load_history
    from training.core.localtime import to_ns
    from training.features.invoice import events_from_history
    from training.policy.message_search import plan_messages
    from training.policy.retry_search import _RetryContext, plan_retries, retry_windows
    from training.policy.scorer import past_rows

    world = prepare(args.work, args.invoices, args.seed)
    decider = load_artifact_decider(str(world.model_dir)).decider
    policy = load_params(Path("params.yaml")).policy  # the defaults, not the artifact's
    history, _ = load_history(args.work / f"history-{args.invoices}-{args.seed}")
    events = events_from_history(history).tail(args.events).reset_index(drop=True)
    decisions = decider.rules.decide_many(events, None).reset_index(drop=True)
    features = decider.scorer.event_features(events, None)
    past = past_rows(events, None)
    limits = decider.rules.limits
    update = limits.update_requests
    messages = plan_messages(
        decider.scorer, events, features, past, decisions, decider.templates, policy, update
    )
    count, start, end = retry_windows(events, decisions, messages, update, limits.min_spacing_hours)
    ids = events["event_id"].to_numpy()
    context = _RetryContext.build(decider.scorer, features, past, messages, ids, policy, update)

    rows: list[int] = []
    predict = decider.scorer.predict

    def counted(model: Any, matrix: Any, positions: np.ndarray, columns: Any) -> np.ndarray:
        if model is decider.scorer.models.retry:
            rows.append(len(positions))
        return predict(model, matrix, positions, columns)

    decider.scorer.predict = counted  # type: ignore[method-assign]
    reference = None
    print(f"{len(events)} held-out failures, {int((count > 0).sum())} with retries to place")
    print(f"{'search':40s} {'rows/event':>10s} {'P(retry)':>9s} {'loss':>6s} {'max':>6s}")
    for name, update_config in SEARCHES:
        config = policy.model_copy(update=update_config)
        rows.clear()
        plan = plan_retries(
            decider.scorer, events, features, past, messages, count, start, end,
            limits.min_spacing_hours, config, update,
        ).frame()  # fmt: skip
        scored = sum(rows)
        event = pd.Index(ids).get_indexer(plan["event_id"])
        rank = plan.groupby("event_id").cumcount().to_numpy()
        p = context.base_probabilities(event, to_ns(plan["at"]), rank)
        fail = np.exp(np.bincount(event, weights=np.log1p(-p), minlength=len(ids)))
        reference = fail if reference is None else reference
        loss = (fail - reference) * 100
        print(
            f"{name:40s} {scored / len(events):10.1f} {1 - fail.mean():9.4f} "
            f"{loss.mean():6.2f} {loss.max():6.1f}"
        )


if __name__ == "__main__":
    main()
