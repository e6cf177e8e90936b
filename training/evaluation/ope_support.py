"""Overlap checks that turn an off-policy estimate into a typed answer.

An estimator applied to logs that barely overlap the target policy still
returns a number; this module refuses to. :func:`estimate_with_support` returns
either a :class:`PolicyValueEstimate` (value and 95% interval, with the estimand
named) or a :class:`CannotEstimate` that says why the logged data cannot support
an estimate: too small an effective sample size, too few matched units, one
unit carrying too much of the total weight, weights whose mean is not 1, or the
target's off-logger part (:mod:`~training.evaluation.ope_off_logger`) resting on too
few effective units. IPS and SNIPS take their interval from that module (the off-logger
units' mean reward by a Wilson score interval); the doubly robust estimate and
estimated weights (``refit``) keep the percentile bootstrap.

The last is the check that needs no knowledge of the logging policy: with the
probabilities the logger really drew with, and a target whose actions the logger
could take, an importance weight averages 1 over the logged units. A mean well
below 1 says the target puts its mass where the logs cannot reach (per-customer
logging read as a team-wide distribution: docs/evaluation.md, product-logged
histories, where the weights averaged 0.28-0.58 or 5-12); a mean above 1, that the
logged probabilities are too small.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.evaluation.ope import (
    DirectMethod,
    InverseProbabilityWeighting,
    LoggedFeedback,
    OffPolicyEstimator,
    SelfNormalizedIPW,
    kish_size,
    refit_interval,
)
from training.evaluation.ope_off_logger import OffLoggerPart, off_logger_interval


@dataclass(frozen=True)
class SupportThresholds:
    """Minimum overlap for an importance-weighted estimate to be reported."""

    min_effective_sample_size: float = 30.0
    min_matched_share: float = 0.02
    max_weight_share: float = 0.10
    mean_weight_tolerance: float = 0.10
    """How far from 1 the weights' mean may lie beyond its noise (``mean_weight_z``
    standard errors) before the weights are refused."""
    mean_weight_z: float = 3.0
    min_off_logger_effective_units: float = 10.0
    """Fewest effective units the off-logger part of the weights
    (:mod:`~training.evaluation.ope_off_logger`) may rest on when it carries more than
    ``off_logger_share_tolerance`` of the weight: its interval treats their mean reward
    as a proportion, which needs at least 5 successes and 5 failures in expectation."""
    off_logger_share_tolerance: float = 0.02

    def __post_init__(self) -> None:
        if self.min_effective_sample_size < 1:
            raise ValueError(
                f"min_effective_sample_size must be >= 1, got {self.min_effective_sample_size!r}"
            )
        if not 0 <= self.min_matched_share <= 1:
            raise ValueError(f"min_matched_share must be in [0, 1], got {self.min_matched_share!r}")
        if not 0 < self.max_weight_share <= 1:
            raise ValueError(f"max_weight_share must be in (0, 1], got {self.max_weight_share!r}")
        if self.min_off_logger_effective_units < 0 or not 0 <= self.off_logger_share_tolerance <= 1:
            raise ValueError(
                "min_off_logger_effective_units must be >= 0 and off_logger_share_tolerance "
                f"in [0, 1], got {self.min_off_logger_effective_units!r}, "
                f"{self.off_logger_share_tolerance!r}"
            )
        if self.mean_weight_tolerance < 0 or self.mean_weight_z < 0:
            raise ValueError(
                "mean_weight_tolerance and mean_weight_z must be >= 0, got "
                f"{self.mean_weight_tolerance!r}, {self.mean_weight_z!r}"
            )


@dataclass(frozen=True)
class OverlapDiagnostics:
    """How well the logged actions cover the target policy's."""

    n_units: int
    n_matched: int
    matched_share: float
    effective_sample_size: float
    max_weight_share: float
    mean_weight: float
    mean_weight_se: float
    off_logger_share: float
    off_logger_effective_units: float

    @classmethod
    def of(cls, feedback: LoggedFeedback) -> OverlapDiagnostics:
        w = feedback.weight
        total = float(w.sum())
        off = OffLoggerPart.of(feedback)
        return cls(
            n_units=feedback.n_units,
            n_matched=feedback.n_matched,
            matched_share=feedback.n_matched / feedback.n_units,
            effective_sample_size=kish_size(w),
            max_weight_share=float(w.max()) / total if total > 0 else 1.0,
            mean_weight=total / w.size,
            mean_weight_se=float(w.std(ddof=1)) / np.sqrt(w.size) if w.size > 1 else 0.0,
            off_logger_share=off.share,
            off_logger_effective_units=off.effective_units,
        )

    def shortfalls(self, thresholds: SupportThresholds) -> list[str]:
        """Reasons (empty when none) why these diagnostics fail the thresholds."""
        reasons = []
        if self.effective_sample_size < thresholds.min_effective_sample_size:
            reasons.append(
                f"effective sample size {self.effective_sample_size:.1f}"
                f" < {thresholds.min_effective_sample_size:g}"
            )
        if self.matched_share < thresholds.min_matched_share:
            reasons.append(
                f"matched share {self.matched_share:.3f} ({self.n_matched} of {self.n_units})"
                f" < {thresholds.min_matched_share:g}"
            )
        if self.max_weight_share > thresholds.max_weight_share:
            reasons.append(
                f"one unit carries {self.max_weight_share:.3f} of the total weight"
                f" > {thresholds.max_weight_share:g}"
            )
        if (
            self.off_logger_share > thresholds.off_logger_share_tolerance
            and self.off_logger_effective_units < thresholds.min_off_logger_effective_units
        ):
            reasons.append(
                f"{self.off_logger_share:.0%} of the weight lies where the target takes the "
                f"logged action more often than the logger did, carried by "
                f"{self.off_logger_effective_units:.1f} effective units"
                f" < {thresholds.min_off_logger_effective_units:g}"
            )
        gap = abs(self.mean_weight - 1.0)
        if gap > thresholds.mean_weight_tolerance + thresholds.mean_weight_z * self.mean_weight_se:
            reasons.append(
                f"the weights average {self.mean_weight:.2f} (± {self.mean_weight_se:.2f}), "
                "not 1: the target takes actions the logging could not draw for these units, "
                "or the logged probabilities are not the ones it drew with"
            )
        return reasons


@dataclass(frozen=True)
class PolicyValueEstimate:
    """An off-policy estimate of ``estimand`` with its interval."""

    estimator: str
    estimand: str
    value: float
    lower: float
    upper: float
    alpha: float
    diagnostics: OverlapDiagnostics

    def covers(self, truth: float) -> bool:
        return self.lower <= truth <= self.upper


@dataclass(frozen=True)
class CannotEstimate:
    """The logged data cannot support an estimate of ``estimand``; ``reason`` says why."""

    estimator: str
    estimand: str
    reason: str
    diagnostics: OverlapDiagnostics


def estimate_with_support(
    estimator: OffPolicyEstimator,
    feedback: LoggedFeedback,
    estimand: str,
    thresholds: SupportThresholds | None = None,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    random_state: int | np.random.Generator | None = None,
    refit: Callable[[npt.NDArray[np.int64]], LoggedFeedback] | None = None,
) -> PolicyValueEstimate | CannotEstimate:
    """Estimate ``estimand`` with a bootstrap interval, or decline when overlap is thin.

    The direct method uses no weights, so only the weighted estimators are
    checked; its estimate is only as good as the model behind it. IPS and SNIPS: the
    interval of :func:`~training.evaluation.ope_off_logger.off_logger_interval`; the
    others a percentile bootstrap. ``refit``: when the feedback is itself estimated from
    the units, rebuilds it for a resample of them, and every estimator takes the
    percentile interval of :func:`~training.evaluation.ope.refit_interval`.
    """
    thresholds = thresholds or SupportThresholds()
    name = type(estimator).__name__
    diagnostics = OverlapDiagnostics.of(feedback)
    reasons = [] if isinstance(estimator, DirectMethod) else diagnostics.shortfalls(thresholds)
    if reasons:
        return CannotEstimate(name, estimand, "; ".join(reasons), diagnostics)
    if refit is not None:
        interval = refit_interval(
            estimator, refit, feedback.n_units, alpha, n_bootstrap, random_state
        )
        lower, upper = interval["lower"], interval["upper"]
    elif isinstance(estimator, InverseProbabilityWeighting | SelfNormalizedIPW):
        ips = isinstance(estimator, InverseProbabilityWeighting)
        lower, upper = off_logger_interval("ips" if ips else "snips", feedback, alpha)
    else:
        interval = estimator.estimate_interval(
            feedback, alpha=alpha, n_bootstrap=n_bootstrap, random_state=random_state
        )
        lower, upper = interval["lower"], interval["upper"]
    return PolicyValueEstimate(
        estimator=name,
        estimand=estimand,
        value=estimator.estimate_policy_value(feedback),
        lower=lower,
        upper=upper,
        alpha=alpha,
        diagnostics=diagnostics,
    )
