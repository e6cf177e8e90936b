"""Why the learned messages lose to the oracle's, on one zoo world (issue 13).

Not a speed benchmark: a diagnostic. It simulates and trains a zoo world as
``smartretry zoo`` does, then

1. on the held-out (test-period) logged message rows: the served message model's
   probability against the observed label (paid through the message) and the world's
   truth (P(respond) x P(pay) of the logged schedule, ``training/simulator/behaviour``),
   by template, by hours since the failure, by message rank and by local hour;
2. on the compared held-out failures: the learned and the oracle's messages with the
   learned retries, valued by the models and by the truth (whole schedule and per
   message), so that a wrong estimate (the model ranks the oracle's messages lower) can
   be told from a search that picks badly given the estimates (the model ranks them
   higher, yet the search did not find them).

    python benchmarks/message_diagnosis.py --world default --invoices 10000
"""

from __future__ import annotations

import argparse
import logging
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from training.config.params import load_params
from training.config.quiet_hours import QuietHours
from training.core.frames import Schedules
from training.declines.table import family_of, load_decline_table
from training.evaluation import run
from training.evaluation.truth_eval import truth_recovery
from training.evaluation.zoo import simulate_and_train
from training.features.frames import candidate_features
from training.models.datasets import history_timeline, training_data_for
from training.models.split import TimeSplit
from training.policy.scorer import past_rows
from training.simulator import behaviour
from training.simulator.truth import GroundTruth

HOUR_BUCKETS = [-1, 6, 12, 24, 48, 96, 168, 400]
ACTIVE = [-1, 1, 3, 6, 12]  # hours from the customer's true active hour


def true_message_probability(truth: GroundTruth, retries: pd.DataFrame, messages: pd.DataFrame):
    """P(respond) x P(pay) of every message of a schedule, given the schedule before it
    (the world's truth); columns event_id, send_at, template, hours, rank, local_hour, truth."""
    schedule = pd.concat(
        [
            pd.DataFrame({"invoice_id": retries["event_id"], "t": retries["at"], "kind": "retry"}),
            pd.DataFrame(
                {
                    "invoice_id": messages["event_id"],
                    "t": messages["send_at"],
                    "kind": "message",
                    "template": messages["template"],
                    "channel": messages["channel"],
                }
            ),
        ],
        ignore_index=True,
    )
    schedule["key"] = schedule["invoice_id"]
    schedule["t"] = pd.to_datetime(schedule["t"], utc=True)
    frame = behaviour.event_frame(schedule, truth.invoices)
    frame = frame[frame["kind"] == "message"].reset_index(drop=True)
    world = truth.world
    p = behaviour.message_response(frame, world) * behaviour.pay_given_response(frame, world)
    return pd.DataFrame(
        {
            "event_id": frame["invoice_id"],
            "send_at": frame["t"],
            "template": frame["template"],
            "hours": frame["hours_since_failure"],
            "rank": frame["messages_before"],
            "local_hour": frame["local_hour"],
            "channel": frame["channel"],
            # the world's latent active hour: a diagnostic grouping, never a feature
            "from_true_active_hour": np.abs(
                (frame["local_hour"] - frame["active_peak_hour"] + 12) % 24 - 12
            ),
            "truth": p,
        }
    )


def held_out_rows(world, params) -> pd.DataFrame:
    """Test-period logged message rows: model, observed, truth and the groupings."""
    history, artifact, truth = world.history, world.artifact, world.truth
    table = load_decline_table()
    update = params.retry_rules.update_requests
    data = training_data_for(history, params, table)
    timeline = history_timeline(history)
    rows = candidate_features(data.event_features, timeline, update)
    meta = timeline.loc[rows.index]
    is_message = (meta["kind"] == "message").to_numpy()
    x, meta = data.message.features, meta[is_message]
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)
    test = np.asarray(split.assign(data.message.due_at) == "test")
    model = artifact.models.message
    frame = pd.DataFrame(
        {
            "message_id": meta["row_id"].to_numpy()[test],
            "model": model.predict(x[test]),
            "observed": data.message.label[test],
        }
    )
    # the truth of each logged message, given the logged schedule before it
    ids = set(meta.loc[test, "key"])
    logged = timeline[timeline["key"].isin(ids) & (timeline["kind"] != "original")]
    logged = logged.drop(columns="event_id")
    retries = logged[logged["kind"] == "retry"].rename(columns={"key": "event_id", "t": "at"})
    sent = logged[logged["kind"] == "message"].rename(columns={"key": "event_id", "t": "send_at"})
    true = true_message_probability(truth, retries, sent)
    sent = sent.sort_values(["event_id", "send_at"], kind="stable")
    true = true.sort_values(["event_id", "send_at"], kind="stable")
    true["message_id"] = sent["row_id"].to_numpy()
    return frame.merge(true, on="message_id", validate="one_to_one")


def summary(frame: pd.DataFrame, by: pd.Series | str, columns: list[str]) -> pd.DataFrame:
    table = frame.groupby(by, observed=True)[columns].mean().round(3)
    table["rows"] = frame.groupby(by, observed=True).size()
    return table


def print_held_out(rows: pd.DataFrame) -> None:
    cols = ["model", "observed", "truth"]
    print(f"held-out logged message rows: {len(rows):,}")
    print(summary(rows, "template", cols).to_string(), "\n")
    hours = pd.cut(rows["hours"], HOUR_BUCKETS)
    print(summary(rows, hours, cols).to_string(), "\n")
    print(summary(rows, "rank", cols).to_string(), "\n")
    local = pd.cut(rows["local_hour"], [-1, 9, 12, 15, 18, 24])
    print(summary(rows, local, cols).to_string(), "\n")
    print(summary(rows, "channel", cols).to_string(), "\n")
    print(summary(rows, pd.cut(rows["from_true_active_hour"], ACTIVE), cols).to_string(), "\n")


def compare_search(world, params, events: int) -> None:
    """Learned vs the oracle's messages (both with the learned retries), by the models
    and by the truth: whole schedules and per message."""
    history, artifact, truth = world.history, world.artifact, world.truth
    decider = artifact.decider()
    held = run.held_out_events(history, artifact, params)
    sample = run.comparison_sample(held, params.evaluate).head(events).reset_index(drop=True)
    learned = run.policy_schedules(decider, sample)["learned"]
    oracle = run.oracle_schedules(truth, decider, sample, params.evaluate)
    features = decider.scorer.event_features(sample, None)
    past = past_rows(sample, None)
    none = learned.messages.iloc[0:0]
    variants = {
        "learned": Schedules(learned.retries, learned.messages),
        "oracle messages": Schedules(learned.retries, oracle.messages),
        "no message": Schedules(learned.retries, none),
        "learned msgs, no retry": Schedules(learned.retries.iloc[0:0], learned.messages),
        "oracle msgs, no retry": Schedules(learned.retries.iloc[0:0], oracle.messages),
    }
    scored = decider.expected_recoveries(
        sample, features, past, [(s.retries, s.messages) for s in variants.values()]
    )
    families = family_of(decider.rules.decide_many(sample, None)["category"].reset_index(drop=True))
    values = pd.DataFrame({"family": families.to_numpy()})
    planned: list[pd.DataFrame] = []
    for (name, s), (expected, _, message_p) in zip(variants.items(), scored, strict=True):
        values[f"{name} model"] = expected.reindex(sample["event_id"]).to_numpy()
        values[f"{name} truth"] = truth_recovery(truth, sample, s).to_numpy()
        if name in ("learned", "oracle messages"):
            per = true_message_probability(truth, s.retries, s.messages)
            message_p = message_p.sort_values(["event_id", "send_at"], kind="stable")
            per["model"] = message_p["response_probability"].to_numpy()
            per["policy"] = name
            planned.append(per)
    print(f"compared failures: {len(sample):,}; mean value, model / truth")
    table = values.groupby("family").mean().round(3)
    table.loc["all"] = values.drop(columns="family").mean().round(3)
    print(table.T.to_string(), "\n")
    gain_model = values["oracle messages model"] - values["learned model"]
    gain_truth = values["oracle messages truth"] - values["learned truth"]
    print(
        "oracle's messages better than the learned ones (learned retries): "
        f"by the truth on {np.mean(gain_truth > 0.005):.1%} of failures "
        f"(mean {gain_truth.mean():+.3f}), by the model on {np.mean(gain_model > 0.005):.1%} "
        f"(mean {gain_model.mean():+.3f}); both {np.mean((gain_model > 0.005) & (gain_truth > 0.005)):.1%}"
    )
    per = pd.concat(planned, ignore_index=True)
    per["hours bucket"] = pd.cut(per["hours"], HOUR_BUCKETS)
    print("\nper planned message, mean model / truth P(pays through it):")
    print(summary(per, ["policy", "rank"], ["model", "truth", "hours"]).to_string(), "\n")
    print(summary(per, ["policy", "template"], ["model", "truth"]).to_string(), "\n")
    print(summary(per, ["policy", "hours bucket"], ["model", "truth"]).to_string(), "\n")
    print(summary(per, ["policy", "channel"], ["model", "truth"]).to_string(), "\n")
    active = pd.cut(per["from_true_active_hour"], ACTIVE)
    print(summary(per, ["policy", active], ["model", "truth"]).to_string(), "\n")
    estimate = pd.Series(features.column("cust_active_hour"), index=features.ids)
    print_estimate_split(per, estimate, params.policy.quiet_hours)


def hours_apart(a: pd.Series | np.ndarray, b: pd.Series | np.ndarray) -> np.ndarray:
    """Distance between two local hours on the 24 h circle."""
    return np.abs((np.asarray(a, dtype=float) - np.asarray(b, dtype=float) + 12) % 24 - 12)


def print_estimate_split(per: pd.DataFrame, estimate: pd.Series, quiet: QuietHours) -> None:
    """Why planned messages go more than 1 h from the customer's true active hour: no
    estimate (``cust_active_hour`` at the decision), sent at a wrong estimate, the
    estimate outside the sending hours, or the search placing them elsewhere."""
    rows = per.assign(estimate=estimate.reindex(per["event_id"]).to_numpy())
    has = rows["estimate"].notna()
    near_estimate = hours_apart(rows["local_hour"], rows["estimate"]) <= 1
    hour = rows["estimate"] % 24
    if quiet.start_hour > quiet.end_hour:  # quiet hours wrap midnight: send in [end, start)
        sendable = (hour >= quiet.end_hour) & (hour < quiet.start_hour)
    else:
        sendable = (hour < quiet.start_hour) | (hour >= quiet.end_hour)
    far = rows["from_true_active_hour"] > 1
    why = np.select(
        [~has, near_estimate, ~sendable],
        ["no estimate", "at the estimate, the estimate wrong", "estimate in the quiet hours"],
        "the search (estimate sendable, message elsewhere)",
    )
    split = pd.DataFrame({"policy": rows["policy"], "why": why})[far.to_numpy()]
    counts = split.groupby(["policy", "why"]).size().rename("messages").to_frame()
    counts["share"] = (
        counts["messages"] / counts.groupby("policy")["messages"].transform("sum")
    ).round(3)
    print(
        f"messages more than 1 h from the true active hour, by why ({quiet.start_hour:02d}:00-{quiet.end_hour:02d}:00 quiet):"
    )
    print(counts.to_string(), "\n")
    sent_near = rows[has & sendable & (rows["policy"] == "learned")]
    print(
        "learned messages with a sendable estimate: "
        f"{len(sent_near):,}, within 1 h of it {np.mean(hours_apart(sent_near['local_hour'], sent_near['estimate']) <= 1):.1%}"
    )


def cached_world(name: str, invoices: int, seed: int, params, out: Path):
    """The zoo world simulated and trained as ``smartretry zoo`` does, kept in ``out``: a
    second look at the same world (this script or ``engagement_diagnosis.py``) skips
    simulating and training."""
    cached = out / name / f"world-{invoices}-{seed}.pkl"
    if cached.exists():
        return pickle.loads(cached.read_bytes())
    world = simulate_and_train(name, invoices, seed, params, out)
    cached.write_bytes(pickle.dumps(world))
    return world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="default")
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events", type=int, default=600, help="compared failures")
    parser.add_argument("--out", type=Path, default=Path("/tmp/message-diagnosis"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = load_params()
    world = cached_world(args.world, args.invoices, args.seed, params, args.out)
    print(f"{args.world}, {args.invoices:,} invoices, seed {args.seed}")
    print_held_out(held_out_rows(world, params))
    compare_search(world, params, args.events)


if __name__ == "__main__":
    main()
