"""What a decision-maker returns, and the protocol the API and batch scoring call.

Both the trained policy (a loaded decision artifact) and the rule-based fallback
implement :class:`Decider`, so the API, ``smartretry recommend`` and the evaluation
call one interface and cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

import numpy as np
import pandas as pd

from training.core.columnar import Table
from training.core.localtime import from_ns, to_ns
from training.core.randomness import process_rng

DECISION_ID_LETTERS = 24  # 26**24 ≈ 2**113 ids: no collisions in practice


def new_decision_ids(n: int) -> np.ndarray:
    """``n`` random ids ``dec_`` + 24 lower-case letters.

    No digits on purpose: billing systems echo ``decision_id`` back to ``/v1/outcomes``,
    which refuses anything holding a Luhn-valid 13-19 digit run (a card number) or an
    IBAN, and a hex id holds such a run about once in 3,000 ids.
    """
    codes = process_rng().integers(0, 26, size=(n, DECISION_ID_LETTERS), dtype=np.uint8)
    letters = (codes + ord("a")).view(f"S{DECISION_ID_LETTERS}").ravel()
    return np.char.add("dec_", letters.astype(str)).astype(object)


Columns: TypeAlias = dict[str, Any]
"""Columns of one table as arrays (or lists), one value per row, times as int64 ns (UTC)."""

FRAME_TIMES = {"retries": "at", "messages": "send_at"}  # the time column of each table


@dataclass(frozen=True)
class DecisionColumns:
    """:class:`Decisions` as column arrays, times as int64 nanoseconds (UTC, NaT the
    smallest int64): what a decider has before any frame is made."""

    events: Columns
    retries: Columns
    messages: Columns


class Decisions:
    """Decisions for many events (long format, keyed by ``event_id``).

    events:   event_id, decline_category, retryable, expected_recovery_probability,
              baseline_recovery_probability, propensity, decision_id, reasons (list[str]),
              fallback (bool)
    retries:  event_id, at (UTC), success_probability (NaN when no model), propensity
    messages: event_id, send_at (UTC), channel, template, response_probability (NaN when
              no model), propensity
    Probabilities are NaN (``null`` in JSON) when no model is loaded (fallback). A row's
    ``propensity`` is its own probability under the exploration (the event's is the
    whole schedule's: :mod:`training.policy.exploration`); a decider may leave it out
    (then the event's stands for it).

    Made from frames, or from columns (:meth:`from_columns`) whose frames are built only
    when read: the API's responses read the columns (:meth:`columns`), so a lone request
    pays for no frame. A frame, once read, is what :meth:`columns` reports (a caller may
    change it in place).
    """

    def __init__(self, events: pd.DataFrame, retries: pd.DataFrame, messages: pd.DataFrame) -> None:
        self._frames: dict[str, pd.DataFrame] = {
            "events": events,
            "retries": retries,
            "messages": messages,
        }
        self._columns: dict[str, Columns] = {}

    @classmethod
    def from_columns(cls, columns: DecisionColumns) -> Decisions:
        decisions = cls.__new__(cls)
        decisions._frames = {}
        decisions._columns = {
            "events": columns.events,
            "retries": columns.retries,
            "messages": columns.messages,
        }
        return decisions

    @property
    def events(self) -> pd.DataFrame:
        return self._frame("events")

    @property
    def retries(self) -> pd.DataFrame:
        return self._frame("retries")

    @property
    def messages(self) -> pd.DataFrame:
        return self._frame("messages")

    def _frame(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            columns = dict(self._columns[name])
            time = FRAME_TIMES.get(name)
            if time is not None:
                columns[time] = from_ns(columns[time])
            self._frames[name] = pd.DataFrame(columns, copy=False)
        return self._frames[name]

    def columns(self) -> DecisionColumns:
        """The three tables as columns (times as int64 ns), read from a frame where one
        was made or given."""
        return DecisionColumns(*(self._table(name) for name in ("events", "retries", "messages")))

    def _table(self, name: str) -> Columns:
        frame = self._frames.get(name)
        if frame is None:
            return self._columns[name]
        time = FRAME_TIMES.get(name)
        return {
            column: to_ns(frame[column]) if column == time else frame[column].to_numpy()
            for column in frame.columns
        }


class Decider(Protocol):
    """Anything that turns failure events into schedules."""

    @property
    def model_version(self) -> str: ...

    @property
    def fallback(self) -> bool: ...

    def describe(self) -> dict[str, Any]:
        """Name, version, training data period and evaluation figures (GET /v1/model)."""
        ...

    def decide(self, events: Table, previous_attempts: pd.DataFrame) -> Decisions:
        """Frames as described in :mod:`training.core.frames` (``events`` as a frame or
        as its columns, :class:`~training.core.columnar.ColumnTable`: the service's)."""
        ...
