"""The first-retry day estimate (:mod:`training.evaluation.ope_first_retry_day`) on a
history the product logged: IPS and SNIPS with 95% intervals or a stated refusal and,
on a simulated history, the estimand's exact value (the product's schedule with its
first retry on each day the target may pick, :meth:`ProductRest.at_days`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training.config.params import EvaluateParams
from training.contract.history import History
from training.core.localtime import HOUR_NS, to_ns
from training.evaluation.ope_first_retry import read_first_retries
from training.evaluation.ope_first_retry_day import (
    ESTIMAND,
    DayTarget,
    day_feedback,
    day_target,
)
from training.evaluation.ope_product_logging import ProductRest
from training.evaluation.ope_timing_eval import (
    learned_first_retry_hours,
    schedule_values,
    weighted_block,
)
from training.policy.decider import ModelDecider

if TYPE_CHECKING:
    from training.simulator.truth import GroundTruth


def day_estimates(
    target: ModelDecider,
    logged: History,
    events: pd.DataFrame,
    window_days: int,
    settings: EvaluateParams,
    rest: ProductRest,
    smoothing: float = 0.0,
    truth: GroundTruth | None = None,
) -> dict[str, Any]:
    """The first-retry day block of ``target`` (exploration off) on ``logged``, the
    history ``rest``'s decider logged for ``events``; ``smoothing``: the target's share
    moved to the neighbouring days."""
    hours = learned_first_retry_hours(target, logged, events)
    ids = events["invoice_id"].to_numpy()
    logger_retries = rest.count[rest.invoice.get_indexer(ids)] > 0
    keep = ~np.isnan(hours) & logger_retries
    estimand = ESTIMAND if smoothing == 0 else f"{ESTIMAND} (smoothing {smoothing:g})"
    block: dict[str, Any] = {"estimand": estimand, "propensity": "logged", "smoothing": smoothing}
    if not keep.any():
        return {**block, "note": "no decision of the target and the logger retries"}
    ids, hours = ids[keep], hours[keep]
    log_all = read_first_retries(logged, window_days)
    position = pd.Series(np.arange(len(log_all.invoice_id)), index=log_all.invoice_id)
    log = log_all.take(position.loc[ids].to_numpy())
    due = to_ns(pd.to_datetime(logged.invoices.set_index("invoice_id").loc[ids, "due_at"]))
    searched = (rest.searched_first(ids) - due) / HOUR_NS
    low, high = rest.day_range(ids)
    days = np.round((hours - searched) / 24.0).astype(np.int64)
    pi = day_target(days, low, high, smoothing)
    end = due + np.round(log.end_hours * HOUR_NS).astype(np.int64)
    timing = day_feedback(log, searched, pi, rest.later_mass(ids, end))
    exact = None if truth is None else day_truth(truth, ids, pi, rest)
    return {
        **block,
        "units": len(ids),
        "off_grid": timing.off_grid,
        "censored": timing.censored,
        "unsupported_units": timing.unsupported_units,
        "target_off_searched_day": float(np.mean(days != 0)),
        **weighted_block(timing.feedback, estimand, settings, exact),
    }


def day_truth(truth: GroundTruth, ids: np.ndarray, target: DayTarget, rest: ProductRest) -> float:
    """The estimand's exact value: per unit and day the target may pick, the product's
    schedule with its first retry that day, valued by the world's truth, weighted by the
    target."""
    unit, column = np.nonzero(target.probability > 0)
    keys = pd.DataFrame(
        {"key": [f"{i}#{j}" for i, j in zip(unit, column, strict=True)], "invoice_id": ids[unit]}
    )
    retries, messages = rest.at_days(ids[unit], target.days[unit, column], keys["key"].to_numpy())
    values = schedule_values(truth, keys, retries, messages)
    weights = target.probability[unit, column] * values
    return float(np.bincount(unit, weights=weights, minlength=len(ids)).mean())
