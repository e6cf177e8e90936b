"""Where the reported probability of the learned schedule loses its level (issue 13).

A diagnostic, not a speed benchmark. On one zoo world (simulated and trained as
``smartretry zoo`` does, or read back from ``--cache``), for the held-out events the zoo
compares, the gap between the reported probability of the learned schedule and the
world's exact truth is split *exactly* into additive parts:

    reported - truth = (steepened - models' value)         the calendar contrast
                     + (leveled - steepened)                the chosen level
                     + (reported - leveled)                 the gain shrinkage
                     + (self-cure: model - truth) x P_truth(no event recovers)
                     + sum over the schedule's rows k of
                       (1 - s_model) prod_{j<k} (1 - p_j) (p_k - h_k) prod_{j>k} (1 - h_j)

where "steepened" is the value with the calendar contrast
(training/policy/calendar.py; the models' own when the artifact has none) before the
gain shrinkage, "leveled" the same with the searched schedule's rows moved by the level
where the search chooses (training/artifact/chosen_level.py; none when the artifact has
none), ``p_k`` the models' probability of row k (a retry's success, a message's
response and payment) and ``h_k`` the truth's conditional probability that row k
recovers the invoice given that no earlier row did (from the exact recovery of each
prefix of the schedule, :meth:`GroundTruth.recovery_probability`). The rows' parts
are then summed by kind and rank, by hours since the failure, by decline family and by
decile of the reported probability; beside them the mean ``p`` and ``h`` weighted by
the truth's survival before the row (the conditional rate the row meets), and ``p``
with the calibration offsets per group switched off (what the offsets add).

The models combine rows as independent given the past (``training/policy/scorer.py``);
the truth's own combination (card update state carried from row to row) is inside ``h``,
so a combination error shows as rows whose ``p`` is right on the logged schedules
(the fixed schedule's table) and wrong along the learned one.

    python benchmarks/calibration_decomposition.py --world paydays --invoices 10000
"""

from __future__ import annotations

import argparse
import logging
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from training.artifact.calendar_contrast import measure_calendar_contrast
from training.artifact.chosen_level import level_events, measure_chosen_level
from training.config.params import load_params
from training.core.frames import Schedules
from training.declines.table import family_of, load_decline_table
from training.evaluation import run
from training.evaluation.truth_eval import truth_recovery
from training.evaluation.zoo import TrainedWorld, simulate_and_train
from training.policy.decider import ModelDecider
from training.policy.scorer import past_rows
from training.simulator.truth import GroundTruth

HOUR_BUCKETS = [0, 24, 48, 72, 96, 144, 192, 240, 1e9]


def schedule_rows(s: Schedules) -> pd.DataFrame:
    """Retries and messages of many events as one frame in time order per event (rank:
    the row's place in its event's schedule; kind_rank: its place among its kind)."""
    rows = pd.concat(
        [
            pd.DataFrame(
                {"event_id": s.retries["event_id"], "t": s.retries["at"], "kind": "retry"}
            ),
            pd.DataFrame(
                {
                    "event_id": s.messages["event_id"],
                    "t": s.messages["send_at"],
                    "kind": "message",
                    "template": s.messages["template"],
                    "channel": s.messages["channel"],
                }
            ),
        ],
        ignore_index=True,
    )
    rows["t"] = pd.to_datetime(rows["t"], utc=True)
    rows = rows.sort_values(["event_id", "t"], kind="stable").reset_index(drop=True)
    rows["rank"] = rows.groupby("event_id").cumcount()
    rows["kind_rank"] = rows.groupby(["event_id", "kind"]).cumcount() + 1
    return rows


def prefix_survival(
    truth: GroundTruth, events: pd.DataFrame, rows: pd.DataFrame, self_pay: np.ndarray
) -> np.ndarray:
    """The truth's P(no row up to and including each row recovers the invoice), per row
    of ``rows`` (self-payment left out): the exact recovery of every prefix."""
    n_rank = int(rows["rank"].max()) + 1 if len(rows) else 0
    survival = np.ones(len(rows))
    position = pd.Series(np.arange(len(events)), index=events["event_id"].to_numpy())
    for k in range(n_rank):
        ending = rows["rank"].to_numpy() == k
        keyed = rows[rows["rank"] <= k]
        keyed = keyed[keyed["event_id"].isin(rows.loc[ending, "event_id"])]
        retries = keyed[keyed["kind"] == "retry"]
        messages = keyed[keyed["kind"] == "message"]
        keys = events[events["event_id"].isin(rows.loc[ending, "event_id"])]
        value = truth_recovery(
            truth,
            keys,
            Schedules(
                pd.DataFrame({"event_id": retries["event_id"], "at": retries["t"]}),
                pd.DataFrame(
                    {
                        "event_id": messages["event_id"],
                        "send_at": messages["t"],
                        "template": messages["template"],
                        "channel": messages["channel"],
                    }
                ),
            ),
        )
        ids = rows.loc[ending, "event_id"].to_numpy()
        s = self_pay[position.reindex(ids).to_numpy()]
        survival[ending] = (1.0 - value.reindex(ids).to_numpy()) / (1.0 - s)
    return survival


def decompose(
    decider: ModelDecider,
    truth: GroundTruth,
    sample: pd.DataFrame,
    schedules: Schedules,
    reported: np.ndarray,
    steepened: np.ndarray,
    leveled: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per event (sample order) and per schedule row: the parts of reported - truth."""
    features = decider.scorer.event_features(sample, None)
    past = past_rows(sample, None)
    value, retry_p, message_p = decider.expected_recovery(
        sample, features, past, schedules.retries, schedules.messages
    )
    rows = schedule_rows(schedules)
    probability = pd.concat(
        [
            pd.DataFrame(
                {"event_id": retry_p["event_id"], "t": retry_p["at"], "kind": "retry"}
            ).assign(p=retry_p["success_probability"].to_numpy()),
            pd.DataFrame(
                {"event_id": message_p["event_id"], "t": message_p["send_at"], "kind": "message"}
            ).assign(p=message_p["response_probability"].to_numpy()),
        ],
        ignore_index=True,
    )
    probability["t"] = pd.to_datetime(probability["t"], utc=True)
    rows = rows.merge(probability, on=["event_id", "t", "kind"], how="left", validate="1:1")
    # the same rows with the calibration offsets per group switched off
    models = decider.scorer.models
    kept = {m: getattr(models, m).group_calibrator for m in ("retry", "message")}
    try:
        for m in kept:
            getattr(models, m).group_calibrator = None
        _, retry_q, message_q = decider.expected_recovery(
            sample, features, past, schedules.retries, schedules.messages
        )
    finally:
        for m, g in kept.items():
            getattr(models, m).group_calibrator = g
    rows["p_no_offsets"] = np.concatenate(
        [retry_q["success_probability"].to_numpy(), message_q["response_probability"].to_numpy()]
    )[_merge_order(rows, retry_q, message_q)]

    position = pd.Series(np.arange(len(sample)), index=sample["event_id"].to_numpy())
    pos = position.reindex(rows["event_id"].to_numpy()).to_numpy()
    self_truth = (
        truth.invoices.set_index("invoice_id")["p_self_pay"]
        .reindex(sample["invoice_id"].to_numpy())
        .to_numpy()
    )
    self_model = decider.scorer.self_cure_probabilities(features, sample["window_days"].to_numpy())
    survival = prefix_survival(truth, sample, rows, self_truth)
    first = rows["rank"].to_numpy() == 0
    before = np.where(first, 1.0, np.roll(survival, 1))
    rows["s_before"] = before
    rows["h"] = np.where(before > 0, 1.0 - survival / np.maximum(before, 1e-12), 0.0)
    p = rows["p"].to_numpy()
    log_model = np.log1p(-np.clip(p, 0, 1 - 1e-9))
    log_truth = np.log1p(-np.clip(rows["h"].to_numpy(), 0, 1 - 1e-12))
    ev = rows["event_id"].to_numpy()
    model_before = np.exp(
        pd.Series(log_model).groupby(ev).cumsum().to_numpy() - log_model
    )  # prod_{j<k} (1 - p_j)
    truth_total = np.exp(pd.Series(log_truth).groupby(ev).transform("sum").to_numpy())
    truth_after = truth_total / np.exp(pd.Series(log_truth).groupby(ev).cumsum().to_numpy())
    rows["part"] = (1 - self_model[pos]) * model_before * (p - rows["h"]) * truth_after
    per_event = pd.DataFrame(
        {
            "event_id": sample["event_id"].to_numpy(),
            "reported": reported,
            "model": value.reindex(sample["event_id"]).to_numpy(),
            "truth": truth_recovery(truth, sample, schedules).to_numpy(),
            "self_model": self_model,
            "self_truth": self_truth,
        }
    )
    survival_all = (
        pd.Series(np.exp(log_truth)).groupby(ev).prod().reindex(per_event["event_id"]).fillna(1.0)
    )
    per_event["calendar"] = steepened - per_event["model"]
    per_event["level"] = leveled - steepened
    per_event["shrinkage"] = per_event["reported"] - leveled
    per_event["self"] = (self_model - self_truth) * survival_all.to_numpy()
    parts = rows.groupby(["event_id", "kind"])["part"].sum().unstack(fill_value=0.0)
    for kind, name in (("retry", "retries"), ("message", "messages")):
        column = parts[kind] if kind in parts else pd.Series(dtype=float)
        per_event[name] = column.reindex(per_event["event_id"]).fillna(0.0).to_numpy()
    return per_event, rows


def _merge_order(rows: pd.DataFrame, retry_q: pd.DataFrame, message_q: pd.DataFrame) -> np.ndarray:
    """Positions, in retries-then-messages order, of each row of ``rows``."""
    both = pd.concat(
        [
            pd.DataFrame({"event_id": retry_q["event_id"], "t": retry_q["at"], "kind": "retry"}),
            pd.DataFrame(
                {"event_id": message_q["event_id"], "t": message_q["send_at"], "kind": "message"}
            ),
        ],
        ignore_index=True,
    )
    both["t"] = pd.to_datetime(both["t"], utc=True)
    both["i"] = np.arange(len(both))
    return rows.merge(both, on=["event_id", "t", "kind"], how="left")["i"].to_numpy()


def row_table(rows: pd.DataFrame, by: list[str], n_events: int) -> pd.DataFrame:
    """Per group of rows: how many, the mean p and h weighted by the truth's survival
    before the row, p without the offsets, and the group's part of the mean gap."""
    w = rows["s_before"]
    frame = rows.assign(wp=rows["p"] * w, wh=rows["h"] * w, wq=rows["p_no_offsets"] * w, w=w)
    table = frame.groupby(by, observed=True).agg(
        rows=("p", "size"),
        wp=("wp", "sum"),
        wh=("wh", "sum"),
        wq=("wq", "sum"),
        w=("w", "sum"),
        part=("part", "sum"),
    )
    out = pd.DataFrame(
        {
            "rows": table["rows"],
            "p model": table["wp"] / table["w"],
            "h truth": table["wh"] / table["w"],
            "p no offsets": table["wq"] / table["w"],
            "part of gap": table["part"] / n_events,
        }
    )
    return out.round(4)


def report(name: str, per_event: pd.DataFrame, rows: pd.DataFrame, families: np.ndarray) -> None:
    n = len(per_event)
    c = run._calibration(per_event["reported"].to_numpy(), per_event["truth"].to_numpy())
    print(f"\n== {name}: {n:,} events; calibration MAE by decile {c['binned_mae']:.3f}")
    gap = per_event["reported"] - per_event["truth"]
    summed = per_event[["calendar", "level", "shrinkage", "self", "retries", "messages"]].sum(
        axis=1
    )
    print(
        f"mean reported {per_event['reported'].mean():.4f}, models' value "
        f"{per_event['model'].mean():.4f}, truth {per_event['truth'].mean():.4f}; "
        f"gap {gap.mean():+.4f} = calendar contrast {per_event['calendar'].mean():+.4f} + "
        f"chosen level {per_event['level'].mean():+.4f} + "
        f"shrinkage {per_event['shrinkage'].mean():+.4f} + self-cure "
        f"{per_event['self'].mean():+.4f} + retries {per_event['retries'].mean():+.4f} + "
        f"messages {per_event['messages'].mean():+.4f} (check {summed.mean():+.4f})"
    )
    order = np.argsort(per_event["reported"].to_numpy(), kind="stable")
    decile = np.empty(n, dtype=int)
    for i, g in enumerate(np.array_split(order, 10)):
        decile[g] = i + 1
    columns = [
        "reported",
        "truth",
        "calendar",
        "level",
        "shrinkage",
        "self",
        "retries",
        "messages",
    ]
    print("\nby decile of the reported probability (means; the last six sum to the gap)")
    print(per_event[columns].groupby(decile).mean().round(4).to_string())
    print("\nby decline family")
    table = per_event[columns].groupby(families).mean().round(4)
    print(table.assign(events=pd.Series(families).value_counts()).to_string())
    print("\nrows by kind and rank among their kind (p, h weighted by the truth's survival)")
    print(row_table(rows, ["kind", "kind_rank"], n).to_string())
    hours = (rows["t"] - rows["failed_at"]).dt.total_seconds() / 3600
    rows = rows.assign(hours=pd.cut(hours, HOUR_BUCKETS, right=False))
    print("\nrows by kind and hours since the failure")
    print(row_table(rows, ["kind", "hours"], n).to_string())
    print("\nretries by decline family and rank")
    retries = rows[rows["kind"] == "retry"]
    print(row_table(retries, ["family", "kind_rank"], n).to_string())


def load_world(args: argparse.Namespace) -> TrainedWorld:
    cache = args.cache / f"{args.world}-{args.invoices}-{args.seed}.pkl"
    if cache.exists():
        with cache.open("rb") as f:
            world: TrainedWorld = pickle.load(f)
        return world
    world = simulate_and_train(args.world, args.invoices, args.seed, load_params(), args.out)
    cache.parent.mkdir(parents=True, exist_ok=True)
    with cache.open("wb") as f:
        pickle.dump(world, f)
    return world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="paydays")
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("/tmp/calibration-decomposition"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/calibration-decomposition"))
    parser.add_argument(
        "--without-contrast",
        action="store_true",
        help="report without the calendar contrast (as before it existed); by default a "
        "cached training that lacks it has it measured",
    )
    parser.add_argument(
        "--measure-contrast",
        action="store_true",
        help="measure the calendar contrast again with params.yaml's moves, even when the "
        "cached training has one",
    )
    parser.add_argument(
        "--without-level",
        action="store_true",
        help="report without the level where the search chooses (as before it existed); by "
        "default a cached training that lacks it has it measured",
    )
    parser.add_argument(
        "--measure-level",
        action="store_true",
        help="measure the level where the search chooses again with params.yaml's settings",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = load_params()
    world = load_world(args)
    metadata = world.artifact.metadata
    if args.without_contrast:
        metadata.pop("calendar_contrast", None)
    elif "calendar_contrast" not in metadata or args.measure_contrast:
        contrast = measure_calendar_contrast(
            world.history, world.artifact.models, world.artifact.log, params, load_decline_table()
        )
        metadata["calendar_contrast"] = contrast.as_metadata()
    print(f"calendar contrast: {metadata.get('calendar_contrast', 'none')}")
    if args.without_level:
        metadata.pop("chosen_level", None)
    elif "chosen_level" not in metadata or args.measure_level or args.measure_contrast:
        events = level_events(world.history, params)
        level = measure_chosen_level(world.artifact, world.history, events, params)
        metadata["chosen_level"] = level.as_metadata()
    print(f"chosen level: {metadata.get('chosen_level', 'none')}")
    decider = world.artifact.decider()
    held = run.held_out_events(world.history, world.artifact, params)
    sample = run.comparison_sample(held, params.evaluate)
    schedules = run.policy_schedules(decider, sample)
    features = decider.scorer.event_features(sample, None)
    estimates = run.model_estimates(decider, sample, features, schedules)
    factor, decider.gain_shrinkage = decider.gain_shrinkage, 1.0
    leveled = run.model_estimates(decider, sample, features, schedules)
    levels, decider.chosen_levels = decider.chosen_levels, {}
    steepened = run.model_estimates(decider, sample, features, schedules)
    decider.gain_shrinkage, decider.chosen_levels = factor, levels
    categories = decider.rules.decide_many(sample, None)["category"].reset_index(drop=True)
    families = family_of(categories).to_numpy()
    print(f"{args.world}, {args.invoices:,} invoices, seed {args.seed}: estimate - truth")
    for policy in ("learned", "fixed"):
        reported, steep = estimates[policy].to_numpy(), steepened[policy].to_numpy()
        per_event, rows = decompose(
            decider,
            world.truth,
            sample,
            schedules[policy],
            reported,
            steep,
            leveled[policy].to_numpy(),
        )
        rows = rows.merge(
            sample[["event_id", "failed_at"]].assign(family=families), on="event_id", how="left"
        )
        report(policy, per_event, rows, families)


if __name__ == "__main__":
    main()
