"""The weights of a customer's activity events in their active-hour estimate, learned from
the history (issue 13, docs/evaluation.md h95).

``cust_active_hour`` is a circular mean of the local hours of the customer's activity
events. An event minutes after a message was sent may echo the hour of the send rather
than the customer's own; how much each kind of event says is learned from the history:
events fall in cells (kind x hours since the latest send to the customer), and per cell
a customer's as-of circular mean of that cell's events is set against the click-through
of the customer's later messages, by the kernel closeness of each send's local hour to
that mean (a logistic regression on the one input). A cell weighs by its slope less one
standard error (0 below that), over the largest; with no positive slope every cell
weighs 1 (the equal weights).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LAG_EDGES = np.array([1.0, 3.0, 12.0])
"""Hours since the latest send: the cells 0-1 h, 1-3 h, 3-12 h and 12 h or more (or no
send before the event)."""
LEARN_SHARE = 0.5
"""The slopes are fitted on the messages of the history's earlier half (by send time), so
the latest period (a held-out test period) does not set the weights."""
MIN_MESSAGES = 200
"""A cell with fewer compared messages than this weighs 0."""
SPAN = np.int64(10**11)  # seconds: keys are customer * SPAN + epoch seconds


def event_cells(kind: np.ndarray, kinds: int, hours_since_send: np.ndarray) -> np.ndarray:
    """The cell of each event: its kind's code (0 .. kinds - 1) by its lag band."""
    lag = np.searchsorted(LAG_EDGES, np.nan_to_num(hours_since_send, nan=np.inf), side="right")
    assert kinds > 0
    return np.asarray(kind, dtype=np.int64) * (len(LAG_EDGES) + 1) + lag


def asof_circular(
    codes: np.ndarray,
    seconds: np.ndarray,
    hours: np.ndarray,
    query_codes: np.ndarray,
    query_seconds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per query, the circular mean of the hours (local, 0-24) of the events of its
    customer code strictly before its time, and how many events (NaN / 0: none)."""
    order = np.lexsort((seconds, codes))
    keys = codes[order] * SPAN + seconds[order]
    angle = 2 * np.pi * np.asarray(hours, dtype=float)[order] / 24.0
    terms = np.c_[np.cos(angle), np.sin(angle), np.ones(len(angle))]
    # running sums within each customer, so a customer's mean does not depend on the other
    # customers' events (the same bits on any part that holds whole customers)
    within = pd.DataFrame(terms).groupby(codes[order], sort=False).cumsum().to_numpy()
    cum = np.vstack([np.zeros((1, 3)), within])
    end = np.searchsorted(keys, query_codes * SPAN + query_seconds, side="left")
    start = np.searchsorted(keys, query_codes * SPAN, side="left")
    sums = np.where((end > start)[:, None], cum[end], 0.0)
    count = sums[:, 2]
    with np.errstate(invalid="ignore"):
        mean = np.mod(np.arctan2(sums[:, 1], sums[:, 0]), 2 * np.pi) / (2 * np.pi) * 24.0
    return np.where(count > 0, mean, np.nan), count


def click_slope(closeness: np.ndarray, clicked: np.ndarray) -> tuple[float, float]:
    """Log-odds slope of ``clicked`` on ``closeness`` and its standard error (Newton)."""
    x = np.c_[np.ones(len(closeness)), closeness]
    y = np.asarray(clicked, dtype=float)
    beta = np.array([np.log((y.mean() + 1e-3) / (1 - y.mean() + 1e-3)), 0.0])
    info = np.eye(2)
    for _ in range(25):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        info = x.T @ (x * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(info, x.T @ (y - p))
        beta = beta + step
        if np.abs(step).max() < 1e-8:
            break
    return float(beta[1]), float(np.sqrt(np.linalg.inv(info)[1, 1]))


def hour_closeness(hours: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """(1 + cos d)^2 / 4 of the distance d between two hours of the day (1 at 0 h, 0 at 12)."""
    return (1.0 + np.cos(2 * np.pi * (np.asarray(hours) - np.asarray(centre)) / 24.0)) ** 2 / 4


def learn_cutoff(seconds: np.ndarray) -> float:
    """The send time (epoch seconds) before which the slopes are fitted: the
    :data:`LEARN_SHARE` quantile of every send's time (0 without sends)."""
    return float(np.quantile(seconds, LEARN_SHARE)) if len(seconds) else 0.0


FIT_COLUMNS = ("cell", "closeness", "clicked")


def fit_rows(events: pd.DataFrame, sends: pd.DataFrame, cutoff: float, cells: int) -> pd.DataFrame:
    """The rows the cells' slopes are fitted on (:data:`FIT_COLUMNS`): per cell, each send
    before ``cutoff`` whose customer had an event of the cell before it, the closeness of
    its local hour to the as-of mean of those events, and whether it was clicked. Cell by
    cell, each in the order of ``sends``. Per customer, so a part holding whole customers
    gives its customers' rows exactly; the parts' rows concatenated in the order of their
    sends are the whole history's."""
    fit = sends[sends["seconds"].to_numpy() < cutoff]
    frames = []
    for cell in range(cells):
        one = events[events["cell"].to_numpy() == cell]
        centre, count = asof_circular(
            one["code"].to_numpy(),
            one["seconds"].to_numpy(),
            one["local_hour"].to_numpy(),
            fit["code"].to_numpy(),
            fit["seconds"].to_numpy(),
        )
        have = count > 0
        frames.append(
            pd.DataFrame(
                {
                    "cell": np.full(int(have.sum()), cell, dtype=np.int64),
                    "closeness": hour_closeness(fit["local_hour"].to_numpy()[have], centre[have]),
                    "clicked": fit["clicked"].to_numpy(dtype=bool)[have],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def weights_from_rows(rows: pd.DataFrame, cells: int) -> np.ndarray:
    """One weight per cell from the fit rows (:func:`fit_rows`, or several parts' rows
    concatenated): see the module."""
    score = np.zeros(cells)
    cell_of = rows["cell"].to_numpy()
    for cell in range(cells):
        have = cell_of == cell
        if have.sum() < MIN_MESSAGES:
            continue
        slope, se = click_slope(
            rows["closeness"].to_numpy()[have], rows["clicked"].to_numpy()[have]
        )
        score[cell] = max(slope - se, 0.0)
    if score.max() <= 0:
        return np.ones(cells)
    return score / score.max()


def learn_cell_weights(events: pd.DataFrame, sends: pd.DataFrame, cells: int) -> np.ndarray:
    """One weight per cell, from ``events`` (customer code, seconds, local_hour, cell)
    and ``sends`` (customer code, seconds, local_hour, clicked): see the module. The
    two steps a Dask cluster runs apart (``training/scale/active_hour.py``)."""
    cutoff = learn_cutoff(sends["seconds"].to_numpy())
    return weights_from_rows(fit_rows(events, sends, cutoff, cells), cells)
