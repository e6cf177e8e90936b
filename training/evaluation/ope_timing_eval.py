"""`smartretry evaluate`'s first-retry timing estimate: the learned policy's first-retry
time, valued off-policy from any history's per-retry propensities (see
``ope_first_retry``), with 95% intervals or a stated refusal; on a simulated history
also the estimand's exact value and whether each interval holds it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from training.config.params import EvaluateParams
from training.contract.history import History
from training.evaluation.ope import (
    InverseProbabilityWeighting,
    LoggedFeedback,
    SelfNormalizedIPW,
)
from training.evaluation.ope_first_retry import (
    FirstRetryLog,
    Propensity,
    TimingSupport,
    learn_support,
    read_first_retries,
    target_distribution,
    timing_feedback,
)
from training.evaluation.ope_support import CannotEstimate, estimate_with_support
from training.evaluation.policies import learned_schedules
from training.policy.decider import ModelDecider

if TYPE_CHECKING:
    from training.simulator.truth import GroundTruth

RestOfDunning: TypeAlias = Callable[
    [np.ndarray, np.ndarray, np.ndarray], tuple[pd.DataFrame, pd.DataFrame]
]
"""The logging policy's whole schedule given the first retry: called with, per schedule,
the invoice id, the first retry's offset (hours after the failure) and the schedule's
key; returns its retries (``invoice_id``: the key, ``t``) and messages (``invoice_id``:
the key, ``t``, ``channel``, ``template``). The team's (``truth.logging``) unless given:
:mod:`training.evaluation.ope_product_logging` gives the product's."""

ESTIMAND = (
    "recovery rate with the first retry timed by the learned policy (projected onto the "
    "logged first-retry times, smoothed over neighbouring time buckets) and the rest of "
    "the dunning as the team logged it"
)


def learned_first_retry_hours(
    decider: ModelDecider, history: History, events: pd.DataFrame
) -> np.ndarray:
    """Hours from each invoice's due date to the learned policy's first retry (NaN when
    it plans none)."""
    schedules = learned_schedules(decider, events)
    first = schedules.retries.groupby("event_id")["at"].min()
    due = history.invoices.set_index("invoice_id")["due_at"]
    at = events["event_id"].map(first)
    start = events["invoice_id"].map(due)
    return ((at - start).dt.total_seconds() / 3600).to_numpy(dtype=float)


def timing_estimates(
    decider: ModelDecider,
    history: History,
    events: pd.DataFrame,
    window_days: int,
    settings: EvaluateParams,
    truth: GroundTruth | None = None,
) -> dict[str, Any]:
    """IPS and SNIPS of the first-retry timing target, each with its overlap
    diagnostics or the reason the logs cannot support it, weighted as
    ``settings.timing_propensity`` says."""
    weighting = settings.timing_propensity
    return timing_estimates_by_weighting(
        decider, history, events, window_days, settings, (weighting,), truth
    )[weighting]


def timing_estimates_by_weighting(
    decider: ModelDecider,
    history: History,
    events: pd.DataFrame,
    window_days: int,
    settings: EvaluateParams,
    weightings: Sequence[Propensity],
    truth: GroundTruth | None = None,
    rest: RestOfDunning | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`timing_estimates` once per weighting of the first retries, from the same
    learned schedules, support, target and truth (computed once; ``rest``: the logging
    policy's schedules given the first retry, when it is not the simulated team's)."""
    log_all = read_first_retries(history, window_days)
    support = learn_support(
        log_all, settings.timing_min_offset_support, settings.timing_parts_per_day
    )
    if len(support.offsets) == 0:
        note = {"estimand": ESTIMAND, "note": "no first retry was logged often enough"}
        return {w: {**note, "propensity": w} for w in weightings}
    hours = learned_first_retry_hours(decider, history, events)
    planned = ~np.isnan(hours)
    if not planned.any():
        note = {"estimand": ESTIMAND, "note": "the learned policy retries none of these invoices"}
        return {w: {**note, "propensity": w} for w in weightings}
    position = pd.Series(np.arange(len(log_all.invoice_id)), index=log_all.invoice_id)
    rows = position.loc[events["invoice_id"].to_numpy()[planned]].to_numpy()
    log = log_all.take(rows)
    target = target_distribution(hours[planned], support, settings.timing_smoothing)
    exact = None
    if truth is not None and (rest is not None or truth.logging is not None):
        exact = timing_truth(truth, log, support, target, window_days, settings.seed, rest)
    return {
        w: _weighted_estimates(log, support, target, hours[planned], w, settings, exact)
        for w in weightings
    }


def _weighted_estimates(
    log: FirstRetryLog,
    support: TimingSupport,
    target: np.ndarray,
    hours: np.ndarray,
    propensity: Propensity,
    settings: EvaluateParams,
    exact: float | None,
) -> dict[str, Any]:
    """IPS and SNIPS of one weighting (see :func:`timing_estimates`)."""
    timing = timing_feedback(log, support, target, hours, propensity)

    def refit(rows: np.ndarray) -> LoggedFeedback:
        return timing_feedback(
            log.take(rows), support, target[rows], hours[rows], propensity
        ).feedback

    out: dict[str, Any] = {
        "estimand": ESTIMAND,
        "units": len(hours),
        "support_offsets": len(support.offsets),
        "support_buckets": int(np.unique(support.buckets).size),
        "team_recovery": float(log.recovered.mean()),
        "projected_share": timing.projected_share,
        "unsupported_units": timing.unsupported_units,
        "learned_first_retry_median_hours": float(np.median(hours)),
        "propensity": propensity,
    }
    estimated = refit if propensity == "estimated" else None
    return {**out, **weighted_block(timing.feedback, ESTIMAND, settings, exact, estimated)}


def weighted_block(
    feedback: LoggedFeedback,
    estimand: str,
    settings: EvaluateParams,
    exact: float | None,
    refit: Callable[[np.ndarray], LoggedFeedback] | None = None,
) -> dict[str, Any]:
    """IPS and SNIPS of ``feedback``, each with its overlap diagnostics or the reason the
    logs cannot support it, and (``exact``) the truth and whether each interval holds it."""
    out: dict[str, Any] = {}
    for name, estimator in (("ips", InverseProbabilityWeighting()), ("snips", SelfNormalizedIPW())):
        result = estimate_with_support(
            estimator,
            feedback,
            estimand,
            n_bootstrap=settings.bootstrap,
            random_state=settings.seed,
            refit=refit,
        )
        diagnostics = {
            "effective_sample_size": result.diagnostics.effective_sample_size,
            "matched": result.diagnostics.n_matched,
            "mean_weight": result.diagnostics.mean_weight,
            "off_logger_share": result.diagnostics.off_logger_share,
            "off_logger_effective_units": result.diagnostics.off_logger_effective_units,
        }
        if isinstance(result, CannotEstimate):
            out[name] = {"cannot_estimate": result.reason, **diagnostics}
        else:
            out[name] = {
                "value": result.value,
                "lower": result.lower,
                "upper": result.upper,
                **diagnostics,
            }
    if exact is not None:
        out["truth"] = exact
        out["truth_inside_interval"] = {
            name: bool(out[name]["lower"] <= exact <= out[name]["upper"])
            for name in ("ips", "snips")
            if "value" in out[name]
        }
    return out


def timing_truth(
    truth: GroundTruth,
    log: FirstRetryLog,
    support: TimingSupport,
    target: np.ndarray,
    window_days: int,
    seed: int,
    rest: RestOfDunning | None = None,
) -> float:
    """The estimand's exact value on a simulated history: for every unit and every
    offset the target may pick, the logging policy's schedule given that first retry
    (``rest``; by default the team's, drawn), valued by the simulator's truth, weighted by
    the target."""
    unit, offset = np.nonzero(target > 0)
    keys = pd.DataFrame(
        {
            "key": [f"{i}#{j}" for i, j in zip(unit, offset, strict=True)],
            "invoice_id": log.invoice_id[unit],
        }
    )
    if rest is None:
        retries, messages = _team_schedules(truth, keys, support.offsets[offset], window_days, seed)
    else:
        retries, messages = rest(
            keys["invoice_id"].to_numpy(), support.offsets[offset], keys["key"].to_numpy()
        )
    values = schedule_values(truth, keys, retries, messages)
    per_unit = np.bincount(unit, weights=target[unit, offset] * values, minlength=len(target))
    return float(per_unit.mean())


def schedule_values(
    truth: GroundTruth, keys: pd.DataFrame, retries: pd.DataFrame, messages: pd.DataFrame
) -> np.ndarray:
    """Exact recovery probability of each schedule (``keys``: its ``key`` and invoice;
    ``retries`` and ``messages`` keyed by it in ``invoice_id``, as :data:`RestOfDunning`
    returns them)."""
    owner = keys.set_index("key")["invoice_id"]
    return truth.recovery_probability(
        keys,
        pd.DataFrame(
            {
                "key": retries["invoice_id"].to_numpy(),
                "invoice_id": retries["invoice_id"].map(owner).to_numpy(),
                "at": retries["t"].to_numpy(),
            }
        ),
        pd.DataFrame(
            {
                "key": messages["invoice_id"].to_numpy(),
                "invoice_id": messages["invoice_id"].map(owner).to_numpy(),
                "send_at": messages["t"].to_numpy(),
                "channel": messages["channel"].to_numpy(),
                "template": messages["template"].to_numpy(),
            }
        ),
    ).to_numpy()


def _team_schedules(
    truth: GroundTruth, keys: pd.DataFrame, offsets: np.ndarray, window_days: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The team's schedules (the world's logging policy) drawn given each key's first
    retry (:data:`RestOfDunning`)."""
    from training.simulator.logging_policy import schedules_given_first_retry

    if truth.logging is None:
        raise ValueError("this ground truth does not record the team's logging policy")
    latent = truth.invoices.set_index("invoice_id").loc[keys["invoice_id"]]
    invoices = pd.DataFrame(
        {"invoice_id": keys["key"].to_numpy(), "due_at": latent["due_at"].to_numpy()}
    )
    world = truth.world
    return schedules_given_first_retry(
        invoices,
        pd.Series(latent["timezone"].to_numpy()),
        pd.Series(latent["sms_opt_in"].to_numpy()),
        offsets,
        truth.logging,
        window_days * 24.0,
        (world.quiet_start_hour, world.quiet_end_hour),
        np.random.default_rng(seed),
    )
