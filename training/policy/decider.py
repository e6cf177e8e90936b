"""The learned policy as a :class:`Decider`: search, explore, score, explain."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.declines.rules import RetryRules
from training.policy.baselines import fixed_schedule
from training.policy.config import PolicyConfig
from training.policy.decisions import Decisions, new_decision_ids
from training.policy.reasons import model_reasons
from training.policy.scorer import ModelScorer, build_timeline, past_rows
from training.policy.search import plan_messages, plan_retries, retry_windows

HOUR = pd.Timedelta(hours=1)


class ModelDecider:
    """Decisions from a trained artifact; the same object the API, batch scoring and the
    evaluation use."""

    def __init__(
        self,
        scorer: ModelScorer,
        rules: RetryRules,
        config: PolicyConfig,
        templates: list[str],
        model_version: str,
        description: dict[str, Any] | None = None,
    ) -> None:
        self.scorer = scorer
        self.rules = rules
        self.config = config
        self.templates = templates
        self._version = model_version
        self._description = description or {}

    @property
    def model_version(self) -> str:
        return self._version

    @property
    def fallback(self) -> bool:
        return False

    def describe(self) -> dict[str, Any]:
        return {"model_version": self._version, "fallback": False, **self._description}

    def plan(
        self, events: pd.DataFrame, previous_attempts: pd.DataFrame | None, explore: bool = True
    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray]:
        """Rules decision, event features, retries, messages and propensities."""
        events = events.reset_index(drop=True)
        decisions = self.rules.decide_many(events, previous_attempts).reset_index(drop=True)
        features = self.scorer.event_features(events, previous_attempts)
        past = past_rows(events, previous_attempts)
        messages = plan_messages(
            self.scorer, events, features, past, decisions, self.templates, self.config
        )
        limits = self.rules.limits
        count, start, end = retry_windows(
            events, decisions, messages, limits.update_plausible_after_hours, limits.min_spacing_hours
        )
        retries = plan_retries(
            self.scorer, events, features, past, messages, count, start, end,
            limits.min_spacing_hours, self.config,
        )
        propensity = np.ones(len(events))
        if explore and self.config.exploration_rate > 0 and len(retries):
            retries, propensity = self._explore(events, retries, start, end)
        return decisions, features, retries, messages, propensity

    def _explore(
        self, events: pd.DataFrame, retries: pd.DataFrame, start: np.ndarray, end: np.ndarray
    ) -> tuple[pd.DataFrame, np.ndarray]:
        """With probability ``exploration_rate`` shift every retry by one of the configured
        offsets (kept only where the whole shifted schedule stays inside the limits)."""
        shifts = self.config.exploration_shifts_hours
        arms = len(shifts) + 1
        rate = self.config.exploration_rate
        draw = np.random.default_rng().random(len(events))
        arm = np.where(draw < rate, np.floor(draw / rate * arms).astype(int), 0)
        arm = np.minimum(arm, arms - 1)  # arm 0: the searched schedule
        position = pd.Series(np.arange(len(events)), index=events["event_id"].to_numpy())
        pos = position.loc[retries["event_id"].to_numpy()].to_numpy()
        offset = np.array([0, *shifts])[arm[pos]] * HOUR
        moved = retries["at"] + pd.to_timedelta(offset)
        moved_ns = pd.DatetimeIndex(moved).asi8
        inside = (moved_ns >= start[pos]) & (moved_ns < end[pos])
        valid = pd.Series(inside).groupby(pos).all()
        arm = np.where(valid.reindex(np.arange(len(events)), fill_value=True).to_numpy(dtype=bool), arm, 0)
        offset = np.array([0, *shifts])[arm[pos]] * HOUR
        retries = retries.assign(at=retries["at"] + pd.to_timedelta(offset))
        propensity = np.where(arm == 0, 1.0 - rate + rate / arms, rate / arms)
        return retries, propensity

    def expected_recovery(
        self,
        events: pd.DataFrame,
        features: pd.DataFrame,
        past: pd.DataFrame,
        retries: pd.DataFrame,
        messages: pd.DataFrame,
    ) -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
        """Model estimate per event, plus per-row probabilities of retries and messages."""
        keys = pd.DataFrame({"key": events["event_id"].to_numpy(), "event_id": events["event_id"].to_numpy()})
        timeline = build_timeline(
            keys,
            past,
            retries.assign(key=retries["event_id"])[["key", "at"]],
            messages.assign(key=messages["event_id"])[["key", "send_at", "template", "channel"]],
        )
        p = self.scorer.candidate_probabilities(features, timeline)
        p_self = self.scorer.self_cure_probability(features, events.set_index("event_id")["window_days"])
        expected = self.scorer.recovery_probability(keys, timeline, p_self, p)
        rows = timeline.loc[p.index].assign(p=p.to_numpy())
        retry_p = rows[rows["kind"] == "retry"][["event_id", "t", "p"]].rename(
            columns={"t": "at", "p": "success_probability"}
        )
        message_p = rows[rows["kind"] == "message"][["event_id", "t", "template", "channel", "p"]].rename(
            columns={"t": "send_at", "p": "response_probability"}
        )
        return expected, retry_p, message_p

    def decide(self, events: pd.DataFrame, previous_attempts: pd.DataFrame | None) -> Decisions:
        events = events.reset_index(drop=True)
        decisions, features, retries, messages, propensity = self.plan(events, previous_attempts)
        past = past_rows(events, previous_attempts)
        expected, retry_p, message_p = self.expected_recovery(events, features, past, retries, messages)
        fixed = fixed_schedule(events, previous_attempts, self.rules, self.config.baseline, decisions)
        baseline, _, _ = self.expected_recovery(events, features, past, fixed.retries, fixed.messages)
        ids = events["event_id"]
        expected_v = ids.map(expected).to_numpy()
        baseline_v = ids.map(baseline).to_numpy()
        reasons = model_reasons(
            events, decisions, features, retries, messages, expected_v, baseline_v, self.config
        )
        summary = pd.DataFrame(
            {
                "event_id": ids.to_numpy(),
                "decline_category": decisions["category"].to_numpy(),
                "retryable": decisions["retryable"].to_numpy(),
                "expected_recovery_probability": expected_v,
                "baseline_recovery_probability": baseline_v,
                "propensity": propensity,
                "decision_id": new_decision_ids(len(events)),
                "reasons": reasons,
                "fallback": False,
            }
        )
        return Decisions(
            summary,
            retry_p.sort_values(["event_id", "at"], kind="stable").reset_index(drop=True),
            message_p.sort_values(["event_id", "send_at"], kind="stable").reset_index(drop=True),
        )
