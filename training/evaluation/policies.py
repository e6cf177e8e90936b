"""The schedules every compared policy proposes for the same held-out failure events."""

from __future__ import annotations

import pandas as pd

from training.config.policy import PolicyConfig
from training.core.frames import Schedules
from training.policy.baselines import fixed_schedule, no_action, rules_baseline
from training.policy.decider import ModelDecider, search_schedules
from training.policy.message_pruning import ScheduleValues
from training.policy.scorer import past_rows

POLICIES = ("learned", "fixed", "rules", "no_action", "oracle")


def learned_schedules(decider: ModelDecider, events: pd.DataFrame) -> Schedules:
    """What the served policy decides (exploration off: its greedy choice)."""
    plan = decider.plan(events, None, explore=False)
    return Schedules(
        plan.retries.frame(),
        plan.messages.frame()[["event_id", "send_at", "template", "channel"]],
    )


def searched_schedules(
    scorer,
    decider: ModelDecider,
    events: pd.DataFrame,
    config: PolicyConfig,
    values: ScheduleValues | None = None,
) -> Schedules:
    """The policy's search run with another scorer (the ground truth, for the oracle);
    ``values``: that scorer's expected recovery of whole schedules (message pruning)."""
    events = events.reset_index(drop=True)
    decisions = decider.rules.decide_many(events, None).reset_index(drop=True)
    features = events.set_index("event_id")
    past = past_rows(events, None)
    searched = search_schedules(
        scorer, events, features, past, decisions, decider.templates, config, decider.rules, values
    )
    retries, messages = searched.retries.frame(), searched.messages.frame()
    return Schedules(retries, messages[["event_id", "send_at", "template", "channel"]])


def baseline_schedules(decider: ModelDecider, events: pd.DataFrame) -> dict[str, Schedules]:
    decisions = decider.rules.decide_many(events, None)
    config, quiet = decider.config.baseline, decider.config.quiet_hours
    return {
        "fixed": fixed_schedule(events, None, decider.rules, config, decisions, quiet_hours=quiet),
        "rules": rules_baseline(events, None, decider.rules, config, decisions, quiet_hours=quiet),
        "no_action": no_action(events),
    }
