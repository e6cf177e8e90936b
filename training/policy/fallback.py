"""The rules fallback: answers when no model is loaded (``fallback: true``).

Schedules come from :func:`training.policy.baselines.rules_baseline` (as columns); there is no model,
so every probability is null and the decision is deterministic (propensity 1.0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.config.baselines import BaselineConfig
from training.config.quiet_hours import QuietHours
from training.core.columnar import Table, as_frame, column_array, object_array
from training.core.frames import numbered
from training.declines.rules import RetryRules
from training.policy.baselines import rules_baseline_columns, rules_reasons
from training.policy.decisions import DecisionColumns, Decisions, new_decision_ids

FALLBACK_VERSION = "rules-fallback/1"
NO_MODEL = "no model loaded: rule-based schedule (fallback)"


class FallbackDecider:
    """A :class:`~training.policy.decisions.Decider` built on the rules baseline."""

    def __init__(
        self,
        config: BaselineConfig | None = None,
        rules: RetryRules | None = None,
        quiet_hours: QuietHours | None = None,
    ) -> None:
        self.config = config or BaselineConfig()
        self.rules = rules or RetryRules()
        self.quiet_hours = quiet_hours or QuietHours()

    @property
    def model_version(self) -> str:
        return FALLBACK_VERSION

    @property
    def fallback(self) -> bool:
        return True

    def describe(self) -> dict[str, Any]:
        return {
            "name": "rules-fallback",
            "version": FALLBACK_VERSION,
            "fallback": True,
            "training_data": None,
            "evaluation": None,
            "decline_table_version": self.rules.table.version,
        }

    def decide(self, events: Table, previous_attempts: pd.DataFrame) -> Decisions:
        """The rules baseline's schedules as columns (frames are built only if read)."""
        ev = numbered(as_frame(events))
        decisions = numbered(self.rules.decide_many(ev, previous_attempts))
        retries, messages = rules_baseline_columns(
            ev, previous_attempts, self.rules, self.config, decisions, quiet_hours=self.quiet_hours
        )
        reasons = rules_reasons(ev, decisions, (retries, messages), self.quiet_hours)
        n = len(ev)
        summary = {
            "event_id": column_array(ev, "event_id"),
            "decline_category": column_array(decisions, "category"),
            "retryable": column_array(decisions, "retryable"),
            "expected_recovery_probability": np.full(n, np.nan),
            "baseline_recovery_probability": np.full(n, np.nan),
            "propensity": np.ones(n),
            "decision_id": new_decision_ids(n),
            "reasons": object_array([[NO_MODEL, *r] for r in reasons]),
            "fallback": np.ones(n, dtype=bool),
        }
        n_r, n_m = len(retries["at"]), len(messages["send_at"])
        retries = {
            **retries,
            "success_probability": np.full(n_r, np.nan),
            "propensity": np.ones(n_r),
        }
        messages = {
            **messages,
            "response_probability": np.full(n_m, np.nan),
            "propensity": np.ones(n_m),
        }
        return Decisions.from_columns(DecisionColumns(summary, retries, messages))
