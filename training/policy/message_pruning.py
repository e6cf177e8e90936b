"""How many messages: drop those the whole schedule does not need.

The greedy message search adds a message whenever its own response probability is worth
it, so it nearly always fills the budget. A message also changes what comes after it:
later retries and messages are scored with one more message before them, and in a
history where customers tire of dunning (or pay through the link what a retry would have
collected anyway) the schedule without it can recover more. This step judges each
message by its *marginal value to the whole schedule*, with the same scorer that chose
it: backward elimination, one message per event per round, as long as the schedule
without it loses less than ``min_gain`` of expected recovery. Zero messages is a valid
answer. The update request that opens the retry window of a decline needing a new card
is never dropped (the rules allow those retries only after it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np
import pandas as pd

from training.config.retry_limits import UpdateRequests
from training.core.arrays import group_first, rank_in_group
from training.core.columnar import Table, column_array
from training.features.dunning_state import is_update_request
from training.policy.schedule_rows import MessageRows, RetryRows

Retries: TypeAlias = pd.DataFrame | RetryRows
Messages: TypeAlias = pd.DataFrame | MessageRows
Schedule: TypeAlias = tuple[Retries, Messages] | tuple[Retries, Messages, np.ndarray]
"""Retries (event_id, at) and messages (frames or rows); with a third item ``keep``
(booleans over the messages' rows), the schedule of those messages only: the pruning's
trial schedules, which would otherwise each cost a copy of the rows."""
ScheduleValues = Callable[[list[Schedule]], list[np.ndarray]]
"""Expected recovery of each schedule, one array per schedule in the events' order."""


def schedule_retries(schedule: Schedule) -> pd.DataFrame:
    """A schedule's retries as a frame."""
    retries = schedule[0]
    return retries.frame() if isinstance(retries, RetryRows) else retries


def schedule_messages(schedule: Schedule) -> pd.DataFrame:
    """A schedule's messages as a frame (its ``keep`` rows, when it has one)."""
    messages = schedule[1]
    if isinstance(messages, MessageRows):
        messages = messages.frame()
    if len(schedule) == 3:
        return messages[schedule[2]]
    return messages


def _positions(ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Position of each value in the unique ``ids`` (-1 if absent); one id without an index."""
    if len(ids) == 1:
        return np.where(values == ids[0], 0, -1)
    return pd.Index(ids).get_indexer(values)


def protected_messages(
    events: Table,
    decisions: Table,
    messages: Messages,
    update: UpdateRequests,
) -> np.ndarray:
    """True on each event's first update request when its decline needs an update first."""
    messages = MessageRows.of(messages)
    if len(messages) == 0:
        return np.zeros(0, dtype=bool)
    needs = column_array(decisions, "needs_update_first", bool)
    asks = is_update_request(messages.template, update)
    ids = messages.event_id
    first_ask = np.zeros(len(messages), dtype=bool)
    ask_rows = np.flatnonzero(asks)
    first_ask[ask_rows[group_first(ids[ask_rows])]] = True  # rows sorted by event, time
    pos = _positions(column_array(events, "event_id"), ids)
    return first_ask & np.where(pos >= 0, needs[pos], False)


def prune_messages(
    events: Table,
    retries: Retries,
    messages: Messages,
    protected: np.ndarray,
    values: ScheduleValues,
    min_gain: float,
) -> MessageRows:
    """``messages`` (sorted by event id, then time) without those whose marginal value to
    the whole schedule is below ``min_gain``."""
    ids = column_array(events, "event_id")
    messages = MessageRows.of(messages)
    keep = np.ones(len(messages), dtype=bool)
    current = messages
    while keep.any():
        # ``current`` is the schedule scored (and, when nothing more is dropped, returned):
        # the caller's scores of it can be reused for the decision's own figures
        if len(current) != keep.sum():
            current = messages.take(np.flatnonzero(keep))
        pos = _positions(ids, current.event_id)
        rank = rank_in_group(pos)
        ranks = int(rank.max()) + 1
        schedules: list[Schedule] = [(retries, current)]
        schedules += [(retries, current, rank != r) for r in range(ranks)]
        value = values(schedules)
        full = value[0]
        gain = np.full((len(ids), ranks), np.inf)  # what message r adds to its schedule
        gain[pos, rank] = full[pos] - np.stack(value[1:])[rank, pos]
        gain[pos[protected[keep]], rank[protected[keep]]] = np.inf
        worst = gain.argmin(axis=1)
        drop_event = gain[np.arange(len(ids)), worst] < min_gain
        if not drop_event.any():
            return current
        rows = np.flatnonzero(keep)
        dropped = drop_event[pos] & (rank == worst[pos])
        keep[rows[dropped]] = False
    return messages.take(np.flatnonzero(keep))
