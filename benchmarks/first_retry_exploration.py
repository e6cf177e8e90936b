"""What exploring the first retry's day buys and costs, on held-out requests.

    python benchmarks/first_retry_exploration.py [--invoices 10000] [--seed 7]
        [--work /tmp/smartretry-bench] [--draws 20] [--day-rate 0.05]

The world and model of ``bench_world.py`` (simulated, default world, trained with
``params.yaml``). Every held-out request is planned once (the search), then its
exploration is drawn ``--draws`` times (fresh uniform draws, as serving draws them) with
``exploration_rate`` as configured and ``exploration_first_retry_day_rate`` 0 (shifts
only: the product before) and ``--day-rate``. For each: the share of decisions whose
first retry the log would hold past day 4 after the failure, and the cost by the model's
own values (expected recovery of the searched schedule minus the returned one, no
calendar steepening), per decision and per explored decision. Then whether the
importance weights of the logged propensities pass ``ope_support``'s overlap thresholds
for the target "first retry on a day past 4" (each logged decision's day-arm alternatives
past day 4, uniformly).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench_world import prepare

from training.api.requests import requests_to_frames
from training.core.columnar import column_array
from training.core.localtime import DAY_NS, to_ns
from training.evaluation.ope import LoggedFeedback
from training.evaluation.ope_support import OverlapDiagnostics, SupportThresholds
from training.policy.exploration import DAY_MOVED, SHIFTED, Explored
from training.policy.scorer import past_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--invoices", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/smartretry-bench"))
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--day-rate", type=float, default=0.05)
    parser.add_argument(
        "--truth",
        action="store_true",
        help="also the cost by the simulator's exact truth (the world simulated again)",
    )
    args = parser.parse_args()
    from serving.artifact_decider import load_artifact_decider

    world = prepare(args.work, args.invoices, args.seed)
    decider = load_artifact_decider(str(world.model_dir)).decider
    events, previous = requests_to_frames(world.requests)
    captured: dict[str, Any] = {}
    explore = decider._explore

    def capture(events_, retries, start, end, draw=None):  # the search's output
        captured.update(retries=retries, start=start, end=end)
        return explore(events_, retries, start, end, draw)

    decider._explore = capture
    decider.config = decider.config.model_copy(update={"exploration_first_retry_day_rate": 0.0})
    t0 = time.process_time()
    plan = decider.plan(events, previous)
    print(f"{len(events)} held-out requests planned in {time.process_time() - t0:.1f} s CPU")
    del decider._explore
    past = past_rows(events, previous)
    failed = to_ns(events["failed_at"])
    ids = column_array(events, "event_id")
    searched = captured["retries"]
    rate = decider.config.exploration_rate
    print(f"exploration_rate {rate}, shifts {list(decider.config.exploration_shifts_hours)}")
    (greedy_value, _), *_ = decider.score_schedules(
        events, plan.features, past, [(searched, plan.messages)]
    )
    true_value = _truth(args) if args.truth else None
    greedy_truth = true_value(events, searched, plan.messages) if true_value else None
    has = pd.Index(ids).isin(searched.event_id)
    print(f"decisions with a retry: {has.sum()} of {len(ids)}")
    print(f"searched first retry past day 4: {_late_share(ids, failed, searched):.2%}")
    searched_first = _first(ids, searched)
    early = (searched_first >= 0) & (searched_first - failed < 5 * DAY_NS)
    print(f"decisions whose searched first retry is by day 4: {early.sum()}")
    rng = np.random.default_rng(args.seed)
    for day_rate in (0.0, args.day_rate):
        decider.config = decider.config.model_copy(
            update={"exploration_first_retry_day_rate": day_rate}
        )
        rows, overlaps = [], []
        for _ in range(args.draws):
            got = decider._explore(
                events, searched, captured["start"], captured["end"], rng.random(len(ids))
            )
            (value, _), *_ = decider.score_schedules(
                events, plan.features, past, [(got.retries, plan.messages)]
            )
            rows.append(_figures(ids, failed, got, greedy_value - value, early))
            if true_value is not None:
                true_cost = greedy_truth - true_value(events, got.retries, plan.messages)
                rows[-1].update(_true_figures(got, true_cost))
            overlaps.append(_overlap(decider, events, past, got, searched, captured))
        table = pd.DataFrame(rows)
        print(f"\nexploration_first_retry_day_rate {day_rate} ({args.draws} draws; mean, SD):")
        for column in table.columns:
            print(f"  {column:48s} {table[column].mean():10.5f} {table[column].std():9.5f}")
        # the target "first retry past day 4" (see _overlap)
        table = pd.DataFrame(overlaps)
        print(f"  overlap for 'first retry past day 4', {len(table)} draws (mean, min, max):")
        for column in ("units", "matched", "effective sample size", "largest weight share"):
            values = table[column]
            print(f"    {column:46s} {values.mean():9.3f} {values.min():9.3f} {values.max():9.3f}")
        print(
            f"    accepted by ope_support's thresholds: {table['accepted'].sum()} of {len(table)}"
        )


def _truth(args: argparse.Namespace) -> Any:
    """The exact recovery probability of a schedule per event, by the simulated world's
    truth (the world of ``bench_world`` simulated again: the same seed, the same world)."""
    from training.config.params import SimulateParams
    from training.core.frames import Schedules
    from training.evaluation.truth_eval import truth_recovery
    from training.simulator.run import simulate_history

    truth = simulate_history(SimulateParams(invoices=args.invoices, seed=args.seed)).truth

    def value(events: pd.DataFrame, retries: Any, messages: Any) -> np.ndarray:
        schedules = Schedules(retries.frame(), messages.frame())
        return truth_recovery(truth, events, schedules).to_numpy()

    return value


def _true_figures(got: Explored, cost: np.ndarray) -> dict:
    day, shift = got.kind == DAY_MOVED, got.kind == SHIFTED
    return {
        "true cost per decision": cost.mean(),
        "true cost per day-moved decision": cost[day].mean() if day.any() else np.nan,
        "true cost per shifted decision": cost[shift].mean() if shift.any() else np.nan,
    }


def _first(ids: np.ndarray, retries: Any) -> np.ndarray:
    """Each event's first retry (ns; -1 when none)."""
    first = np.full(len(ids), np.iinfo(np.int64).max)
    pos = pd.Index(ids).get_indexer(retries.event_id)
    np.minimum.at(first, pos, retries.at)
    return np.where(first == np.iinfo(np.int64).max, -1, first)


def _late_share(ids: np.ndarray, failed: np.ndarray, retries: Any) -> float:
    """Share of the decisions whose first retry comes on day 5 or later after the failure."""
    first = _first(ids, retries)
    return float(((first >= 0) & (first - failed >= 5 * DAY_NS)).mean())


def _figures(
    ids: np.ndarray, failed: np.ndarray, got: Explored, cost: np.ndarray, early: np.ndarray
) -> dict:
    day, shift = got.kind == DAY_MOVED, got.kind == SHIFTED
    first = _first(ids, got.retries)
    late = (first >= 0) & (first - failed >= 5 * DAY_NS)
    return {
        "share of decisions day-moved": day.mean(),
        "share of decisions shifted": shift.mean(),
        "share with a first retry past day 4": _late_share(ids, failed, got.retries),
        "  of those searched by day 4, logged past day 4": late[early].mean(),
        "cost per decision (expected recovery)": cost.mean(),
        "cost per day-moved decision": cost[day].mean() if day.any() else np.nan,
        "cost per shifted decision": cost[shift].mean() if shift.any() else np.nan,
        "smallest propensity": got.propensity.min(),
    }


def _overlap(
    decider: Any, events: pd.DataFrame, past: Any, got: Explored, searched: Any, captured: dict
) -> dict[str, Any]:
    """Weights of one draw's log for the target "the first retry on a day past 4, drawn
    uniformly from the allowed ones (clock time kept, the rest as the day arm leaves it)":
    among the decisions whose searched first retry comes by day 4, a logged decision
    matches when the day arm moved its first retry past day 4."""
    ids, failed = column_array(events, "event_id"), to_ns(events["failed_at"])
    first, searched_first = _first(ids, got.retries), _first(ids, searched)
    end = captured["end"]  # retry_windows ends it at the rules' retry_deadline too
    low = -np.floor_divide(searched_first - captured["start"], DAY_NS)
    high = np.floor_divide(end - 1 - searched_first, DAY_NS)
    day_of_first = np.floor_divide(searched_first - failed, DAY_NS)
    late_days = np.maximum(high - np.maximum(low, 5 - day_of_first) + 1, 0)
    late_days = np.where(searched_first >= 0, late_days, 0)
    # the units: the decisions whose searched first retry is by day 4 (no greedy match)
    units = (searched_first >= 0) & (day_of_first < 5) & (late_days > 0)
    match = (got.kind == DAY_MOVED) & (first - failed >= 5 * DAY_NS)
    target = np.where(match, 1.0 / np.maximum(late_days, 1), 0.0)
    feedback = LoggedFeedback(
        np.zeros(units.sum()), match[units], got.propensity[units], target[units]
    )
    diagnostics = OverlapDiagnostics.of(feedback)
    return {
        "units": int(units.sum()),
        "matched": diagnostics.n_matched,
        "effective sample size": diagnostics.effective_sample_size,
        "largest weight share": diagnostics.max_weight_share,
        "accepted": not diagnostics.shortfalls(SupportThresholds()),
    }


if __name__ == "__main__":
    main()
