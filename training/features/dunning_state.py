"""Where a dunning cycle stands at a candidate time: what was tried and what was sent.

A *timeline* is one invoice's events in long format, logged or proposed:

    key, t (UTC), kind ("original" | "retry" | "message"), template, channel, candidate

``original`` is the first failed charge (one per key). Rows with ``candidate`` true get
features; the others are context (earlier attempts and messages). Training builds one
timeline per invoice from the logged rows; the policy builds one per proposed schedule.

Every feature here is known when the schedule is *planned* (at the failed charge):
it depends on what is scheduled, never on how the customer reacted. So the models'
probabilities chain correctly over a whole planned schedule (P(all fail) = product of
each event's failure probability given the earlier ones failed). Whether the card was
likely updated is therefore read from the plan: an update request sent long enough
before the candidate (``card_update_likely``), not from a click nobody has seen yet.
"""

from __future__ import annotations

import math
import struct
from itertools import starmap
from typing import Literal, NamedTuple

import numpy as np
import pandas as pd

from training.config.retry_limits import UpdateRequests
from training.core.arrays import group_starts
from training.core.localtime import to_ns

KIND_ORDER = {"original": 0, "retry": 1, "message": 2}

STATE_FEATURES = (
    "hours_since_failure",
    "retries_before",
    "hours_since_last_attempt",
    "messages_before",
    "hours_since_last_message",
    "update_requests_before",
    "hours_since_update_request",
    "same_template_before",
    "card_update_likely",
)


def _earlier_counts(flags: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Per flag (a row of ``flags``): rows earlier in the same group (rows sorted,
    ``first``: group start) with the flag. Several flags in one pass: the policy calls
    this on a few dozen rows, where each numpy call costs more than its rows."""
    counts = flags.astype(np.int64)  # (an accumulation casting bools goes element by element)
    before = np.add.accumulate(counts, axis=-1) - counts
    return (before - before.take(first, axis=-1)).astype(float)


def _earlier_lasts(hours: np.ndarray, flags: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Per flag (a row of ``flags``): the time (hours) of the latest earlier row of the
    same group with the flag (NaN if none)."""
    n = len(hours)
    latest = np.maximum.accumulate(np.where(flags, np.arange(n), -1), axis=1)
    previous = np.full_like(latest, -1)
    previous[:, 1:] = latest[:, :-1]
    found = previous >= first
    return np.where(found, hours[np.maximum(previous, 0)], np.nan)


def _group_codes(key: np.ndarray) -> np.ndarray:
    """Integer codes of the rows' groups (only equality matters): small non-negative
    integer keys (the policy's schedule keys) are their own codes, others factorized."""
    if key.dtype.kind in "iu" and (len(key) == 0 or (key.min() >= 0 and key.max() < 2**32)):
        return key.astype(np.int64, copy=False)
    return pd.factorize(key)[0]


def _group_mins(hours: np.ndarray, flags: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Per flag (a row of ``flags``) and row: the earliest time (hours) of its group's
    rows with the flag (NaN where the group has none)."""
    starts = np.flatnonzero(first == np.arange(len(first)))  # (rows sorted by group)
    filled = np.where(flags, hours, np.inf)
    if len(starts) == 0:
        return filled
    out = np.minimum.reduceat(filled, starts, axis=1).take(np.searchsorted(starts, first), axis=1)
    return np.where(np.isinf(out), np.nan, out)


def _template_codes(template: np.ndarray) -> np.ndarray:
    """Integer codes of templates (only equality matters), missing ones as ``""``."""
    codes, uniques = pd.factorize(template)  # missing: -1
    empty = np.flatnonzero(np.asarray(uniques, dtype=object) == "")
    missing = empty[0] if len(empty) else len(uniques)
    return np.where(codes < 0, missing, codes)


def is_update_request(template: np.ndarray, update: UpdateRequests) -> np.ndarray:
    """True where ``template`` (object array, None for non-messages) asks for an update."""
    template = np.asarray(template, dtype=object)
    found = np.zeros(len(template), dtype=bool)
    for name in update.templates:
        found |= template == name
    return found


def timeline_state(timeline: pd.DataFrame, update: UpdateRequests) -> pd.DataFrame:
    """State features of the candidate rows (index: the timeline's index)."""
    wanted, columns = timeline_state_arrays(timeline, update)
    return pd.DataFrame(columns, index=timeline.index[wanted])


def timeline_state_arrays(
    timeline: pd.DataFrame, update: UpdateRequests
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Positions of the candidate rows in the timeline, and their state features.

    Rows are ordered by key, time and kind (original, retry, message; ties keep the
    timeline's order); all group arithmetic is numpy over that order, because the policy
    calls this in its inner loop and training on millions of rows.
    """
    return state_of_rows(
        timeline["key"].to_numpy(),
        to_ns(timeline["t"]),
        timeline["kind"].to_numpy(),
        timeline["template"].to_numpy(dtype=object),
        timeline["candidate"].to_numpy(dtype=bool),
        update,
    )


def state_of_rows(
    key: np.ndarray,
    ns: np.ndarray,
    kind: np.ndarray,
    template: np.ndarray,
    candidate: np.ndarray,
    update_requests: UpdateRequests,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:func:`timeline_state_arrays` of a timeline given as its columns (t as int64 ns).

    The flags and columns go through the group arithmetic stacked (a row each): the
    policy scores whole schedules of a few dozen rows, where the number of numpy calls
    is the cost; every value is computed by the same operations as one column alone.
    Up to :data:`SMALL_STATE_ROWS` rows (a lone decision's whole schedules) with integer
    keys go through :func:`_small_state` instead (the same values to the bit, in plain
    Python), unless a kind or a message's template is one it leaves to this path."""
    if len(key) <= SMALL_STATE_ROWS and np.asarray(key).dtype.kind in "iu":
        small = _small_state(key, ns, kind, template, candidate, update_requests)
        if small is not None:
            return small
    return _state_of_rows(key, ns, kind, template, candidate, update_requests)


def _state_of_rows(
    key: np.ndarray,
    ns: np.ndarray,
    kind: np.ndarray,
    template: np.ndarray,
    candidate: np.ndarray,
    update_requests: UpdateRequests,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """:func:`state_of_rows` in numpy, for any number of rows."""
    key_code = _group_codes(key)
    kinds = np.array([kind == name for name in ("original", "retry", "message")])
    order_code = np.where(
        kinds[0],
        KIND_ORDER["original"],
        np.where(kinds[1], KIND_ORDER["retry"], KIND_ORDER["message"]),
    )
    order = np.lexsort((order_code, ns, key_code))
    key = key_code[order]
    hours = ns[order] / 3.6e12
    original, retry, message = kinds.take(order, axis=1)  # (take: a fancy index per row is slow)
    template = np.asarray(template, dtype=object)[order]
    first = group_starts(key)
    update = message & is_update_request(template, update_requests)

    start, first_update = _group_mins(hours, np.array([original, update]), first)
    template_code = _template_codes(template)
    template_key = key * (template_code.max(initial=0) + 1) + template_code
    by_template = np.argsort(template_key, kind="stable")  # by key, template, row
    # the columns as rows of one block (counts, then times since), each written once
    block = np.empty((len(_BLOCK_ROWS), len(key)))
    np.subtract(hours, start, out=block[0])
    block[1:4] = _earlier_counts(np.array([retry, message, update]), first)
    lasts = _earlier_lasts(hours, np.array([original | retry, message, update]), first)
    np.subtract(hours, lasts, out=block[4:7])
    block[7, by_template] = _earlier_counts(
        message[by_template], group_starts(template_key[by_template])
    )
    np.copyto(block[7], np.nan, where=~message)
    block[8] = hours - first_update >= update_requests.plausible_after_hours
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    wanted = np.flatnonzero(np.asarray(candidate, dtype=bool))  # candidate rows, in order
    rows = block.take(position[wanted], axis=1)
    return wanted, {name: rows[_BLOCK_ROWS[name]] for name in STATE_FEATURES}


_BLOCK_ROWS = {
    name: row
    for row, name in enumerate(
        (
            "hours_since_failure",
            "retries_before",
            "messages_before",
            "update_requests_before",
            "hours_since_last_attempt",
            "hours_since_last_message",
            "hours_since_update_request",
            "same_template_before",
            "card_update_likely",
        )
    )
}
"""The row of each state column in :func:`state_of_rows`' block (the counts together,
the times since together: each group written in one call)."""


SMALL_STATE_ROWS = 128
"""Most rows :func:`state_of_rows` computes in plain Python (:func:`_small_state`): a
lone decision's whole-schedule scoring has a few dozen, where the ~50 numpy calls of the
general path cost more than a pass over the rows."""

_NAN = float("nan")
_PACK_ROW = struct.Struct(f"{len(_BLOCK_ROWS)}d").pack


def _small_state(
    key: np.ndarray,
    ns: np.ndarray,
    kind: np.ndarray,
    template: np.ndarray,
    candidate: np.ndarray,
    update_requests: UpdateRequests,
) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """:func:`_state_of_rows` of a few rows in plain Python: the same order (key, time,
    kind, then the rows' order), the same float operations, so the same values to the
    bit (tested). None (take the general path) when a kind is not one of
    :data:`KIND_ORDER`'s or a message's template is neither a string nor missing (None,
    NaN: the same template as ``""``, as in :func:`_template_codes`)."""
    names = tuple(update_requests.templates)
    plausible = update_requests.plausible_after_hours
    try:
        codes = list(map(KIND_ORDER.get, np.asarray(kind).tolist()))
    except TypeError:  # (an unhashable kind)
        return None
    if None in codes or "" in names:  # ("" asked for: a missing template would be one)
        return None
    keys, templates = np.asarray(key).tolist(), np.asarray(template, dtype=object).tolist()
    hours = (np.asarray(ns) / 3.6e12).tolist()
    # per group: its first charge and first update request (absent: NaN)
    starts: dict[int, float] = {}
    requested: dict[int, float] = {}
    for i, (k, h, code, name) in enumerate(zip(keys, hours, codes, templates, strict=True)):
        if code == 0:
            if h < starts.get(k, math.inf):
                starts[k] = h
        elif code == 2:
            if not isinstance(name, str):
                if name is None or (isinstance(name, float) and math.isnan(name)):
                    templates[i] = name = ""
                else:
                    return None
            if name in names and h < requested.get(k, math.inf):
                requested[k] = h
    order = np.lexsort((np.array(codes, dtype=np.int64), ns, key)).tolist()
    values: list[tuple[float, ...]] = [()] * len(order)
    group: int | None = None
    for i in order:
        k, h, code = keys[i], hours[i], codes[i]
        if k != group:  # a new group: nothing earlier
            group, start, first_request = k, starts.get(k, _NAN), requested.get(k, _NAN)
            retries = messages = requests = 0.0
            last_attempt = last_message = last_request = _NAN
            sent: dict[str, float] = {}
        likely = 1.0 if h - first_request >= plausible else 0.0
        if code == 2:
            name = templates[i]
            same = sent.get(name, 0.0)
            values[i] = (
                h - start, retries, messages, requests,
                h - last_attempt, h - last_message, h - last_request, same, likely,
            )  # fmt: skip
            messages += 1.0
            last_message = h
            sent[name] = same + 1.0
            if name in names:
                requests += 1.0
                last_request = h
        else:
            values[i] = (
                h - start, retries, messages, requests,
                h - last_attempt, h - last_message, h - last_request, _NAN, likely,
            )  # fmt: skip
            last_attempt = h
            retries += code
    wanted = np.flatnonzero(np.asarray(candidate, dtype=bool))
    packed = b"".join(starmap(_PACK_ROW, map(values.__getitem__, wanted.tolist())))
    block = np.frombuffer(packed, np.float64).reshape(len(wanted), len(_BLOCK_ROWS))
    columns = block.T.copy()  # (the floats' bits as they are: packed natively)
    return wanted, {name: columns[_BLOCK_ROWS[name]] for name in STATE_FEATURES}


SPAN_HOURS = np.float64(1e7)
"""Search keys are group * SPAN_HOURS + time (hours since the epoch: times << span)."""


GROUP_SEARCH_ROWS = 2_000
"""Fewest queries whose groups' first keys are searched once per group."""


class _Queries(NamedTuple):
    """The search keys of query rows (group, time): each query's own, and the one
    before its group's first time. Made once when several sets of times are searched
    for the same queries."""

    keys: np.ndarray
    group_start: np.ndarray
    group: np.ndarray

    @classmethod
    def of(cls, group: np.ndarray, times: np.ndarray) -> _Queries:
        base = group * SPAN_HOURS
        return cls(base + times, base - SPAN_HOURS / 2, group)

    def take(self, rows: np.ndarray) -> _Queries:
        return _Queries(self.keys[rows], self.group_start[rows], self.group[rows])

    def starts(self, keys: np.ndarray) -> np.ndarray:
        """How many of the sorted search ``keys`` lie in groups before each query's:
        one search per group when the groups are positions (a batch's grids hold
        thousands of queries per few hundred events), else one per query (a lone
        request's few hundred: the checks would cost more than they save)."""
        group = self.group
        if len(group) >= GROUP_SEARCH_ROWS and group.dtype.kind in "iu" and group.min() >= 0:
            last = int(group.max())
            if last < len(group):
                bases = np.arange(last + 1, dtype=group.dtype) * SPAN_HOURS  # as ``of``
                return np.searchsorted(keys, bases - SPAN_HOURS / 2, side="left")[group]
        return np.searchsorted(keys, self.group_start, side="left")


def _search(
    group: np.ndarray,
    times: np.ndarray,
    queries: _Queries,
    side: Literal["left", "right"] = "left",
) -> tuple[np.ndarray, np.ndarray]:
    """For each query: the position in ``group``/``times`` (sorted by (group, time)) of
    its group's first row and the position past its group's strictly earlier times
    (``side`` "right": earlier or at the same time)."""
    keys = group * SPAN_HOURS + times
    return queries.starts(keys), np.searchsorted(keys, queries.keys, side=side)


def _latest_of(
    group: np.ndarray,
    times: np.ndarray,
    queries: _Queries,
    side: Literal["left", "right"] = "left",
) -> tuple[np.ndarray, np.ndarray]:
    """For each query: how many of its group's times are strictly earlier (``side``
    "right": earlier or at the same time), and the latest of them (NaN if none).
    ``group``/``times`` sorted by (group, time); the queries' keys made once
    (:class:`_Queries`) for every set of times searched."""
    if len(times) == 0:
        n = len(queries.keys)
        return np.zeros(n), np.full(n, np.nan)
    first, position = _search(group, times, queries, side)
    count = position - first
    # position 0 (no earlier time at all) reads the last time: masked, as count is 0
    latest = np.where(count > 0, times[position - 1], np.nan)
    return count.astype(float), latest


def grid_state(
    event: np.ndarray,
    hours: np.ndarray,
    new_retries_before: np.ndarray,
    start: np.ndarray,
    last_attempt: np.ndarray,
    past_retries: np.ndarray,
    message_event: np.ndarray,
    message_hours: np.ndarray,
    message_is_update: np.ndarray,
    nominal_gap_hours: float,
    update_plausible_hours: float,
    previous_retry_hours: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """:func:`timeline_state` of candidate retries, without building their timelines.

    The schedule search scores hundreds of candidate retry times per event, the k-th new
    retry sitting after k failed ones at a nominal gap; building a timeline per candidate
    repeats the same context rows thousands of times. This computes the same features
    directly (``tests/features/test_features.py`` checks they are identical):

    * per candidate: ``event`` (position), ``hours`` (time, hours since epoch),
      ``new_retries_before`` (k);
    * per event: ``start`` (the original charge), ``last_attempt`` (the latest attempt
      already made), ``past_retries`` (retries already made);
    * planned messages: ``message_event``, ``message_hours``, ``message_is_update``,
      sorted by event and time;
    * ``previous_retry_hours``: when the candidates belong to concrete schedules, the
      time of the new retry just before each (NaN for the first); by default the k-th
      sits ``nominal_gap_hours`` after a phantom (k-1)-th.
    """
    k = new_retries_before.astype(float)
    if previous_retry_hours is None:
        previous_retry_hours = np.where(k > 0, hours - nominal_gap_hours, np.nan)
    previous_attempt = np.fmax(previous_retry_hours, last_attempt[event])
    queries = _Queries.of(event, hours)
    n_msg, last_msg = _latest_of(message_event, message_hours, queries)
    upd_event = message_event[message_is_update]
    upd_hours = message_hours[message_is_update]
    n_upd, last_upd = _latest_of(upd_event, upd_hours, queries)
    first_upd = np.full(len(start), np.nan)
    if len(upd_hours):
        np.fmin.at(first_upd, upd_event, upd_hours)
    return {
        "hours_since_failure": hours - start[event],
        "retries_before": past_retries[event] + k,
        "hours_since_last_attempt": hours - previous_attempt,
        "messages_before": n_msg,
        "hours_since_last_message": hours - last_msg,
        "update_requests_before": n_upd,
        "hours_since_update_request": hours - last_upd,
        "same_template_before": np.full(len(hours), np.nan),
        "card_update_likely": (hours - first_upd[event] >= update_plausible_hours).astype(float),
    }


class PastAttempts(NamedTuple):
    """The attempts already made (event position, hours, retry or the original), sorted
    by event and time, and per event the latest one's hours (NaN: none) and the retries
    among them: made once per search, for every round's candidates."""

    event: np.ndarray
    hours: np.ndarray
    is_retry: np.ndarray
    latest: np.ndarray
    retries: np.ndarray

    @classmethod
    def of(
        cls, event: np.ndarray, hours: np.ndarray, is_retry: np.ndarray, events: int
    ) -> PastAttempts:
        latest = np.full(events, np.nan)
        np.fmax.at(latest, event, hours)
        retries = np.bincount(event[is_retry], minlength=events).astype(float)
        return cls(event, hours, is_retry, latest, retries)


def message_state(
    event: np.ndarray,
    hours: np.ndarray,
    template: np.ndarray,
    start: np.ndarray,
    attempts: PastAttempts,
    message_event: np.ndarray,
    message_hours: np.ndarray,
    message_template: np.ndarray,
    message_is_update: np.ndarray,
    plausible_after_hours: float,
) -> dict[str, np.ndarray]:
    """:func:`timeline_state` of candidate messages, each alone with its event's context.

    The message search scores a few dozen (template, channel, time) candidates per event
    and round against the attempts already made and the messages already chosen; this
    computes their features without building a timeline per candidate (tested equal):

    * per candidate: ``event`` (position), ``hours``, ``template`` (integer codes,
      as ``message_template``'s);
    * per event: ``start`` (the original charge);
    * attempts made (:class:`PastAttempts`) and messages chosen (``message_*``; which ask
      for an update: ``message_is_update``), each sorted by event and time. An attempt at
      the candidate's very time counts as before it (the timeline orders attempts before
      messages); a chosen message at that time does not.

    A search's candidates come at or after every attempt of their event (the failed
    charge is the latest): their attempt columns are then the event's own, gathered;
    else one search of the attempts. One search of the messages: the update requests and
    the messages of each template among the earlier ones are read from running counts
    (exact integers, no wider search keys).
    """
    latest = attempts.latest[event]
    if (hours < latest).any():  # an attempt after some candidate: search
        retries_before, last_att = _attempts_before(event, hours, attempts)
    else:
        retries_before, last_att = attempts.retries[event], latest
    state = {
        "hours_since_failure": hours - start[event],
        "retries_before": retries_before,
        "hours_since_last_attempt": hours - last_att,
    }
    if len(message_hours) == 0:  # no message chosen yet (a search's first round)
        zero, missing = np.zeros(len(hours)), np.full(len(hours), np.nan)
        return state | {
            "messages_before": zero,
            "hours_since_last_message": missing,
            "update_requests_before": zero,
            "hours_since_update_request": missing,
            "same_template_before": zero,
            "card_update_likely": zero,
        }
    first, position = _search(message_event, message_hours, _Queries.of(event, hours))
    n_msg = position - first
    # per message row: the updates up to it, the latest of them (-1: none yet) and the
    # messages of each template code up to it (one row per code)
    m = len(message_hours)
    updates = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(message_is_update, out=updates[1:])
    n_upd = updates[position] - updates[first]
    latest_update = np.maximum.accumulate(np.where(message_is_update, np.arange(m), -1))
    codes = int(max(template.max(), message_template.max())) + 1
    sent = np.zeros((codes, m + 1), dtype=np.int64)
    np.cumsum(message_template == np.arange(codes)[:, None], axis=1, out=sent[:, 1:])
    row = template * (m + 1)
    same = sent.take(row + position) - sent.take(row + first)
    first_upd = np.full(len(start), np.nan)
    if message_is_update.any():
        np.fmin.at(first_upd, message_event[message_is_update], message_hours[message_is_update])
    # position 0 (nothing earlier at all) reads the last row: masked, as the count is 0
    return state | {
        "messages_before": n_msg.astype(float),
        "hours_since_last_message": hours
        - np.where(n_msg > 0, message_hours[position - 1], np.nan),
        "update_requests_before": n_upd.astype(float),
        "hours_since_update_request": hours
        - np.where(n_upd > 0, message_hours[latest_update[position - 1]], np.nan),
        "same_template_before": same.astype(float),
        "card_update_likely": (hours - first_upd[event] >= plausible_after_hours).astype(float),
    }


def _attempts_before(
    event: np.ndarray, hours: np.ndarray, attempts: PastAttempts
) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate: the retries among its event's attempts at or before it (float) and
    the latest of those attempts' hours (NaN: none)."""
    first, position = _search(attempts.event, attempts.hours, _Queries.of(event, hours), "right")
    last_att = (
        np.where(position > first, attempts.hours[position - 1], np.nan)
        if len(attempts.hours)
        else np.full(len(hours), np.nan)
    )
    retries = np.zeros(len(attempts.is_retry) + 1, dtype=np.int64)  # retries before each row
    np.cumsum(attempts.is_retry, out=retries[1:])
    return (retries[position] - retries[first]).astype(float), last_att
