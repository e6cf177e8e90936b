"""Where the reported recovery probability loses its calibration, on one zoo world.

Not a speed benchmark: a diagnostic of issue 13's "calibration by decile" figure. It
simulates and trains a zoo world as ``smartretry zoo`` does, then, on the held-out
sample the zoo scores, compares the models' expected recovery with the simulator's
exact truth for:

- the learned schedule as reported (gain shrinkage applied) and as the models value it;
- the fixed schedule (the logging policy's legacy plan: what the logs mostly hold) and
  the rules baseline (a schedule the logs do not hold);
- each of them with its retries only and with its messages only;
- per decline category;
- two schedule-level maps fitted on the logged schedules of validation-period invoices
  (the models' value of the logged schedule against paid within the window);
- two schedule-level maps fitted on the cross-fitted customer halves of
  ``training/artifact/gain_shrinkage.py`` (the other half's value of the chosen
  schedule against the chooser's own: a logit-affine fit and isotonic regression, each
  moved half-way back to the identity for the full-data models).

    python benchmarks/calibration_by_policy.py --world young_merchant --invoices 10000
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from training.artifact import gain_shrinkage as shrink
from training.artifact.decision_artifact import DecisionArtifact
from training.config.params import Params, load_params
from training.contract.history import History
from training.core.frames import Schedules
from training.declines.table import load_decline_table
from training.evaluation import run
from training.evaluation.truth_eval import truth_recovery
from training.evaluation.zoo import simulate_and_train
from training.models.fit import train_models
from training.models.split import TimeSplit
from training.policy.scorer import past_rows


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def line(name: str, estimate: np.ndarray, truth: np.ndarray) -> None:
    c = run._calibration(estimate, truth)
    bins = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in c["bins"])
    print(f"{name:28s} MAE {c['binned_mae']:.3f}  mean {estimate.mean():.3f}/{truth.mean():.3f}")
    print(f"{'':28s} {bins}")


def logged_schedule_maps(
    history: History,
    artifact: DecisionArtifact,
    params: Params,
    learned: tuple[np.ndarray, np.ndarray],
    reported: np.ndarray,
) -> None:
    """The map the data offers on logged schedules: on validation-period invoices (the
    served models stopped and calibrated on them, never trained on them), the models'
    value of the schedule that was logged against whether the invoice was paid within
    the window; fitted logit-affine and isotonic, applied to the learned schedule."""
    decider = artifact.decider()
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)
    events = shrink.validation_events(history, split, 10_000, params.train.model.seed)
    ids = set(events["event_id"])
    attempts = history.attempts.sort_values(["invoice_id", "attempted_at"], kind="stable")
    attempts = attempts[attempts["invoice_id"].isin(ids)]
    merchant = attempts[attempts["initiated_by"] == "merchant"]
    retries = merchant[merchant["invoice_id"].duplicated()]  # all but the original charge
    retries = pd.DataFrame({"event_id": retries["invoice_id"], "at": retries["attempted_at"]})
    sent = history.messages[history.messages["invoice_id"].isin(ids)]
    messages = pd.DataFrame(
        {
            "event_id": sent["invoice_id"],
            "send_at": sent["sent_at"],
            "template": sent["template"],
            "channel": sent["channel"],
        }
    ).sort_values(["event_id", "send_at"], kind="stable")
    window = pd.Timedelta(days=params.train.window_days)
    due = events.set_index("event_id")["failed_at"]
    paid_at = attempts[attempts["outcome"] == "succeeded"].groupby("invoice_id")["attempted_at"]
    first_paid = paid_at.min()
    paid = (events["event_id"].map(first_paid) - events["event_id"].map(due) <= window).to_numpy()
    features = decider.scorer.event_features(events, None)
    past = past_rows(events, None)
    value = decider.expected_recovery(events, features, past, retries, messages)[0]
    estimate = value.reindex(events["event_id"]).to_numpy()
    line(f"logged schedules ({len(events):,} valid.)", estimate, paid.astype(float))
    unpaid = ~paid
    print(
        f"{'':28s} unpaid (complete plans) estimate {estimate[unpaid].mean():.3f}, "
        f"paid (plans cut at the recovery) {estimate[paid].mean():.3f}"
    )
    raw, true = learned
    platt = LogisticRegression(C=1e6).fit(logit(estimate)[:, None], paid)
    line("logged logit-affine on raw", platt.predict_proba(logit(raw)[:, None])[:, 1], true)
    line(
        "logged logit-affine on reported", platt.predict_proba(logit(reported)[:, None])[:, 1], true
    )
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(estimate, paid)
    line("logged isotonic on raw", iso.predict(raw), true)
    line("logged isotonic on reported", iso.predict(reported), true)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="young_merchant")
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("/tmp/calibration-by-policy"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    params = load_params()
    world = simulate_and_train(args.world, args.invoices, args.seed, params, args.out)
    artifact, truth, history = world.artifact, world.truth, world.history
    decider = artifact.decider()
    held = run.held_out_events(history, artifact, params)
    sample = run.comparison_sample(held, params.evaluate)
    schedules = run.policy_schedules(decider, sample)
    features = decider.scorer.event_features(sample, None)
    past = past_rows(sample, None)
    reported = run.model_estimates(decider, sample, features, schedules)["learned"].to_numpy()

    def value(s: Schedules) -> tuple[np.ndarray, np.ndarray]:
        expected = decider.expected_recovery(sample, features, past, s.retries, s.messages)[0]
        true = truth_recovery(truth, sample, s).to_numpy()
        return expected.reindex(sample["event_id"]).to_numpy(), true

    print(f"{args.world}, {args.invoices:,} invoices, seed {args.seed}: estimate/truth")
    line("learned, reported", reported, value(schedules["learned"])[1])
    rows = {}
    for policy in ("learned", "fixed", "rules"):
        s = schedules[policy]
        rows[policy] = value(s)
        line(f"{policy}, as the models value it", *rows[policy])
        line(f"{policy}, retries only", *value(Schedules(s.retries, s.messages.iloc[0:0])))
        line(f"{policy}, messages only", *value(Schedules(s.retries.iloc[0:0], s.messages)))

    decisions = decider.rules.decide_many(sample, None).reset_index(drop=True)
    by_category = pd.DataFrame({"category": decisions["category"].to_numpy()})
    for policy, (estimate, true) in rows.items():
        by_category[f"{policy} est"], by_category[f"{policy} true"] = estimate, true
    table = by_category.groupby("category").agg(["mean", "size"]).round(3)
    kept = [c for c in table.columns if c[1] == "mean" or c[0] == "learned est"]
    print(table.loc[:, kept].to_string())

    logged_schedule_maps(history, artifact, params, rows["learned"], reported)

    # schedule-level maps from the cross-fitted halves (what the other half's models see)
    table_ = load_decline_table()
    halves = shrink.customer_halves(history, params.train.model.seed)
    update = params.retry_rules.update_requests
    models = [train_models(h, params.train, table_, update, progress=False).models for h in halves]
    deciders = [
        shrink._decider(m, artifact.log, params, table_, artifact.templates) for m in models
    ]
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)
    settings = params.train.gain_shrinkage
    events = shrink.validation_events(history, split, settings.events, params.train.model.seed)
    own, other = [], []
    for k in (0, 1):
        chooser = deciders[k]
        event_past = past_rows(events, None)
        rules = chooser.rules.decide_many(events, None).reset_index(drop=True)
        plan = chooser.plan(events, None, explore=False, past=event_past, decisions=rules)
        for valuer, kept in ((chooser, own), (deciders[1 - k], other)):
            f = valuer.scorer.event_features(events, None)
            kept.append(
                valuer.score_schedules(events, f, event_past, [(plan.retries, plan.messages)])[0][0]
            )
    promised, cross = np.concatenate(own), np.concatenate(other)
    line("halves: own -> other's value", promised, cross)
    slope, intercept = np.polyfit(logit(promised), logit(cross), 1)
    raw, true = rows["learned"]
    half_slope = 1 + (slope - 1) / 2
    mapped = 1 / (1 + np.exp(-(intercept / 2 + half_slope * logit(raw))))
    line("logit-affine map (half-way)", mapped, true)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(promised, cross)
    line("isotonic map (half-way)", raw + (iso.predict(raw) - raw) / 2, true)


if __name__ == "__main__":
    main()
