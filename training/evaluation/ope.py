"""Off-policy estimators of a target policy's value from logged decisions.

Each logged unit (an invoice) carries the observed reward, whether the logged
action is what the target policy would have done, and the logging policy's
probability of that action. The estimators follow Open Bandit Pipeline
(st-tech/zr-obp): small dataclasses behind one interface
(``estimate_policy_value``, ``estimate_interval``), here on a typed
:class:`LoggedFeedback` instead of loose keyword arrays.

Every estimator here is a ratio of per-unit sums, ``sum(a) / sum(b)``, which lets
one vectorized bootstrap (resampled index matrices, drawn in chunks) serve all of
them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Cells (replicates x units) of one bootstrap index chunk: 4M int64 = 32 MB.
_BOOTSTRAP_CHUNK_CELLS = 1 << 22


def _first_bad(name: str, values: FloatArray, bad: npt.NDArray[np.bool_], rule: str) -> None:
    if bad.any():
        where = np.flatnonzero(bad)
        raise ValueError(
            f"{name} must be {rule}; unit {where[0]} has {float(values[where[0]]):g}"
            f" ({where.size} unit(s) out of range)"
        )


def _unit_array(name: str, values: npt.ArrayLike, n: int | None) -> FloatArray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array (one value per unit), got shape {array.shape}"
        )
    if n is not None and array.shape[0] != n:
        raise ValueError(f"{name} has {array.shape[0]} units but reward has {n}")
    nan = np.isnan(array)
    if nan.any():
        raise ValueError(
            f"{name} is NaN at unit {np.flatnonzero(nan)[0]} ({int(nan.sum())} NaN in total)"
        )
    return array


@dataclass(frozen=True, eq=False)
class LoggedFeedback:
    """Validated logged data, one entry per unit.

    Parameters
    ----------
    reward : array-like of shape (n_units,)
        Observed reward in [0, 1] (1 = the invoice was recovered).
    match : array-like of shape (n_units,)
        1 (or True) when the logged action is consistent with the target policy.
    logging_probability : array-like of shape (n_units,)
        Probability in (0, 1] that the logging policy took the logged action (or an
        action of the set consistent with the log).
    target_probability : float or array-like of shape (n_units,), default 1.0
        Probability in [0, 1] that the target policy takes the logged action; 1.0
        for a deterministic target.
    target_value : array-like of shape (n_units,), optional
        Model estimate in [0, 1] of the reward under the target policy's action
        (needed by :class:`DoublyRobust` and :class:`DirectMethod`).
    logged_value : array-like of shape (n_units,), optional
        Model estimate in [0, 1] of the reward under the logged action (needed by
        :class:`DoublyRobust`).

    Raises
    ------
    ValueError
        Naming the argument (and the first offending unit) on a shape mismatch,
        NaN, or a value out of range.
    """

    reward: FloatArray
    match: FloatArray
    logging_probability: FloatArray
    target_probability: FloatArray | float = 1.0
    target_value: FloatArray | None = None
    logged_value: FloatArray | None = None
    weight: FloatArray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        reward = _unit_array("reward", self.reward, None)
        n = reward.shape[0]
        if n == 0:
            raise ValueError("reward is empty: no logged units to evaluate")
        _first_bad("reward", reward, (reward < 0) | (reward > 1), "in [0, 1]")
        match = _unit_array("match", self.match, n)
        _first_bad("match", match, (match != 0) & (match != 1), "0 or 1 (or boolean)")
        mu = _unit_array("logging_probability", self.logging_probability, n)
        _first_bad("logging_probability", mu, (mu <= 0) | (mu > 1), "in (0, 1]")
        pi_input = self.target_probability
        pi = _unit_array(
            "target_probability", np.full(n, pi_input) if np.ndim(pi_input) == 0 else pi_input, n
        )
        _first_bad("target_probability", pi, (pi < 0) | (pi > 1), "in [0, 1]")
        values: dict[str, FloatArray | None] = {}
        for name in ("target_value", "logged_value"):
            raw = getattr(self, name)
            if raw is None:
                values[name] = None
                continue
            array = _unit_array(name, raw, n)
            _first_bad(name, array, (array < 0) | (array > 1), "in [0, 1]")
            values[name] = array
        validated: dict[str, FloatArray | None] = {
            "reward": reward,
            "match": match,
            "logging_probability": mu,
            "target_probability": pi,
            **values,
        }
        for name, checked in validated.items():
            object.__setattr__(self, name, checked)
        object.__setattr__(self, "weight", match * pi / mu)

    @property
    def n_units(self) -> int:
        return int(self.reward.shape[0])

    @property
    def n_matched(self) -> int:
        """Units whose logged action is consistent with the target policy."""
        return int(np.count_nonzero(self.match))


def _require(feedback: LoggedFeedback, estimator: str, name: str) -> FloatArray:
    array = getattr(feedback, name)
    if array is None:
        raise ValueError(f"{estimator} needs {name} (a model estimate of the reward per unit)")
    return array


def _rng(random_state: int | np.random.Generator | None) -> np.random.Generator:
    return (
        random_state
        if isinstance(random_state, np.random.Generator)
        else np.random.default_rng(random_state)
    )


def _check_interval_args(alpha: float, n_bootstrap: int) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if (
        isinstance(n_bootstrap, bool)
        or not isinstance(n_bootstrap, int | np.integer)
        or n_bootstrap < 1
    ):
        raise ValueError(f"n_bootstrap must be a positive integer, got {n_bootstrap!r}")


def bootstrap_ratio(
    numerator: FloatArray,
    denominator: FloatArray | None,
    n_bootstrap: int,
    random_state: int | np.random.Generator | None = None,
) -> FloatArray:
    """Bootstrap replicates of ``sum(numerator) / sum(denominator)`` over units.

    Parameters
    ----------
    numerator : ndarray of shape (n_units,)
    denominator : ndarray of shape (n_units,) or None
        None means one per unit (the ratio is a mean).
    n_bootstrap : int
        Number of replicates.
    random_state : int, Generator or None

    Returns
    -------
    ndarray of shape (n_bootstrap,)
        NaN for a replicate whose denominator sums to zero.
    """
    n = numerator.shape[0]
    rng = _rng(random_state)
    rows = max(1, _BOOTSTRAP_CHUNK_CELLS // n)
    out = np.empty(n_bootstrap)
    for start in range(0, n_bootstrap, rows):
        stop = min(start + rows, n_bootstrap)
        idx = rng.integers(0, n, size=(stop - start, n))
        top = numerator[idx].sum(axis=1)
        bottom = (
            np.full(stop - start, float(n)) if denominator is None else denominator[idx].sum(axis=1)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start:stop] = np.where(bottom > 0, top / np.where(bottom > 0, bottom, 1.0), np.nan)
    return out


def refit_interval(
    estimator: OffPolicyEstimator,
    refit: Callable[[npt.NDArray[np.int64]], LoggedFeedback],
    n_units: int,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    random_state: int | np.random.Generator | None = None,
) -> dict[str, float]:
    """Percentile bootstrap interval when the feedback itself is estimated from the units
    (e.g. propensities estimated from the log): ``refit(rows)`` rebuilds the feedback of
    a resample of units, so each replicate carries the estimation's own variability.
    Same result keys as :meth:`OffPolicyEstimator.estimate_interval`; replicates the
    estimator cannot value (no matched unit) are dropped."""
    _check_interval_args(alpha, n_bootstrap)
    rng = _rng(random_state)
    samples = np.full(n_bootstrap, np.nan)
    for b in range(n_bootstrap):  # one vectorized refit per replicate
        feedback = refit(rng.integers(0, n_units, n_units))
        if feedback.weight.sum() > 0 or isinstance(estimator, InverseProbabilityWeighting):
            samples[b] = estimator.estimate_policy_value(feedback)
    samples = samples[~np.isnan(samples)]
    if samples.size == 0:
        raise ValueError(f"no bootstrap replicate of {estimator.estimator_name} has a matched unit")
    lower, upper = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return {"mean": float(samples.mean()), "lower": float(lower), "upper": float(upper)}


@dataclass(frozen=True)
class OffPolicyEstimator(ABC):
    """One off-policy estimator: a ratio of per-unit sums (see :meth:`terms`)."""

    estimator_name: str

    @abstractmethod
    def terms(self, feedback: LoggedFeedback) -> tuple[FloatArray, FloatArray | None]:
        """Per-unit numerator and denominator terms (None: one per unit).

        Returns
        -------
        numerator : ndarray of shape (n_units,)
        denominator : ndarray of shape (n_units,) or None
        """

    def estimate_policy_value(self, feedback: LoggedFeedback) -> float:
        """Point estimate of the target policy's expected reward per unit."""
        numerator, denominator = self.terms(feedback)
        bottom = numerator.shape[0] if denominator is None else denominator.sum()
        return float(numerator.sum() / bottom)

    def estimate_interval(
        self,
        feedback: LoggedFeedback,
        alpha: float = 0.05,
        n_bootstrap: int = 1000,
        random_state: int | np.random.Generator | None = None,
    ) -> dict[str, float]:
        """Percentile bootstrap interval over units.

        Returns
        -------
        dict
            ``mean`` (mean of the bootstrap replicates, as in OBP), ``lower`` and
            ``upper`` (the ``alpha / 2`` and ``1 - alpha / 2`` quantiles).
            Replicates with no matched unit (possible for SNIPS) are dropped.
        """
        _check_interval_args(alpha, n_bootstrap)
        numerator, denominator = self.terms(feedback)
        samples = bootstrap_ratio(numerator, denominator, n_bootstrap, random_state)
        samples = samples[~np.isnan(samples)]
        lower, upper = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
        return {"mean": float(samples.mean()), "lower": float(lower), "upper": float(upper)}

    def effective_sample_size(self, feedback: LoggedFeedback) -> float:
        """Kish effective sample size of the importance weights (:func:`kish_size`).

        Zero when no unit matches.
        """
        return kish_size(feedback.weight)


@dataclass(frozen=True)
class InverseProbabilityWeighting(OffPolicyEstimator):
    """IPS: mean of ``w * r`` with ``w = match * target_probability / logging_probability``.

    Unbiased when the logging probabilities are right; variance grows with the weights.
    """

    estimator_name: str = "ips"

    def terms(self, feedback: LoggedFeedback) -> tuple[FloatArray, FloatArray | None]:
        return feedback.weight * feedback.reward, None


@dataclass(frozen=True)
class SelfNormalizedIPW(OffPolicyEstimator):
    """SNIPS: ``sum(w * r) / sum(w)``; slightly biased, bounded in [0, 1], lower variance."""

    estimator_name: str = "snips"

    def terms(self, feedback: LoggedFeedback) -> tuple[FloatArray, FloatArray | None]:
        if feedback.weight.sum() <= 0:
            raise ValueError(
                f"{type(self).__name__} needs at least one unit whose logged action matches "
                f"the target policy with a positive target_probability (matched units: "
                f"{int(np.count_nonzero(feedback.match))} of {feedback.n_units})"
            )
        return feedback.weight * feedback.reward, feedback.weight


@dataclass(frozen=True)
class DoublyRobust(OffPolicyEstimator):
    """DR: mean of ``target_value + w * (r - logged_value)``.

    Unbiased if either the logging probabilities or the reward model are right; with
    a good model its variance is lower than IPS's.
    """

    estimator_name: str = "dr"

    def terms(self, feedback: LoggedFeedback) -> tuple[FloatArray, FloatArray | None]:
        name = type(self).__name__
        target = _require(feedback, name, "target_value")
        logged = _require(feedback, name, "logged_value")
        return target + feedback.weight * (feedback.reward - logged), None


@dataclass(frozen=True)
class DirectMethod(OffPolicyEstimator):
    """DM: mean of ``target_value``; the model's own view, for reference (biased if the
    model is)."""

    estimator_name: str = "dm"

    def terms(self, feedback: LoggedFeedback) -> tuple[FloatArray, FloatArray | None]:
        return _require(feedback, type(self).__name__, "target_value").copy(), None

    def effective_sample_size(self, feedback: LoggedFeedback) -> float:
        """Every unit counts with weight one."""
        return float(feedback.n_units)


def kish_size(weights: FloatArray) -> float:
    """Kish effective sample size ``(sum w)^2 / sum w^2`` (0 when every weight is 0)."""
    squared = float(np.square(weights).sum())
    return float(weights.sum() ** 2 / squared) if squared > 0 else 0.0


def default_estimators() -> tuple[OffPolicyEstimator, ...]:
    """IPS, SNIPS, DR and DM, in the order the report lists them."""
    return (InverseProbabilityWeighting(), SelfNormalizedIPW(), DoublyRobust(), DirectMethod())


def summarize(
    estimators: Sequence[OffPolicyEstimator],
    feedback: LoggedFeedback,
    *,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    random_state: int | np.random.Generator | None = None,
) -> dict[str, dict[str, float | int]]:
    """Point estimate, bootstrap interval, matched units and ESS per estimator.

    All estimators share the same bootstrap resamples (common random numbers), so
    their intervals are comparable.

    Returns
    -------
    dict
        ``{estimator_name: {"value", "lower", "upper", "matched", "ess"}}``, plain
        Python numbers ready for a metrics JSON.
    """
    names = [estimator.estimator_name for estimator in estimators]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"estimators must have distinct estimator_name; repeated: {duplicated}")
    _check_interval_args(alpha, n_bootstrap)
    seed = int(_rng(random_state).integers(0, 2**63 - 1))
    out: dict[str, dict[str, float | int]] = {}
    for estimator in estimators:
        interval = estimator.estimate_interval(feedback, alpha, n_bootstrap, seed)
        out[estimator.estimator_name] = {
            "value": estimator.estimate_policy_value(feedback),
            "lower": interval["lower"],
            "upper": interval["upper"],
            "matched": feedback.n_matched,
            "ess": estimator.effective_sample_size(feedback),
        }
    return out
