"""Off-policy value of the first retry's *day*, per decision, on logs that randomize it.

The timing estimand of :mod:`training.evaluation.ope_first_retry` assumes one support of
first-retry offsets shared by every customer; a logger that retries each customer at its
own clock time and explores by whole days (the product: :mod:`training.policy.exploration`)
does not identify it. This estimand asks what such logs can answer: *what would have
been recovered had the target chosen the day of each decision's first retry, at the
logging decision's own searched clock time, the rest of the dunning as the logger did it?*

Actions, per decision: ``k``, the whole days between the first retry and the logging
decision's searched first retry (``k = 0``: the searched time itself). The target's day
``k_pi`` (whole days between the target's first retry and the searched one; 0 when the
target is the logging model with its exploration off) is kept with ``1 - smoothing`` and
moved to each neighbouring day the window allows with ``smoothing / 2``.

Weights, from what the history holds:

- a decision whose first retry was logged ``k`` whole days from the searched time (to
  the hour): ``pi(k) / p``, ``p`` the logged row's ``propensity``. That is the
  probability of that exact time, and also of the day-``k`` action: no other arm puts a
  first retry at that time (a shift of a few hours lands elsewhere, and a shift that
  lands on the same *day* is another action, not the day-``k`` one);
- a first retry logged off that grid (a shifted schedule): the target never takes that
  action, weight 0;
- a decision recovered (or its window ended) at ``r`` before any retry: the target's
  outcome is the logged one whenever its first retry comes after ``r``; weight
  ``pi(T > r) / mu(T > r)``, ``mu(T > r)`` the logger's probability that the first retry
  came after ``r`` (:meth:`~training.evaluation.ope_product_logging.ProductRest.later_mass`:
  no row logs it, the logger's own structure does).

With the logged probabilities the logger drew with, the weights average 1 whenever the
logger could take every day the target takes (:mod:`training.evaluation.ope_support`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.evaluation.ope import LoggedFeedback
from training.evaluation.ope_first_retry import FirstRetryLog, censored_feedback

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ESTIMAND = (
    "recovery rate with the first retry's day chosen by the learned policy (at the logging "
    "decision's searched clock time, smoothed over neighbouring days) and the rest of the "
    "dunning as the product logged it"
)


@dataclass(frozen=True)
class DayTarget:
    """Per unit (rows), the days the target may pick (columns: the target's day and its
    two neighbours, whole days from the searched first retry) and each one's probability."""

    days: IntArray
    probability: FloatArray

    def take(self, rows: np.ndarray) -> DayTarget:
        return DayTarget(self.days[rows], self.probability[rows])


def day_target(
    target_days: IntArray, low: IntArray, high: IntArray, smoothing: float = 0.0
) -> DayTarget:
    """The target's day ``target_days`` kept with ``1 - smoothing``, each neighbouring day
    inside ``[low, high]`` (the days the window allows) given ``smoothing / 2`` (a
    neighbour outside gives its share to the other, or back to the target's day)."""
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    days = np.asarray(target_days, dtype=np.int64)[:, None] + np.array([-1, 0, 1])
    inside = (days >= np.asarray(low)[:, None]) & (days <= np.asarray(high)[:, None])
    before, after = inside[:, 0], inside[:, 2]
    share = np.where(before & after, smoothing / 2, np.where(before | after, smoothing, 0.0))
    probability = np.column_stack(
        [share * before, 1.0 - share * (before.astype(int) + after), share * after]
    )
    return DayTarget(days, probability)


@dataclass(frozen=True)
class DayFeedback:
    feedback: LoggedFeedback
    off_grid: int  # first retries logged off the searched clock time (shifted)
    censored: int  # units recovered (or their window over) before any retry
    unsupported_units: int  # censored units the logger's structure cannot weight


def day_feedback(
    log: FirstRetryLog,
    searched_hours: FloatArray,
    target: DayTarget,
    later: FloatArray,
) -> DayFeedback:
    """Logged feedback of the first-retry day target (module docs).

    ``searched_hours``: per unit, the logging decision's searched first retry (hours after
    the due date, as ``log`` reads them); ``later``: per unit, the logger's probability
    that the first retry came after the unit's end of observation
    (``mu(T > end_hours)``; read for the censored units only)."""
    retried = ~np.isnan(log.first_retry_hours)
    step = np.where(retried, log.first_retry_hours - np.round(searched_hours), 0.0) / 24.0
    on_grid = retried & (step == np.round(step))
    logged_day = np.round(step).astype(np.int64)
    hit = on_grid[:, None] & (target.days == logged_day[:, None])
    pi_logged = (target.probability * hit).sum(axis=1)
    first_hours = searched_hours[:, None] + 24.0 * target.days
    pi_later = (target.probability * (first_hours > log.end_hours[:, None])).sum(axis=1)
    mu_logged = np.where(np.isnan(log.propensity), 1.0, log.propensity)
    feedback, unsupported = censored_feedback(
        log.recovered, retried, pi_logged, pi_later, mu_logged, later
    )
    return DayFeedback(
        feedback=feedback,
        off_grid=int((retried & ~on_grid).sum()),
        censored=int((~retried).sum()),
        unsupported_units=int(unsupported.sum()),
    )
