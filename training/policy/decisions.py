"""What a decision-maker returns, and the protocol the API and batch scoring call.

Both the trained policy (a loaded decision artifact) and the rule-based fallback
implement :class:`Decider`, so the API, ``smartretry recommend`` and the evaluation
call one interface and cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd


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
        """Frames as described in :mod:`training.policy.schedule`."""
        ...
