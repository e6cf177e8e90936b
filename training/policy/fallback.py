"""The rules fallback: answers when no model is loaded (``fallback: true``).

Schedules come from :func:`training.policy.baselines.rules_baseline`; there is no model,
so every probability is null and the decision is deterministic (propensity 1.0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.config.baselines import BaselineConfig
from training.config.quiet_hours import QuietHours
from training.declines.rules import RetryRules
from training.policy.baselines import rules_baseline, rules_reasons
from training.policy.decisions import Decisions, new_decision_ids

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

    def decide(self, events: pd.DataFrame, previous_attempts: pd.DataFrame) -> Decisions:
        ev = events.reset_index(drop=True)
        decisions = self.rules.decide_many(ev, previous_attempts).reset_index(drop=True)
        schedules = rules_baseline(
            ev, previous_attempts, self.rules, self.config, decisions, quiet_hours=self.quiet_hours
        )
        reasons = rules_reasons(ev, decisions, schedules, self.quiet_hours)
        n = len(ev)
        table = pd.DataFrame(
            {
                "event_id": ev["event_id"].to_numpy(),
                "decline_category": decisions["category"].to_numpy(),
                "retryable": decisions["retryable"].to_numpy(),
                "expected_recovery_probability": np.full(n, np.nan),
                "baseline_recovery_probability": np.full(n, np.nan),
                "propensity": np.ones(n),
                "decision_id": new_decision_ids(n),
                "reasons": [[NO_MODEL, *r] for r in reasons],
                "fallback": np.ones(n, dtype=bool),
            }
        )
        retries = schedules.retries.assign(success_probability=np.nan)
        messages = schedules.messages.assign(response_probability=np.nan)
        return Decisions(events=table, retries=retries, messages=messages)
