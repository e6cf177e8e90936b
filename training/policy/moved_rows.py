"""The calendar contrast's moved rows, scored from the rows they move.

A moved copy of a schedule's row (:func:`training.policy.calendar.row_contrasts`) keeps
everything but its time: the event's columns, the dunning state, the template, channel
and click rate, the pair rates of those. So the model matrix of a kind's rows is built
once and copied for every move, and only the time columns are worked out per move, from
the rows' own zones (grouped once, not per moved row) and local clocks: a move by whole
days keeps the local minute wherever the zone's offset does not change between the two
instants, so the hour's columns (the customer's hour response among them) are computed
once per row and local minute, not per copy. Every value is the one the generic path
(:meth:`ModelScorer.row_probabilities` of the moved rows) gives, to the bit: the same
functions of the same inputs, row by row (``tests/policy/test_moved_rows.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from training.core.localtime import DAY_NS, utc_offsets
from training.features.calendar import MINUTE_NS, day_fields, minute_hour
from training.features.frames import (
    HOUR_RESPONSE_INPUTS,
    TIME_COLUMNS,
    TIME_FEATURES,
    day_columns,
    hour_columns,
)
from training.models.calibrated import CalibratedModel
from training.models.matrix import EventMatrix, reads_hour_response
from training.policy.scorer import PARALLEL_ROWS, ModelScorer


def can_copy_rows(scorer: object, matrix: object, model: CalibratedModel | None) -> bool:
    """Whether :func:`moved_probabilities` applies: the trained models' scorer, an
    :class:`EventMatrix` of more than one event (one event's time columns come from its
    own tables) and a model whose derived inputs read no time column."""
    if not isinstance(scorer, ModelScorer) or not isinstance(matrix, EventMatrix):
        return False
    if model is None or len(matrix) < 2:
        return False
    rates = getattr(model, "rates", ())
    return not any({r.spec.left, r.spec.right} & set(TIME_COLUMNS) for r in rates)


def moved_probabilities(
    scorer: ModelScorer,
    model: CalibratedModel,
    matrix: EventMatrix,
    event_ids: np.ndarray,
    ns: np.ndarray,
    columns: Mapping[str, np.ndarray],
    shifts: np.ndarray,
) -> np.ndarray:
    """``model``'s probability of each row (events ``event_ids``, instants ``ns``, the
    per-row ``columns``: dunning state, template, channel) moved by each of ``shifts``
    (ns), shift-major: the rows moved by the first shift, then by the second, ...
    (as ``np.tile`` of the rows). Check :func:`can_copy_rows` first."""
    n, k = len(ns), len(shifts)
    if n == 0 or k == 0:
        return np.zeros(n * k)
    pos = matrix.positions(event_ids)
    channel = columns.get("channel")
    per_row = dict(columns)
    if channel is not None:
        per_row["channel_click_rate"] = matrix.channel_click_rate(pos, channel)
    base = matrix.model_matrix(model, pos, per_row)  # time columns missing (NaN) for now
    rows = np.tile(base, (k, 1))
    times = moved_time_columns(matrix, pos, ns, shifts, reads_hour_response(model))
    for j, name in enumerate(model.features):
        if name in times:
            rows[:, j] = times[name]
    threads = scorer.threads if len(rows) >= PARALLEL_ROWS else 1
    return model.predict_matrix(rows, threads=threads)


def moved_time_columns(
    matrix: EventMatrix,
    pos: np.ndarray,
    ns: np.ndarray,
    shifts: np.ndarray,
    hour_response: bool = True,
) -> dict[str, np.ndarray]:
    """:meth:`EventMatrix.time_columns` of the instants ``ns`` (the events at ``pos``)
    moved by each of ``shifts``, shift-major; the same values, worked out from each
    row's zone once, each local date once and each row's local minute once (the hour
    response only with ``hour_response``)."""
    n, k = len(ns), len(shifts)
    names = TIME_COLUMNS if hour_response else TIME_FEATURES
    if n == 0 or k == 0:
        return {name: np.zeros(0) for name in names}
    moved = ns[None, :] + np.asarray(shifts, dtype=np.int64)[:, None]  # (k, n)
    offsets = _zone_offsets(matrix, pos, moved)
    local = moved + offsets
    days = local // DAY_NS
    minute = (local - days * DAY_NS) // MINUTE_NS
    weekday, day, to_end = _date_fields(days.ravel())
    every = np.tile(pos, k)
    by_day = day_columns(
        weekday,
        day,
        to_end,
        matrix.column("cust_pay_day_of_month").astype(float)[every],
        matrix.column("cust_pay_weekday").astype(float)[every],
    )
    # the hour's columns once per row and local minute: each row's at its first move,
    # then only where another move changes the minute (a move by days keeps it)
    differs = (minute != minute[0]).ravel()
    codes = np.tile(np.arange(n), k)
    codes[differs] = n + np.arange(np.count_nonzero(differs))
    row = np.concatenate([np.arange(n), np.tile(np.arange(n), k)[differs]])
    event = pos[row]
    by_hour = hour_columns(
        minute_hour(np.concatenate([minute[0], minute.ravel()[differs]])),
        matrix.column("cust_active_hour").astype(float)[event],
        {name: matrix.column(name).astype(float)[event] for name in HOUR_RESPONSE_INPUTS}
        if hour_response
        else None,
    )
    return {name: by_day[name] if name in by_day else by_hour[name][codes] for name in names}


def _date_fields(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`day_fields` of local dates (int64 days), once per date of the range they
    span when it is no longer than they are (a batch's rows span a few weeks)."""
    low = int(days.min())
    span = int(days.max()) - low + 1
    if span > len(days):
        return day_fields(days)
    weekday, day, to_end = day_fields(np.arange(low, low + span, dtype=np.int64))
    at = days - low
    return weekday[at], day[at], to_end[at]


def _zone_offsets(matrix: EventMatrix, pos: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """UTC offsets (ns) of the instants ``moved`` (moves x rows) in their rows' zones,
    one lookup per zone for all of its rows' moves (a missing zone: UTC)."""
    zone = matrix.one_zone()
    if zone is not None:
        return utc_offsets(moved.ravel(), zone).reshape(moved.shape)
    names = matrix.column("timezone")
    codes = matrix.zone_codes()[pos] + 1  # 0: missing
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(int(codes.max()) + 2))
    out = np.zeros(moved.shape, dtype=np.int64)
    for code in np.flatnonzero(np.diff(bounds)):
        rows = order[bounds[code] : bounds[code + 1]]
        part = moved[:, rows].ravel()
        name = None if code == 0 else names[pos[rows[0]]]
        zones = name if name is None or isinstance(name, str) else np.full(len(part), name)
        out[:, rows] = utc_offsets(part, zones).reshape(len(moved), len(rows))
    return out
