"""The rows of whole schedules laid out for scoring (``ModelDecider.score_laid_out``):
the events' past rows per schedule, then every schedule's retries, then its messages.

:func:`general_layout` is numpy for any number of events; :func:`lone_layout` gives the
same arrays (values, dtypes, objects) for one event's schedules from Python lists,
where the general layout's two dozen numpy calls on a few dozen rows cost more than
their work (a lone request's whole-schedule scoring)."""

from __future__ import annotations

from itertools import compress
from typing import NamedTuple

import numpy as np
import pandas as pd

from training.core.columnar import Table, column_array, column_values
from training.core.localtime import to_ns
from training.policy.scorer import past_of_events

Columns = dict[str, np.ndarray]
"""A schedule part's columns: event_id, ns and, for messages, template and channel."""


class Layout(NamedTuple):
    """The past rows (``n_past`` of them) then the candidate rows of every schedule:
    ``key`` is schedule * events + the event's position; ``event``: the candidate rows'
    event positions; ``sizes``: the rows of each part (every schedule's retries, then
    every schedule's messages)."""

    key: np.ndarray
    ns: np.ndarray
    kind: np.ndarray
    template: np.ndarray
    channel: np.ndarray
    candidate: np.ndarray
    n_past: int
    sizes: list[int]
    event: np.ndarray


def kept(columns: Columns, keep: np.ndarray | None) -> Columns:
    """The part's columns of the ``keep`` rows only (all when None)."""
    if keep is None:
        return columns
    return {name: values[keep] for name, values in columns.items()}


def general_layout(
    ids: np.ndarray,
    past: Table,
    retries: list[Columns],
    messages: list[tuple[Columns, np.ndarray | None]],
) -> Layout:
    """The layout of the schedules' parts (``messages``: columns and the rows kept) over
    the events ``ids``' pasts."""
    n, count = len(ids), len(retries)
    h_key, _, h_ns, h_kind = past_of_events(np.arange(n * count), np.tile(ids, count), past)
    message_parts = [kept(columns, keep) for columns, keep in messages]
    parts = [*retries, *message_parts]
    sizes = [len(part["ns"]) for part in parts]
    offset = np.repeat(np.tile(np.arange(count, dtype=np.int64) * n, 2), sizes)
    owners = np.concatenate([part["event_id"] for part in parts]) if parts else np.zeros(0)
    event_pos = _positions(ids, owners)
    n_h, n_r, n_m = len(h_key), sum(sizes[:count]), sum(sizes[count:])
    key = np.concatenate([h_key.astype(np.int64), offset + event_pos])
    ns = np.concatenate([h_ns, *(part["ns"] for part in parts)])
    kind = np.concatenate([h_kind, np.full(n_r, "retry", object), np.full(n_m, "message", object)])
    nothing = np.full(n_h + n_r, None, dtype=object)
    template = np.concatenate([nothing, *(part["template"] for part in message_parts)])
    channel = np.concatenate([nothing, *(part["channel"] for part in message_parts)])
    candidate = np.arange(len(key)) >= n_h
    return Layout(key, ns, kind, template, channel, candidate, n_h, sizes, key[n_h:] % n)


def lone_layout(
    ids: np.ndarray,
    past: Table,
    retries: list[Columns],
    messages: list[tuple[Columns, np.ndarray | None]],
) -> Layout | None:
    """:func:`general_layout` of one event's schedules on Python lists: the same arrays.
    None (take the general layout) unless there is one event, every past row and every
    part's row is of it."""
    past_events = column_array(past, "event_id").tolist()
    if len(ids) != 1 or not past_events or not retries:
        return None
    event = ids[0]
    if not all(e == event for e in past_events):
        return None
    count, n_h = len(retries), len(past_events) * len(retries)
    past_ns = to_ns(column_values(past, "t"))
    sizes = [len(part["ns"]) for part in retries]
    owners: list[object] = []
    ns_parts, templates, channels = [past_ns] * count, [], []
    for part in retries:
        owners += part["event_id"].tolist()
        ns_parts.append(part["ns"])
    lists: dict[int, tuple[list, list, list]] = {}  # a messages frame's columns, once
    for columns, keep in messages:
        if id(columns) not in lists:
            lists[id(columns)] = (
                columns["event_id"].tolist(),
                columns["template"].tolist(),
                columns["channel"].tolist(),
            )
        owner, template, channel = lists[id(columns)]
        if keep is None:
            ns_parts.append(columns["ns"])
        else:
            flags = keep.tolist()
            owner, template, channel = (list(compress(c, flags)) for c in lists[id(columns)])
            ns_parts.append(columns["ns"][keep])
        sizes.append(len(owner))
        owners += owner
        templates += template
        channels += channel
    if not all(o == event for o in owners):
        return None
    ns = np.concatenate(ns_parts)
    key = [s for s in range(count) for _ in past_events]
    for j, size in enumerate(sizes):
        key += [j % count] * size
    n_r, n_m = sum(sizes[:count]), sum(sizes[count:])
    total = n_h + n_r + n_m
    kinds = column_array(past, "kind", object).tolist() * count
    nothing = [None] * (n_h + n_r)
    return Layout(
        np.array(key, dtype=np.int64),
        ns,
        _objects([*kinds, *(["retry"] * n_r), *(["message"] * n_m)], total),
        _objects(nothing + templates, total),
        _objects(nothing + channels, total),
        np.arange(total) >= n_h,
        n_h,
        sizes,
        np.zeros(n_r + n_m, dtype=np.int64),
    )


def _objects(values: list, count: int) -> np.ndarray:
    """An object array of ``values`` as they are (a sequence among them is one element)."""
    return np.fromiter(values, dtype=object, count=count)


def _positions(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in the unique ``ids`` (-1 if absent); one id without an index."""
    if len(ids) == 1:
        return np.where(values == ids[0], 0, -1)
    return pd.Index(ids).get_indexer(values)
