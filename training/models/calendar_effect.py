"""Log-odds offsets per value of a calendar input, fitted with the dunning timing held fixed.

Measured on held-out logged retries (benchmarks/retry_calendar_diagnosis.py, 10,000
invoices of ``default``, ``paydays`` and ``young_merchant``; docs/evaluation.md, "What the
retry model's trees under-fit on the calendar"): along the customer's own payday
estimate the retry model follows the outcome as the truth does, but along the *local
weekday* it stays almost flat where the outcome does not. Insufficient-funds retries on
one weekday succeed 1.5-1.9 times as often as on the others (by the worlds' truth and by
the observed rates); the model says 1.05-1.2 times. A weekday is one value among seven,
which a tree isolates only with two splits of the numeric input, and boosting with early
stopping rarely spends them; the customer's pay-weekday estimate does not carry it
either (its circular mean is dominated by the invoices' due dates, which clear whatever
the weekday).

Here each listed input (an integer-valued calendar input of the model: the local
weekday) gets one log-odds coefficient per value, pooled, plus one per (group, value),
the group a decline *family* (``train.model.calendar_effect_groups: family``, the
categories of ``DECLINE_FAMILIES`` sharing one: some 7 x 7 coefficients instead of
7 x 59, most categories too rare for their own) or each decline category: a logistic
regression of the outcome on those indicators and on the
timing cells of :mod:`training.models.count_effect` (rank, 12-hour bin since the
failure, decline category), shrunk by L2 penalties chosen from the rows
(``train.model.calendar_effect_penalty: null``; a number fixes one for all, 10 before
h71): one per block (an input's pooled offsets, its offsets of each group), by the
evidence (:func:`_evidence_penalties`), so a block whose values differ no more than
their noise is taken to ~0 (a group with few rows keeps the pooled effect, a world
without a weekday pattern gets offsets near 0) and one whose values differ far beyond
it keeps most of them. The table (per category, centred over the values as the
training rows meet them) enters boosting as a fixed offset per row (LightGBM's
``init_score``) beside the count effect's, and is added to the booster's log-odds when
scoring (the trees keep the input and fit the rest). Nothing names a weekday: which one
matters, and how much, is learned.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import minimize

from training.declines.table import family_of
from training.models.count_effect import (
    cell_lines,
    input_cells,
    timing_cells,
)

PENALTY_RANGE = (0.1, 1e4)
"""The bounds of a chosen L2 penalty: a prior spread of the offsets of at most ~3
log-odds (1/sqrt(0.1)), at least 0.01 (offsets that small are nothing)."""
EVIDENCE_STEPS = 30  # fixed-point updates of the penalties at most (most fits: < 10)
CELL_PENALTY = 1e-3  # keeps the timing cells with one outcome only finite


class CalendarSpec(NamedTuple):
    """What ``train.model`` asks of one model's calendar offsets."""

    columns: list[str]  # the calendar inputs
    rank: str  # the rank column (of the timing cells)
    groups: str  # family or category
    penalty: float | None  # the L2 penalty, or None: chosen by the evidence
    pooled_only: tuple[str, ...] = ()  # inputs with pooled offsets only, no group's
    shared_penalty: bool = False  # chosen: one penalty for all groups' offsets of an input
    input_penalty: Mapping[str, float | None] = {}  # an input's own ``penalty``


MAX_LEVELS = 32  # values 0 .. 31 (a weekday, a day of the month); others add nothing
CATEGORY = "inv_decline_category"


@dataclass(frozen=True)
class CalendarEffect:
    """Log-odds offset per (decline category code, value of ``column``); the last row of
    ``table`` is for a category unseen in training (the pooled effect)."""

    column: str
    position: int  # the input's position in the model's matrix
    category_position: int  # the decline category's
    table: np.ndarray  # (categories + 1, values)
    rows: int
    # the L2 penalty of the pooled offsets and of each group's (chosen or fixed)
    penalties: dict[str, float] = field(default_factory=dict)

    def offsets(self, values: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The offset of each row from its value and its category code (NaN: unseen);
        a missing or unknown value adds nothing."""
        v = np.asarray(values, dtype=float)
        c = np.asarray(codes, dtype=float)
        categories, levels = self.table.shape
        # (NaN fails both comparisons and an infinity one: no np.isfinite needed)
        known = (v >= 0) & (v < levels)
        at = np.where(known, v, 0.0).astype(np.intp)
        seen = (c >= 0) & (c < categories - 1)
        row = np.where(seen, c, categories - 1).astype(np.intp)
        return np.where(known, self.table[row, at], 0.0)

    def matrix_offsets(self, matrix: np.ndarray) -> np.ndarray:
        """:meth:`offsets` of the rows of an encoded matrix."""
        return self.offsets(matrix[:, self.position], matrix[:, self.category_position])

    def describe(self) -> dict[str, object]:
        pooled = self.table[-1]
        return {
            "column": self.column,
            "pooled": [round(float(x), 3) for x in pooled],
            "range_by_category": round(float(np.ptp(self.table, axis=1).max()), 3),
            "rows": self.rows,
            "penalties": {
                name: round(value, 2)
                for name, value in getattr(self, "penalties", {}).items()  # older artifacts
            },
        }


def total_offsets(effects: tuple[CalendarEffect, ...], matrix: np.ndarray) -> np.ndarray:
    """The summed offsets of ``effects`` for the rows of an encoded matrix (one effect's
    as they are: 0.0 + x is x but for x = -0.0, which moves no log-odds)."""
    out = effects[0].matrix_offsets(matrix) if effects else np.zeros(len(matrix))
    for effect in effects[1:]:
        out += effect.matrix_offsets(matrix)
    return out


def _category_codes(frame: pd.DataFrame, categories: list[str]) -> np.ndarray:
    """The decline category's code per row in the training order (NaN: unseen)."""
    codes = pd.Categorical(frame[CATEGORY].astype(object), categories=categories).codes
    return np.where(codes < 0, np.nan, codes).astype(float)


def category_groups(categories: list[str], groups: str) -> np.ndarray:
    """The group index of each category of ``categories`` (their decline family's with
    ``groups == "family"``, else their own), then one for an unseen category."""
    if groups == "category":
        return np.arange(len(categories) + 1)
    if groups != "family":
        raise ValueError(f"train.model.calendar_effect_groups: {groups!r} (family or category)")
    family = family_of(pd.Series(categories, dtype=object)).to_numpy(dtype=object)
    names = sorted(set(family.tolist()))
    index = np.array([names.index(f) for f in family], dtype=np.int64)
    return np.append(index, len(names))


def _levels(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    known = np.isfinite(values) & (values >= 0) & (values < MAX_LEVELS)
    return known, np.where(known, values, 0.0).astype(np.int64)


def fit_calendar_effects(
    rows: pd.DataFrame,
    label: np.ndarray,
    columns: list[str],
    features: list[str],
    categories: list[str],
    rank: str,
    groups: str = "family",
    weight: np.ndarray | None = None,
    ridge: float | None = None,
    pooled_only: Collection[str] = (),
    shared_penalty: bool = False,
    input_ridge: Mapping[str, float | None] | None = None,
) -> tuple[CalendarEffect, ...]:
    """One :class:`CalendarEffect` per input of ``columns`` of the training ``rows`` (their
    ``label``; each row counting ``weight`` times, 1 without), fitted jointly with the
    timing cells held fixed; ``categories``: the decline categories in the model's
    training order; ``groups``: ``family`` (one coefficient per decline family and value
    beside the pooled one) or ``category``; ``ridge``: one L2 penalty on every offset,
    or None: each block's (an input's pooled offsets, its offsets of one group) chosen
    by the evidence (:func:`_evidence_penalties`); ``input_ridge``: an input's own
    ``ridge``; ``pooled_only``: inputs with pooled offsets only (no group's: e.g. 31
    days of the month x 7 families are many coefficients); ``shared_penalty``: the
    groups' offsets of an input one block, so the evidence judges their deviations from
    the pool together (a weak pattern of one group is shrunk as much as the others',
    not to ~0 alone)."""
    y = np.asarray(label, dtype=float)
    n, k = len(y), len(categories) + 1
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    codes = _category_codes(rows, categories)
    code = np.where(np.isnan(codes), k - 1, codes).astype(np.int64)
    group_of = category_groups(categories, groups)
    g = int(group_of[-1]) + 1  # the groups, the last an unseen category's
    group = group_of[code]
    blocks: list[sparse.csr_matrix] = []
    block_of: list[np.ndarray] = []  # each effect coefficient's penalty block
    starts: list[float] = []  # each block's penalty (its start if chosen)
    chosen: list[bool] = []  # whether the evidence chooses it
    spans: list[tuple[int, int, list[int]]] = []  # start, values, the group blocks' ids
    width = 0
    for column in columns:
        known, level = _levels(rows[column].to_numpy(dtype=float))
        levels = int(level[known].max()) + 1 if known.any() else 1
        r = np.flatnonzero(known)
        own = ridge if input_ridge is None else input_ridge.get(column, ridge)
        blocks.append(sparse.csr_matrix((np.ones(r.size), (r, level[r])), shape=(n, levels)))
        # ids: the pooled block, then each group's (one if shared), then the unseen
        # category's group (no rows: it keeps its start)
        ids = [len(starts)]
        kinds = [own is None]
        if column not in pooled_only:
            paired = sparse.csr_matrix(
                (np.ones(r.size), (r, group[r] * levels + level[r])), shape=(n, g * levels)
            )
            blocks.append(paired)
            per_group = np.zeros(g - 1, dtype=np.int64) if shared_penalty else np.arange(g - 1)
            ids += (ids[0] + 1 + per_group).tolist()
            ids.append(ids[0] + 2 + int(per_group.max(initial=-1)))
            kinds += [own is None] * (int(per_group.max(initial=-1)) + 1) + [False]
        count = max(ids) - ids[0] + 1
        starts += [10.0 if own is None else float(own)] * count
        chosen += kinds
        spans.append((width, levels, ids[1:]))
        block_of.append(np.repeat(np.array(ids), levels))
        width += levels * len(ids)
    cells = timing_cells(rows, rank, CATEGORY)
    cell_width = int(cells.max()) + 1
    rr = np.repeat(np.arange(n), cells.shape[1])
    blocks.append(sparse.csr_matrix((np.ones(rr.size), (rr, cells.ravel())), shape=(n, cell_width)))
    design = sparse.hstack(blocks, format="csr")
    block = np.concatenate(block_of) if block_of else np.zeros(0, dtype=np.int64)
    lam = np.array(starts)
    free = np.array(chosen, dtype=bool)
    fitted = n > 0 and np.ptp(y) > 0
    if fitted and free.any():
        lam = _evidence_penalties(design, y, w, block, lam, free)
    penalty = np.concatenate([lam[block], np.full(cell_width, CELL_PENALTY)])
    beta = _fit(design, y, w, penalty, np.zeros(design.shape[1])) if fitted else None
    if beta is None:
        beta = np.zeros(design.shape[1])
    names = ["pooled", *group_names(categories, groups)]
    effects: list[CalendarEffect] = []
    for column, (start, levels, ids) in zip(columns, spans, strict=True):
        table = np.repeat(beta[start : start + levels][None, :], k, axis=0)
        if ids:  # the groups' offsets, the unseen category's left at the pooled effect
            paired = beta[start + levels : start + levels * (1 + len(ids))].reshape(g, levels)
            paired[g - 1] = 0.0
            table = table + paired[group_of]
        known, level = _levels(rows[column].to_numpy(dtype=float))
        counts = np.zeros((k, levels))
        np.add.at(counts, (code[known], level[known]), w[known])
        counts[k - 1] = counts.sum(axis=0)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
        table = table - (table * share).sum(axis=1, keepdims=True)  # centred per category
        pooled_id = int(block_of[len(effects)][0])
        named = zip(names, (pooled_id, *ids[:-1]), strict=False)
        effects.append(
            CalendarEffect(
                column=column,
                position=features.index(column),
                category_position=features.index(CATEGORY),
                table=table,
                rows=int(round(w.sum())),
                penalties={name: float(lam[i]) for name, i in named},
            )
        )
    return tuple(effects)


def group_names(categories: list[str], groups: str) -> list[str]:
    """The names of the groups of :func:`category_groups` (without the unseen one)."""
    if groups == "category":
        return list(categories)
    return sorted(set(family_of(pd.Series(categories, dtype=object)).tolist()))


def _fit(
    design: sparse.csr_matrix, y: np.ndarray, w: np.ndarray, penalty: np.ndarray, start: np.ndarray
) -> np.ndarray:
    """The penalised logistic regression's coefficients (L-BFGS-B from ``start``)."""

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        z = design @ beta
        value = np.sum(w * (np.logaddexp(0.0, z) - y * z)) + 0.5 * beta @ (penalty * beta)
        grad = design.T @ (w * (1.0 / (1.0 + np.exp(-z)) - y)) + penalty * beta
        return float(value), np.asarray(grad)

    return np.asarray(minimize(loss, start, jac=True, method="L-BFGS-B").x)


def _evidence_penalties(
    design: sparse.csr_matrix,
    y: np.ndarray,
    w: np.ndarray,
    block: np.ndarray,
    start: np.ndarray,
    free: np.ndarray,
) -> np.ndarray:
    """Each block's L2 penalty chosen by the evidence (type-II maximum likelihood, the
    Laplace approximation; MacKay's fixed point): a block's offsets are taken as drawn
    from N(0, 1/λ), and λ = γ / Σβ², γ = Σ(1 − λ·Σⱼⱼ) the number of its offsets the data
    determine (Σ the posterior covariance). A block whose values differ by no more than
    their standard errors gets a penalty that takes its offsets to ~0; one whose values
    differ far beyond keeps most of them. A block not ``free`` (an unseen category's
    group, no rows; an input with a fixed penalty) keeps its start."""
    lam = start.copy()
    cells = design.shape[1] - block.size
    beta = np.zeros(design.shape[1])
    low, high = PENALTY_RANGE
    for _ in range(EVIDENCE_STEPS):
        penalty = np.concatenate([lam[block], np.full(cells, CELL_PENALTY)])
        beta = _fit(design, y, w, penalty, beta)
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        hessian = (design.T @ design.multiply((w * p * (1.0 - p))[:, None])).toarray()
        covariance = np.diag(np.linalg.inv(hessian + np.diag(penalty)))[: block.size]
        gamma = np.bincount(block, 1.0 - lam[block] * covariance, minlength=lam.size)
        squares = np.bincount(block, beta[: block.size] ** 2, minlength=lam.size)
        update = np.clip(np.maximum(gamma, 0.0) / np.maximum(squares, 1e-12), low, high)
        update = np.where(free, update, lam)
        moved = np.abs(np.log(update / lam)).max()
        lam = update
        if moved < 0.01:
            break
    return lam


def calendar_cells(
    rows: pd.DataFrame, label: np.ndarray, columns: list[str], rank: str
) -> pd.DataFrame:
    """The regression's sufficient data: the rows and positives of each (value of each
    of ``columns``, rank capped, 12-hour bin since the failure, decline category), as
    :func:`training.models.count_effect.count_cells` for a count: rows with the same keys
    have the same design row, so summed over parts (``add_cells``) the cells carry the
    whole history's likelihood (the cluster fit, training/scale/fit.py)."""
    inputs = {c: rows[c].to_numpy(dtype=float) for c in columns}  # NaN kept
    return input_cells(rows, label, inputs, rank, CATEGORY)


def fit_calendar_cells(
    cells: pd.DataFrame,
    columns: list[str],
    features: list[str],
    categories: list[str],
    rank: str,
    groups: str = "family",
    ridge: float | None = None,
    pooled_only: Collection[str] = (),
    shared_penalty: bool = False,
    input_ridge: Mapping[str, float | None] | None = None,
) -> tuple[CalendarEffect, ...]:
    """:func:`fit_calendar_effects` from the rows' :func:`calendar_cells` (the same
    likelihood): each cell one line of its positives and one of its negatives, weighted
    by their numbers (equal to the rows' fit up to the solver's tolerance)."""
    lines, y, weight = cell_lines(cells)
    return fit_calendar_effects(
        lines, y, columns, features, categories, rank, groups, weight, ridge,
        pooled_only, shared_penalty, input_ridge,
    )  # fmt: skip


def frame_offsets(
    effects: tuple[CalendarEffect, ...], rows: pd.DataFrame, categories: list[str]
) -> np.ndarray:
    """The summed offsets of ``effects`` for the rows of a frame (their decline category
    by name, ``categories`` the model's)."""
    codes = _category_codes(rows, categories)
    out = np.zeros(len(rows))
    for effect in effects:
        out += effect.offsets(rows[effect.column].to_numpy(dtype=float), codes)
    return out
