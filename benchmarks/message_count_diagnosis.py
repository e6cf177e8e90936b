"""Why the message pruning keeps about three messages where each one costs (issue 13).

Not a speed benchmark: a diagnostic. For each world it simulates and trains as
``smartretry zoo`` does (cached under ``--out``), then asks what one message is worth
to the rest of its schedule, by the served models and by the world's exact truth:

1. **Logged rows** (held-out invoices): every logged retry and message after an
   invoice's first logged message, scored as logged and again with that first message
   removed from the timeline (the dunning state recomputed), by the models and by the
   truth (``training/evaluation/truth_scorer.py``). The ratio is what one earlier
   message does to a later event where the history has data.
2. **The policy's schedules** (compared held-out failures): the learned retries with the
   greedy search's messages *before* the pruning; for each message the pruning's own
   question, the schedule's recovery with and without it (retries where they are), split
   into its own chance, what it takes from the later retries and from the later
   messages (shares of the change in log-survival), by the models and by the truth; and
   how many messages the pruning keeps with the models' values and with the truth's on
   the same retries.

    python benchmarks/message_count_diagnosis.py --worlds fatigue,default --invoices 10000
"""

from __future__ import annotations

import argparse
import logging
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from training.config.params import Params, load_params
from training.config.retry_limits import UpdateRequests
from training.core.frames import Schedules
from training.declines.table import load_decline_table
from training.evaluation import run
from training.evaluation.policies import learned_schedules
from training.evaluation.truth_eval import truth_recovery
from training.evaluation.truth_scorer import TruthScorer
from training.evaluation.zoo import TrainedWorld, simulate_and_train
from training.features.frames import candidate_features
from training.models.datasets import history_timeline, training_data_for
from training.models.split import TimeSplit
from training.policy.message_pruning import (
    Schedule,
    protected_messages,
    prune_messages,
    schedule_messages,
)
from training.policy.schedule_rows import MessageRows
from training.policy.scorer import past_rows


def trained_world(name: str, invoices: int, seed: int, params: Params, out: Path) -> TrainedWorld:
    """The world simulated and trained as the zoo does; pickled for a second look."""
    cached = out / name / f"world-{invoices}-{seed}.pkl"
    if cached.exists():
        world: TrainedWorld = pickle.loads(cached.read_bytes())
        return world
    world = simulate_and_train(name, invoices, seed, params, out)
    cached.write_bytes(pickle.dumps(world))
    return world


# --- 1. logged rows -------------------------------------------------------------------


def _scored(
    world: TrainedWorld, features: pd.DataFrame, timeline: pd.DataFrame, update: UpdateRequests
) -> pd.DataFrame:
    """Model and true probability of every candidate row of ``timeline`` (its index)."""
    rows = candidate_features(features, timeline, update)
    kind = rows["kind"].to_numpy()
    model = np.full(len(rows), np.nan)
    models = world.artifact.models
    for name, scorer in (("retry", models.retry), ("message", models.message)):
        mask = kind == name
        if mask.any() and scorer is not None:
            model[mask] = scorer.predict(rows[mask].drop(columns="kind"))
    true = TruthScorer(world.truth).candidate_probabilities(features, timeline)
    return pd.DataFrame(
        {
            "kind": kind,
            "messages_before": rows["messages_before"].to_numpy(),
            "model": model,
            "truth": true.reindex(rows.index).to_numpy(),
        },
        index=rows.index,
    )


def logged_effect(world: TrainedWorld, params: Params) -> pd.DataFrame:
    """Held-out logged rows after each invoice's first message: mean model / true
    probability as logged and without that message, by kind and messages before."""
    history = world.history
    update = params.retry_rules.update_requests
    data = training_data_for(history, params, load_decline_table())
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)
    events = data.events
    test = set(events.loc[split.assign(events["failed_at"]) == "test", "event_id"])
    timeline = history_timeline(history)
    timeline = timeline[timeline["key"].isin(test)]
    is_message = (timeline["kind"] == "message").to_numpy()
    first_at = timeline[is_message].groupby("key")["t"].min()
    first_row = timeline[is_message].sort_values(["key", "t"], kind="stable")
    first_row = first_row[~first_row["key"].duplicated()].index
    after = timeline["t"].to_numpy() > timeline["key"].map(first_at).to_numpy()
    after &= (timeline["kind"] != "original").to_numpy()
    logged = timeline.assign(candidate=after)
    without = logged.drop(index=first_row)
    a = _scored(world, data.event_features, logged, update)
    b = _scored(world, data.event_features, without, update)
    b = b.reindex(a.index)
    a["model without"], a["truth without"] = b["model"], b["truth"]
    a["messages_before"] = np.minimum(a["messages_before"], 3).astype(int)
    table = a.groupby(["kind", "messages_before"]).agg(
        rows=("model", "size"),
        model=("model", "mean"),
        model_without=("model without", "mean"),
        truth=("truth", "mean"),
        truth_without=("truth without", "mean"),
    )
    table["model ratio"] = table["model"] / table["model_without"]
    table["truth ratio"] = table["truth"] / table["truth_without"]
    return table.round(4)


# --- 2. the policy's schedules ---------------------------------------------------------


def _row_probabilities(
    world: TrainedWorld, sample: pd.DataFrame, schedules: list[tuple[pd.DataFrame, pd.DataFrame]]
) -> list[tuple[pd.DataFrame, np.ndarray, np.ndarray]]:
    """Per schedule: model and true probability of each retry and message row, and the
    schedule's model and exact true recovery per event."""
    decider = world.artifact.decider()
    features = decider.scorer.event_features(sample, None)
    past = past_rows(sample, None)
    scored = decider.expected_recoveries(sample, features, past, schedules)
    owner = sample.set_index("event_id")["invoice_id"]
    out = []
    for (retries, messages), (expected, retry_p, message_p) in zip(schedules, scored, strict=True):
        rows = pd.concat(
            [
                pd.DataFrame(
                    {
                        "key": retry_p["event_id"],
                        "t": retry_p["at"],
                        "kind": "retry",
                        "template": None,
                        "channel": None,
                        "model": retry_p["success_probability"],
                    }
                ),
                pd.DataFrame(
                    {
                        "key": message_p["event_id"],
                        "t": message_p["send_at"],
                        "kind": "message",
                        "template": message_p["template"],
                        "channel": message_p["channel"],
                        "model": message_p["response_probability"],
                    }
                ),
            ],
            ignore_index=True,
        )
        rows["event_id"] = rows["key"].map(owner).to_numpy()
        rows["candidate"] = True
        rows["t"] = pd.to_datetime(rows["t"], utc=True)
        rows["truth"] = TruthScorer(world.truth).candidate_probabilities(features, rows)
        value_truth = truth_recovery(world.truth, sample, Schedules(retries, messages))
        out.append((rows, expected.to_numpy(), value_truth.to_numpy()))
    return out


def _log_survival(rows: pd.DataFrame, column: str) -> pd.Series:
    return np.log1p(-rows[column].clip(0, 1 - 1e-9))


def marginal_values(world: TrainedWorld, params: Params, events: int) -> pd.DataFrame:
    """Per message of the unpruned learned schedule: what it adds to its schedule (the
    pruning's gain) by the models and the truth, and where that comes from."""
    decider = world.artifact.decider()
    held = run.held_out_events(world.history, world.artifact, params)
    sample = run.comparison_sample(held, params.evaluate).head(events).reset_index(drop=True)
    decider.config = decider.config.model_copy(update={"prune_messages": False})
    greedy = learned_schedules(decider, sample)
    retries = greedy.retries.reset_index(drop=True)
    messages = greedy.messages.sort_values(["event_id", "send_at"], kind="stable")
    messages = messages.reset_index(drop=True)
    rank = messages.groupby("event_id").cumcount().to_numpy()
    ranks = int(rank.max()) + 1
    variants = [(retries, messages)] + [
        (retries, messages[rank != r].reset_index(drop=True)) for r in range(ranks)
    ]
    scored = _row_probabilities(world, sample, variants)
    full_rows, full_model, full_truth = scored[0]
    full_rows = full_rows.sort_values(["key", "t"], kind="stable")
    pos = pd.Index(sample["event_id"]).get_indexer(messages["event_id"])
    parts = []
    for r in range(ranks):
        rows, value_model, value_truth = scored[r + 1]
        these = np.flatnonzero(rank == r)
        dropped = messages.iloc[these]
        at = pd.Series(pd.to_datetime(dropped["send_at"], utc=True).to_numpy(), dropped["event_id"])
        later = full_rows[full_rows["t"].to_numpy() > full_rows["key"].map(at).to_numpy()]
        later = later.merge(
            rows[["key", "t", "kind", "model", "truth"]],
            on=["key", "t", "kind"],
            suffixes=("", "_without"),
            validate="one_to_one",
        )
        sent = dropped.rename(columns={"event_id": "key", "send_at": "t"})[["key", "t"]]
        sent = sent.assign(t=pd.to_datetime(sent["t"], utc=True), kind="message")
        own = full_rows.merge(sent, on=["key", "t", "kind"], validate="one_to_one")
        frame = pd.DataFrame({"event_id": dropped["event_id"].to_numpy(), "rank": r})
        frame["template"] = dropped["template"].to_numpy()
        for source in ("model", "truth"):
            full_value = full_model if source == "model" else full_truth
            gain = (
                full_value[pos[these]]
                - (value_model if source == "model" else value_truth)[pos[these]]
            )
            own_ls = -own.set_index("key")[source].pipe(lambda s: np.log1p(-s.clip(0, 1 - 1e-9)))
            later_ls = _log_survival(later, f"{source}_without") - _log_survival(
                later, source
            )  # < 0 where the message lowers a later event's chance
            by_kind = later_ls.groupby([later["key"], later["kind"]]).sum().unstack(fill_value=0)
            by_kind = by_kind.reindex(columns=["retry", "message"], fill_value=0)
            own_part = own_ls.reindex(frame["event_id"]).fillna(0).to_numpy()
            retry_part = by_kind["retry"].reindex(frame["event_id"]).fillna(0).to_numpy()
            message_part = by_kind["message"].reindex(frame["event_id"]).fillna(0).to_numpy()
            total = own_part + retry_part + message_part
            share = np.divide(gain, total, out=np.zeros_like(gain), where=np.abs(total) > 1e-12)
            frame[f"gain {source}"] = gain
            frame[f"own {source}"] = own_part * share
            frame[f"retries {source}"] = retry_part * share
            frame[f"messages {source}"] = message_part * share
            ratio = later[later["kind"] == "retry"]
            factor = (ratio[source] / ratio[f"{source}_without"]).groupby(ratio["key"]).mean()
            frame[f"retry factor {source}"] = factor.reindex(frame["event_id"]).to_numpy()
        parts.append(frame)
    per_message = pd.concat(parts, ignore_index=True)
    # how many the pruning keeps on these retries, with the models' values and the truth's
    decisions = decider.rules.decide_many(sample, None).reset_index(drop=True)
    update = decider.rules.limits.update_requests
    protected = protected_messages(sample, decisions, messages, update)

    def truth_values(schedules: list[Schedule]) -> list[np.ndarray]:
        return [
            truth_recovery(world.truth, sample, Schedules(s[0], schedule_messages(s))).to_numpy()
            for s in schedules
        ]

    def model_values(schedules: list[Schedule]) -> list[np.ndarray]:
        features = decider.scorer.event_features(sample, None)
        past = past_rows(sample, None)
        pairs = [(s[0], schedule_messages(s)) for s in schedules]
        return [
            e.to_numpy() for e, _, _ in decider.expected_recoveries(sample, features, past, pairs)
        ]

    gain = params.policy.min_message_gain
    kept = {
        "greedy (no pruning)": messages,
        "pruned by the models": prune_messages(
            sample, retries, messages, protected, model_values, gain
        ),
        "pruned by the truth": prune_messages(
            sample, retries, messages, protected, truth_values, gain
        ),
    }
    counts = {}
    for name, frame in kept.items():
        rows = frame.frame() if isinstance(frame, MessageRows) else frame
        value = truth_recovery(world.truth, sample, Schedules(retries, rows))
        counts[name] = {
            "messages per failure": len(frame) / len(sample),
            "true recovery": value.mean(),
        }
    per_message.attrs["counts"] = pd.DataFrame(counts).T.round(3)
    per_message.attrs["events"] = len(sample)
    return per_message


def print_world(name: str, logged: pd.DataFrame, per_message: pd.DataFrame, gain: float) -> None:
    print(f"\n=== {name} ===")
    print("logged held-out rows after the first message: mean P as logged / without it")
    print(logged.to_string(), "\n")
    columns = [
        f"{part} {source}"
        for part in ("gain", "own", "retries", "messages", "retry factor")
        for source in ("model", "truth")
    ]
    table = per_message.groupby("rank")[columns].mean()
    table["below min gain, model"] = per_message.groupby("rank")["gain model"].apply(
        lambda g: np.mean(g < gain)
    )
    table["below min gain, truth"] = per_message.groupby("rank")["gain truth"].apply(
        lambda g: np.mean(g < gain)
    )
    table["messages"] = per_message.groupby("rank").size()
    print(
        f"greedy messages of {per_message.attrs['events']} compared failures, learned retries: "
        "what each adds to its schedule (points of recovery) and from where"
    )
    print(table.T.round(4).to_string(), "\n")
    print(per_message.attrs["counts"].to_string(), "\n")


def print_slopes(name: str, world: TrainedWorld) -> None:
    """The retry model's count slope: the first stage (timing held fixed) and the one the
    calibration map serves."""
    retry = world.artifact.models.retry
    effect, grouped = retry.count_effect, retry.group_calibrator
    if effect is None or grouped is None or not grouped.slopes:
        print(f"[{name}] no count effect in the retry model")
        return
    served = float(grouped.model.coef_[0][-1])
    print(f"[{name}] retry count slope: first stage {effect.describe()}, served {served:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default="fatigue,default")
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--events", type=int, default=600, help="compared failures")
    parser.add_argument("--out", type=Path, default=Path("/tmp/message-count-diagnosis"))
    parser.add_argument("--params", type=Path, default=None, help="a params file (variants)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = load_params(args.params) if args.params else load_params()
    for name in args.worlds.split(","):
        world = trained_world(name, args.invoices, args.seed, params, args.out)
        print_slopes(name, world)
        logged = logged_effect(world, params)
        per_message = marginal_values(world, params, args.events)
        print_world(name, logged, per_message, params.policy.min_message_gain)


if __name__ == "__main__":
    main()
