"""Search the retry times per failure event, vectorized over many events.

Scoring every hour with the models would cost ~770 rows per event, so the search goes
coarse to fine (sizes per event with the defaults, 14-day window, 4 retries, after the
messages are planned by :mod:`training.policy.message_search`):

1. the retry model scores a coarse grid of times (``retry_grid_hours``, 12 h) as the
   1st, 2nd, ... retry (earlier retries sit as failed attempts at a nominal gap), and a
   dynamic programme picks the times that minimise the chance that every retry fails,
   under the rules' earliest time and minimum spacing (<= 4 x 22 rows: only cells that
   can be on the best path);
2. the programme runs again on each finer grid of ``fine_grids_hours`` (3 h, then 1 h),
   the k-th retry only within one step of the grid before of where it was (4 x 9, then
   4 x 7 rows);
3. optionally (``refine_steps_hours``), each retry is moved by each step earlier and
   later, each moved schedule judged whole with the retries' actual predecessors; with
   the models only the retries a move changes (the moved one and the next) are scored.

Everything is clipped by the retry-rules engine's decision for the event. With the
trained models the candidates' features come from arrays (:func:`grid_state`); any
other scorer gets them as timelines (tested to decide the same). When the finer grids'
bands cost few rows more on the finest grid (a lone request), every cell any of them can
try is scored in one model call before their programmes (:class:`_BandScores`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from training.config.policy import PolicyConfig
from training.config.retry_limits import UpdateRequests
from training.core.arrays import best_per_group, group_counter, group_first, rank_in_group
from training.core.columnar import Table, column_array, column_values
from training.core.localtime import HOUR_NS, LATEST_NS, NAT, from_ns, to_ns
from training.features.dunning_state import grid_state, is_update_request
from training.models.matrix import EventMatrix, as_event_matrix
from training.policy.schedule_rows import MessageRows, RetryRows
from training.policy.scorer import ModelScorer, build_timeline

MERGE_EXTRA_ROWS = 256
"""Most rows the finer grids' bands may add, scored on the finest grid at once, to be
scored in one model call instead of one per grid (a call costs far more than a few
dozen rows: a lone request's; a batch's grids score each band on its own)."""


def retry_windows(
    events: Table,
    decisions: Table,
    messages: pd.DataFrame | MessageRows,
    update: UpdateRequests,
    min_spacing_hours: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per event: how many retries, and the earliest and latest (exclusive) time, ns: the
    latest is the dunning window's end or the rules' ``retry_deadline`` (ACH and Bacs
    windows from the first collection), whichever comes first."""
    messages = MessageRows.of(messages)
    failed = to_ns(column_values(events, "failed_at"))
    window_end = failed + column_array(events, "window_days", np.int64) * 24 * HOUR_NS
    deadline = to_ns(column_values(decisions, "retry_deadline"))  # NaT: no scheme window
    window_end = np.where(deadline == NAT, window_end, np.minimum(window_end, deadline))
    count = np.minimum(
        column_array(events, "max_retries", np.int64),
        column_array(decisions, "max_additional_retries", np.int64),
    )
    not_before = to_ns(column_values(decisions, "not_before"))  # NaT: no wait beyond the spacing
    start = np.where(not_before == NAT, failed + int(min_spacing_hours * HOUR_NS), not_before)
    needs_update = column_array(decisions, "needs_update_first", bool)
    asks = is_update_request(messages.template, update)
    first_ask = np.full(len(failed), LATEST_NS)
    asked_by = _positions(column_array(events, "event_id"), messages.event_id[asks])
    sent = messages.send_at
    np.minimum.at(first_ask, asked_by[asked_by >= 0], sent[asks][asked_by >= 0])
    asked = first_ask < LATEST_NS
    plausible = np.where(
        asked, first_ask + int(update.plausible_after_hours * HOUR_NS), LATEST_NS // 2
    )
    start = np.where(needs_update, np.maximum(start, plausible), start)
    allowed = column_array(decisions, "allowed", bool) | (needs_update & asked)
    count = np.where(allowed & (start < window_end), count, 0)
    return count, start, window_end


def plan_retries(
    scorer: ModelScorer,
    events: Table,
    features: pd.DataFrame | EventMatrix,
    past: Table,
    messages: pd.DataFrame | MessageRows,
    count: np.ndarray,
    start: np.ndarray,
    window_end: np.ndarray,
    min_spacing_hours: float,
    config: PolicyConfig,
    update: UpdateRequests,
) -> RetryRows:
    """Retry times per event (event_id, at) by dynamic programming, coarse to fine.

    Rows come grouped by event_id (sorted) and by time within an event (in the events'
    order when the config has neither finer grids nor refinement steps).
    """
    ids = column_array(events, "event_id")
    step = config.retry_grid_hours * HOUR_NS
    slots = np.where(count > 0, np.ceil((window_end - start) / step).astype(np.int64), 0)
    if slots.sum() == 0:
        return RetryRows.empty()
    k_max, j_max = int(count.max()), int(slots.max())
    spacing = int(np.ceil(min_spacing_hours * HOUR_NS / step))
    pos, k, j = _grid_rows(count, slots, spacing)
    at = start[pos] + j * step
    context = _RetryContext.build(scorer, features, past, messages, ids, config, update)
    p = _retry_probabilities(context, pos, at, k)
    log_fail = np.full((len(ids), k_max, j_max), np.inf)
    log_fail[pos, k, j] = np.log1p(-np.clip(p, 0, 1 - 1e-9))
    e_idx, j_idx = _dp(log_fail, np.zeros((len(ids), k_max), dtype=np.int64), count, spacing)
    plan_ns = start[e_idx] + j_idx * step
    if not (config.fine_grids_hours or config.refine_steps_hours) or len(e_idx) == 0:
        return RetryRows(ids[e_idx], plan_ns)
    band = config.retry_grid_hours
    scores = _BandScores.of(context, e_idx, plan_ns, start, window_end)
    for fine in config.fine_grids_hours:
        plan_ns = _dp_around(
            context, e_idx, plan_ns, start, window_end, min_spacing_hours, fine, band, scores
        )
        band = fine
    if config.refine_steps_hours:
        plan_ns = _refine(context, e_idx, plan_ns, start, window_end, min_spacing_hours)
    # sorted by event id, then time (no move passes a neighbouring retry)
    order = np.lexsort((plan_ns, _id_rank(ids)[e_idx]))
    return RetryRows(ids[e_idx[order]], plan_ns[order])


def _dp_around(
    context: _RetryContext,
    plan_event: np.ndarray,
    plan_ns: np.ndarray,
    start: np.ndarray,
    window_end: np.ndarray,
    min_spacing_hours: float,
    grid_hours: int,
    band_hours: int,
    scores: _BandScores | None = None,
) -> np.ndarray:
    """The dynamic programme again on a finer grid (every ``grid_hours`` from each
    event's earliest time), the k-th retry only within ``band_hours`` of where the
    coarser programme put it: the same choice as the fine grid over the whole window
    wherever the coarse grid found the right neighbourhood, for a few cells per retry.

    ``plan_event``, ``plan_ns``: the retries (event position, time on this grid), grouped
    by event in order and by time within an event; returns their new times, row for row.
    ``scores``: the cells' probabilities scored already (else scored here).
    """
    step = grid_hours * HOUR_NS
    sizes = np.bincount(plan_event, minlength=len(start))
    rank = np.arange(len(plan_ns)) - (np.cumsum(sizes) - sizes)[plan_event]
    reach = band_hours // grid_hours
    width = 2 * reach + 1  # cells of each retry's band
    row = np.repeat(np.arange(len(plan_ns)), width)
    band_cell = np.tile(np.arange(width), len(plan_ns))
    event = plan_event[row]
    at = plan_ns[row] + (band_cell - reach) * step
    inside = (at >= start[event]) & (at < window_end[event])
    row, band_cell, event, at = row[inside], band_cell[inside], event[inside], at[inside]
    planned = np.flatnonzero(sizes)  # the events with retries, compactly numbered
    compact = np.searchsorted(planned, plan_event)
    if scores is None:
        p = _retry_probabilities(context, event, at, rank[row])
    else:
        p = scores.read(row, at)
    log_fail = np.full((len(planned), int(sizes.max()), width), np.inf)
    log_fail[compact[row], rank[row], band_cell] = np.log1p(-np.clip(p, 0, 1 - 1e-9))
    # each band's first cell on this grid, counted from the event's earliest time
    first = np.zeros((len(planned), int(sizes.max())), dtype=np.int64)
    first[compact, rank] = (plan_ns - start[plan_event]) // step - reach
    spacing = int(np.ceil(min_spacing_hours * HOUR_NS / step))
    e_idx, cell = _dp(log_fail, first, sizes[planned], spacing)
    # every planned retry keeps a cell (its own is in its band), so rows match
    return start[planned[e_idx]] + cell * step


class _BandScores(NamedTuple):
    """Every cell the finer grids' programmes can try, scored in one call: each planned
    retry (as the coarse programme placed it, the rows of every finer plan) at each step
    of the finest grid within the bands' reach of its coarse time, at its rank.

    The grids nest (each divides the one before, from the same earliest time), so each
    finer grid's cells are cells of the finest; a retry's k-th band lies within the
    bands before it of its coarse time. Rows are scored independently, so a cell's
    probability is the one its own grid's call would give, to the bit."""

    step: int  # the finest grid's step (ns)
    low: np.ndarray  # per planned retry: its first cell's time (ns)
    p: np.ndarray  # (planned retries, cells): NaN outside the window

    @classmethod
    def of(
        cls,
        context: _RetryContext,
        plan_event: np.ndarray,
        plan_ns: np.ndarray,
        start: np.ndarray,
        window_end: np.ndarray,
    ) -> _BandScores | None:
        """The cells scored, or None (one finer grid, another scorer than the models, or
        more than :data:`MERGE_EXTRA_ROWS` rows beyond the grids' own bands)."""
        config = context.config
        grids = (config.retry_grid_hours, *config.fine_grids_hours)
        if len(grids) < 3 or not context.with_models:
            return None
        finest = grids[-1]
        reach = sum(grids[:-1]) // finest  # each finer grid's band: the grid before
        width = 2 * reach + 1
        own = sum(2 * (band // fine) + 1 for band, fine in zip(grids, grids[1:], strict=False))
        if (width - own) * len(plan_ns) > MERGE_EXTRA_ROWS:
            return None
        step = finest * HOUR_NS
        sizes = np.bincount(plan_event, minlength=len(start))
        rank = np.arange(len(plan_ns)) - (np.cumsum(sizes) - sizes)[plan_event]
        row = np.repeat(np.arange(len(plan_ns)), width)
        low = plan_ns - reach * step
        at = low[row] + np.tile(np.arange(width) * step, len(plan_ns))
        event = plan_event[row]
        inside = np.flatnonzero((at >= start[event]) & (at < window_end[event]))
        p = np.full(len(at), np.nan)
        p[inside] = _retry_probabilities(context, event[inside], at[inside], rank[row[inside]])
        return cls(step, low, p.reshape(len(plan_ns), width))

    def read(self, row: np.ndarray, at: np.ndarray) -> np.ndarray:
        """The probability of planned retry ``row`` at ``at`` (a cell scored)."""
        return self.p[row, (at - self.low[row]) // self.step]


def _id_rank(ids: np.ndarray) -> np.ndarray:
    """Rank of each event id in sorted order (ids are unique)."""
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
    return rank


def _grid_rows(count: np.ndarray, slots: np.ndarray, spacing: int) -> tuple[np.ndarray, ...]:
    """Grid cells (event, k, j) that can lie on the dynamic programme's best path.

    The k-th retry (from 0) cannot sit before cell ``k * spacing``; when all ``count``
    retries fit in the window (the programme then uses them all), it cannot sit after
    ``slots - 1 - (count - 1 - k) * spacing`` either, or the later ones would not fit.
    Skipping the other cells (about a fifth on a 14-day window) changes no decision.
    """
    event = np.repeat(np.arange(len(count)), count)
    k = group_counter(count)
    n, s = count[event], slots[event]
    low = k * spacing
    fits_all = (n - 1) * spacing < s
    high = np.where(fits_all, s - 1 - (n - 1 - k) * spacing, s - 1)
    size = np.maximum(high - low + 1, 0)
    return np.repeat(event, size), np.repeat(k, size), np.repeat(low, size) + group_counter(size)


@dataclass
class _RetryContext:
    """What the candidates' features need of each event (``ids``' order), gathered once
    per search: the past attempts, the planned messages and the events' matrix rows."""

    scorer: Any  # a ModelScorer, or any scorer with ``candidate_probabilities``
    features: pd.DataFrame | EventMatrix
    past: Table
    messages: MessageRows
    ids: np.ndarray
    config: PolicyConfig
    update: UpdateRequests
    start_h: np.ndarray  # the original charge (hours since the epoch)
    last_attempt_h: np.ndarray
    past_retries: np.ndarray
    msg_event: np.ndarray  # planned messages, sorted by event and time
    msg_hours: np.ndarray
    msg_update: np.ndarray
    past_ns: np.ndarray  # past attempts grouped by event: each event's from past_first
    past_first: np.ndarray
    past_count: np.ndarray
    matrix: EventMatrix | None = None  # with the trained models only
    rows: np.ndarray | None = None  # the events' rows in ``matrix``

    @classmethod
    def build(
        cls,
        scorer: Any,
        features: pd.DataFrame | EventMatrix,
        past: Table,
        messages: pd.DataFrame | MessageRows,
        ids: np.ndarray,
        config: PolicyConfig,
        update: UpdateRequests,
    ) -> _RetryContext:
        n = len(ids)
        messages = MessageRows.of(messages)
        past_events = column_array(past, "event_id")
        message_events = messages.event_id
        owner, msg_owner = np.split(
            _positions(ids, np.concatenate([past_events, message_events])),
            [len(past_events)],
        )
        keep = owner >= 0
        past_ns = to_ns(column_values(past, "t"))[keep]
        past_h = past_ns / HOUR_NS
        owner = owner[keep]
        is_original = (column_array(past, "kind") == "original")[keep]
        start = np.full(n, np.nan)
        np.fmin.at(start, owner[is_original], past_h[is_original])
        last_attempt = np.full(n, -np.inf)
        np.maximum.at(last_attempt, owner, past_h)
        past_count = np.bincount(owner, minlength=n)
        past_retries = np.bincount(owner[~is_original], minlength=n).astype(float)
        msg_hours = messages.send_at / HOUR_NS
        msg_update = is_update_request(messages.template, update)
        mine = np.flatnonzero(msg_owner >= 0)
        by_time = mine[np.lexsort((msg_hours[mine], msg_owner[mine]))]
        context = cls(
            scorer, features, past, messages, ids, config, update, start, last_attempt, past_retries,
            msg_owner[by_time], msg_hours[by_time], msg_update[by_time],
            past_ns[np.argsort(owner, kind="stable")], np.cumsum(past_count) - past_count, past_count,
        )  # fmt: skip
        return context

    @property
    def with_models(self) -> bool:
        """The trained models score from arrays; any other scorer gets timelines."""
        return isinstance(self.scorer, ModelScorer)

    def columns(
        self,
        event: np.ndarray,
        at: np.ndarray,
        k: np.ndarray,
        previous_ns: np.ndarray | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Matrix rows and model columns of candidate retries (event positions, times
        in ns, new retries before each, the new retry before each; see :func:`grid_state`)."""
        if self.matrix is None:
            self.matrix = as_event_matrix(self.features)
            self.rows = _matrix_rows(self.matrix, self.ids)
        state = grid_state(
            event, at / HOUR_NS, k, self.start_h, self.last_attempt_h, self.past_retries,
            self.msg_event, self.msg_hours, self.msg_update, self.config.nominal_retry_gap_hours,
            self.update.plausible_after_hours,
            None if previous_ns is None else previous_ns / HOUR_NS,
        )  # fmt: skip
        assert self.rows is not None
        pos = self.rows[event]
        model = self.scorer.models.retry if self.with_models else None
        return pos, {**state, **self.matrix.time_columns(pos, at, model)}

    def base_probabilities(
        self, plan_event: np.ndarray, plan_ns: np.ndarray, rank: np.ndarray
    ) -> np.ndarray:
        """Model probability of each planned retry (grouped by event, in time order;
        ``rank``: its place in its event's schedule), after the earlier ones failed."""
        previous = np.where(rank > 0, np.roll(plan_ns, 1).astype(float), np.nan)
        return self.model_probabilities(plan_event, plan_ns, rank, previous)

    def model_probabilities(
        self,
        event: np.ndarray,
        at: np.ndarray,
        k: np.ndarray,
        previous_ns: np.ndarray | None = None,
    ) -> np.ndarray:
        pos, columns = self.columns(event, at, k, previous_ns)
        return self.scorer.predict(self.scorer.models.retry, self.matrix, pos, columns)


def _positions(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in the unique ``ids`` (-1 if absent); one id (the API's
    single request) without building an index."""
    if len(ids) == 1:
        return np.where(values == ids[0], 0, -1)
    return pd.Index(ids).get_indexer(values)


def _matrix_rows(matrix: EventMatrix, ids: np.ndarray) -> np.ndarray:
    """:meth:`EventMatrix.positions` of the events (the matrix's ids, not its frame, which
    would be built just to read its index)."""
    return matrix.positions(ids)


def _retry_probabilities(
    context: _RetryContext, event: np.ndarray, at: np.ndarray, k: np.ndarray
) -> np.ndarray:
    """Success probability of a retry at ``at`` (ns) as the k-th new one (k earlier new
    retries failed, the last at the nominal gap before it) for the events at ``event``.

    With the models, the candidates' features come straight from :func:`grid_state`;
    any other scorer (the ground truth, for the oracle) gets the candidates as timelines.
    """
    if not context.with_models:
        c = context
        return _timeline_retry_probabilities(
            c.scorer, c.features, c.past, c.messages, c.ids[event], at, k, c.config
        )
    return context.model_probabilities(event, at, k)


def retry_grid_columns(
    matrix: EventMatrix,
    past: Table,
    messages: pd.DataFrame | MessageRows,
    event_ids: np.ndarray,
    at: np.ndarray,
    k: np.ndarray,
    config: PolicyConfig,
    update: UpdateRequests,
    previous_ns: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Event rows and per-row model columns of candidate retries (see
    :func:`_retry_probabilities`), for :meth:`EventMatrix.model_matrix`; ``previous_ns``:
    the time of the new retry before each candidate in its schedule (see :func:`grid_state`)."""
    unique = pd.unique(event_ids)
    context = _RetryContext.build(None, matrix, past, messages, unique, config, update)
    return context.columns(pd.Index(unique).get_indexer(event_ids), at, k, previous_ns)


def _timeline_retry_probabilities(
    scorer, features, past, messages, event_ids, at, k, config
) -> np.ndarray:
    """The same as :func:`_retry_probabilities`, through full timelines: each candidate
    with its k earlier failed retries as rows at the nominal gap and its event's messages."""
    n = len(at)
    keys = pd.DataFrame({"key": np.arange(n), "event_id": event_ids})
    gap = int(config.nominal_retry_gap_hours * HOUR_NS)
    phantom_key = np.repeat(np.arange(n), k)
    phantom_i = group_counter(k) + 1
    retries = pd.concat(
        [
            pd.DataFrame({"key": np.arange(n), "at": pd.Series(from_ns(at)), "candidate": True}),
            pd.DataFrame(
                {
                    "key": phantom_key,
                    "at": pd.Series(from_ns(at[phantom_key] - phantom_i * gap)),
                    "candidate": False,
                }
            ),
        ],
        ignore_index=True,
    )
    msg_context = keys.merge(
        MessageRows.of(messages).frame()[["event_id", "send_at", "template", "channel"]],
        on="event_id",
    )
    timeline = build_timeline(
        keys, past, retries.drop(columns="candidate"), msg_context, ("retry",)
    )
    proposed = (timeline["kind"] == "retry") & timeline["candidate"]
    timeline.loc[proposed, "candidate"] = retries["candidate"].to_numpy()
    p = scorer.candidate_probabilities(features, timeline)
    out = np.zeros(n)
    out[timeline.loc[p.index, "key"].to_numpy()] = p.to_numpy()
    return out


def _dp(
    log_fail: np.ndarray, first: np.ndarray, count: np.ndarray, spacing: int
) -> tuple[np.ndarray, np.ndarray]:
    """Grid cells of the retries minimising total log-survival, spaced >= ``spacing``.

    ``log_fail[e, k, w]``: the k-th retry of event e in cell ``first[e, k] + w`` of the
    grid (a band of cells per retry: the whole grid with ``first`` 0, or a few cells
    around the coarser grid's choice; ``inf``: not a candidate). Returns (event index,
    grid cell) pairs, events in order, times increasing. Every extra retry can only
    lower the chance that all fail, so the most retries that fit are used; events where
    none fits get none. The programme runs on the bands, never on the whole grid: its
    arrays are the candidates' size; ties go to the earliest cell.
    """
    n, k_max, width = log_fail.shape
    if n == 1:  # a lone request: a few dozen cells, cheaper in plain Python than ~60 numpy calls
        chosen = _dp_one(log_fail[0].tolist(), first[0].tolist(), int(count[0]), spacing)
        return np.zeros(len(chosen), dtype=np.intp), np.array(chosen, dtype=np.int64)
    value = np.empty((n, k_max, width))
    back = np.zeros((n, k_max, width), dtype=np.int64)  # the previous retry's band cell
    value[:, 0, :] = log_fail[:, 0, :]
    # per cell of retry k: how many cells of retry k - 1's band lie >= ``spacing`` before,
    # as a flat index into the running minimum of that band after an ``inf`` (none)
    reach = (first[:, 1:] - first[:, :-1] - spacing + 1)[:, :, None] + np.arange(width)
    at = np.minimum(np.maximum(reach, 0), width) + (np.arange(n) * (width + 1))[:, None, None]
    best = np.full((n, width + 1), np.inf)  # [inf, running minimum of the band]
    arg = np.zeros((n, width + 1), dtype=np.int64)  # [-, where that minimum first is]
    better = np.ones((n, width), dtype=bool)
    cells = np.arange(width)
    for k in range(1, k_max):
        prev = value[:, k - 1, :]
        np.minimum.accumulate(prev, axis=1, out=best[:, 1:])
        np.less(prev[:, 1:], best[:, 1:-1], out=better[:, 1:])
        np.maximum.accumulate(np.where(better, cells, 0), axis=1, out=arg[:, 1:])
        value[:, k, :] = log_fail[:, k, :] + best.ravel()[at[:, k - 1]]
        back[:, k, :] = arg.ravel()[at[:, k - 1]]
    best_per_k = value.min(axis=2)  # (n, k_max)
    feasible = np.isfinite(best_per_k) & (np.arange(k_max)[None, :] < count[:, None])
    has_any = feasible.any(axis=1)
    k_star = np.where(has_any, k_max - 1 - np.argmax(feasible[:, ::-1], axis=1), -1)
    events = np.flatnonzero(has_any)
    path = np.full((n, k_max), -1, dtype=np.int64)
    ks = k_star[events]
    path[events, ks] = np.argmin(value[events, ks, :], axis=1)
    for k in range(k_max - 1, 0, -1):
        on = events[ks >= k]
        path[on, k - 1] = back[on, k, path[on, k]]
    e_idx, k_idx = np.nonzero(path >= 0)
    return e_idx, first[e_idx, k_idx] + path[e_idx, k_idx]


def _dp_one(log_fail: list[list[float]], first: list[int], count: int, spacing: int) -> list[int]:
    """:func:`_dp` of one event, in plain Python: the same sums in the same order (the
    same floats), the same first minimum on ties; returns the chosen grid cells."""
    width = len(log_fail[0])
    values, backs = [log_fail[0]], [[0] * width]
    for k in range(1, len(log_fail)):
        # running minimum of retry k - 1's band after an ``inf`` (none), and where it first is
        low, low_at = [math.inf], [0]
        best, best_at = math.inf, 0
        for cell, value in enumerate(values[-1]):
            if value < best:
                best, best_at = value, cell
            low.append(best)
            low_at.append(best_at)
        shift = first[k] - first[k - 1] - spacing + 1
        reach = [min(max(shift + cell, 0), width) for cell in range(width)]
        values.append([f + low[r] for f, r in zip(log_fail[k], reach, strict=True)])
        backs.append([low_at[r] for r in reach])
    feasible = [k for k in range(min(count, len(values))) if min(values[k]) < math.inf]
    if not feasible:
        return []
    k_star = feasible[-1]
    path = [values[k_star].index(min(values[k_star]))]
    for k in range(k_star, 0, -1):
        path.append(backs[k][path[-1]])
    path.reverse()
    return [first[k] + cell for k, cell in enumerate(path)]


def _refine(
    context: _RetryContext,
    plan_event: np.ndarray,
    base_ns: np.ndarray,
    start: np.ndarray,
    window_end: np.ndarray,
    min_spacing_hours: float,
) -> np.ndarray:
    """Local search around the programme's schedule, coarse to fine: for each step of
    ``config.refine_steps_hours``, every retry is tried that many hours earlier and
    later, the whole schedule judged, and kept where the schedule gains.

    ``plan_event``, ``base_ns``: the retries (event position, time), grouped by event in
    order and by time within an event; returns their new times, row for row (no retry
    passes its neighbours, so the order holds).
    """
    sizes = np.bincount(plan_event, minlength=len(start))
    first_row = np.cumsum(sizes) - sizes  # each event's first row
    rank = np.arange(len(base_ns)) - first_row[plan_event]
    base_p = context.base_probabilities(plan_event, base_ns, rank) if context.with_models else None
    for step in context.config.refine_steps_hours:
        for parity in (0, 1):
            movable = np.flatnonzero(rank % 2 == parity)
            if len(movable):
                base_ns, base_p = _refine_pass(
                    context, plan_event, base_ns, base_p, movable, step,
                    start, window_end, min_spacing_hours, first_row, sizes,
                )  # fmt: skip
    return base_ns


def _refine_pass(
    context: _RetryContext,
    plan_event: np.ndarray,
    base_ns: np.ndarray,
    base_p: np.ndarray | None,
    movable: np.ndarray,
    step_hours: int,
    start: np.ndarray,
    window_end: np.ndarray,
    min_spacing_hours: float,
    first_row: np.ndarray,
    sizes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One pass of :func:`_refine`: the retries at ``movable`` (never two neighbours)
    each moved by -``step_hours``, 0 or +``step_hours``, inside the window, between their
    neighbours and spaced; each keeps its best move.

    A retry's probability depends only on its event, time, rank and the retry before
    it, so the move of retry i changes the terms of retries i and i + 1 alone: moves of
    retries two apart add up, and all are made at once. Returns the new times and
    (with the models) their probabilities.
    """
    shifts = np.array([0, -step_hours, step_hours], dtype=np.int64)  # ties keep the plan
    variant_of = np.tile(movable, len(shifts))
    moved = base_ns[variant_of] + np.repeat(shifts, len(movable)) * HOUR_NS
    event = plan_event[variant_of]
    rank = variant_of - first_row[event]
    previous = np.where(rank > 0, base_ns[np.maximum(variant_of - 1, 0)], NAT)
    has_next = rank < sizes[event] - 1
    following = np.where(has_next, base_ns[np.minimum(variant_of + 1, len(base_ns) - 1)], LATEST_NS)
    ok = (
        (moved >= start[event])
        & (moved < window_end[event])
        & (moved > previous)
        & (moved < following)
    )
    variant_of, moved, event = variant_of[ok], moved[ok], event[ok]
    # members of each variant: its event's retries
    per_variant = sizes[event]
    key = np.repeat(np.arange(len(variant_of)), per_variant)
    row = first_row[event][key] + group_counter(per_variant)
    at = np.where(row == variant_of[key], moved[key], base_ns[row])
    p = _schedule_retry_probabilities(
        context, plan_event, base_ns, first_row, event[key], key, row, at, base_p
    )
    log_survival = np.bincount(
        key, weights=np.log1p(-np.clip(p, 0, 1 - 1e-9)), minlength=len(variant_of)
    )
    log_survival[~_spacing_ok(context, key, at, event, min_spacing_hours)] = np.inf
    best = _first_per_group(variant_of, log_survival)  # one per movable retry
    out_ns = base_ns.copy()
    out_ns[variant_of[best]] = moved[best]
    if base_p is None:
        return out_ns, None
    # the moved retry and the one after it take the chosen variant's probabilities
    chosen = np.zeros(len(variant_of), dtype=bool)
    chosen[best] = True
    changed = chosen[key] & ((row == variant_of[key]) | (row == variant_of[key] + 1))
    out_p = base_p.copy()
    out_p[row[changed]] = p[changed]
    return out_ns, out_p


def _first_per_group(group: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Index of the smallest ``value`` per group (ties: the earliest index), by group."""
    return best_per_group(np.lexsort((np.arange(len(group)), value, group)), group)


def _schedule_order(key: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per retry of the schedules ``key``: how many of its schedule's retries come
    before it, and the time (ns, float) of the one just before (NaN for the first)."""
    order = np.lexsort((at, key))
    first = group_first(key[order])
    rank = rank_in_group(key[order])
    previous = np.where(first, np.nan, np.roll(at[order], 1).astype(float))
    k, previous_ns = np.empty(len(at), dtype=np.int64), np.empty(len(at))
    k[order], previous_ns[order] = rank, previous
    return k, previous_ns


def _schedule_retry_probabilities(
    context: _RetryContext,
    plan_event: np.ndarray,
    base_ns: np.ndarray,
    first_row: np.ndarray,
    event: np.ndarray,
    key: np.ndarray,
    row: np.ndarray,
    at: np.ndarray,
    base_p: np.ndarray | None = None,
) -> np.ndarray:
    """Success probability of every retry of the variant schedules ``key`` (``row``: the
    plan row each stands for, at ``at``), each after the earlier retries of its schedule
    failed.

    A retry's model features depend only on its event, time, rank and the time of the
    retry before it, so a variant differs from the planned schedule in the moved retry
    and the ones next to it at most: the models score the planned schedules (``plan_event``,
    ``base_ns``, each event's in time order from ``first_row``) once and only the rows
    that differ (the same rows give the same probabilities, bit for bit; ``base_p``:
    the planned schedules' probabilities when known already). Any other scorer gets
    every variant as a timeline.
    """
    if not context.with_models:
        c = context
        return _timeline_schedule_probabilities(
            c.scorer, c.features, c.past, c.messages, c.ids[event], key, at
        )
    k, previous_ns = _schedule_order(key, at)
    base_k = np.arange(len(base_ns)) - first_row[plan_event]
    base_previous = np.where(base_k > 0, np.roll(base_ns, 1).astype(float), np.nan)
    same_previous = (previous_ns == base_previous[row]) | (
        np.isnan(previous_ns) & np.isnan(base_previous[row])
    )
    moved = np.flatnonzero((at != base_ns[row]) | (k != base_k[row]) | ~same_previous)
    if base_p is None:
        p = context.model_probabilities(
            np.concatenate([plan_event, event[moved]]),
            np.concatenate([base_ns, at[moved]]),
            np.concatenate([base_k, k[moved]]),
            np.concatenate([base_previous, previous_ns[moved]]),
        )
        base_p, p = p[: len(base_ns)], p[len(base_ns) :]
    else:
        p = context.model_probabilities(event[moved], at[moved], k[moved], previous_ns[moved])
    out = base_p[row]
    out[moved] = p
    return out


def _timeline_schedule_probabilities(
    scorer,
    features,
    past: Table,
    messages: MessageRows,
    event_ids: np.ndarray,
    key: np.ndarray,
    at: np.ndarray,
) -> np.ndarray:
    """:func:`_schedule_retry_probabilities` through one timeline per schedule."""
    key_events = np.empty(key.max() + 1, dtype=object)
    key_events[key] = event_ids
    keys = pd.DataFrame({"key": np.arange(len(key_events)), "event_id": key_events})
    frame = messages.frame()[["event_id", "send_at", "template", "channel"]]
    context = keys.merge(frame, on="event_id")
    retries = pd.DataFrame({"key": key, "at": from_ns(at)})
    timeline = build_timeline(keys, past, retries, context, ("retry",))
    p = scorer.candidate_probabilities(features, timeline)
    # proposed retries sit in the timeline after the past rows, in the order given
    proposed = np.flatnonzero(
        (timeline["kind"] == "retry").to_numpy() & timeline["candidate"].to_numpy()
    )
    return p.reindex(timeline.index[proposed]).to_numpy()


def _spacing_ok(
    context: _RetryContext,
    key: np.ndarray,
    at: np.ndarray,
    key_event: np.ndarray,
    min_spacing_hours: float,
) -> np.ndarray:
    """Per schedule key (its event at ``key_event``): every attempt (past and proposed)
    at least the minimum apart."""
    count = context.past_count[key_event]
    past_key = np.repeat(np.arange(len(key_event)), count)
    past_ns = context.past_ns[context.past_first[key_event][past_key] + group_counter(count)]
    all_key = np.concatenate([key, past_key])
    all_t = np.concatenate([at, past_ns])
    order = np.lexsort((all_t, all_key))
    same = all_key[order][1:] == all_key[order][:-1]
    close = same & (np.diff(all_t[order]) < min_spacing_hours * HOUR_NS)
    bad = np.zeros(len(key_event), dtype=bool)
    bad[all_key[order][1:][close]] = True
    return ~bad
