"""`smartretry evaluate`: the learned policy against the fixed schedule, the rules
baseline, no action and (on a simulated history) the oracle, on a held-out future
period, with intervals; off-policy estimates from the logged propensities."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from training.artifact.decision_artifact import DecisionArtifact
from training.config.params import Params
from training.contract.history import History
from training.contract.io import load_history
from training.core.frames import Schedules
from training.evaluation.ope_eval import off_policy_estimates
from training.evaluation.policies import (
    baseline_schedules,
    learned_schedules,
    searched_schedules,
)
from training.evaluation.truth_eval import breakdown, compare_policies, truth_recovery
from training.features.invoice import events_from_history
from training.models.split import TimeSplit
from training.policy.scorer import past_rows
from training.tracking.loading import load_artifact


@dataclass
class EvaluationResult:
    metrics: dict[str, Any]
    values: pd.DataFrame  # exact recovery per sampled invoice and policy (simulated only)
    estimates: pd.DataFrame  # model estimates per sampled invoice (learned, fixed)
    breakdowns: dict[str, pd.DataFrame] = field(default_factory=dict)
    ope_truth: float | None = None


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


def run_evaluation(
    history: History,
    artifact: DecisionArtifact,
    params: Params,
    truth=None,
    progress: bool = True,
) -> EvaluationResult:
    settings = params.evaluate
    decider = artifact.decider()
    started = time.perf_counter()
    held = held_out_events(history, artifact, params)
    sample = held.sample(min(settings.max_invoices, len(held)), random_state=settings.seed)
    sample = sample.sort_values("failed_at", kind="stable").reset_index(drop=True)
    steps = tqdm(
        total=5 if truth is not None else 4, desc="evaluate", unit="step", disable=not progress
    )

    steps.set_postfix_str("policies")
    schedules: dict[str, Schedules] = {"learned": learned_schedules(decider, sample)}
    schedules.update(baseline_schedules(decider, sample))
    steps.update()
    if truth is not None:
        from training.evaluation.truth_scorer import TruthScorer

        steps.set_postfix_str("oracle")
        oracle_config = decider.config.model_copy(
            update={"retry_grid_hours": settings.oracle_grid_hours, "refine_hours": 0}
        )
        schedules["oracle"] = searched_schedules(TruthScorer(truth), decider, sample, oracle_config)
        steps.update()

    steps.set_postfix_str("model estimates")
    features = decider.scorer.event_features(sample, None)
    past = past_rows(sample, None)
    estimates = pd.DataFrame(
        {
            name: decider.expected_recovery(sample, features, past, s.retries, s.messages)[0]
            .reindex(sample["event_id"])
            .to_numpy()
            for name, s in schedules.items()
            if name in ("learned", "fixed", "rules")
        }
    )
    decisions = decider.rules.decide_many(sample, None)
    violations = {
        name: int(len(decider.rules.schedule_violations(sample, s.retries, None, s.messages)))
        for name, s in schedules.items()
        if name != "no_action"
    }
    steps.update()

    metrics: dict[str, Any] = {
        "held_out_invoices": int(len(held)),
        "evaluated_invoices": int(len(sample)),
        "held_out_from": str(held["failed_at"].min()),
        "held_out_to": str(held["failed_at"].max()),
        "rule_violations": violations["learned"],
        "rule_violations_by_policy": violations,
        "model_estimate": {name: float(estimates[name].mean()) for name in estimates.columns},
    }
    values = pd.DataFrame()
    tables: dict[str, pd.DataFrame] = {}
    if truth is not None:
        steps.set_postfix_str("ground truth")
        values = pd.DataFrame(
            {name: truth_recovery(truth, sample, s).to_numpy() for name, s in schedules.items()}
        )
        amounts = sample["amount_minor"].to_numpy(dtype=float)
        comparison = compare_policies(values, amounts, settings.bootstrap, settings.seed)
        metrics["truth"] = comparison
        for name in values.columns:
            label = "policy" if name == "learned" else name
            metrics[f"{label}_recovery_rate"] = comparison[f"{name}_recovery_rate"]["value"]
        metrics["captured_share"] = comparison["captured_share"]["value"]
        error = estimates["learned"].to_numpy() - values["learned"].to_numpy()
        metrics["expected_recovery_calibration"] = _calibration(
            estimates["learned"].to_numpy(), values["learned"].to_numpy()
        )
        metrics["expected_recovery_calibration"]["per_invoice_mae"] = float(np.abs(error).mean())
        groups = {
            "decline category": decisions["category"].reset_index(drop=True),
            "processor": sample["processor"],
            "country": sample["country"].fillna("unknown"),
            "customer segment": pd.Series(_segments(features.features.loc[sample["event_id"]])),
        }
        tables = {name: breakdown(values, g, settings.min_group) for name, g in groups.items()}
        metrics["breakdowns"] = {
            name: table.reset_index(names="group").to_dict(orient="records")
            for name, table in tables.items()
        }
        steps.update()

    steps.set_postfix_str("off-policy")
    ope_sample = held.sample(min(settings.max_ope_invoices, len(held)), random_state=settings.seed)
    ope = off_policy_estimates(
        decider,
        history,
        ope_sample.reset_index(drop=True),
        params.train.window_days,
        settings.bootstrap,
        settings.seed,
        settings.min_plan_support,
    )
    ope_truth = None
    if ope is not None:
        metrics["off_policy"] = {
            "target": "the learned models choosing among the logged plans",
            "menu": {
                "retry_plans": len(ope.menu.retry_offsets),
                "message_plans": len(ope.menu.message_offsets),
            },
            **ope.estimates,
        }
        if truth is not None:
            ope_truth = _menu_policy_truth(truth, ope_sample.reset_index(drop=True), ope)
            metrics["off_policy"]["truth"] = ope_truth
            metrics["off_policy"]["truth_inside_interval"] = {
                name: bool(
                    ope.estimates[name]["lower"] <= ope_truth <= ope.estimates[name]["upper"]
                )
                for name in ("ips", "snips", "dr")
            }
    else:
        metrics["off_policy"] = {
            "note": "no explored plan was logged often enough with propensities"
        }
    steps.update()
    steps.close()
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    return EvaluationResult(metrics, values, estimates, tables, ope_truth)


def _calibration(estimate: np.ndarray, truth: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Binned: mean estimate vs mean true probability per decile of the estimate."""
    order = np.argsort(estimate, kind="stable")
    groups = [g for g in np.array_split(order, bins) if len(g)]
    table = [(float(estimate[g].mean()), float(truth[g].mean())) for g in groups]
    return {
        "binned_mae": float(np.mean([abs(a - b) for a, b in table])),
        "mean_estimate": float(estimate.mean()),
        "mean_truth": float(truth.mean()),
        "bins": table,
    }


def _menu_policy_truth(truth, events: pd.DataFrame, ope) -> float:
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
