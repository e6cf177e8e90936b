"""A schedule's retries and messages as arrays, the form the searches pass each other.

The message search, the retry windows, the retry search, the message pruning, the
whole-schedule scoring and the decision's own figures all read a schedule's columns; as
frames each read cost a column lookup (and each time column a conversion), and each
frame a block manager: for a lone request those fixed costs were most of the work
between the searches. These hold the columns as they are computed (times as int64
nanoseconds, UTC), for one request and for a batch alike; :meth:`frame` makes the frame
of :mod:`training.core.frames` for callers that want one (the evaluation), and
:meth:`of` takes either form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.core.columnar import column_array, column_values, frame_of_arrays
from training.core.localtime import from_ns, to_ns


@dataclass(frozen=True, eq=False)
class RetryRows:
    """Retries: ``event_id`` (as the events hold them) and ``at`` (int64 ns, UTC), grouped
    by event id and by time within an event. Never changed in place (the scores of a
    schedule are kept by the identity of its rows)."""

    event_id: np.ndarray
    at: np.ndarray

    def __len__(self) -> int:
        return len(self.at)

    @classmethod
    def of(cls, retries: pd.DataFrame | RetryRows) -> RetryRows:
        """``retries`` as rows (a frame's columns read once)."""
        if isinstance(retries, RetryRows):
            return retries
        return cls(column_array(retries, "event_id"), to_ns(column_values(retries, "at")))

    @classmethod
    def empty(cls) -> RetryRows:
        return cls(np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64))

    def frame(self) -> pd.DataFrame:
        """event_id, at (UTC timestamps)."""
        return frame_of_arrays({"event_id": self.event_id, "at": from_ns(self.at)})


@dataclass(frozen=True, eq=False)
class MessageRows:
    """Messages: ``event_id``, ``send_at`` (int64 ns, UTC), ``template`` and ``channel``
    (labels, objects) and the ``response_probability`` the search found (NaN when
    unknown), sorted by event id, then time. Never changed in place."""

    event_id: np.ndarray
    send_at: np.ndarray
    template: np.ndarray
    channel: np.ndarray
    response_probability: np.ndarray

    def __len__(self) -> int:
        return len(self.send_at)

    @classmethod
    def of(cls, messages: pd.DataFrame | MessageRows) -> MessageRows:
        """``messages`` as rows (a frame's columns read once; its response probability,
        when it has one)."""
        if isinstance(messages, MessageRows):
            return messages
        names = messages.columns
        p = (
            column_array(messages, "response_probability", float)
            if "response_probability" in names
            else np.full(len(messages), np.nan)
        )
        return cls(
            column_array(messages, "event_id"),
            to_ns(column_values(messages, "send_at")),
            column_array(messages, "template", object),
            column_array(messages, "channel", object),
            p,
        )

    @classmethod
    def empty(cls) -> MessageRows:
        return cls(
            np.zeros(0, dtype=object),
            np.zeros(0, dtype=np.int64),
            np.zeros(0, dtype=object),
            np.zeros(0, dtype=object),
            np.zeros(0),
        )

    def take(self, rows: np.ndarray) -> MessageRows:
        """The rows at ``rows`` (positions or a boolean mask), as new rows."""
        return MessageRows(
            self.event_id[rows],
            self.send_at[rows],
            self.template[rows],
            self.channel[rows],
            self.response_probability[rows],
        )

    def frame(self) -> pd.DataFrame:
        """event_id, send_at (UTC timestamps), template, channel, response_probability."""
        return frame_of_arrays(
            {
                "event_id": self.event_id,
                "send_at": from_ns(self.send_at),
                "template": self.template,
                "channel": self.channel,
                "response_probability": self.response_probability,
            }
        )
