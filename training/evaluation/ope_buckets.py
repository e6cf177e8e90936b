"""Coarse time buckets and a smoothed target policy, for OPE on any logging.

A deterministic target retries at exact times that a logging policy almost never
reproduced. Mapping times to coarse buckets (day offset x part of day) and
smoothing the target's choice over neighbouring buckets gives logged events a
positive target probability. The estimand is then the value of the *smoothed
bucket policy*: it picks bucket ``b`` with probability ``pi(b)`` and, within the
bucket, times as the logging policy did. ``logging_bucket_probability`` must be
the logging policy's probability of the logged *bucket* (not of the exact
time); a missing value means the logger did not randomize, i.e. probability 1.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from training.evaluation.ope import LoggedFeedback

IntArray = npt.NDArray[np.int64]


def time_bucket(hours_after_failure: npt.ArrayLike, parts_per_day: int = 4) -> IntArray:
    """Bucket index ``day * parts_per_day + part`` for hours after the failure."""
    if parts_per_day < 1:
        raise ValueError(f"parts_per_day must be >= 1, got {parts_per_day!r}")
    hours = np.asarray(hours_after_failure, dtype=np.float64)
    if np.isnan(hours).any() or (hours < 0).any():
        bad = int(np.flatnonzero(np.isnan(hours) | (hours < 0))[0])
        raise ValueError(f"hours_after_failure must be >= 0; unit {bad} has {hours.flat[bad]}")
    return np.floor(hours / (24.0 / parts_per_day)).astype(np.int64)


def smoothed_target_probability(
    logged_bucket: npt.ArrayLike, target_bucket: npt.ArrayLike, smoothing: float
) -> npt.NDArray[np.float64]:
    """Probability that the smoothed target picks the logged bucket.

    The target keeps its own bucket with probability ``1 - smoothing`` and moves
    to each adjacent bucket with ``smoothing / 2`` (all of it to the later one in
    bucket 0, which has no earlier neighbour).
    """
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing!r}")
    logged = np.asarray(logged_bucket, dtype=np.int64)
    target = np.asarray(target_bucket, dtype=np.int64)
    if logged.shape != target.shape:
        raise ValueError(f"logged_bucket {logged.shape} and target_bucket {target.shape} differ")
    gap = logged - target
    neighbour = np.where(target == 0, np.where(gap == 1, smoothing, 0.0), smoothing / 2)
    return np.where(gap == 0, 1 - smoothing, np.where(np.abs(gap) == 1, neighbour, 0.0))


def bucket_feedback(
    reward: npt.ArrayLike,
    logged_bucket: npt.ArrayLike,
    target_bucket: npt.ArrayLike,
    logging_bucket_probability: npt.ArrayLike,
    smoothing: float = 0.3,
    target_value: npt.ArrayLike | None = None,
    logged_value: npt.ArrayLike | None = None,
) -> LoggedFeedback:
    """Logged feedback for the smoothed bucket policy (NaN probability = not randomized)."""
    pi = smoothed_target_probability(logged_bucket, target_bucket, smoothing)
    mu = np.asarray(logging_bucket_probability, dtype=np.float64)
    mu = np.where(np.isnan(mu), 1.0, mu)
    return LoggedFeedback(
        reward=np.asarray(reward, dtype=np.float64),
        match=(pi > 0).astype(np.float64),
        logging_probability=mu,
        target_probability=pi,
        target_value=None if target_value is None else np.asarray(target_value, dtype=np.float64),
        logged_value=None if logged_value is None else np.asarray(logged_value, dtype=np.float64),
    )
