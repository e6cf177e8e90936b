"""The search's array paths (message candidates, retry grid, refinement, scoring several
schedules at once) decide exactly what the timeline paths decide.

The timeline paths are what any scorer gets (the ground truth, for the oracle): each
candidate becomes a timeline and :func:`timeline_state` computes its features. Wrapping
the trained models in a scorer that is not a :class:`ModelScorer` forces those paths with
the same models, so the two must agree to the last bit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.core.localtime import to_ns
from training.features.frames import candidate_features
from training.features.invoice import events_from_history
from training.models.calibrated import category_codes, encode_matrix
from training.policy.decider import search_schedules
from training.policy.retry_search import retry_windows
from training.policy.schedule_rows import RetryRows
from training.policy.scorer import build_timeline, past_rows


class TimelineScorer:
    """The trained models behind the generic interface only (no array fast paths)."""

    def __init__(self, scorer) -> None:
        self.inner = scorer
        self.models = scorer.models  # its bounds (template support) hold on either path

    def candidate_probabilities(self, features, timeline):
        return self.inner.candidate_probabilities(features, timeline)


@pytest.fixture(scope="module")
def case(small_world):
    decider = small_world.artifact.decider()
    events = events_from_history(small_world.history).tail(60).reset_index(drop=True)
    events["max_messages"] = 3
    events.loc[::4, "sms_opt_in"] = True
    previous = pd.DataFrame(
        {
            "event_id": events["event_id"].iloc[:15].to_numpy(),
            "attempted_at": events["failed_at"].iloc[:15].to_numpy() - pd.Timedelta(days=3),
        }
    )
    decisions = decider.rules.decide_many(events, previous).reset_index(drop=True)
    features = decider.scorer.event_features(events, previous)
    return decider, events, previous, decisions, features, past_rows(events, previous)


def _plans(scorer, decider, events, decisions, features, past):
    searched = search_schedules(
        scorer, events, features, past, decisions, decider.templates, decider.config, decider.rules
    )
    return searched.messages.frame(), searched.retries.frame()


def test_array_search_equals_timeline_search(case):
    decider, events, _, decisions, features, past = case
    fast_messages, fast_retries = _plans(decider.scorer, decider, events, decisions, features, past)
    slow_messages, slow_retries = _plans(
        TimelineScorer(decider.scorer), decider, events, decisions, features, past
    )
    assert len(fast_messages) > len(events) and len(fast_retries) > len(events)
    assert fast_messages["template"].nunique() > 1
    pd.testing.assert_frame_equal(fast_messages, slow_messages)
    pd.testing.assert_frame_equal(fast_retries, slow_retries)


def test_scoring_schedules_together_equals_one_by_one(case):
    decider, events, previous, decisions, features, past = case
    messages, retries = _plans(decider.scorer, decider, events, decisions, features, past)
    late = retries.assign(at=retries["at"] + pd.Timedelta(hours=5))
    together = decider.expected_recoveries(
        events, features, past, [(retries, messages), (late, messages[:0])]
    )
    for (expected, retry_p, message_p), schedule in zip(
        together, [(retries, messages), (late, messages[:0])], strict=True
    ):
        alone, alone_retry_p, alone_message_p = decider.expected_recovery(
            events, features, past, *schedule
        )
        np.testing.assert_allclose(expected.to_numpy(), alone.to_numpy(), rtol=1e-12)
        pd.testing.assert_frame_equal(
            retry_p.reset_index(drop=True), alone_retry_p.reset_index(drop=True)
        )
        pd.testing.assert_frame_equal(
            message_p.reset_index(drop=True), alone_message_p.reset_index(drop=True)
        )
    assert (together[0][0] != together[1][0]).any()


def test_decision_reuses_exactly_the_scores_a_fresh_scoring_gives(case):
    """``decide`` keeps the pruning's scores of its final schedule and scores the fixed
    schedule with the pruning's first round; scoring both afresh gives the same figures."""
    from training.policy.baselines import fixed_schedule

    decider, events, previous, decisions, features, past = case
    decided = decider.decide(events, previous)
    fixed = fixed_schedule(
        events,
        previous,
        decider.rules,
        decider.config.baseline,
        decisions,
        quiet_hours=decider.config.quiet_hours,
    )
    retries = decided.retries[["event_id", "at"]]
    messages = decided.messages[["event_id", "send_at", "template", "channel"]]
    (expected, retry_p, message_p), (baseline, _, _) = decider.expected_recoveries(
        events, features, past, [(retries, messages), (fixed.retries, fixed.messages)]
    )
    summary = decided.events.set_index("event_id").loc[events["event_id"]]
    np.testing.assert_array_equal(summary["expected_recovery_probability"], expected)
    np.testing.assert_array_equal(summary["baseline_recovery_probability"], baseline)
    np.testing.assert_array_equal(
        decided.retries["success_probability"], retry_p["success_probability"]
    )
    np.testing.assert_array_equal(
        decided.messages["response_probability"], message_p["response_probability"]
    )
    assert len(decided.messages) and len(decided.retries)


def test_event_matrix_equals_encoded_frames(case):
    """The matrix the search builds from arrays is the frames path's encoded matrix."""
    decider, events, _, _, features, past = case
    keys = pd.DataFrame({"key": np.arange(len(events)), "event_id": events["event_id"].to_numpy()})
    at = events["failed_at"] + pd.to_timedelta(np.arange(len(events)) * 7 + 30, unit="h")
    messages = pd.DataFrame(
        {
            "key": keys["key"],
            "send_at": events["failed_at"] + pd.Timedelta(hours=2),
            "template": np.where(
                np.arange(len(events)) % 2, "update_payment_method", "unknown_template"
            ),
            "channel": np.where(np.arange(len(events)) % 3, "email", "sms"),
        }
    )
    timeline = build_timeline(keys, past, pd.DataFrame({"key": keys["key"], "at": at}), messages)
    frames = candidate_features(features.features, timeline, decider.rules.limits.update_requests)
    for name, model in decider.scorer.models.items():
        if name == "self_cure":
            continue
        rows = frames[(frames["kind"] == "retry") == (name == "retry")]
        want = encode_matrix(rows, model.features, model.categories)
        got = decider.scorer.candidate_probabilities(features, timeline).loc[rows.index].to_numpy()
        np.testing.assert_allclose(got, model.predict(rows), rtol=1e-12)
        assert np.isnan(want).any(axis=0).sum() < want.shape[1]


def test_category_codes_equal_pandas_indexer():
    categories = ["email", "sms", "push", "01", "1"]
    values = np.array(["sms", None, "fax", np.nan, "1", "01", "email", "push", ""], dtype=object)
    codes = pd.Index(categories).get_indexer(values)
    np.testing.assert_array_equal(
        category_codes(values, categories), np.where(codes >= 0, codes, np.nan)
    )
    assert np.isnan(category_codes(values, [])).all()


def test_exploration_shifts_whole_schedules_inside_the_window(case):
    decider, events, _, decisions, features, past = case
    messages, retries = _plans(decider.scorer, decider, events, decisions, features, past)
    limits = decider.rules.limits
    _, start, end = retry_windows(
        events, decisions, messages, limits.update_requests, limits.min_spacing_hours
    )
    explorer = decider.__class__(
        decider.scorer, decider.rules, decider.config.model_copy(update={"exploration_rate": 1.0}),
        decider.templates, decider.model_version,
    )  # fmt: skip
    explored = explorer._explore(events, RetryRows.of(retries), start, end)
    moved, propensity = explored.retries.frame(), explored.propensity
    arms = len(decider.config.exploration_shifts_hours) + 1
    # at rate 1 the searched one is an arm too, and takes the arms that cannot move
    shifted = explored.kind == 1
    np.testing.assert_allclose(propensity[shifted], 1.0 / arms)
    assert (propensity[~shifted] >= 1.0 / arms - 1e-12).all()
    shift = (moved["at"] - retries["at"]).dt.total_seconds().to_numpy() / 3600
    assert set(np.unique(shift)) <= {0, *decider.config.exploration_shifts_hours}
    per_event = pd.Series(shift).groupby(retries["event_id"].to_numpy()).nunique()
    assert (per_event == 1).all()  # a whole schedule moves together
    assert (shift != 0).any()
    pos = pd.Index(events["event_id"]).get_indexer(moved["event_id"])
    ns = to_ns(moved["at"])
    assert ((ns >= start[pos]) & (ns < end[pos])).all()


def _variants(plan_event, base_ns, shifts_hours):
    """Every retry of the plan moved by each shift, the others kept (as the refinement
    builds them): event, key, plan row and time of each variant's retries."""
    from training.core.arrays import group_counter

    sizes = np.bincount(plan_event)
    first_row = np.cumsum(sizes) - sizes
    variant_of = np.tile(np.arange(len(base_ns)), len(shifts_hours))
    moved = base_ns[variant_of] + np.repeat(shifts_hours, len(base_ns)) * 3_600_000_000_000
    event = plan_event[variant_of]
    key = np.repeat(np.arange(len(variant_of)), sizes[event])
    row = first_row[event][key] + group_counter(sizes[event])
    at = np.where(row == variant_of[key], moved[key], base_ns[row])
    return first_row, event[key], key, row, at


def test_refinement_rescores_only_changed_retries_bit_for_bit(case, monkeypatch):
    """Variants reuse the planned schedule's probabilities for the retries they do not
    change, and still equal scoring every retry of every variant (also through the
    timelines), including moves far enough to pass a neighbouring retry."""
    from training.policy.retry_search import (
        _RetryContext,
        _schedule_order,
        _schedule_retry_probabilities,
    )

    decider, events, _, decisions, features, past = case
    messages, retries = _plans(decider.scorer, decider, events, decisions, features, past)
    ids = events["event_id"].to_numpy()
    plan_event = pd.Index(ids).get_indexer(retries["event_id"])
    by_event = np.lexsort((to_ns(retries["at"]), plan_event))
    plan_event, base_ns = plan_event[by_event], to_ns(retries["at"])[by_event]
    first_row, event, key, row, at = _variants(plan_event, base_ns, np.array([-3, 0, 2, 80]))
    update = decider.rules.limits.update_requests
    context = _RetryContext.build(
        decider.scorer, features, past, messages, ids, decider.config, update
    )
    scored = []
    predict = decider.scorer.predict
    monkeypatch.setattr(
        decider.scorer, "predict", lambda *a: scored.append(len(a[2])) or predict(*a)
    )
    fast = _schedule_retry_probabilities(
        context, plan_event, base_ns, first_row, event, key, row, at
    )
    k, previous_ns = _schedule_order(key, at)
    assert (k != row - first_row[event]).any()  # some moves pass a neighbouring retry
    every = context.model_probabilities(event, at, k, previous_ns)
    assert scored[0] < len(at) / 2 and scored[1] == len(at)
    np.testing.assert_array_equal(fast, every)
    slow_context = _RetryContext.build(
        TimelineScorer(decider.scorer), features, past, messages, ids, decider.config, update
    )
    slow = _schedule_retry_probabilities(
        slow_context, plan_event, base_ns, first_row, event, key, row, at
    )
    np.testing.assert_array_equal(fast, slow)


def test_unrefined_search_equals_timeline_search(case):
    decider, events, _, decisions, features, past = case
    coarse = decider.__class__(
        decider.scorer, decider.rules, decider.config.model_copy(update={"fine_grids_hours": (), "refine_steps_hours": ()}),
        decider.templates, decider.model_version,
    )  # fmt: skip
    _, fast = _plans(coarse.scorer, coarse, events, decisions, features, past)
    _, slow = _plans(TimelineScorer(coarse.scorer), coarse, events, decisions, features, past)
    _, refined = _plans(decider.scorer, decider, events, decisions, features, past)
    pd.testing.assert_frame_equal(fast, slow)
    assert len(fast) == len(refined) and (fast["at"] != refined["at"]).any()
    for plan in (fast, refined):  # grouped by event, each event's retries in time order
        ns = to_ns(plan["at"])
        same = plan["event_id"].to_numpy()[1:] == plan["event_id"].to_numpy()[:-1]
        assert (np.diff(ns)[same] > 0).all()
    assert refined["event_id"].is_monotonic_increasing


def test_positions_equal_pandas_indexer():
    from training.policy.retry_search import _positions

    values = np.array(["b", "a", "z", "b", "c"], dtype=object)
    for ids in (np.array(["b"], dtype=object), np.array(["c", "a", "b"], dtype=object)):
        np.testing.assert_array_equal(_positions(ids, values), pd.Index(ids).get_indexer(values))
    assert len(_positions(np.array(["a"], dtype=object), values[:0])) == 0


def test_one_event_best_candidate_equals_the_sorted_pick():
    """A lone request's best message candidate by ``argmax`` is the row the sort picks:
    the first of tied maxima, and any row but a NaN's."""
    from training.policy.message_search import _best_per_event, _Candidates

    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 40):
        zero = np.zeros(n, dtype=np.int64)
        candidates = _Candidates.of(zero, np.arange(n), zero, zero)
        for p in (
            rng.random(n),
            np.round(rng.random(n), 1),  # ties
            np.where(rng.random(n) < 0.3, np.nan, rng.random(n)),
            np.full(n, np.nan),
        ):
            sorted_pick = _best_per_event(candidates, p, one_event=False)
            np.testing.assert_array_equal(_best_per_event(candidates, p, True), sorted_pick)
            assert len(sorted_pick) == 1


def test_one_call_rounds_equal_two_call_rounds(case, monkeypatch, count_model_rows):
    """A round scored in one model call (every pair at every time, a lone request's path)
    plans what the two calls plan, to the bit, with half the message-model calls."""
    import training.policy.message_search as message_search

    decider, events, _, decisions, features, past = case
    calls = count_model_rows(decider)
    plans = []
    for extra_rows in (0, 10**9):  # never merged, always merged
        monkeypatch.setattr(message_search, "MERGE_EXTRA_ROWS", extra_rows)
        calls.clear()
        plans.append(_plans(decider.scorer, decider, events, decisions, features, past))
        plans[-1] += (len(calls),)
    (two_messages, two_retries, two_calls), (one_messages, one_retries, one_calls) = plans
    pd.testing.assert_frame_equal(one_messages, two_messages)
    pd.testing.assert_frame_equal(one_retries, two_retries)
    rounds = 3  # max_messages
    assert two_calls - one_calls == rounds
    assert len(two_messages) > len(events)


def test_scored_rows_are_looked_up_with_the_same_figures(case, monkeypatch):
    """The pruning's schedules scored with a memo of rows: the same figures as without,
    and the second scoring of the same schedules scores no row."""
    import training.policy.decider as decider_module
    from training.policy.scorer import ScoredRows

    monkeypatch.setattr(decider_module, "MEMO_ROWS", 0)  # however few rows

    decider, events, _, decisions, features, past = case
    messages, retries = _plans(decider.scorer, decider, events, decisions, features, past)
    schedules = [(retries, messages), (retries, messages[1:]), (retries[2:], messages)]
    plain = decider.score_schedules(events, features, past, schedules)
    memo = ScoredRows()
    scored: list[int] = []
    row_probabilities = decider.scorer.row_probabilities

    def counted(features, event_ids, *columns):
        scored.append(len(event_ids))
        return row_probabilities(features, event_ids, *columns)

    decider.scorer.row_probabilities = counted
    try:
        first = decider.score_schedules(events, features, past, schedules, scored_rows=memo)
        rows_first = sum(scored)
        again = decider.score_schedules(events, features, past, schedules[1:], scored_rows=memo)
    finally:
        del decider.scorer.row_probabilities
    for (want_v, want_p), (got_v, got_p) in zip(plain, first, strict=True):
        np.testing.assert_array_equal(got_v, want_v)
        np.testing.assert_array_equal(got_p, want_p)
    for (want_v, want_p), (got_v, got_p) in zip(plain[1:], again, strict=True):
        np.testing.assert_array_equal(got_v, want_v)
        np.testing.assert_array_equal(got_p, want_p)
    all_rows = sum(len(p) for _, p in plain)
    assert 0 < rows_first < all_rows  # the rows the three schedules share: scored once
    assert sum(scored) == rows_first  # the second scoring: all looked up


def test_scored_rows_score_a_hash_collision(monkeypatch):
    """Rows whose hashes collide are compared in full and scored, never mixed up."""
    import training.policy.scorer as scorer_module

    monkeypatch.setattr(scorer_module, "_row_hashes", lambda key: np.zeros(len(key), np.uint64))
    memo = scorer_module.ScoredRows()
    key = memo.key(
        np.array([0, 0, 1, 0]),
        np.array([5, 5, 5, 6]),
        np.array(["retry", "retry", "retry", "message"], dtype=object),
        np.array([None, None, None, "t"], dtype=object),
        np.array([None, None, None, "email"], dtype=object),
        {"x": np.array([1.0, 1.0, 1.0, np.nan])},
    )

    def score(rows):
        return rows.astype(float) / 10

    np.testing.assert_array_equal(memo.probabilities(key, score), [0.0, 0.1, 0.2, 0.3])
    np.testing.assert_array_equal(memo.probabilities(key[:1], score), [0.0])


def test_the_explored_schedule_is_scored_in_the_prunings_call(case, monkeypatch):
    """The exploration is drawn before the pruning (it moves retries only): its moved
    schedule is scored with the pruning's first schedules, the same figures as scored
    alone, and the decision's own scoring then reuses them (no further model call)."""
    import training.policy.decider as decider_module

    decider, events, previous, decisions, features, past = case
    explorer = decider.__class__(
        decider.scorer, decider.rules, decider.config.model_copy(update={"exploration_rate": 1.0}),
        decider.templates, decider.model_version,
    )  # fmt: skip
    lone = events.iloc[[20]].reset_index(drop=True)  # no previous attempts
    past_lone, decided = past_rows(lone, None), decider.rules.decide_many(lone, None)

    class Draws:
        def random(self, n: int) -> np.ndarray:
            return np.full(n, 0.99)  # at rate 1: the last arm, a shift

    monkeypatch.setattr(decider_module, "process_rng", lambda: Draws())
    memo = decider_module.ScheduleScores(explorer, lone, None, past_lone)
    plan = explorer.plan(lone, None, past=past_lone, decisions=decided, memo=memo)
    assert plan.explored is not None and (plan.explored.kind == 1).all()
    calls: list[int] = []
    predict = decider.scorer.predict
    monkeypatch.setattr(decider.scorer, "predict", lambda *a: calls.append(1) or predict(*a))
    reused = memo.laid_out([(plan.retries, plan.messages)])[0]
    assert calls == []  # scored in the pruning's call
    alone = explorer.score_laid_out(
        lone, plan.features, past_lone, [(plan.retries, plan.messages)], memo.p_self
    )[0]
    assert len(calls) > 0
    np.testing.assert_array_equal(reused.expected, alone.expected, strict=True)
    np.testing.assert_array_equal(reused.p, alone.p, strict=True)
