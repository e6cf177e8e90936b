"""The calendar contrast of a schedule's rows, and schedule values with it steepened.

A row's *calendar contrast* is the models' log-odds of it minus the mean log-odds of the
same row moved in time, its dunning state (hours since the failure, the attempts and
messages before it) unchanged, so that only its calendar inputs move: a retry by each of a
few whole days either way (its date: day of month, weekday, distance to the customer's
payday), a message by a few hours either way (its local hour). It says how much better
than its neighbouring times the models rate the time the search chose. The train stage
measures on the team's logged rows how much more steeply the outcome moves with that
contrast than the models say (training/artifact/calendar_contrast.py, ``c`` per model);
the reported probability of a decision then scores each row of the chosen and of the
fixed schedule as ``sigmoid(logit p + c * contrast)`` (``ModelDecider.steepened_values``),
from the rows and probabilities the schedules' scoring laid out (no second layout, ``p``
not scored again): only the moved rows are scored, in one call. The search never sees it.

A row's contrast has two parts, one per kind of move: against its whole-day moves (its
date) and against its other moves (its hour), each with its own slope. Where the day of
month carries the calendar (paydays) an hour's move of the same date would dilute the
date's contrast; where declines clear within hours the hour is what matters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from training.core.localtime import HOUR_NS, NAT
from training.core.probability import logit
from training.declines.table import DECLINE_FAMILIES
from training.models.matrix import EventMatrix, as_event_matrix
from training.policy.moved_rows import can_copy_rows, moved_probabilities
from training.policy.scorer import ModelScorer

DAY_NS = 24 * HOUR_NS


def shifts(days: int | Sequence[int]) -> np.ndarray:
    """Calendar shifts (ns) of whole days, each both ways: 1..``days`` when an int (an
    artifact saved before the days were listed), else the days listed."""
    listed = np.arange(1, days + 1) if isinstance(days, int) else np.asarray(days, dtype=np.int64)
    whole = np.concatenate([-listed[::-1], listed])
    return whole.astype(np.int64) * DAY_NS


def hour_shifts(hours: Sequence[float]) -> np.ndarray:
    """Shifts (ns) of the given hours, each both ways."""
    ns = np.round(np.asarray(hours, dtype=float) * HOUR_NS).astype(np.int64)
    return np.concatenate([-ns[::-1], ns])


def kind_shifts(
    days: int | Sequence[int],
    message_hours: Sequence[float],
    retry_hours: Sequence[float] = (),
) -> dict[str, np.ndarray]:
    """The shifts a row's contrast averages over, by kind: a retry's date (the day the
    retry search weighs it against) and, when ``retry_hours`` are given, its hour (the
    search's hourly choice); a message's hour (the message search's choice). A retry
    without whole-day moves has none (no contrast fitted)."""
    retry = shifts(days)
    if len(retry) and len(retry_hours):
        retry = np.concatenate([retry, hour_shifts(retry_hours)])
    return {"retry": retry, "message": hour_shifts(message_hours)}


def date_moves(shift: np.ndarray) -> np.ndarray:
    """Which moves are by whole days (a row's date; the others move its hour)."""
    return np.asarray(shift) % DAY_NS == 0


def contrast_parts(own: np.ndarray, moved: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(rows, 2): the log-odds ``own`` minus the mean of the ``moved`` log-odds (moves x
    rows) over the whole-day moves (column 0) and over the other moves (column 1); 0
    where a row has no move of that kind."""
    parts = np.zeros((len(own), 2))
    by_day = date_moves(shift)
    for column, chosen in enumerate((by_day, ~by_day)):
        if chosen.any():
            parts[:, column] = own - moved[chosen].mean(axis=0)
    return parts


def row_contrasts(
    scorer: ModelScorer,
    features: pd.DataFrame | EventMatrix,
    event_ids: np.ndarray,
    ns: np.ndarray,
    kind: np.ndarray,
    template: np.ndarray,
    channel: np.ndarray,
    state: Mapping[str, np.ndarray],
    moves: Mapping[str, np.ndarray],
    p: np.ndarray,
) -> np.ndarray:
    """The rows' contrasts (rows, 2): log-odds of their probabilities ``p`` (already
    scored) minus the mean log-odds of the row moved by its kind's ``moves`` (ns) by whole
    days (column 0) and by the others (column 1; :func:`contrast_parts`; a kind without
    moves has contrast 0). Every moved row is scored in one call (one model call per
    model), the retries' first."""
    contrast = np.zeros((len(ns), 2))
    taken = []
    for name in ("retry", "message"):
        shift = moves.get(name, np.zeros(0, dtype=np.int64))
        rows = np.flatnonzero(kind == name)
        if len(rows) and len(shift):
            taken.append((rows, shift))
    if not taken:
        return contrast
    moved = _copied_rows(scorer, features, event_ids, ns, kind, template, channel, state, taken)
    if moved is None:
        moved = _moved_rows(scorer, features, event_ids, ns, kind, template, channel, state, taken)
    start = 0
    for rows, shift in taken:
        size = len(rows) * len(shift)
        own = logit(p[rows])
        copies = logit(moved[start : start + size]).reshape(len(shift), len(rows))
        contrast[rows] = contrast_parts(own, copies, shift)
        start += size
    return contrast


def _copied_rows(
    scorer: ModelScorer,
    features: pd.DataFrame | EventMatrix,
    event_ids: np.ndarray,
    ns: np.ndarray,
    kind: np.ndarray,
    template: np.ndarray,
    channel: np.ndarray,
    state: Mapping[str, np.ndarray],
    taken: list[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray | None:
    """The moved rows' probabilities (each kind's rows moved by each of its shifts, as
    :func:`_moved_rows` orders them) from one matrix of each kind's rows copied per move
    (policy/moved_rows.py); None where that does not apply."""
    if not isinstance(scorer, ModelScorer) or (ns == NAT).any():
        return None
    matrix = as_event_matrix(features)
    models = [getattr(scorer.models, str(kind[rows[0]])) for rows, _ in taken]
    if not all(can_copy_rows(scorer, matrix, model) for model in models):
        return None
    parts = []
    for (rows, shift), model in zip(taken, models, strict=True):
        columns = {name: values[rows] for name, values in state.items()}
        columns.update(template=template[rows], channel=channel[rows])
        parts.append(
            moved_probabilities(scorer, model, matrix, event_ids[rows], ns[rows], columns, shift)
        )
    return np.concatenate(parts)


def _moved_rows(
    scorer: ModelScorer,
    features: pd.DataFrame | EventMatrix,
    event_ids: np.ndarray,
    ns: np.ndarray,
    kind: np.ndarray,
    template: np.ndarray,
    channel: np.ndarray,
    state: Mapping[str, np.ndarray],
    taken: list[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """The moved rows' probabilities through :meth:`ModelScorer.row_probabilities`, in
    one call: each kind's rows moved by its first shift, then its second, ..."""
    at = np.concatenate([np.tile(rows, len(shift)) for rows, shift in taken])
    moved_ns = np.concatenate(
        [(ns[rows][None, :] + shift[:, None]).ravel() for rows, shift in taken]
    )
    return scorer.row_probabilities(
        features,
        event_ids[at],
        moved_ns,
        kind[at],
        template[at],
        channel[at],
        {column: values[at] for column, values in state.items()},
    )


def category_slopes(by_family: Mapping[str, Slope]) -> dict[str, Slope]:
    """A slope per decline family as one per decline category of the family."""
    return {
        category: c
        for family, c in by_family.items()
        for category in DECLINE_FAMILIES.get(family, ())
    }


Slope = float | Sequence[float]


def category_levels(by_family: Mapping[str, float]) -> dict[str, float]:
    """A level per decline family as one per decline category of the family."""
    return {
        category: float(level)
        for family, level in by_family.items()
        for category in DECLINE_FAMILIES.get(family, ())
    }


def slope_pair(slope: Slope) -> tuple[float, float]:
    """A slope as (date, hour): one number is the same slope for both parts."""
    if isinstance(slope, int | float):
        return float(slope), float(slope)
    date, hour = slope
    return float(date), float(hour)


def measured_slopes(
    contrast: Mapping[str, Any], moves: Mapping[str, np.ndarray]
) -> tuple[dict[str, Slope], dict[str, dict[str, Slope]]]:
    """The slopes per kind and per kind and decline category from an artifact's
    ``calendar_contrast`` metadata (training/artifact/calendar_contrast.py). A retry's
    are (date, hour); an artifact saved before the retry had an hour slope
    (``retry_hour`` missing) fitted one slope on the mean over all its moves, which is
    the date and hour parts weighted by their shares of the moves."""
    retry = moves.get("retry", np.zeros(0, dtype=np.int64))
    if "retry_hour" in contrast or not len(retry):
        hours = {"retry": float(contrast.get("retry_hour", 0.0))}
        by_hour = dict(contrast.get("retry_hour_by_family", {}))

        def pair(c: float, family: str | None = None) -> tuple[float, float]:
            hour = hours["retry"] if family is None else by_hour.get(family, hours["retry"])
            return float(c), float(hour)

    else:
        share = float(date_moves(retry).mean())

        def pair(c: float, family: str | None = None) -> tuple[float, float]:
            return float(c) * share, float(c) * (1.0 - share)

    slopes: dict[str, Slope] = {
        "retry": pair(contrast.get("retry", 0.0)),
        "message": float(contrast.get("message", 0.0)),
    }
    by_family: dict[str, dict[str, Slope]] = {
        "retry": {f: pair(c, f) for f, c in contrast.get("retry_by_family", {}).items()},
        "message": dict(contrast.get("message_by_family", {})),
    }
    return slopes, {name: category_slopes(table) for name, table in by_family.items()}


def steepened(
    p: np.ndarray,
    contrast: np.ndarray,
    kind: np.ndarray,
    slopes: Mapping[str, Slope],
    category: np.ndarray | None = None,
    by_category: Mapping[str, Mapping[str, Slope]] | None = None,
) -> np.ndarray:
    """``sigmoid(logit p + c_date * contrast_date + c_hour * contrast_hour)`` with each
    row's kind's slopes (0 when absent; ``contrast``: rows x 2, :func:`row_contrasts`), or
    its decline category's ``by_category[kind][category]`` where given (``category``:
    each row's)."""
    slope = np.zeros((len(p), 2))
    for name, c in slopes.items():
        slope[kind == name] = slope_pair(c)
    if category is not None and by_category and any(by_category.values()):
        labels, code = category_labels(category)
        for name, table in by_category.items():
            rows = kind == name
            if table and rows.any():
                given = np.array([label in table for label in labels])
                value = np.array([slope_pair(table.get(label, 0.0)) for label in labels])
                slope = np.where((rows & given[code])[:, None], value[code], slope)
    shift = (slope * contrast).sum(axis=1)
    return 1.0 / (1.0 + np.exp(-(logit(p) + shift)))


ONE_CATEGORY_ROWS = 256
"""Most rows :func:`category_labels` checks for one category before sorting them."""


def category_labels(category: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(category.astype(str), return_inverse=True)``; a few rows of one
    category (a lone request's few dozen) without the conversion and sort, as the same
    labels and codes (a batch's rows are not compared: ~0.1 % of its instructions)."""
    if 0 < len(category) <= ONE_CATEGORY_ROWS:
        first = category[0]
        if type(first) is str and (category == first).all():
            return np.array([first]), np.zeros(len(category), dtype=np.intp)
    return np.unique(category.astype(str), return_inverse=True)


def leveled(
    q: np.ndarray,
    kind: np.ndarray,
    category: np.ndarray,
    levels: Mapping[str, Mapping[str, float]],
    rows: np.ndarray,
) -> np.ndarray:
    """``q`` with ``levels[kind][category]`` added to the log-odds of the chosen ``rows``
    (a mask; each row's kind and decline category; 0 where none is given:
    training/artifact/chosen_level.py)."""
    shift = np.zeros(len(q))
    if any(levels.values()):
        labels, code = category_labels(category)
        for name, table in levels.items():
            if table:
                value = np.array([table.get(label, 0.0) for label in labels])
                shift = np.where(kind == name, value[code], shift)
    shift = np.where(rows, shift, 0.0)
    if not shift.any():
        return q
    return 1.0 / (1.0 + np.exp(-(logit(q) + shift)))


def scored_with_contrast(
    scorer: ModelScorer,
    features: pd.DataFrame | EventMatrix,
    event_ids: np.ndarray,
    ns: np.ndarray,
    kind: np.ndarray,
    template: np.ndarray,
    channel: np.ndarray,
    state: Mapping[str, np.ndarray],
    moves: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """The rows' probabilities and contrasts (:func:`row_contrasts`) from one call: each
    kind's rows followed by their moved copies, the retries' first. For a few rows (a lone
    request's), where a model call's fixed cost outweighs its rows; the rows' own
    probabilities are the same as scored alone (each row is scored on its own). Rows laid
    out retries first (a whole schedule's scoring) take :func:`_contiguous_scored`."""
    args = (scorer, features, event_ids, ns, kind, template, channel, state, moves)
    scored = _contiguous_scored(*args)
    return scored if scored is not None else _general_scored(*args)


def _general_scored(
    scorer: ModelScorer,
    features: pd.DataFrame | EventMatrix,
    event_ids: np.ndarray,
    ns: np.ndarray,
    kind: np.ndarray,
    template: np.ndarray,
    channel: np.ndarray,
    state: Mapping[str, np.ndarray],
    moves: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`scored_with_contrast` of rows of any kinds in any order, on arrays."""
    blocks = []
    for name in ("retry", "message"):
        rows = np.flatnonzero(kind == name)
        shift = moves.get(name, np.zeros(0, dtype=np.int64))
        blocks.append((rows, shift if len(rows) else shift[:0]))
    at = np.concatenate([np.concatenate([rows, np.tile(rows, len(s))]) for rows, s in blocks])
    moved_ns = np.concatenate(
        [np.concatenate([ns[rows], (ns[rows][None, :] + s[:, None]).ravel()]) for rows, s in blocks]
    )
    scored = scorer.row_probabilities(
        features,
        event_ids[at],
        moved_ns,
        kind[at],
        template[at],
        channel[at],
        {column: values[at] for column, values in state.items()},
    )
    p, contrast = np.zeros(len(ns)), np.zeros((len(ns), 2))
    start = 0
    for rows, shift in blocks:
        n, k = len(rows), len(shift)
        p[rows] = scored[start : start + n]
        if k:
            moved = logit(scored[start + n : start + n + n * k]).reshape(k, n)
            contrast[rows] = contrast_parts(logit(p[rows]), moved, shift)
        start += n + n * k
    return p, contrast


def _contiguous_scored(
    scorer: ModelScorer,
    features: pd.DataFrame | EventMatrix,
    event_ids: np.ndarray,
    ns: np.ndarray,
    kind: np.ndarray,
    template: np.ndarray,
    channel: np.ndarray,
    state: Mapping[str, np.ndarray],
    moves: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`_general_scored` of rows laid out as a whole schedule's scoring lays them
    out (every retry, then every message: a lone request's few dozen), the same values:
    the rows to score and their moved instants built on Python lists, each row's contrast
    (the mean of its moved copies' log-odds, summed in the moves' order as numpy's mean
    over them) on Python floats; the log-odds stay numpy's (``logit`` of the same
    arrays). None (the general path) for rows of other kinds or order, or instants not
    int64 or moved past int64's range (where numpy's sums would wrap)."""
    n = len(kind)
    kinds = kind.tolist()
    r = kinds.count("retry")
    if n == 0 or ns.dtype != np.int64 or kinds[:r].count("retry") != r:
        return None
    if kinds.count("message") != n - r:
        return None
    empty: list[int] = []
    shift_r = moves["retry"].tolist() if r and "retry" in moves else empty
    shift_m = moves["message"].tolist() if r < n and "message" in moves else empty
    times = ns.tolist()
    retry_ns, message_ns = times[:r], times[r:]
    rows = list(range(r)) * (1 + len(shift_r)) + list(range(r, n)) * (1 + len(shift_m))
    moved = [
        *retry_ns,
        *(t + s for s in shift_r for t in retry_ns),
        *message_ns,
        *(t + s for s in shift_m for t in message_ns),
    ]
    try:
        moved_ns = np.array(moved, dtype=np.int64)
    except OverflowError:
        return None
    at = np.array(rows, dtype=np.intp)
    scored = scorer.row_probabilities(
        features,
        event_ids[at],
        moved_ns,
        kind[at],
        template[at],
        channel[at],
        {column: values[at] for column, values in state.items()},
    )
    m = n - r
    start_m = r + r * len(shift_r)  # the messages' own rows in ``scored``
    if shift_r:
        p = np.concatenate([scored[:r], scored[start_m : start_m + m]])
    else:
        p = scored[:n].copy()
    pairs = [[0.0, 0.0] for _ in range(n)]
    for first, size, shift in ((0, r, shift_r), (start_m, m, shift_m)):
        if size and shift:
            at_row = 0 if first == 0 else r
            own = logit(scored[first : first + size]).tolist()
            copies = logit(scored[first + size : first + size + size * len(shift)]).tolist()
            _contrast_pairs(pairs, at_row, own, copies, shift)
    return p, np.array(pairs, dtype=np.float64).reshape(n, 2)


def _contrast_pairs(
    pairs: list[list[float]], first: int, own: list[float], copies: list[float], shift: list[int]
) -> None:
    """:func:`contrast_parts` of one kind's rows (``own``: their log-odds; ``copies``:
    the moved copies' log-odds, shift-major) written into ``pairs`` from row ``first``:
    each kind of move's mean summed in the moves' order from the first, then divided by
    their number (numpy's mean over the moves' axis), 0 where a kind has no move."""
    size = len(own)
    by_day = [s % DAY_NS == 0 for s in shift]
    for column, chosen in enumerate(
        [k for k, day in enumerate(by_day) if day is want] for want in (True, False)
    ):
        if not chosen:
            continue
        count = float(len(chosen))
        for j in range(size):
            total = copies[chosen[0] * size + j]
            for k in chosen[1:]:
                total += copies[k * size + j]
            pairs[first + j][column] = own[j] - total / count
