"""Overlap checks that turn an off-policy estimate into a typed answer.

An estimator applied to logs that barely overlap the target policy still
returns a number; this module refuses to. :func:`estimate_with_support` returns
either a :class:`PolicyValueEstimate` (value and 95% interval, with the estimand
named) or a :class:`CannotEstimate` that says why the logged data cannot support
an estimate: too small an effective sample size, too few matched units, or one
unit carrying too much of the total weight.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.evaluation.ope import (
    DirectMethod,
    LoggedFeedback,
    OffPolicyEstimator,
    refit_interval,
)


@dataclass(frozen=True)
class SupportThresholds:
    """Minimum overlap for an importance-weighted estimate to be reported."""

    min_effective_sample_size: float = 30.0
    min_matched_share: float = 0.02
    max_weight_share: float = 0.10

    def __post_init__(self) -> None:
        if self.min_effective_sample_size < 1:
            raise ValueError(
                f"min_effective_sample_size must be >= 1, got {self.min_effective_sample_size!r}"
            )
        if not 0 <= self.min_matched_share <= 1:
            raise ValueError(f"min_matched_share must be in [0, 1], got {self.min_matched_share!r}")
        if not 0 < self.max_weight_share <= 1:
            raise ValueError(f"max_weight_share must be in (0, 1], got {self.max_weight_share!r}")


@dataclass(frozen=True)
class OverlapDiagnostics:
    """How well the logged actions cover the target policy's."""

    n_units: int
    n_matched: int
    matched_share: float
    effective_sample_size: float
    max_weight_share: float

    @classmethod
    def of(cls, feedback: LoggedFeedback) -> OverlapDiagnostics:
        w = feedback.weight
        total = float(w.sum())
        squared = float(np.square(w).sum())
        return cls(
            n_units=feedback.n_units,
            n_matched=feedback.n_matched,
            matched_share=feedback.n_matched / feedback.n_units,
            effective_sample_size=total**2 / squared if squared > 0 else 0.0,
            max_weight_share=float(w.max()) / total if total > 0 else 1.0,
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
    checked; its estimate is only as good as the model behind it. ``refit``: when the
    feedback is itself estimated from the units, rebuilds it for a resample of them
    (:func:`~training.evaluation.ope.refit_interval`).
    """
    thresholds = thresholds or SupportThresholds()
    name = type(estimator).__name__
    diagnostics = OverlapDiagnostics.of(feedback)
    reasons = [] if isinstance(estimator, DirectMethod) else diagnostics.shortfalls(thresholds)
    if reasons:
        return CannotEstimate(name, estimand, "; ".join(reasons), diagnostics)
    interval = (
        estimator.estimate_interval(
            feedback, alpha=alpha, n_bootstrap=n_bootstrap, random_state=random_state
        )
        if refit is None
        else refit_interval(estimator, refit, feedback.n_units, alpha, n_bootstrap, random_state)
    )
    return PolicyValueEstimate(
        estimator=name,
        estimand=estimand,
        value=estimator.estimate_policy_value(feedback),
        lower=interval["lower"],
        upper=interval["upper"],
        alpha=alpha,
        diagnostics=diagnostics,
    )
