"""What a decision-maker returns, and the protocol the API and batch scoring call.

Both the trained policy (a loaded decision artifact) and the rule-based fallback
implement :class:`Decider`, so the API, ``smartretry recommend`` and the evaluation
call one interface and cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

DECISION_ID_LETTERS = 24  # 26**24 ≈ 2**113 ids: no collisions in practice


def new_decision_ids(n: int) -> np.ndarray:
    """``n`` random ids ``dec_`` + 24 lower-case letters.

    No digits on purpose: billing systems echo ``decision_id`` back to ``/v1/outcomes``,
    which refuses anything holding a Luhn-valid 13-19 digit run (a card number) or an
    IBAN, and a hex id holds such a run about once in 3,000 ids.
    """
    codes = np.random.default_rng().integers(0, 26, size=(n, DECISION_ID_LETTERS), dtype=np.uint8)
    letters = (codes + ord("a")).view(f"S{DECISION_ID_LETTERS}").ravel()
    return np.char.add("dec_", letters.astype(str)).astype(object)


@dataclass
class Decisions:
    """Decisions for many events (long format, keyed by ``event_id``).

    events:   event_id, decline_category, retryable, expected_recovery_probability,
              baseline_recovery_probability, propensity, decision_id, reasons (list[str]),
              fallback (bool)
    retries:  event_id, at (UTC), success_probability (NaN when no model)
    messages: event_id, send_at (UTC), channel, template, response_probability (NaN when
              no model)
    Probabilities are NaN (``null`` in JSON) when no model is loaded (fallback).
    """

    events: pd.DataFrame
    retries: pd.DataFrame
    messages: pd.DataFrame


class Decider(Protocol):
    """Anything that turns failure events into schedules."""

    @property
    def model_version(self) -> str: ...

    @property
    def fallback(self) -> bool: ...

    def describe(self) -> dict[str, Any]:
        """Name, version, training data period and evaluation figures (GET /v1/model)."""
        ...

    def decide(self, events: pd.DataFrame, previous_attempts: pd.DataFrame) -> Decisions:
        """Frames as described in :mod:`training.core.frames`."""
        ...
