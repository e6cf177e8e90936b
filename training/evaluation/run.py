"""`smartretry evaluate`: the learned policy against the fixed schedule, the rules
baseline, no action and (on a simulated history) the oracle, on a held-out future
period, with intervals; off-policy estimates from the logged propensities."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from training.artifact.decision_artifact import DecisionArtifact
from training.config.params import EvaluateParams, Params
from training.contract.history import History
from training.contract.io import load_history
from training.core.frames import Schedules
from training.declines.table import family_of
from training.declines.violations import schedule_violations
from training.evaluation.attribution import (
    attribution_table,
    event_counts,
    hybrid_schedules,
)
from training.evaluation.ope_eval import OffPolicyResult, off_policy_estimates
from training.evaluation.ope_timing_eval import timing_estimates
from training.evaluation.policies import (
    baseline_schedules,
    learned_schedules,
    searched_schedules,
)
from training.evaluation.truth_eval import breakdown, compare_policies, truth_recovery
from training.features.invoice import events_from_history
from training.models.matrix import EventMatrix
from training.models.split import TimeSplit
from training.policy.decider import ModelDecider
from training.policy.message_pruning import Schedule, schedule_messages, schedule_retries
from training.policy.scorer import past_rows
from training.tracking.loading import load_artifact

if TYPE_CHECKING:
    from training.simulator.truth import GroundTruth

# the policies whose expected recovery the model estimates
MODEL_JUDGED = ("learned", "fixed", "rules")


@dataclass
class EvaluationResult:
    metrics: dict[str, Any]
    values: pd.DataFrame  # exact recovery per sampled invoice and policy (simulated only)
    estimates: pd.DataFrame  # model estimates per sampled invoice (learned, fixed, rules)
    breakdowns: dict[str, pd.DataFrame] = field(default_factory=dict)
    ope_truth: float | None = None
    # hybrids of the learned and oracle schedules by decline family (``attribute``)
    attribution: pd.DataFrame | None = None


def held_out_events(history: History, artifact: DecisionArtifact, params: Params) -> pd.DataFrame:
    """Failure events of the period the model never saw, whose window has closed."""
    events = events_from_history(history)
    start = artifact.metadata.get("training_data", {}).get("test_start")
    if start is None:
        start = TimeSplit.from_due_dates(history.invoices["due_at"], params.train).test_start
    start = pd.Timestamp(start)
    last_seen = max(history.attempts["attempted_at"].max(), history.invoices["due_at"].max())
    closed = events["failed_at"] + pd.Timedelta(days=params.train.window_days) <= last_seen
    held = events[(events["failed_at"] >= start) & closed].reset_index(drop=True)
    if held.empty:
        raise ValueError(
            f"no invoice in the held-out period (from {start.date()}) has a closed dunning "
            "window in this history: evaluate needs later data than the model was trained on"
        )
    return held


def _segments(features: pd.DataFrame) -> np.ndarray:
    """Customer segment from history features (what the product can see)."""
    failures = features["cust_failures_12m"].to_numpy()
    tenure = features["cust_tenure_days"].to_numpy()
    return np.select(
        [failures >= 2, (failures == 0) & (tenure >= 3 * 365), failures == 0],
        ["repeat failer (2+ in 12 months)", "loyal (3+ years, no failure)", "first failure"],
        default="one earlier failure",
    )


def comparison_sample(held: pd.DataFrame, settings: EvaluateParams) -> pd.DataFrame:
    """The held-out events every policy is compared on: at most ``max_invoices`` drawn at
    random, in failure-time order."""
    sample = held.sample(min(settings.max_invoices, len(held)), random_state=settings.seed)
    return sample.sort_values("failed_at", kind="stable").reset_index(drop=True)


def off_policy_sample(held: pd.DataFrame, settings: EvaluateParams) -> pd.DataFrame:
    """The held-out events of the off-policy estimates: their own draw (at most
    ``max_ope_invoices``, usually more than the comparison, as the estimates only use the
    events whose logged plan the menu covers)."""
    sample = held.sample(min(settings.max_ope_invoices, len(held)), random_state=settings.seed)
    return sample.reset_index(drop=True)


def policy_schedules(decider: ModelDecider, sample: pd.DataFrame) -> dict[str, Schedules]:
    """The learned policy's schedules and each baseline's, by policy name."""
    schedules = {"learned": learned_schedules(decider, sample)}
    schedules.update(baseline_schedules(decider, sample))
    return schedules


def oracle_schedules(
    truth: GroundTruth, decider: ModelDecider, sample: pd.DataFrame, settings: EvaluateParams
) -> Schedules:
    """The policy's own search scored by the simulator's truth instead of the model (on the
    ``oracle_grid_hours`` grid, without refinement): the best a model could do."""
    from training.evaluation.truth_scorer import TruthScorer

    config = decider.config.model_copy(
        update={
            "retry_grid_hours": settings.oracle_grid_hours,
            "fine_grids_hours": (),
            "refine_steps_hours": (),
            "reuse_message_scores": False,  # every round searched
        }
    )
    events = sample.reset_index(drop=True)

    def values(schedules: list[Schedule]) -> list[np.ndarray]:
        return [
            truth_recovery(
                truth, events, Schedules(schedule_retries(s), schedule_messages(s))
            ).to_numpy()
            for s in schedules
        ]

    return searched_schedules(TruthScorer(truth), decider, events, config, values)


def model_estimates(
    decider: ModelDecider,
    sample: pd.DataFrame,
    features: EventMatrix,
    schedules: dict[str, Schedules],
) -> pd.DataFrame:
    """The model's expected recovery per sampled event (rows) of the learned policy, the
    fixed schedule and the rules baseline (columns). A model trained on a history
    without messages cannot value a schedule that sends some: NaN for that policy."""
    past = past_rows(sample, None)
    can_value_messages = decider.scorer.models.message is not None
    columns, laid = {}, {}
    for name, s in schedules.items():
        if name not in MODEL_JUDGED:
            continue
        if len(s.messages) and not can_value_messages:
            columns[name] = np.full(len(sample), np.nan)
            continue
        (laid[name],) = decider.score_laid_out(sample, features, past, [(s.retries, s.messages)])
        columns[name] = laid[name].expected  # the sample's order
    if "learned" in laid and "fixed" in laid:  # what the API reports for the decision
        columns["learned"] = decider.reported_values(
            sample, features, (laid["learned"], laid["fixed"])
        )
    return pd.DataFrame(columns)


def rule_violations(
    decider: ModelDecider, sample: pd.DataFrame, schedules: dict[str, Schedules]
) -> dict[str, int]:
    """The number of rule violations in each policy's schedule (no action has none)."""
    return {
        name: int(len(schedule_violations(decider.rules, sample, s.retries, None, s.messages)))
        for name, s in schedules.items()
        if name != "no_action"
    }


def metrics_without_truth(
    held: pd.DataFrame,
    sample: pd.DataFrame,
    violations: dict[str, int],
    estimates: pd.DataFrame,
) -> dict[str, Any]:
    """The figures any history gives: what was evaluated, rule violations, model estimates."""
    return {
        "held_out_invoices": int(len(held)),
        "evaluated_invoices": int(len(sample)),
        "held_out_from": str(held["failed_at"].min()),
        "held_out_to": str(held["failed_at"].max()),
        "rule_violations": violations["learned"],
        "rule_violations_by_policy": violations,
        "model_estimate": {
            name: None if estimates[name].isna().all() else float(estimates[name].mean())
            for name in estimates.columns
        },
    }


def truth_values(
    truth: GroundTruth, sample: pd.DataFrame, schedules: dict[str, Schedules]
) -> pd.DataFrame:
    """The simulator's exact recovery probability per sampled event (rows) and policy."""
    return pd.DataFrame(
        {name: truth_recovery(truth, sample, s).to_numpy() for name, s in schedules.items()}
    )


def truth_metrics(
    values: pd.DataFrame, estimates: pd.DataFrame, amounts: np.ndarray, settings: EvaluateParams
) -> dict[str, Any]:
    """Every policy's exact recovery with bootstrap intervals (``truth``), the point values
    at the top level (``policy_recovery_rate`` is the learned policy's; ``captured_share``),
    and how well the learned policy's expected recovery matches the truth."""
    comparison = compare_policies(values, amounts, settings.bootstrap, settings.seed)
    metrics: dict[str, Any] = {"truth": comparison}
    for name in values.columns:
        label = "policy" if name == "learned" else name
        metrics[f"{label}_recovery_rate"] = comparison[f"{name}_recovery_rate"]["value"]
    metrics["captured_share"] = comparison["captured_share"]["value"]
    metrics["expected_recovery_calibration"] = _calibration(
        estimates["learned"].to_numpy(), values["learned"].to_numpy()
    )
    return metrics


def breakdown_groups(
    decider: ModelDecider, sample: pd.DataFrame, features: EventMatrix
) -> dict[str, pd.Series]:
    """The group of each sampled event (in sample order) per breakdown dimension."""
    decisions = decider.rules.decide_many(sample, None)
    return {
        "decline category": decisions["category"].reset_index(drop=True),
        "processor": sample["processor"],
        "country": sample["country"].fillna("unknown"),
        "customer segment": pd.Series(_segments(features.features.loc[sample["event_id"]])),
    }


def breakdown_records(tables: dict[str, pd.DataFrame]) -> dict[str, list[dict[str, Any]]]:
    """The breakdown tables as JSON-ready records, the group in a ``group`` field."""
    return {
        name: table.reset_index(names="group").to_dict(orient="records")
        for name, table in tables.items()
    }


def off_policy_metrics(
    decider: ModelDecider,
    history: History,
    events: pd.DataFrame,
    params: Params,
    truth: GroundTruth | None,
) -> tuple[dict[str, Any], float | None]:
    """IPS, SNIPS, DR and DM of the learned models choosing among the logged plans, and
    (with ``truth``) that policy's exact value, also returned, and whether each interval
    holds it; a note instead when the logs give no usable propensities."""
    settings = params.evaluate
    ope = off_policy_estimates(
        decider,
        history,
        events,
        params.train.window_days,
        settings.bootstrap,
        settings.seed,
        settings.min_plan_support,
    )
    if isinstance(ope, str):
        return {"note": ope}, None
    metrics: dict[str, Any] = {
        "target": "the learned models choosing among the logged plans",
        "menu": {
            "retry_plans": len(ope.menu.retry_offsets),
            "message_plans": len(ope.menu.message_offsets),
        },
        **ope.estimates,
    }
    if truth is None:
        return metrics, None
    ope_truth = _menu_policy_truth(truth, events, ope)
    metrics["truth"] = ope_truth
    metrics["truth_inside_interval"] = {
        name: bool(float(entry["lower"]) <= ope_truth <= float(entry["upper"]))
        for name in ("ips", "snips", "dr")
        if "value" in (entry := ope.estimates[name])
    }
    return metrics, ope_truth


def run_evaluation(
    history: History,
    artifact: DecisionArtifact,
    params: Params,
    truth: GroundTruth | None = None,
    progress: bool = True,
    attribute: bool = False,
) -> EvaluationResult:
    """Every policy on the same held-out sample (model estimates, rule violations and, on
    a simulated history with its ``truth``, exact recovery against the oracle), then the
    off-policy estimates from the logged propensities. ``attribute`` (with ``truth``):
    also the hybrids of the learned and oracle schedules by decline family
    (:mod:`training.evaluation.attribution`)."""
    settings = params.evaluate
    decider = artifact.decider()
    started = time.perf_counter()
    held = held_out_events(history, artifact, params)
    sample = comparison_sample(held, settings)
    steps = tqdm(
        total=5 if truth is not None else 4, desc="evaluate", unit="step", disable=not progress
    )

    steps.set_postfix_str("policies")
    schedules = policy_schedules(decider, sample)
    steps.update()
    if truth is not None:
        steps.set_postfix_str("oracle")
        schedules["oracle"] = oracle_schedules(truth, decider, sample, settings)
        steps.update()

    steps.set_postfix_str("model estimates")
    features = decider.scorer.event_features(sample, None)
    estimates = model_estimates(decider, sample, features, schedules)
    metrics = metrics_without_truth(
        held, sample, rule_violations(decider, sample, schedules), estimates
    )
    steps.update()

    values = pd.DataFrame()
    tables: dict[str, pd.DataFrame] = {}
    attribution: pd.DataFrame | None = None
    if truth is not None:
        steps.set_postfix_str("ground truth")
        values = truth_values(truth, sample, schedules)
        amounts = sample["amount_minor"].to_numpy(dtype=float)
        metrics.update(truth_metrics(values, estimates, amounts, settings))
        groups = breakdown_groups(decider, sample, features)
        tables = {name: breakdown(values, g, settings.min_group) for name, g in groups.items()}
        metrics["breakdowns"] = breakdown_records(tables)
        if attribute:
            attribution = gap_attribution(truth, sample, schedules, values, groups)
            metrics["attribution"] = breakdown_records({"family": attribution})["family"]
        steps.update()

    steps.set_postfix_str("off-policy")
    events = off_policy_sample(held, settings)
    metrics["off_policy"], ope_truth = off_policy_metrics(decider, history, events, params, truth)
    metrics["off_policy_timing"] = timing_estimates(
        decider, history, events, params.train.window_days, settings, truth
    )
    steps.update()
    steps.close()
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    return EvaluationResult(metrics, values, estimates, tables, ope_truth, attribution)


def gap_attribution(
    truth: GroundTruth,
    sample: pd.DataFrame,
    schedules: dict[str, Schedules],
    values: pd.DataFrame,
    groups: dict[str, pd.Series],
) -> pd.DataFrame:
    """Learned, oracle and their hybrids' exact recovery by decline family, with each
    policy's retries and messages per event."""
    hybrids = hybrid_schedules(schedules["learned"], schedules["oracle"])
    hybrid_values = truth_values(truth, sample, hybrids)
    pair = {name: schedules[name] for name in ("learned", "oracle")}
    counts = event_counts(pair, sample["event_id"])
    return attribution_table(
        pd.concat([values, hybrid_values], axis=1),
        family_of(groups["decline category"]),
        counts,
    )


def _calibration(estimate: np.ndarray, truth: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Binned: mean estimate vs mean true probability per decile of the estimate; and the
    mean absolute error per invoice."""
    order = np.argsort(estimate, kind="stable")
    groups = [g for g in np.array_split(order, bins) if len(g)]
    table = [(float(estimate[g].mean()), float(truth[g].mean())) for g in groups]
    return {
        "binned_mae": float(np.mean([abs(a - b) for a, b in table])),
        "mean_estimate": float(estimate.mean()),
        "mean_truth": float(truth.mean()),
        "bins": table,
        "per_invoice_mae": float(np.abs(estimate - truth).mean()),
    }


def _menu_policy_truth(truth: GroundTruth, events: pd.DataFrame, ope: OffPolicyResult) -> float:
    """Exact value of the menu-restricted policy, executed as the team's system executes
    plans (SMS held back out of the world's quiet hours)."""
    from training.simulator.logging_policy import defer_quiet_hours

    messages = ope.choice.messages.copy()
    tz = messages["event_id"].map(events.set_index("event_id")["timezone"]).to_numpy()
    sms = (messages["channel"] == "sms").to_numpy()
    times = pd.DatetimeIndex(messages["send_at"]).tz_convert(None).to_numpy()
    world = truth.world
    times[sms] = defer_quiet_hours(
        times[sms], tz[sms], (world.quiet_start_hour, world.quiet_end_hour)
    )
    messages["send_at"] = pd.to_datetime(times, utc=True)
    values = truth_recovery(truth, events, Schedules(ope.choice.retries, messages))
    return float(values.to_numpy()[ope.usable].mean())


def evaluate_command(
    data: Path,
    model: str,
    truth_dir: Path | None,
    metrics_path: Path,
    report_dir: Path,
    params: Params,
) -> EvaluationResult:
    """Load, evaluate, write the metrics JSON and the report, log them to MLflow."""
    from training.evaluation.mlflow_log import log_evaluation
    from training.evaluation.report import write_report

    history, _ = load_history(data, params.validate_)
    artifact = load_artifact(model)
    truth = None
    if truth_dir is not None:
        from training.simulator.truth import GroundTruth

        truth = GroundTruth.load(truth_dir)
    result = run_evaluation(history, artifact, params, truth)
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(result.metrics, indent=2, default=float))
    files = write_report(result, report_dir, artifact)
    log_evaluation(artifact, result.metrics, [metrics_path, *files])
    return result
