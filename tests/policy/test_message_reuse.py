"""The message search's later rounds pick among the times the last scored round tried
(``reuse_message_scores``): fewer model calls, the same plan lone or in a batch, and the
oracle and old artifacts still score every round."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config.policy import PolicyConfig
from training.core.localtime import HOUR_NS, to_ns
from training.features.invoice import events_from_history
from training.policy.message_search import _Candidates, _Scored, plan_messages
from training.policy.scorer import past_rows


@pytest.fixture(scope="module")
def case(small_world):
    decider = small_world.artifact.decider()
    events = events_from_history(small_world.history).tail(40).reset_index(drop=True)
    events["max_messages"] = 3
    events.loc[::3, "sms_opt_in"] = True
    decisions = decider.rules.decide_many(events, None).reset_index(drop=True)
    features = decider.scorer.event_features(events, None)
    return decider, events, decisions, features, past_rows(events, None)


def _plan(
    case, monkeypatch, count_rows, reuse: bool, merge_rows: int, lone: int | None = None
) -> tuple[pd.DataFrame, list[int]]:
    """The message plan and the rows of each message-model call it took (``lone``: of
    that event alone)."""
    import training.policy.message_search as message_search

    decider, events, decisions, features, past = case
    if lone is not None:
        events, decisions = events.iloc[[lone]], decisions.iloc[[lone]]
        past = past[past["event_id"] == events["event_id"].iloc[0]]
    config = decider.config.model_copy(update={"reuse_message_scores": reuse})
    calls = count_rows(decider)
    monkeypatch.setattr(message_search, "MERGE_EXTRA_ROWS", merge_rows)
    limits = decider.rules.limits
    plan = plan_messages(
        decider.scorer, events, features, past, decisions, decider.templates, config,
        limits.update_requests,
    )  # fmt: skip
    monkeypatch.undo()
    return plan.frame(), calls


def test_scored_keeps_each_events_last_scored_round():
    scored = _Scored(3)
    hours = np.array([0, 10, 30, 5, 40]) * HOUR_NS
    scored.keep(
        _Candidates.of(np.array([0, 0, 0, 1, 1]), hours, np.zeros(5), np.zeros(5)), np.arange(5.0)
    )
    later = np.array([50, 70]) * HOUR_NS  # a later round scores event 1 again
    scored.keep(
        _Candidates.of(np.array([1, 1]), later, np.ones(2), np.ones(2)), np.array([7.0, 8.0])
    )
    earliest = np.array([10, 0, 0]) * HOUR_NS
    window_end = np.array([30, 60, 60]) * HOUR_NS
    every = np.ones(3, dtype=bool)
    rows, p = scored.still_allowed(every, earliest, window_end)
    # event 0: from 10 h up to (not at) the window's end; event 1: only the later round's
    assert rows.pos.tolist() == [0, 1] and (rows.ns // HOUR_NS).tolist() == [10, 50]
    assert p.tolist() == [1.0, 7.0] and rows.template.tolist() == [0, 1]
    rows, _ = scored.still_allowed(np.array([False, True, True]), earliest, window_end)
    assert rows.pos.tolist() == [1]


def test_reused_rounds_call_the_model_less_and_plan_the_same_lone_or_in_a_batch(
    case, monkeypatch, count_model_rows
):
    decider, events, *_ = case
    scored_every_round, calls_every_round = _plan(case, monkeypatch, count_model_rows, False, 10**9)
    batch, batch_calls = _plan(
        case, monkeypatch, count_model_rows, True, 0
    )  # each round in two calls
    lone, lone_calls = _plan(
        case, monkeypatch, count_model_rows, True, 10**9
    )  # each round in one call
    pd.testing.assert_frame_equal(lone, batch)
    assert sum(lone_calls) < sum(calls_every_round) and len(batch_calls) > len(lone_calls)
    alone = [
        (len(_plan(case, monkeypatch, count_model_rows, reuse, 10**9, i)[1]), reuse)
        for i in range(8)
        for reuse in (False, True)
    ]
    assert sum(c for c, r in alone if r) < sum(c for c, r in alone if not r)
    # the first round is the same; later messages keep the gap, the window and the gain
    first = lone.groupby("event_id").head(1).reset_index(drop=True)
    before = scored_every_round.groupby("event_id").head(1).reset_index(drop=True)
    pd.testing.assert_frame_equal(first, before)
    assert lone.groupby("event_id").size().max() == 3
    assert (lone["response_probability"] >= decider.config.min_message_gain).all()
    sent = to_ns(lone["send_at"])
    same = lone["event_id"].to_numpy()[1:] == lone["event_id"].to_numpy()[:-1]
    gap = decider.config.min_message_gap_hours * HOUR_NS
    assert (np.diff(sent)[same] >= gap).all()
    end = events.set_index("event_id")
    window_end = to_ns(end.loc[lone["event_id"], "failed_at"]) + (
        end.loc[lone["event_id"], "window_days"].to_numpy() * 24 * HOUR_NS
    )
    assert (sent < window_end).all()


def test_old_artifacts_and_the_oracle_score_every_round(monkeypatch):
    state = PolicyConfig().__getstate__()
    fields = {k: v for k, v in state["__dict__"].items() if k != "reuse_message_scores"}
    loaded = PolicyConfig.__new__(PolicyConfig)
    loaded.__setstate__({**state, "__dict__": fields})
    assert loaded.reuse_message_scores is False and PolicyConfig().reuse_message_scores

    import training.evaluation.run as run

    seen: list[PolicyConfig] = []
    monkeypatch.setattr(run, "searched_schedules", lambda *a: seen.append(a[3]))

    class Decider:
        config = PolicyConfig()

    class Settings:
        oracle_grid_hours = 2

    run.oracle_schedules(None, Decider(), pd.DataFrame(), Settings())
    assert seen[0].reuse_message_scores is False
