"""The part of an importance-weighted estimate the logger rarely drew: its size, how
many units carry it, and an interval that stays honest when they are few.

The *off-logger* units are those whose weight ``w = pi / mu`` exceeds 1: the target
takes their logged action more often than the logger did. Whatever the logging, they
carry the target's mass above the logger's. A target that is the logger itself has
only its own exploration's small excess there, spread over many units; a target that
moves part of its mass to actions the logger draws rarely (the first-retry day smoothed
onto days the product explores at 5%) has it on a few units with large weights.

A percentile bootstrap reads that part's spread from the rewards its few units happen to
show: when they all failed, IPS's interval shrinks to the other units' width
(docs/evaluation.md: the smoothed first-retry day, 8 of 14 IPS intervals held the
truth). Here the estimate is written as the other units' part plus ``share x reward``,
the off-logger units' share of the weight times their weighted mean reward. That mean
gets a Wilson score interval on their effective sample size (Kish,
``(sum w)^2 / sum w^2`` over them), which keeps its width when their rewards are all 0
or all 1; the rest (the other units' part and the share, read from the weights alone) a
normal interval from their sandwich variance; the two arms are added in quadrature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import norm

from training.evaluation.ope import FloatArray, LoggedFeedback, kish_size

RatioEstimator = Literal["ips", "snips"]


def wilson_interval(p: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` seen on ``n`` (effective) trials; the
    whole of [0, 1] when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    centre = p + z * z / (2 * n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    return float(max((centre - half) / scale, 0.0)), float(min((centre + half) / scale, 1.0))


def off_logger_units(weight: FloatArray) -> FloatArray:
    """1.0 on the units whose weight exceeds 1 (the target takes their logged action more
    often than the logger did), else 0.0."""
    return (weight > 1.0).astype(np.float64)


@dataclass(frozen=True)
class OffLoggerPart:
    """The units of a feedback whose weight exceeds 1."""

    share: float
    """Their share of the total weight (0 with no weight at all)."""
    effective_units: float
    """Kish effective sample size of their weights."""
    reward: float
    """Their weighted mean reward (0.5, uninformative, when there are none)."""

    @classmethod
    def of(cls, feedback: LoggedFeedback) -> OffLoggerPart:
        off = feedback.weight * off_logger_units(feedback.weight)
        total, part = float(feedback.weight.sum()), float(off.sum())
        return cls(
            share=part / total if total > 0 else 0.0,
            effective_units=kish_size(off),
            reward=float((off * feedback.reward).sum()) / part if part > 0 else 0.5,
        )


def off_logger_interval(
    estimator: RatioEstimator, feedback: LoggedFeedback, alpha: float = 0.05
) -> tuple[float, float]:
    """``1 - alpha`` interval of IPS or SNIPS on ``feedback`` (module docs): the
    off-logger units' mean reward by its Wilson interval, the rest by its sandwich
    variance, in quadrature."""
    z = float(norm.ppf(1 - alpha / 2))
    w, r = feedback.weight, feedback.reward
    heavy = off_logger_units(w)
    off, on = w * heavy, w * (1.0 - heavy)
    part = OffLoggerPart.of(feedback)
    low, high = wilson_interval(part.reward, part.effective_units, z)
    n = w.size
    if estimator == "ips":
        value = float((w * r).mean())
        mass = float(off.mean())
        # the on-logger terms, and how many off-logger units the draw brought (their
        # reward at its upper bound: the larger count noise)
        rest = on * r + high * off
        spread = float(rest.var(ddof=1)) / n if n > 1 else 0.0
        lower_arm, upper_arm = mass * (part.reward - low), mass * (high - part.reward)
    elif estimator == "snips":
        total = float(w.sum())
        value = float((w * r).sum()) / total
        on_total = float(on.sum())
        on_reward = float((on * r).sum()) / on_total if on_total > 0 else 0.0
        on_var = float(np.square(on * (r - on_reward)).sum()) / on_total**2 if on_total > 0 else 0.0
        share_var = float(np.square(off - part.share * w).sum()) / total**2
        # the share's noise moves the estimate by the off-logger reward's distance from
        # the on-logger one, taken at the farther Wilson bound
        gap = max(abs(low - on_reward), abs(high - on_reward))
        spread = (1 - part.share) ** 2 * on_var + gap**2 * share_var
        lower_arm = part.share * (part.reward - low)
        upper_arm = part.share * (high - part.reward)
    else:
        raise ValueError(f"estimator must be 'ips' or 'snips', got {estimator!r}")
    return (
        value - float(np.sqrt(z * z * spread + lower_arm**2)),
        value + float(np.sqrt(z * z * spread + upper_arm**2)),
    )
