"""Calibration per group: Platt's map plus a shrunk log-odds offset per category.

One calibration map for all rows keeps each group's error: boosting stopped early on a
validation period ruled by common rows leaves rare groups under-fitted. On the default
world at 20,000 invoices, an "update your payment method" message after a card was
lost, closed, refused or disputed was answered 19% of the time and predicted 13% (on the
rows the model was fitted on, 560 of them, in every one of those decline categories);
the policy chooses exactly those messages for the declines no retry can fix, so their
whole schedules were valued 0.04 to 0.08 below what they recovered. The map fitted
here adds, to Platt's sigmoid of the score, one offset per value of each group column
and per pair of values, L2-shrunk towards zero (a group with few rows keeps the shared
map). Fitted on the out-of-fold scores of the training rows and the validation period's
(cross_fit.py), so the offsets measure the booster's error on rows it did not see.

A group column may also be a count (``counts``: the dunning state, retries or messages
before the row), bucketed as 0, 1, ..., ``size - 1`` or more. Boosting under-fits the
dunning state too: within a decline category the first retry's and first message's
rates are pulled towards the later ones' (default-like worlds at 10,000 invoices: first
retry 0.12 predicted, 0.13-0.14 observed on the test period, the third 0.06-0.075
predicted, 0.055 observed), and a schedule's value, the product of its rows, inherits
it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import sparse
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

from training.core.probability import logit

# the score's log-odds column is multiplied by this before the fit, so that the L2
# penalty meant for the offsets leaves its slope practically free
_SCORE_SCALE = 100.0
SLOPE_CAP = 3.0  # counts with a slope of their own weigh at most this (count_effect.py)


def _design(
    scores: np.ndarray,
    codes: np.ndarray,
    sizes: tuple[int, ...],
    slopes: np.ndarray | None = None,
) -> sparse.csr_matrix:
    """[scaled log-odds | one-hot per column | one-hot per pair of the first two columns |
    ``slopes``' columns as they are]; a missing code (NaN: unseen or missing value) sets
    no indicator."""
    n = len(scores)
    blocks = [sparse.csr_matrix(_SCORE_SCALE * logit(scores)[:, None])]
    known = ~np.isnan(codes)
    filled = np.where(known, codes, 0).astype(np.int64)
    rows = np.arange(n)

    def one_hot(index: np.ndarray, present: np.ndarray, width: int) -> sparse.csr_matrix:
        return sparse.csr_matrix(
            (np.ones(int(present.sum())), (rows[present], index[present])), shape=(n, width)
        )

    for j, size in enumerate(sizes):
        blocks.append(one_hot(filled[:, j], known[:, j], size))
    if len(sizes) >= 2:
        pair = filled[:, 0] * sizes[1] + filled[:, 1]
        blocks.append(one_hot(pair, known[:, 0] & known[:, 1], sizes[0] * sizes[1]))
    if slopes is not None and slopes.shape[1]:
        blocks.append(sparse.csr_matrix(slopes))
    return sparse.hstack(blocks, format="csr")


def _fit_with_offset(
    design: sparse.csr_matrix,
    label: np.ndarray,
    offset: np.ndarray,
    strength: float,
    prior: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, float]:
    """sklearn's L2 logistic regression (``C`` = ``strength``, intercept unpenalised) with
    a fixed log-odds ``offset`` per row, which sklearn cannot take: the coefficients and
    the intercept. ``prior``: (means, precisions) per coefficient, a Gaussian penalty
    ``precision * (beta - mean)² / 2`` per unit of the log-likelihood added to the L2 one
    (precision 0: none)."""
    y = np.asarray(label, dtype=float)
    width = design.shape[1]

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        z = design @ beta[:width] + beta[width] + offset
        residual = 1.0 / (1.0 + np.exp(-z)) - y
        value = strength * np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * beta[:width] @ beta[:width]
        grad = np.append(strength * (design.T @ residual) + beta[:width], strength * residual.sum())
        if prior is not None:
            gap = beta[:width] - prior[0]
            value += 0.5 * strength * float(np.sum(prior[1] * gap * gap))
            grad[:width] += strength * prior[1] * gap
        return float(value), grad

    start = np.zeros(width + 1)
    start[width] = logit(np.array([np.clip(y.mean(), 1e-6, 1 - 1e-6)]))[0]
    fitted = minimize(
        loss,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 10_000, "ftol": 1e-12, "gtol": 1e-7},
    )
    return fitted.x[:width], float(fitted.x[width])


def penalised_toward(
    width: int, slope_priors: tuple[tuple[float, float], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The (means, precisions) of :func:`_fit_with_offset`'s prior for a design of
    ``width`` columns whose last ones are the slopes: each slope's (mean, variance), a
    precision of 1 / variance (0 where the variance is infinite, zero or not a number:
    no prior), every other column none."""
    means, precisions = np.zeros(width), np.zeros(width)
    for j, (mean, variance) in enumerate(slope_priors):
        at = width - len(slope_priors) + j
        if np.isfinite(variance) and variance > 0 and np.isfinite(mean):
            means[at], precisions[at] = mean, 1.0 / variance
    return means, precisions


def slope_values(values: np.ndarray) -> np.ndarray:
    """A count column as the map's slope input: missing as 0, capped at ``SLOPE_CAP``."""
    return np.minimum(np.nan_to_num(values, nan=0.0), SLOPE_CAP)


_LOWEST = np.finfo(np.float64).min


def _capped_counts(values: np.ndarray) -> np.ndarray:
    """:func:`slope_values` in three numpy calls (``np.nan_to_num`` costs ~10 µs of
    checks a call; the map runs in every model call of the policy's searches): the same
    figures, -inf held at the lowest float as ``np.nan_to_num`` holds it."""
    capped = np.minimum(np.maximum(values, _LOWEST), SLOPE_CAP)
    capped[np.isnan(capped)] = 0.0
    return capped


class _OffsetTables(NamedTuple):
    """A fitted map's coefficients as flat arrays: each group column's offsets followed
    by 0.0 (the slot of a row with no offset in it), then those of the pair of the first
    two columns, in one array; and the pair's offsets by the two columns' slots, "none"
    included (the pair has none when either column has none)."""

    slope: float
    minus_intercept: float  # the map's intercept, negated (see predict)
    columns: np.ndarray  # the group columns' positions in the matrix
    sizes: np.ndarray  # per group column: its offsets (its "none" slot is this one)
    starts: np.ndarray  # per group column: where its offsets start in ``offsets``
    offsets: np.ndarray
    pairs: np.ndarray | None  # the pair's offset by (first slot, second slot), "none" included
    any_counts: bool  # some group column is a count (else only categories)
    count_columns: slice | np.ndarray  # the count columns among the group columns
    count_last: np.ndarray  # and their last buckets
    slope_columns: tuple[int, ...]  # counts with a slope: their positions in the matrix
    slopes: tuple[float, ...]  # and their slopes

    @classmethod
    def of(cls, calibrator: GroupCalibrator) -> _OffsetTables:
        coef = calibrator.model.coef_[0]
        sizes = list(calibrator.sizes)
        widths = [*sizes, sizes[0] * sizes[1]] if len(sizes) >= 2 else sizes
        parts: list[np.ndarray] = []
        starts: list[int] = []
        at = 1  # the design's columns: score, groups, pair
        for width in widths:
            starts.append(sum(len(part) for part in parts))
            parts.append(np.append(coef[at : at + width], 0.0))
            at += width
        counts = getattr(calibrator, "counts", ()) or (False,) * len(sizes)
        count_columns = _count_columns(counts)
        offsets = np.concatenate(parts)
        pairs = None
        if len(sizes) >= 2:  # either slot "none": the pair's own "none" slot (0.0)
            first, second = sizes[0], sizes[1]
            grid = np.full((first + 1, second + 1), first * second, dtype=np.int64)
            grid[:first, :second] = np.arange(first * second).reshape(first, second)
            pairs = offsets[starts[-1] + grid]
        slope_columns = tuple(getattr(calibrator, "slopes", ()))
        slopes = tuple(float(c) for c in coef[len(coef) - len(slope_columns) :])
        return cls(
            slope=coef[0],
            minus_intercept=-float(calibrator.model.intercept_[0]),
            columns=np.array(calibrator.columns, dtype=np.intp),
            sizes=np.array(sizes, dtype=float),
            starts=np.array(starts[: len(sizes)], dtype=np.int64),
            offsets=offsets,
            pairs=pairs,
            any_counts=bool(any(counts)),
            count_columns=count_columns,
            count_last=(np.array(sizes, dtype=float) - 1)[count_columns],
            slope_columns=slope_columns,
            slopes=slopes if slope_columns else (),
        )


def _count_columns(counts: tuple[bool, ...]) -> slice | np.ndarray:
    """Positions of the count columns among the group columns: a slice when they are the
    last ones (the calibration columns list categories first, then counts), else an
    index array."""
    positions = np.flatnonzero(np.asarray(counts, dtype=bool))
    if len(positions) and (positions == np.arange(len(counts) - len(positions), len(counts))).all():
        return slice(int(positions[0]), len(counts))
    return positions


@dataclass
class GroupCalibrator:
    """Platt's map with shrunk offsets per value of the matrix columns ``columns`` (their
    positions in the encoded matrix; ``sizes``: how many categories each has)."""

    columns: tuple[int, ...]
    sizes: tuple[int, ...]
    model: LogisticRegression
    counts: tuple[bool, ...] = ()  # per column: a count bucketed at size - 1 (else categories)
    slopes: tuple[int, ...] = ()  # counts with a log-odds slope each (count_effect.py)

    @classmethod
    def fit(
        cls,
        scores: np.ndarray,
        label: np.ndarray,
        codes: np.ndarray,
        columns: tuple[int, ...],
        sizes: tuple[int, ...],
        strength: float,
        counts: tuple[bool, ...] = (),
        slopes: tuple[int, ...] = (),
        slope_inputs: np.ndarray | None = None,
        fixed_slopes: tuple[float, ...] | None = None,
        slope_priors: tuple[tuple[float, float], ...] | None = None,
    ) -> GroupCalibrator:
        """``codes``: the rows' values in ``columns`` (n x len(columns), NaN when missing:
        category codes, or counts for the columns ``counts`` marks); ``strength``: the
        inverse L2 penalty of the offsets (sklearn's ``C``); ``slopes``: positions of
        count columns that get one log-odds slope each, ``slope_inputs`` their values
        (n x len(slopes)); ``fixed_slopes``: those slopes given, not fitted (the map is
        fitted with them as a fixed offset, and serves them); ``slope_priors``: else a
        Gaussian prior (mean, variance) per slope, beside the L2 penalty (the count
        effect's first stage, :func:`penalised_toward`; an infinite variance: none)."""
        calibrator = cls(
            tuple(columns), tuple(sizes), LogisticRegression(), tuple(counts), tuple(slopes)
        )
        model = LogisticRegression(C=strength, max_iter=1000)
        values = None if not slopes or slope_inputs is None else slope_values(slope_inputs)
        grouped = calibrator.group_codes(codes)
        if fixed_slopes is not None and values is not None:
            fixed = np.asarray(fixed_slopes, dtype=float)
            coef, intercept = _fit_with_offset(
                _design(scores, grouped, sizes), label, values @ fixed, strength
            )
            model.coef_ = np.concatenate([coef, fixed])[None, :]
            model.intercept_ = np.array([intercept])
            model.classes_ = np.array([0, 1])
        elif slope_priors is not None and values is not None:
            design = _design(scores, grouped, sizes, values)
            coef, intercept = _fit_with_offset(
                design,
                label,
                np.zeros(len(scores)),
                strength,
                penalised_toward(design.shape[1], slope_priors),
            )
            model.coef_ = coef[None, :]
            model.intercept_ = np.array([intercept])
            model.classes_ = np.array([0, 1])
        else:
            model.fit(_design(scores, grouped, sizes, values), label)
        calibrator.model = model
        return calibrator

    def group_codes(self, values: np.ndarray) -> np.ndarray:
        """Each row's bucket per group column (NaN: no offset): a category code, NaN when
        the map never saw it; a count, its last bucket holding every larger one."""
        sizes = np.array(self.sizes, dtype=float)
        counts = np.array(getattr(self, "counts", ()) or [False] * len(self.sizes), dtype=bool)
        clipped = np.minimum(np.floor(np.maximum(values, 0.0)), sizes - 1)
        return np.where(counts, clipped, np.where(values < sizes, values, np.nan))

    def predict(self, scores: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """Probabilities of raw ``scores`` of the rows of the encoded ``matrix``.

        The fitted coefficients are gathered per row rather than multiplied with the
        sparse design of :func:`_design` (building it costs ~0.5 ms a call, ten times the
        trees of a lone decision), from flat tables made once per map
        (:meth:`_offset_tables`: each column's offsets, then a 0.0 for "no offset"); the
        sum runs in the design's column order, so the result is the same to the bit."""
        tables = self._offset_tables()
        values = matrix[:, tables.columns]  # a gather: a copy of its own, worked in place
        # counts: their bucket, the last holding every larger count; categories: their
        # code; either way the slot after the offsets (0.0) when there is none (NaN, or a
        # category the map never saw): np.fmin keeps the smaller and turns NaN into the
        # "none" slot, as np.where(values < sizes, values, sizes) does, in one call
        if tables.any_counts:
            counts = values[:, tables.count_columns]  # a view when they are the last ones
            np.maximum(counts, 0.0, out=counts)
            np.floor(counts, out=counts)
            np.minimum(counts, tables.count_last, out=counts)
            if not isinstance(tables.count_columns, slice):
                values[:, tables.count_columns] = counts
        slots = np.fmin(values, tables.sizes, out=values).astype(np.intp)
        offsets = tables.offsets[slots + tables.starts]
        # (the sparse product starts from 0.0; 0.0 + x is x but for -0.0, whose
        # probability is the same: exp(0.0) == exp(-0.0))
        logits = logit(scores)
        logits *= _SCORE_SCALE
        logits *= tables.slope
        for j in range(offsets.shape[1]):
            logits += offsets[:, j]
        if tables.pairs is not None:
            logits += tables.pairs[slots[:, 0], slots[:, 1]]
        for position, slope in zip(tables.slope_columns, tables.slopes, strict=True):
            logits += slope * _capped_counts(matrix[:, position])
        # 1 / (1 + exp(-(logits + intercept))), in place: -(x + b) is -b - x to the bit
        # (rounding to nearest is symmetric in sign; a zero's sign is lost in exp)
        np.subtract(tables.minus_intercept, logits, out=logits)
        np.exp(logits, out=logits)
        logits += 1.0
        return np.divide(1.0, logits, out=logits)

    def _offset_tables(self) -> _OffsetTables:
        """The map's coefficients laid out for :meth:`predict`, worked out on its first
        call and kept (never pickled: :meth:`__getstate__`)."""
        kept = self.__dict__.get("_tables")
        if kept is None:
            kept = self.__dict__["_tables"] = _OffsetTables.of(self)
        return kept

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_tables", None)
        return state

    def predict_sparse(self, scores: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """:meth:`predict` through the sparse design the map was fitted on (the reference
        the tests hold :meth:`predict` to)."""
        codes = self.group_codes(matrix[:, list(self.columns)])
        slopes = getattr(self, "slopes", ())
        values = slope_values(matrix[:, list(slopes)]) if slopes else None
        design = _design(scores, codes, self.sizes, values)
        logits = design @ self.model.coef_[0] + float(self.model.intercept_[0])
        return 1.0 / (1.0 + np.exp(-logits))
