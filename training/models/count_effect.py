"""The effect of one input as a learned log-odds slope, with the dunning timing held fixed.

Used for the count of messages sent before a retry (the retry model) and for the
closeness of a message's hour to the customer's active hour (the message model,
``active_hour_closeness``, whose trees followed it only part of the way: slope 0.9 with
the timing held fixed; docs/evaluation.md, "What the message model's trees under-fit").
The count's case:

The policy decides how many messages to send by what each one does to the rest of the
schedule (training/policy/message_pruning.py), so the retry model must say what one
more earlier message does to a retry at the *same* time. The history can hardly show
it to the trees: a team's message plan sends its messages at fixed offsets, so the count
before a retry rises with the retry's rank and its time since the failure, and boosting
credits the time inputs with what the messages did. In the ``fatigue`` world at 10,000
invoices every message keeps 80% of each later retry's chance; the retry model, asked
the same retry with one message fewer, changed by 0-5% (benchmarks/message_count_diagnosis.py),
and the pruning kept almost every message the greedy search proposed.

Here the count gets a log-odds slope estimated with the dunning timing held fixed: a
logistic regression of the outcome on the count and on one indicator per cell of
(rank, time since the failure, decline category), where the logged plans vary the
count independently of the retry's own timing. The slope, shrunk by its standard error
(``slope * z² / (prior + z²)``, ``train.model.count_effect_prior`` 1 by default, so a
slope the data cannot tell from zero is almost zero),
enters boosting as a fixed offset per row (LightGBM's ``init_score``): the trees fit the
rest, and can no longer hand the count's effect to the time inputs. The model's score
is the booster's log-odds plus the offset, before calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import minimize

TIME_BIN_HOURS = 12.0  # the cells' width in hours since the failure
RANK_CAP = 3  # ranks 3 and later share cells
COUNT_CAP = 3.0  # counts above this weigh as this (few rows; the slope is fitted on 0-3)


@dataclass(frozen=True)
class CountEffect:
    """Log-odds added per unit of ``column`` (its position in the model's matrix)."""

    column: str
    position: int
    per_unit: float  # the slope used (shrunk)
    estimate: float  # the regression's slope
    standard_error: float
    rows: int

    def offsets(self, values: np.ndarray) -> np.ndarray:
        """The log-odds offset of each row's count (a missing count adds nothing)."""
        counts = np.minimum(np.nan_to_num(np.asarray(values, dtype=float), nan=0.0), COUNT_CAP)
        return self.per_unit * counts

    def matrix_offsets(self, matrix: np.ndarray) -> np.ndarray:
        """:meth:`offsets` of the rows of an encoded matrix."""
        return self.offsets(matrix[:, self.position])

    def describe(self) -> dict[str, float | str]:
        return {
            "column": self.column,
            "per_unit": round(self.per_unit, 4),
            "estimate": round(self.estimate, 4),
            "standard_error": round(self.standard_error, 4),
            "rows": self.rows,
        }


def timing_cells(
    rows: pd.DataFrame, rank: str, category: str, held: tuple[str, ...] = ()
) -> np.ndarray:
    """Cell code per row: (rank capped, 12-hour bin of the time since the failure),
    then the decline category as a second set of indicators (codes offset past the first),
    then one set per ``held`` input (its value capped at :data:`COUNT_CAP`, a missing
    value a code of its own)."""
    ranks = np.minimum(np.nan_to_num(rows[rank].to_numpy(dtype=float), nan=0.0), RANK_CAP)
    hours = np.nan_to_num(rows["hours_since_failure"].to_numpy(dtype=float), nan=0.0)
    timing = pd.factorize(ranks * 10_000 + np.floor(np.maximum(hours, 0.0) / TIME_BIN_HOURS))[0]
    columns = [timing, pd.factorize(rows[category].astype(object).fillna("?"))[0]]
    for name in held:
        values = np.minimum(rows[name].to_numpy(dtype=float), COUNT_CAP)
        columns.append(pd.factorize(np.where(np.isnan(values), -1.0, values))[0])
    starts = np.cumsum([0, *(int(c.max()) + 1 for c in columns[:-1])])
    return np.column_stack([c + start for c, start in zip(columns, starts, strict=True)])


def _fit_slope(
    count: np.ndarray, label: np.ndarray, cells: np.ndarray, weight: np.ndarray | None = None
) -> tuple[float, float]:
    """Logistic regression of ``label`` on ``count`` and one indicator per cell code (every
    column of ``cells``), each row counting ``weight`` times (1 without): the count's slope
    and its standard error."""
    n = len(label)
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
    width = int(cells.max()) + 1
    rows = np.repeat(np.arange(n), cells.shape[1])
    indicators = sparse.csr_matrix((np.ones(rows.size), (rows, cells.ravel())), shape=(n, width))
    design = sparse.hstack([sparse.csr_matrix(count[:, None]), indicators], format="csr")
    ridge = 1e-3  # keeps cells with one outcome only finite

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        z = design @ beta
        value = np.sum(w * (np.logaddexp(0.0, z) - label * z)) + 0.5 * ridge * beta[1:] @ beta[1:]
        grad = design.T @ (w * (1.0 / (1.0 + np.exp(-z)) - label))
        grad[1:] += ridge * beta[1:]
        return float(value), np.asarray(grad)

    fitted = minimize(loss, np.zeros(width + 1), jac=True, method="L-BFGS-B")
    p = 1.0 / (1.0 + np.exp(-(design @ fitted.x)))
    hessian = (design.T @ design.multiply((w * p * (1 - p))[:, None])).toarray()
    hessian[1:, 1:] += ridge * np.eye(width)
    variance = np.linalg.pinv(hessian)[0, 0]
    return float(fitted.x[0]), float(np.sqrt(max(variance, 0.0)))


def count_cells(
    rows: pd.DataFrame,
    label: np.ndarray,
    column: str,
    rank: str,
    category: str = "inv_decline_category",
    held: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The regression's sufficient data: the rows and positives of each (count capped, rank
    capped, 12-hour bin since the failure, decline category, each ``held`` input capped),
    sorted by those keys. Rows
    with the same keys have the same design row, so the cells carry the rows' likelihood
    exactly in a few hundred lines for a count, whatever the number of rows (a continuous
    input such as the closeness to the active hour has a cell per distinct value, so up to
    one per row; a missing value is a key of its own, as the rows' fit gives it a cell of
    its own); summed over parts
    (:func:`add_cells`) they are the whole history's (the cluster fit,
    training/scale/fit.py, gathers them instead of the rows)."""
    inputs = {  # NaN kept
        name: np.minimum(rows[name].to_numpy(dtype=float), COUNT_CAP) for name in (column, *held)
    }
    return input_cells(rows, label, inputs, rank, category)


def input_cells(
    rows: pd.DataFrame,
    label: np.ndarray,
    inputs: dict[str, np.ndarray],
    rank: str,
    category: str = "inv_decline_category",
) -> pd.DataFrame:
    """The cells of ``inputs`` (name → each row's value, NaN kept) with the dunning timing
    held fixed (rank capped, 12-hour bin since the failure, decline category): the rows and
    positives of each, summed by :func:`add_cells` (shared by the count and calendar
    effects' fits on a cluster)."""
    hours = np.nan_to_num(rows["hours_since_failure"].to_numpy(dtype=float), nan=0.0)
    frame = pd.DataFrame(
        {
            **inputs,
            rank: np.minimum(np.nan_to_num(rows[rank].to_numpy(dtype=float), nan=0.0), RANK_CAP),
            "hours_since_failure": TIME_BIN_HOURS
            * np.floor(np.maximum(hours, 0.0) / TIME_BIN_HOURS),
            category: rows[category].astype(object).fillna("?").to_numpy(dtype=object),
            "rows": np.ones(len(rows), dtype=np.int64),
            "positives": np.asarray(label, dtype=np.int64),
        }
    )
    return add_cells([frame])


def add_cells(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The cells of several sets of rows (:func:`count_cells` of each) added up."""
    whole = pd.concat(parts, ignore_index=True)
    keys = [c for c in whole.columns if c not in ("rows", "positives")]
    return whole.groupby(keys, sort=True, dropna=False)[["rows", "positives"]].sum().reset_index()


def fit_count_effect(
    rows: pd.DataFrame,
    label: np.ndarray,
    column: str,
    features: list[str],
    rank: str,
    category: str = "inv_decline_category",
    weight: np.ndarray | None = None,
    held: tuple[str, ...] = (),
    prior: float = 1.0,
) -> CountEffect:
    """The slope of ``column`` in ``rows`` (training rows, their ``label``; each row
    counting ``weight`` times, 1 without) with the dunning timing (``rank``, hours since
    the failure), the decline category and each ``held`` input (capped, one indicator per
    value) held fixed, shrunk by its standard error.

    ``held``: other inputs the count is confounded with. The logged message plans differ
    in *what* they send as much as in how many: a plan that sends more messages early
    also sends more update requests, which fix cards and raise the later retries, so
    across plans the count's slope takes some of the update requests' effect (fatigue,
    20,000 invoices, the retries' true probabilities as labels: -0.155 with the timing
    held fixed, -0.179 with the update requests before the retry held fixed as well,
    where one message keeps 80% of a retry's chance, about -0.23; docs/evaluation.md).

    A missing value adds no offset (as 0), but the rows that miss it get a cell of their
    own in the regression: they are not rows at 0 (customers with no past activity have
    no active hour to be close to, and answer more often than those far from theirs;
    counted as 0, they flattened the closeness's slope on night_owls from 0.91 ± 0.14 to
    0.04 ± 0.10). Their level is the trees' to fit, from the inputs that are missing too.

    ``prior``: the shrinkage's (:func:`shrunk`)."""
    raw = rows[column].to_numpy(dtype=float)
    count = np.minimum(np.nan_to_num(raw, nan=0.0), COUNT_CAP)
    y = np.asarray(label, dtype=float)
    if len(y) == 0 or np.ptp(count) == 0 or np.ptp(y) == 0:
        estimate, error = 0.0, np.inf
    else:
        cells = timing_cells(rows, rank, category, held)
        missing = np.isnan(raw)
        if missing.any():
            cells = np.column_stack([cells, missing.astype(np.int64) + cells.max() + 1])
        estimate, error = _fit_slope(count, y, cells, weight)
    z2 = (estimate / error) ** 2 if np.isfinite(error) and error > 0 else 0.0
    return CountEffect(
        column=column,
        position=features.index(column),
        per_unit=shrunk(estimate, z2, prior),
        estimate=estimate,
        standard_error=error,
        rows=len(y) if weight is None else int(np.sum(weight)),
    )


def shrunk(estimate: float, z2: float, prior: float) -> float:
    """``estimate * z² / (prior + z²)`` (z: the estimate over its standard error): with
    ``prior`` 1 a slope one standard error from zero is halved, one the data cannot tell
    from zero is almost zero; with 0 the estimate as it is (0 when it has no error)."""
    if prior == 0.0:
        return estimate if z2 > 0 else 0.0
    return estimate * z2 / (prior + z2)


def fit_cells(
    cells: pd.DataFrame,
    column: str,
    features: list[str],
    rank: str,
    category: str = "inv_decline_category",
    held: tuple[str, ...] = (),
    prior: float = 1.0,
) -> CountEffect:
    """:func:`fit_count_effect` from the rows' :func:`count_cells` (the same likelihood):
    each cell enters as one line of its positives and one of its negatives, weighted by
    their numbers. The slope equals the rows' fit up to the solver's tolerance (L-BFGS-B
    stops at its default ``ftol``; the cells' sums round differently)."""
    lines, y, weight = cell_lines(cells)
    return fit_count_effect(lines, y, column, features, rank, category, weight, held, prior)


def cell_lines(cells: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The cells as weighted lines: one of each cell's positives (label 1) and one of its
    negatives (label 0), weighted by their numbers, empty lines dropped (the rows'
    likelihood, for a weighted fit)."""
    positives = cells["positives"].to_numpy(dtype=float)
    negatives = cells["rows"].to_numpy(dtype=float) - positives
    lines = pd.concat([cells, cells], ignore_index=True)
    y = np.concatenate([np.ones(len(cells)), np.zeros(len(cells))])
    weight = np.concatenate([positives, negatives])
    kept = weight > 0
    return lines[kept].reset_index(drop=True), y[kept], weight[kept]
