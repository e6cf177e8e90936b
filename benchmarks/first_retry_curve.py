"""The value of a lone first retry (or first message) by its delay, model against truth,
for variants of ``train.model`` trained on one simulated history (issue 13).

A diagnostic, not a speed benchmark. It simulates a zoo world once (cached in ``--out``),
builds the training rows once, then per ``--variant NAME=JSON`` (overrides of
``train.model``, as in ``screen_model_params.py``) fits the models, prints the held-out
log loss and AUC of the retry and message models, and, for held-out failures whose rules
allow a retry, the mean P(success) of one lone retry at the failure's clock time on day
d (no message), by the model and by the world's exact truth, overall and by decline
family; then the same for one lone first message ``h`` hours after the failure (no
retry; the most logged first-message template and channel). The truth of the lone event
is 1 - P(not recovered with it) / P(not recovered without it), so the customer's own
payment is taken out.

    python benchmarks/first_retry_curve.py --world default --invoices 20000 --seed 7 \\
        --out /tmp/h48 --variant base={} \\
        --variant additive='{"additive_groups": [["hours_since_failure"], ["retries_before"]]}'
"""

from __future__ import annotations

import argparse
import pickle
import time
from pathlib import Path

import numpy as np
import pandas as pd
from screen_model_params import variant_settings

from training.artifact.decision_artifact import DecisionArtifact
from training.config.params import Params, load_params
from training.contract.io import load_history, write_history
from training.core.frames import Schedules, empty_messages, empty_retries
from training.declines.table import family_of, load_decline_table
from training.evaluation import run
from training.evaluation.truth_eval import truth_recovery
from training.models.datasets import training_data_for
from training.models.fit import TrainedModels, fit_models
from training.models.split import TimeSplit
from training.policy.decider import ModelDecider
from training.policy.scorer import past_rows
from training.simulator.run import simulate_history
from training.simulator.zoo import zoo_world

RETRY_DAYS = (1, 2, 3, 4, 5, 6, 8, 10, 13)
MESSAGE_HOURS = (0, 6, 12, 20, 30, 48, 72, 96)


def simulated(world: str, invoices: int, seed: int, params: Params, out: Path):
    """The history (read back through the contract) and its truth, cached in ``out``."""
    folder = out / f"{world}-{invoices}-{seed}"
    cached = folder / "truth.pkl"
    if not cached.exists():
        chosen = zoo_world(world)
        settings = params.simulate.model_copy(update={"invoices": invoices, "seed": seed})
        result = simulate_history(settings, chosen.world, chosen.policy)
        write_history(result.history, folder / "history", fmt="parquet")
        cached.write_bytes(pickle.dumps(result.truth))
    history, _ = load_history(folder / "history", params.validate_)
    return history, pickle.loads(cached.read_bytes())


def lone_values(
    decider: ModelDecider, truth, sample: pd.DataFrame, schedules: list[Schedules]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per schedule of one event each (one retry or one message): the model's probability
    of that event and the truth's P(it recovers the invoice)."""
    features = decider.scorer.event_features(sample, None)
    past = past_rows(sample, None)
    scored = decider.expected_recoveries(
        sample, features, past, [(s.retries, s.messages) for s in schedules]
    )
    empty = truth_recovery(truth, sample, Schedules(empty_retries(), empty_messages()))
    out = []
    for s, (_, retry_p, message_p) in zip(schedules, scored, strict=True):
        rows = retry_p if len(s.retries) else message_p
        column = "success_probability" if len(s.retries) else "response_probability"
        model = rows.set_index("event_id")[column].reindex(sample["event_id"]).to_numpy()
        value = truth_recovery(truth, sample, s).to_numpy()
        out.append((model, 1.0 - (1.0 - value) / (1.0 - empty.to_numpy())))
    return out


def curve_table(
    labels: list[str], values: list[tuple[np.ndarray, np.ndarray]], families: np.ndarray
) -> pd.DataFrame:
    """Mean model / truth per delay, all failures and per family (rows: delays)."""
    table = {}
    for name in ["all", *sorted(set(families))]:
        keep = np.ones(len(families), bool) if name == "all" else families == name
        table[f"{name} ({keep.sum()})"] = [
            f"{np.nanmean(m[keep]):.3f}/{np.nanmean(t[keep]):.3f}" for m, t in values
        ]
    return pd.DataFrame(table, index=labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="default")
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--variant", action="append", required=True, help="NAME=JSON")
    parser.add_argument("--events", type=int, default=1000, help="held-out failures")
    parser.add_argument("--out", type=Path, default=Path("/tmp/first-retry-curve"))
    args = parser.parse_args()

    params = load_params(args.params)
    history, truth = simulated(args.world, args.invoices, args.seed, params, args.out)
    table = load_decline_table()
    data = training_data_for(history, params, table)
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)
    templates = sorted(history.messages["template"].dropna().unique())
    first = history.messages.sort_values("sent_at").drop_duplicates("invoice_id")
    template, channel = first["template"].mode()[0], first["channel"].mode()[0]
    print(f"{args.world}, {args.invoices:,} invoices, seed {args.seed}")
    for variant in args.variant:
        label, overrides, settings = variant_settings(params.train, variant)
        started = time.perf_counter()
        names = ("retry", "message", "self_cure")
        fitted, metrics, _ = fit_models(data, split, settings, names)
        models = TrainedModels(fitted["retry"], fitted["message"], fitted["self_cure"])
        artifact = DecisionArtifact.with_table(
            models,
            data.log,
            history.customers,
            templates,
            params.policy,
            params.retry_rules,
            table,
            {"training_data": split.describe()},
        )
        print(f"\n== {label} {overrides} (fit {time.perf_counter() - started:.0f}s)")
        for name in ("retry", "message"):
            m = metrics[name]
            print(
                f"{name:8s} held-out log loss {m['log_loss']:.5f} AUC {m['auc']:.4f} "
                f"cal {m['calibration_error']:.4f} best {int(m['best_iteration'])}"
            )
        decider = artifact.decider()
        held = run.held_out_events(history, artifact, params)
        sample = run.comparison_sample(held, params.evaluate).head(args.events)
        decisions = decider.rules.decide_many(sample, None)
        families = family_of(decisions["category"].reset_index(drop=True)).to_numpy()
        retry = decisions["allowed"].to_numpy() & (decisions["max_additional_retries"] > 0)
        events = sample[retry].reset_index(drop=True)
        failed = pd.to_datetime(events["failed_at"], utc=True)
        schedules = [
            Schedules(
                pd.DataFrame({"event_id": events["event_id"], "at": failed + pd.Timedelta(days=d)}),
                empty_messages(),
            )
            for d in RETRY_DAYS
        ]
        values = lone_values(decider, truth, events, schedules)
        print(f"lone first retry on day d, model/truth ({len(events)} failures)")
        print(curve_table([f"day {d}" for d in RETRY_DAYS], values, families[retry]).to_string())
        all_failed = pd.to_datetime(sample["failed_at"], utc=True)
        schedules = [
            Schedules(
                empty_retries(),
                pd.DataFrame(
                    {
                        "event_id": sample["event_id"],
                        "send_at": all_failed + pd.Timedelta(hours=h),
                        "channel": channel,
                        "template": template,
                    }
                ),
            )
            for h in MESSAGE_HOURS
        ]
        values = lone_values(decider, truth, sample.reset_index(drop=True), schedules)
        print(f"lone first message ({template}, {channel}) at h hours, model/truth")
        print(curve_table([f"{h} h" for h in MESSAGE_HOURS], values, families).to_string())


if __name__ == "__main__":
    main()
