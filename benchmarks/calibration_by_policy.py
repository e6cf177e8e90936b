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

and, component by component (issue 13's "where does the under-estimate come from"):

- by decile of the reported probability: the value before the gain shrinkage, the
  truth, the fixed schedule's value and truth and the learned schedule's gain over it,
  estimated and true (what the shrinkage takes, and where);
- self-cure alone (no retry, no message);
- the marginal value of each retry rank (the first k retries against the first k - 1,
  no message) and of each message rank on top of all the retries, model and truth;
- by decline family: reported, before the shrinkage, true (learned and fixed);
- the halves' promised and cross-valued gains by decline family, and the reported
  probability with one shrinkage factor per family (``family_factors``) against one
  factor for all.

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
from training.declines.table import family_of, load_decline_table
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


def by_decile(reported: np.ndarray, raw: np.ndarray, true: np.ndarray, fixed: tuple) -> None:
    """Per decile of the reported probability: what the shrinkage takes and the gains."""
    fixed_est, fixed_true = fixed
    order = np.argsort(reported, kind="stable")
    print("decile: reported / before shrinkage / truth; fixed est/true; gain over fixed est/true")
    for i, g in enumerate(np.array_split(order, 10)):
        print(
            f"  {i}: {reported[g].mean():.3f} / {raw[g].mean():.3f} / {true[g].mean():.3f};"
            f" {fixed_est[g].mean():.3f}/{fixed_true[g].mean():.3f};"
            f" {(raw - fixed_est)[g].mean():.3f}/{(true - fixed_true)[g].mean():.3f}"
        )


def ranked(frame: pd.DataFrame, column: str) -> tuple[pd.DataFrame, np.ndarray]:
    """``frame`` in time order per event, and each row's rank within its event."""
    ordered = frame.sort_values(["event_id", column], kind="stable")
    return ordered, ordered.groupby("event_id").cumcount().to_numpy()


def rank_marginals(label: str, s: Schedules, value) -> None:  # type: ignore[no-untyped-def]
    """The marginal value of each retry rank (no message), then of each message rank
    on top of all the retries, as the models value it and as the truth does."""
    retries, r_rank = ranked(s.retries, "at")
    messages, m_rank = ranked(s.messages, "send_at")
    previous = value(Schedules(retries.iloc[0:0], messages.iloc[0:0]))
    for k in range(int(r_rank.max(initial=-1)) + 1):
        current = value(Schedules(retries[r_rank <= k], messages.iloc[0:0]))
        est, true = (current[0] - previous[0]).mean(), (current[1] - previous[1]).mean()
        print(f"{label} retry {k + 1}: marginal {est:.4f}/{true:.4f} ({(r_rank == k).sum():,})")
        previous = current
    for k in range(int(m_rank.max(initial=-1)) + 1):
        current = value(Schedules(retries, messages[m_rank <= k]))
        est, true = (current[0] - previous[0]).mean(), (current[1] - previous[1]).mean()
        print(
            f"{label} message {k + 1} on the retries: marginal {est:.4f}/{true:.4f} "
            f"({(m_rank == k).sum():,})"
        )
        previous = current


def family_factors(
    promised: np.ndarray, cross: np.ndarray, families: np.ndarray, prior_events: float
) -> dict[str, float]:
    """A shrinkage factor per decline family (measured, not kept): the family's ratio of
    cross-valued to promised gain on the halves, pooled with ``prior_events`` events'
    worth of the overall ratio (each at the overall mean promised gain)."""
    mean_promised = float(promised.mean())
    ratio = float(cross.mean()) / mean_promised
    frame = pd.DataFrame({"family": families, "promised": promised, "cross": cross})
    sums = frame.groupby("family")[["promised", "cross"]].sum()
    prior = prior_events * mean_promised
    pooled = (sums["cross"] + prior * ratio) / (sums["promised"] + prior)
    return {str(f): float(np.clip(1 - (1 - r) / 2, 0, 1)) for f, r in pooled.items()}


def family_shrinkage(
    promised: np.ndarray,
    cross: np.ndarray,
    families: np.ndarray,
    params: Params,
    rows: dict[str, tuple[np.ndarray, np.ndarray]],
    sample_families: np.ndarray,
) -> None:
    """The halves' gains by family, and the reported value with one factor per family."""
    frame = pd.DataFrame({"family": families, "promised": promised, "cross": cross})
    table = frame.groupby("family")[["promised", "cross"]].mean()
    table["events"] = frame.groupby("family").size()
    table["ratio"] = table["cross"] / table["promised"]
    print(table.round(3).to_string())
    raw, true = rows["learned"]
    fixed = rows["fixed"][0]
    settings = params.train.gain_shrinkage
    factor = shrink.shrinkage_factor(float(promised.mean()), float(cross.mean()))
    threshold = shrink.gain_threshold(promised, settings.from_quantile)
    excess = np.maximum(raw - fixed - threshold, 0.0)
    line(f"one factor {factor:.2f} above {threshold:.3f}", raw - (1 - factor) * excess, true)
    for quantile in (0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9):
        above = np.maximum(raw - fixed - shrink.gain_threshold(promised, quantile), 0.0)
        line(f"one factor, above quantile {quantile}", raw - (1 - factor) * above, true)
    for prior in (50.0, 100.0, 200.0, 400.0):
        factors = family_factors(promised, cross, families, prior)
        per_event = pd.Series(sample_families).map(factors).fillna(factor).to_numpy(dtype=float)
        line(f"family factors, prior {prior:.0f}", raw - (1 - per_event) * excess, true)
        print(f"{'':28s} " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(factors.items())))


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
    learned = schedules["learned"]
    line(
        "self-cure alone", *value(Schedules(learned.retries.iloc[0:0], learned.messages.iloc[0:0]))
    )
    by_decile(reported, *rows["learned"], rows["fixed"])
    rank_marginals("learned", learned, value)
    rank_marginals("fixed", schedules["fixed"], value)

    decisions = decider.rules.decide_many(sample, None).reset_index(drop=True)
    by_category = pd.DataFrame({"category": decisions["category"].to_numpy()})
    for policy, (estimate, true) in rows.items():
        by_category[f"{policy} est"], by_category[f"{policy} true"] = estimate, true
    table = by_category.groupby("category").agg(["mean", "size"]).round(3)
    kept = [c for c in table.columns if c[1] == "mean" or c[0] == "learned est"]
    print(table.loc[:, kept].to_string())
    sample_families = family_of(decisions["category"]).to_numpy()
    families = pd.DataFrame(
        {
            "family": sample_families,
            "reported": reported,
            "before shrinkage": rows["learned"][0],
            "true": rows["learned"][1],
            "fixed": rows["fixed"][0],
            "fixed true": rows["fixed"][1],
        }
    )
    summary = families.groupby("family").mean().round(3)
    print(summary.assign(events=families.groupby("family").size()).to_string())

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
    gains = [shrink._gains(deciders[k], [deciders[k], deciders[1 - k]], events) for k in (0, 1)]
    event_families = family_of(
        deciders[0].rules.decide_many(events, None)["category"].reset_index(drop=True)
    ).to_numpy()
    family_shrinkage(
        np.concatenate([g[0] for g in gains]),
        np.concatenate([g[1] for g in gains]),
        np.tile(event_families, 2),
        params,
        rows,
        sample_families,
    )
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
