"""The calendar contrast of a schedule's rows and the schedule values steepened by it
(training/policy/calendar.py), and the reported probability that uses them."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from training.core.frames import Schedules
from training.features.invoice import events_from_history
from training.models.matrix import as_event_matrix
from training.policy.calendar import (
    DAY_NS,
    HOUR_NS,
    category_labels,
    category_slopes,
    contrast_parts,
    date_moves,
    kind_shifts,
    logit,
    measured_slopes,
    shifts,
    slope_pair,
    steepened,
)
from training.policy.schedule_rows import MessageRows, RetryRows
from training.policy.scorer import past_rows


def _learned(small_world, count: int = 30):
    decider = small_world.artifact.decider(compiled=False)
    decider.config = decider.config.model_copy(update={"exploration_rate": 0.0})
    events = events_from_history(small_world.history).tail(count).reset_index(drop=True)
    past = past_rows(events, None)
    features = decider.scorer.event_features(events, None)
    plan = decider.plan(events, None, explore=False, past=past)
    retries, messages = RetryRows.of(plan.retries).frame(), MessageRows.of(plan.messages).frame()
    return decider, events, past, features, Schedules(retries, messages)


MOVES = kind_shifts((1, 3, 5, 7), (4.0,))


def test_shifts_move_a_retry_by_days_and_a_message_by_hours_both_ways_never_by_zero():
    assert (shifts(2) // DAY_NS).tolist() == [-2, -1, 1, 2]
    assert len(shifts(0)) == 0
    assert (shifts((1, 3)) // DAY_NS).tolist() == [-3, -1, 1, 3]
    moves = kind_shifts(1, (2.0, 4.0))
    assert (moves["retry"] // DAY_NS).tolist() == [-1, 1]
    assert (moves["message"] // HOUR_NS).tolist() == [-4, -2, 2, 4]


def test_a_retry_moves_by_hours_as_well_as_days_but_never_by_hours_alone():
    moves = kind_shifts((1, 3), (4.0,), (4.0, 8.0))
    assert (moves["retry"] // HOUR_NS).tolist() == [-72, -24, 24, 72, -8, -4, 4, 8]
    assert (moves["message"] // HOUR_NS).tolist() == [-4, 4]
    assert len(kind_shifts((), (4.0,), (4.0, 8.0))["retry"]) == 0  # no days: no retry contrast


def test_steepened_moves_the_log_odds_by_slope_times_contrast_per_kind():
    p = np.array([0.1, 0.1, 0.2, 0.2])
    contrast = np.column_stack([[0.5, -0.5, 0.5, 0.5], np.zeros(4)])
    kind = np.array(["retry", "retry", "message", "retry"], dtype=object)
    q = steepened(p, contrast, kind, {"retry": 2.0})
    np.testing.assert_allclose(logit(q) - logit(p), [1.0, -1.0, 0.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(steepened(p, contrast, kind, {}), p)


def test_a_retrys_date_and_hour_parts_each_take_their_own_slope():
    p = np.full(3, 0.2)
    contrast = np.array([[0.5, 0.0], [0.0, 0.5], [0.4, -0.2]])
    kind = np.array(["retry", "retry", "message"], dtype=object)
    q = steepened(p, contrast, kind, {"retry": (2.0, 0.0), "message": 1.0})
    np.testing.assert_allclose(logit(q) - logit(p), [1.0, 0.0, 0.2], atol=1e-9)
    assert slope_pair(1.5) == (1.5, 1.5) and slope_pair([2.0, 0.5]) == (2.0, 0.5)


def test_contrast_parts_split_the_moves_into_whole_days_and_hours():
    shift = np.array([-3 * DAY_NS, 3 * DAY_NS, -8 * HOUR_NS, 8 * HOUR_NS])
    assert date_moves(shift).tolist() == [True, True, False, False]
    own = np.array([0.0, 1.0])
    moved = np.array([[-1.0, 0.0], [1.0, 1.0], [-2.0, 0.5], [0.0, 0.5]])
    parts = contrast_parts(own, moved, shift)
    np.testing.assert_allclose(parts, [[0.0, 1.0], [0.5, 0.5]])
    # one slope c on both parts weighted by their shares of the moves is c times the
    # contrast against the mean over all moves (an artifact's slope before the parts)
    pooled = own - moved.mean(axis=0)
    np.testing.assert_allclose(parts @ np.array([0.5, 0.5]), pooled)
    hours_only = contrast_parts(own, moved[2:], shift[2:])
    np.testing.assert_allclose(hours_only[:, 0], 0.0)


def test_a_decline_categorys_slope_replaces_its_kinds_for_its_rows_only():
    p = np.full(4, 0.2)
    contrast = np.column_stack([np.full(4, 0.5), np.zeros(4)])
    kind = np.array(["retry", "retry", "message", "message"], dtype=object)
    category = np.array(["insufficient_funds", "expired_card", "insufficient_funds", "x"], object)
    by_category = {"retry": category_slopes({"insufficient_funds": 3.0}), "message": {}}
    assert by_category["retry"] == {"insufficient_funds": 3.0, "limit_exceeded": 3.0}
    q = steepened(p, contrast, kind, {"retry": 1.0, "message": 2.0}, category, by_category)
    np.testing.assert_allclose(logit(q) - logit(p), [1.5, 0.5, 1.0, 1.0], atol=1e-9)


def test_without_slopes_the_values_are_the_models_own(small_world):
    decider, events, past, features, learned = _learned(small_world)
    own = decider.expected_recovery(events, features, past, learned.retries, learned.messages)
    decider.calendar_slopes, decider.calendar_moves = {}, MOVES
    laid = decider.score_laid_out(events, features, past, [(learned.retries, learned.messages)])
    (values,) = decider.steepened_values(events, features, laid)
    np.testing.assert_allclose(values, own[0].reindex(events["event_id"]).to_numpy(), atol=1e-12)


def test_a_positive_slope_raises_the_rows_the_models_rate_above_their_neighbouring_dates(
    small_world,
):
    decider, events, past, features, learned = _learned(small_world)
    schedules = [(learned.retries, learned.messages), (learned.retries.iloc[0:0], learned.messages)]
    laid = decider.score_laid_out(events, features, past, schedules)
    decider.calendar_moves = MOVES
    decider.calendar_slopes = {}
    flat, flat_messages = decider.steepened_values(events, features, laid)
    decider.calendar_slopes = {"retry": 1.0}
    steep, steep_messages = decider.steepened_values(events, features, laid)
    # the search put the retries on the dates the models prefer: steeper, worth more
    assert steep.mean() > flat.mean()
    np.testing.assert_allclose(steep_messages, flat_messages)  # no retry, nothing moves
    # a slope for some decline categories alone: their events' rows steepened, no others
    matrix = as_event_matrix(features)
    ids = events["event_id"].to_numpy()
    categories = pd.Series(matrix.column("inv_decline_category")[matrix.positions(ids)])
    chosen = str(categories.iloc[0])
    decider.calendar_slopes = {}
    decider.calendar_category_slopes = {"retry": {chosen: 1.0}}
    (some, _) = decider.steepened_values(events, features, laid)
    moved = (categories == chosen).to_numpy()
    assert some.mean() > flat.mean()
    np.testing.assert_allclose(some[~moved], flat[~moved])
    np.testing.assert_allclose(some[moved], steep[moved])


def test_the_reported_probability_is_steepened_and_the_decisions_are_not(small_world):
    events = events_from_history(small_world.history).tail(40).reset_index(drop=True)
    artifact = copy.copy(small_world.artifact)
    artifact.metadata = {
        **artifact.metadata,
        "calendar_contrast": {
            "retry": 1.0,
            "message": 0.0,
            "shift_days": 7,
            "message_shift_hours": [2.0],
            "retry_shift_hours": [4.0],
            "message_by_family": {"dispute": 0.5},
        },
    }
    plain_decider = small_world.artifact.decider(compiled=False)
    steep_decider = artifact.decider(compiled=False)
    # saved before the retry's hour slope: one slope on both parts, by their shares of
    # the moves (14 whole days, 2 hours)
    assert steep_decider.calendar_slopes == {"retry": (14 / 16, 2 / 16), "message": 0.0}
    assert (steep_decider.calendar_moves["message"] // HOUR_NS).tolist() == [-2, 2]
    assert (steep_decider.calendar_moves["retry"] // HOUR_NS).tolist()[-2:] == [-4, 4]
    assert steep_decider.calendar_category_slopes == {
        "retry": {},
        "message": {"dispute_or_revoked": 0.5},
    }
    two = measured_slopes(
        {
            **artifact.metadata["calendar_contrast"],
            "retry": 2.0,
            "retry_hour": 0.5,
            "retry_by_family": {"hard": 1.0, "dispute": 0.0},
            "retry_hour_by_family": {"hard": 0.25},
        },
        steep_decider.calendar_moves,
    )
    assert two[0] == {"retry": (2.0, 0.5), "message": 0.0}
    assert two[1]["retry"]["dispute_or_revoked"] == (0.0, 0.5)  # the pooled hour slope
    assert set(two[1]["retry"].values()) == {(1.0, 0.25), (0.0, 0.5)}
    for decider in (plain_decider, steep_decider):
        decider.config = decider.config.model_copy(update={"exploration_rate": 0.0})
    plain = plain_decider.decide(events, None)
    steep = steep_decider.decide(events, None)
    pd.testing.assert_frame_equal(plain.retries, steep.retries)
    pd.testing.assert_frame_equal(plain.messages, steep.messages)
    before = plain.events["expected_recovery_probability"].to_numpy()
    after = steep.events["expected_recovery_probability"].to_numpy()
    assert after.mean() > before.mean()
    np.testing.assert_allclose(
        steep.events["baseline_recovery_probability"].to_numpy(),
        plain.events["baseline_recovery_probability"].to_numpy(),
    )


def test_the_contrast_reuses_the_scored_layout_and_scores_only_the_moved_rows_once_per_model(
    small_world,
):
    decider, events, past, features, learned = _learned(small_world)
    schedules = [(learned.retries, learned.messages), (learned.retries.iloc[2:], learned.messages)]
    decider.calendar_moves = MOVES
    decider.calendar_slopes = {"retry": 1.0, "message": 1.0}
    laid = decider.score_laid_out(events, features, past, schedules)
    assert len(events) > 0 and sum(len(s.p) for s in laid) > 0
    for (retries, messages), score in zip(schedules, laid, strict=True):
        rows = score.rows
        at = np.r_[rows.retries, rows.messages]
        np.testing.assert_array_equal(rows.p[at], score.p)  # the probabilities scored
        ids = events["event_id"].to_numpy()[rows.rows.event[at]]
        assert ids.tolist() == [*retries["event_id"], *messages["event_id"]]
        assert (rows.rows.kind[rows.retries] == "retry").all()
        assert (rows.rows.kind[rows.messages] == "message").all()
    # a few rows (a lone request's): the contrasts came with the scoring, no call more;
    # many rows: one call for the moved rows alone, the same contrasts
    folded = decider.steepened_values(events, features, laid)
    assert all(score.rows.contrast is not None for score in laid)
    laid = [s._replace(rows=s.rows._replace(contrast=None)) for s in laid]
    calls: list[tuple[str, int]] = []
    models = decider.scorer.models
    for model in (models.retry, models.message):
        predict_matrix = model.predict_matrix

        def counted(matrix, threads=1, model=model, predict_matrix=predict_matrix):
            calls.append((model.name, len(matrix)))
            return predict_matrix(matrix, threads)

        model.predict_matrix = counted
    try:
        alone = decider.steepened_values(events, features, laid)
    finally:
        del models.retry.predict_matrix, models.message.predict_matrix
    retries = sum(len(s[0]) for s in schedules)
    messages = sum(len(s[1]) for s in schedules)
    # one model call per model: each kind's rows copied for every move
    assert calls == [
        ("retry", retries * len(MOVES["retry"])),
        ("message", messages * len(MOVES["message"])),
    ]
    for got, want in zip(folded, alone, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_one_categorys_labels_are_np_uniques():
    """Rows of one decline category (a lone request's) skip the sort: the same labels
    (dtype and values) and codes as ``np.unique``, which other rows still take."""
    rng = np.random.default_rng(2)
    pool = np.array(["expired_card", "insufficient_funds", "", None, np.nan, 3], dtype=object)
    cases = [pool[[k] * size] for k in range(len(pool)) for size in (1, 2, 17)]
    cases += [pool[rng.integers(0, len(pool), size=int(rng.integers(2, 30)))] for _ in range(40)]
    cases += [np.array(["a", "a"], dtype="<U1"), np.zeros(0, dtype=object), pool[[0] * 300]]
    for category in cases:
        labels, code = category_labels(category)
        want_labels, want_code = np.unique(category.astype(str), return_inverse=True)
        assert labels.dtype == want_labels.dtype and labels.tolist() == want_labels.tolist()
        assert code.dtype == want_code.dtype and code.tolist() == want_code.tolist()
