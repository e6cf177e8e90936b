"""A lone request's message search (:func:`~training.policy.message_search._plan_one`,
its rounds on Python integers) plans what the general loop plans for the same event: the
general loop run on the event beside a second one that may send nothing (no budget), with
score reuse on and off, each round in one model call or in two."""

from __future__ import annotations

import pandas as pd
import pytest

import training.policy.message_search as message_search
from training.features.invoice import events_from_history
from training.policy.message_search import plan_messages
from training.policy.scorer import past_rows


@pytest.fixture(scope="module")
def case(small_world):
    decider = small_world.artifact.decider()
    events = events_from_history(small_world.history).tail(24).reset_index(drop=True)
    events["max_messages"] = 3
    events.loc[::3, "sms_opt_in"] = True
    events.loc[1::4, "max_messages"] = 2
    decisions = decider.rules.decide_many(events, None).reset_index(drop=True)
    decisions.loc[::5, "needs_update_first"] = True  # an update request first
    return decider, events, decisions, past_rows(events, None)


def _plan(case, rows: list[int], reuse: bool) -> pd.DataFrame:
    decider, events, decisions, past = case
    events, decisions = events.iloc[rows].copy(), decisions.iloc[rows]
    events.iloc[1:, events.columns.get_loc("max_messages")] = 0  # only the first may send
    past = past[past["event_id"].isin(events["event_id"])]
    features = decider.scorer.event_features(events, None)
    config = decider.config.model_copy(update={"reuse_message_scores": reuse})
    plan = plan_messages(
        decider.scorer, events, features, past, decisions, decider.templates, config,
        decider.rules.limits.update_requests,
    )  # fmt: skip
    return plan.frame()


@pytest.mark.parametrize("merge_rows", [0, 10**9])
@pytest.mark.parametrize("reuse", [True, False])
def test_a_lone_event_is_planned_as_the_general_loop_plans_it(case, monkeypatch, reuse, merge_rows):
    monkeypatch.setattr(message_search, "MERGE_EXTRA_ROWS", merge_rows)
    lone_path = []
    plan_one = message_search._plan_one
    monkeypatch.setattr(message_search, "_plan_one", lambda *a: lone_path.append(1) or plan_one(*a))
    planned = 0
    for i in range(len(case[1])):
        alone = _plan(case, [i], reuse)
        general = _plan(case, [i, (i + 1) % len(case[1])], reuse)
        pd.testing.assert_frame_equal(alone, general)
        planned += len(alone)
    assert len(lone_path) == len(case[1])  # every lone plan took the lone path
    assert planned >= len(case[1])  # and most of them send something
