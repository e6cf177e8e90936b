"""Off-policy value of the learned *first-retry time* on any logging policy.

The menu estimator (``ope_eval``) needs a team that drew whole plans from a menu. Most
teams do not: they run a fixed schedule and perturb single retries or messages, and
their history logs one ``propensity`` per retry, the probability of that retry's time.
This module asks one question such logs can answer: *what would the team have
recovered had the learned policy chosen the time of the first retry, everything else
done as the team did?*

Estimand (a stochastic policy, so that logged events match it with positive
probability): the learned first-retry offset is mapped to a time bucket
(``ope_buckets.time_bucket``) and projected onto the nearest bucket in which the logs
show the team's first retries (the *support*); the target keeps that bucket with
probability ``1 - smoothing`` and moves to each neighbouring supported bucket with
``smoothing / 2``; within a bucket it picks the offset as the team did (each logged
offset with its share of the bucket's logged probability). The rest of the dunning
follows the team's own policy, given that first retry.

Weights come from the logged propensities only:

- a unit whose first retry was logged at offset ``t`` with propensity ``p``:
  ``pi(t) / p``;
- a unit recovered (or the window ended) at ``r`` before any retry: the team's first
  retry would have come after ``r``, an event of probability ``mu(T > r)``, read from the
  support's logged propensities; its weight is ``pi(T > r) / mu(T > r)``.

A unit whose censoring has ``mu(T > r) = 0`` while the target would still wait
(the team logged no retry where its own propensities say it always retries) cannot be
weighted; it counts as unmatched and is reported in ``unsupported_units``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from training.contract.history import History
from training.evaluation.ope import LoggedFeedback
from training.evaluation.ope_buckets import time_bucket

FloatArray = npt.NDArray[np.float64]
#: Whose probabilities weigh the logged first retries (see :func:`timing_feedback`).
Propensity = Literal["logged", "estimated"]


@dataclass(frozen=True)
class FirstRetryLog:
    """Per unit: the logged first retry (hours after the failure, NaN when none), its
    propensity (NaN when the logger did not randomize it), the end of observation
    (recovery, or the window's end) and whether the invoice was recovered."""

    invoice_id: np.ndarray
    first_retry_hours: FloatArray
    propensity: FloatArray
    end_hours: FloatArray
    recovered: npt.NDArray[np.bool_]

    def take(self, rows: np.ndarray) -> FirstRetryLog:
        return FirstRetryLog(
            self.invoice_id[rows],
            self.first_retry_hours[rows],
            self.propensity[rows],
            self.end_hours[rows],
            self.recovered[rows],
        )


def read_first_retries(history: History, window_days: int) -> FirstRetryLog:
    """The first merchant retry after the failed charge of every invoice, from the
    data contract's attempts (rounded to whole hours after ``due_at``)."""
    ids = history.invoices["invoice_id"]
    due = history.invoices.set_index("invoice_id")["due_at"]
    att = history.attempts.sort_values(["invoice_id", "attempted_at"], kind="stable")
    merchant = att[att["initiated_by"] == "merchant"]
    retries = merchant[merchant["invoice_id"].duplicated()]  # all but the original charge
    first = retries.drop_duplicates("invoice_id").set_index("invoice_id")
    hours = np.round((first["attempted_at"] - first.index.map(due)).dt.total_seconds() / 3600)
    success = (
        att[att["outcome"] == "succeeded"].drop_duplicates("invoice_id").set_index("invoice_id")
    )
    end = (success["attempted_at"] - success.index.map(due)).dt.total_seconds() / 3600
    window = window_days * 24.0
    end_hours = np.minimum(ids.map(end).fillna(window).to_numpy(dtype=float), window)
    return FirstRetryLog(
        invoice_id=ids.to_numpy(),
        first_retry_hours=ids.map(hours).to_numpy(dtype=float),
        propensity=ids.map(first["propensity"]).to_numpy(dtype=float),
        end_hours=end_hours,
        recovered=end_hours < window,
    )


@dataclass(frozen=True)
class TimingSupport:
    """The first-retry offsets the team's logs show (whole hours after the failure,
    sorted) with the logged probability of each (the median of its propensities; 1 when
    the logger never randomized it), grouped into time buckets."""

    offsets: FloatArray
    probability: FloatArray
    parts_per_day: int

    @property
    def buckets(self) -> npt.NDArray[np.int64]:
        return time_bucket(self.offsets, self.parts_per_day)

    def probability_at_most(self, hours: FloatArray) -> FloatArray:
        """mu(T <= hours): the logged probability that the first retry came by then."""
        cumulative = np.concatenate([[0.0], np.cumsum(self.probability)])
        return cumulative[np.searchsorted(self.offsets, hours, side="right")]


def learn_support(log: FirstRetryLog, min_count: int = 5, parts_per_day: int = 4) -> TimingSupport:
    """Offsets logged as first retries at least ``min_count`` times."""
    seen = ~np.isnan(log.first_retry_hours)
    frame = pd.DataFrame(
        {
            "offset": log.first_retry_hours[seen],
            "p": np.where(np.isnan(log.propensity[seen]), 1.0, log.propensity[seen]),
        }
    )
    stats = frame.groupby("offset")["p"].agg(["size", "median"])
    stats = stats[stats["size"] >= min_count].sort_index()
    return TimingSupport(
        offsets=stats.index.to_numpy(dtype=float),
        probability=stats["median"].to_numpy(dtype=float),
        parts_per_day=parts_per_day,
    )


def target_distribution(
    target_hours: FloatArray, support: TimingSupport, smoothing: float = 0.3
) -> FloatArray:
    """(units x support offsets): the smoothed, projected target's probability of each
    logged offset (see the module docs)."""
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    if len(support.offsets) == 0:
        raise ValueError("the support is empty: no first retry was logged often enough")
    offset_bucket = support.buckets
    supported, position = np.unique(offset_bucket, return_inverse=True)
    bucket_mass = np.bincount(position, weights=support.probability)
    within = support.probability / bucket_mass[position]
    wanted = time_bucket(target_hours, support.parts_per_day)
    # the nearest supported bucket (ties: the earlier one)
    right = np.clip(np.searchsorted(supported, wanted), 0, len(supported) - 1)
    left = np.clip(right - 1, 0, len(supported) - 1)
    nearest = np.where(
        np.abs(supported[left] - wanted) <= np.abs(supported[right] - wanted), left, right
    )
    k = len(supported)
    bucket_pi = np.zeros((len(wanted), k))
    rows = np.arange(len(wanted))
    if k == 1:
        bucket_pi[:, 0] = 1.0
    else:
        has_left, has_right = nearest > 0, nearest < k - 1
        share = np.where(has_left & has_right, smoothing / 2, smoothing)
        bucket_pi[rows, nearest] = 1.0 - smoothing
        bucket_pi[rows[has_left], nearest[has_left] - 1] += share[has_left]
        bucket_pi[rows[has_right], nearest[has_right] + 1] += share[has_right]
    return bucket_pi[:, position] * within[None, :]


@dataclass(frozen=True)
class TimingFeedback:
    feedback: LoggedFeedback
    unsupported_units: int  # censored units the logged propensities cannot weight
    projected_share: float  # units whose learned bucket lies outside the support


def target_strata(target: FloatArray) -> npt.NDArray[np.int64]:
    """Stratum of each unit: units whose target distributions are identical share one."""
    _, inverse = np.unique(target, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def _risk_exit(log: FirstRetryLog, offsets: FloatArray) -> tuple[np.ndarray, np.ndarray]:
    """Per unit: the support index of its logged first retry (-1 when none, or off the
    support), and the last support index at which it was still at risk of one."""
    retried = ~np.isnan(log.first_retry_hours)
    hours = np.where(retried, log.first_retry_hours, np.inf)
    index = np.clip(np.searchsorted(offsets, hours), 0, len(offsets) - 1)
    event = np.where(retried & (offsets[index] == hours), index, -1)
    # a retry off the support leaves the risk set just before it; a censored unit is
    # at risk at every offset up to its end of observation
    left = np.searchsorted(offsets, hours, side="left") - 1
    censored = np.searchsorted(offsets, log.end_hours, side="right") - 1
    last = np.where(event >= 0, event, np.where(retried, left, censored))
    return event, last


def _kaplan_meier(events: np.ndarray, at_risk: np.ndarray) -> tuple[FloatArray, FloatArray]:
    """``P(T = t_j)`` and ``P(T > t_j)`` from event and at-risk counts (last axis: offsets)."""
    hazard = np.divide(events, at_risk, out=np.zeros(events.shape), where=at_risk > 0)
    after = np.cumprod(1.0 - hazard, axis=-1)
    before = np.concatenate([np.ones((*after.shape[:-1], 1)), after[..., :-1]], axis=-1)
    return before * hazard, after


def estimated_logging(
    log: FirstRetryLog, support: TimingSupport, target: FloatArray, strata: np.ndarray
) -> tuple[FloatArray, FloatArray]:
    """The team's first-retry distribution over the support offsets as the log shows it,
    per stratum of units sharing a target: (strata x offsets) ``P(T = t_j)`` and
    ``P(T > t_j)``.

    Kaplan-Meier: a unit recovered before any retry is censored at its end of
    observation, so the invoices that never needed a retry do not pull the estimate
    down. A stratum that logged no first retry at an offset its target may pick takes
    the pooled estimate (all units) instead."""
    k = len(support.offsets)
    n_strata = int(strata.max()) + 1
    event, last = _risk_exit(log, support.offsets)
    has_event, at_risk_somewhere = event >= 0, last >= 0
    events = np.bincount(strata[has_event] * k + event[has_event], minlength=n_strata * k)
    exits = np.bincount(
        strata[at_risk_somewhere] * k + last[at_risk_somewhere], minlength=n_strata * k
    )
    events, exits = events.reshape(n_strata, k), exits.reshape(n_strata, k)
    at_risk = exits[:, ::-1].cumsum(axis=1)[:, ::-1]  # units still at risk at each offset
    probability, survival = _kaplan_meier(events, at_risk)
    pooled_probability, pooled_survival = _kaplan_meier(events.sum(axis=0), at_risk.sum(axis=0))
    wanted = np.zeros((n_strata, k), dtype=bool)
    wanted[strata] = target > 0
    unseen = (wanted & (events == 0)).any(axis=1)
    probability[unseen] = pooled_probability
    survival[unseen] = pooled_survival
    return probability, survival


def censored_feedback(
    recovered: np.ndarray,
    retried: np.ndarray,
    pi_logged: FloatArray,
    pi_later: FloatArray,
    mu_logged: FloatArray,
    mu_later: FloatArray,
) -> tuple[LoggedFeedback, np.ndarray]:
    """First-retry feedback with censoring, whatever the action: a unit whose first retry
    was logged is weighed ``pi_logged / mu_logged``; one recovered (or whose window ended)
    at ``r`` before any retry ``pi(T > r) / mu(T > r)`` (``pi_later``, ``mu_later``); one
    the logging probabilities cannot explain (no retry where ``mu(T > r)`` is 0 but the
    target may wait) is left unmatched and returned in ``unsupported``."""
    unsupported = ~retried & (pi_later > 0) & (mu_later <= 1e-9)
    pi = np.where(retried, pi_logged, np.where(unsupported, 0.0, pi_later))
    mu = np.where(retried, mu_logged, np.where(mu_later > 1e-9, np.minimum(mu_later, 1.0), 1.0))
    feedback = LoggedFeedback(
        reward=recovered.astype(float),
        match=(pi > 0).astype(float),
        logging_probability=mu,
        target_probability=np.clip(pi, 0.0, 1.0),
    )
    return feedback, unsupported


def timing_feedback(
    log: FirstRetryLog,
    support: TimingSupport,
    target: FloatArray,
    target_hours: FloatArray,
    propensity: Propensity = "logged",
) -> TimingFeedback:
    """Logged feedback of the first-retry timing target (``target``: from
    :func:`target_distribution`; ``target_hours``: the learned offsets it came from).

    ``propensity``: ``"logged"`` weighs by the team's logged propensities (the support's
    probabilities); ``"estimated"`` by the first-retry distribution the log itself
    shows among the units sharing each unit's target (:func:`estimated_logging`)."""
    n = len(log.invoice_id)
    index = np.searchsorted(support.offsets, log.first_retry_hours)
    index = np.clip(index, 0, max(len(support.offsets) - 1, 0))
    retried = ~np.isnan(log.first_retry_hours)
    in_support = retried & (support.offsets[index] == log.first_retry_hours)
    pi_logged = np.where(in_support, target[np.arange(n), index], 0.0)
    # censored: no retry logged by the end of observation
    later = support.offsets[None, :] > log.end_hours[:, None]
    pi_later = (target * later).sum(axis=1)
    if propensity == "logged":
        mu_logged = np.where(np.isnan(log.propensity), 1.0, log.propensity)
        mu_later = 1.0 - support.probability_at_most(log.end_hours)
    elif propensity == "estimated":
        strata = target_strata(target)
        probability, survival = estimated_logging(log, support, target, strata)
        mu_logged = np.where(in_support, probability[strata, index], 1.0)
        passed = np.searchsorted(support.offsets, log.end_hours, side="right") - 1
        mu_later = np.where(passed >= 0, survival[strata, np.maximum(passed, 0)], 1.0)
    else:
        raise ValueError(f"propensity must be 'logged' or 'estimated', got {propensity!r}")
    feedback, unsupported = censored_feedback(
        log.recovered, retried, pi_logged, pi_later, mu_logged, mu_later
    )
    buckets = np.unique(support.buckets)
    wanted = time_bucket(target_hours, support.parts_per_day)
    return TimingFeedback(
        feedback=feedback,
        unsupported_units=int(unsupported.sum()),
        projected_share=float(np.mean(~np.isin(wanted, buckets))),
    )
