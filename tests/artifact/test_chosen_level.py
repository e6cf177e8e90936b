"""The models' level where the search chooses (training/artifact/chosen_level.py) and the
reported probability that uses it (training/policy/calendar.py ``leveled``,
``ModelDecider.steepened_values``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.artifact.chosen_level import (
    chosen_frame,
    coinciding,
    family_levels,
    fit_chosen_level,
    fit_level,
    kind_ranks,
    level_events,
    soft_threshold,
)
from training.config.params import Params
from training.core.localtime import HOUR_NS
from training.core.probability import logit
from training.features.invoice import events_from_history
from training.policy.calendar import leveled
from training.policy.schedule_rows import MessageRows, RetryRows
from training.policy.scorer import past_rows


def test_kind_ranks_count_each_events_rows_of_a_kind_in_time_order():
    event = np.array(["a", "a", "b", "a", "a"], dtype=object)
    ns = np.array([30, 10, 5, 20, 15])
    kind = np.array(["retry", "retry", "retry", "message", "message"], dtype=object)
    assert kind_ranks(event, ns, kind).tolist() == [2, 1, 1, 2, 1]


def _rows(event, hours, kind, template, rank) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event": event,
            "ns": np.asarray(hours, dtype=np.int64) * HOUR_NS,
            "kind": kind,
            "template": template,
            "rank": rank,
        }
    )


def test_a_logged_row_coincides_with_the_plan_on_kind_rank_template_and_window():
    chosen = _rows(["a", "a"], [50, 10], ["retry", "message"], [None, "link"], [1, 1])
    logged = _rows(
        ["a", "a", "a", "b", "a", "a"],
        [55, 58, 50, 50, 12, 11],
        ["retry", "retry", "retry", "retry", "message", "message"],
        [None, None, None, None, "link", "reminder"],
        [1, 1, 2, 1, 1, 1],
    )
    windows = {"retry": 6.0, "message": 3.0}
    # within 6 h / 3 h; 8 h off; another rank; another event; the template; another one
    assert coinciding(logged, chosen, windows).tolist() == [True, False, False, False, True, False]


def test_by_default_a_logged_retry_coincides_with_the_plans_within_a_day():
    # the plan's date, not its hour: 6 h left paydays' insufficient-funds level to its noise
    settings = Params().train.chosen_level
    windows = {"retry": settings.retry_window_hours, "message": settings.message_window_hours}
    chosen = _rows(["a"], [50], ["retry"], [None], [1])
    logged = _rows(["a", "a", "a"], [30, 70, 75], ["retry"] * 3, [None] * 3, [1, 1, 1])
    assert coinciding(logged, chosen, windows).tolist() == [True, True, False]


def test_the_fitted_level_recovers_a_known_log_odds_gap_and_is_thresholded_by_its_noise():
    rng = np.random.default_rng(3)
    offset = rng.normal(-1.5, 0.5, 20_000)
    label = (rng.random(len(offset)) < 1 / (1 + np.exp(-(offset + 0.4)))).astype(float)
    a, se = fit_level(label, offset)
    assert abs(a - 0.4) < 3 * se and se < 0.05
    assert soft_threshold(0.5, 0.2) == 0.3 and soft_threshold(-0.5, 0.2) == -0.3
    assert soft_threshold(0.1, 0.2) == 0.0 and soft_threshold(0.3, float("nan")) == 0.0


def test_a_level_per_kind_and_family_only_where_coinciding_rows_are_enough():
    rng = np.random.default_rng(4)
    n = 6000
    q = np.full(n, 0.2)
    kind = np.where(np.arange(n) % 2 == 0, "retry", "message").astype(object)
    family = np.where(np.arange(n) % 3 == 0, "hard", "insufficient_funds").astype(object)
    truth = np.where((kind == "retry") & (family == "insufficient_funds"), 0.3, 0.2)
    label = (rng.random(n) < truth).astype(float)
    matched = rng.random(n) < 0.5
    applied, fits = family_levels(label, q, kind, family, matched, min_rows=200)
    assert applied["retry"]["insufficient_funds"] > 0.2  # logit 0.3 - logit 0.2 = 0.54
    assert "hard" not in applied["retry"] or abs(applied["retry"]["hard"]) < 0.2
    assert (
        fits["retry"]["insufficient_funds"][2]
        == ((kind == "retry") & matched & (family == "insufficient_funds")).sum()
    )
    # a family the models over-rate where the search chooses: its level is fitted, and
    # applied only when asked to (the gain shrinkage already takes the optimism off)
    low = np.where(family == "hard", 0.1, truth)
    label = (rng.random(n) < low).astype(float)
    kept, low_fits = family_levels(label, q, kind, family, matched, 200, lower=False)
    assert low_fits["retry"]["hard"][0] < -0.3 and "hard" not in kept["retry"]
    lowered, _ = family_levels(label, q, kind, family, matched, 200, lower=True)
    assert lowered["retry"]["hard"] < -0.2 and lowered["message"]["hard"] < -0.2
    none, no_fits = family_levels(label, q, kind, family, matched, min_rows=n)
    assert none == {"retry": {}, "message": {}} and no_fits == {"retry": {}, "message": {}}


def test_the_threshold_in_standard_errors_sets_how_much_of_a_noisy_fit_is_applied():
    # a small positive gap on few rows: one standard error takes it all, 0 keeps the fit
    rng = np.random.default_rng(8)
    n = 800
    q = np.full(n, 0.15)
    kind = np.full(n, "retry", dtype=object)
    family = np.full(n, "insufficient_funds", dtype=object)
    label = (rng.random(n) < 0.17).astype(float)
    matched = np.ones(n, dtype=bool)
    args = (label, q, kind, family, matched, 50, ("retry",), False)
    a, se, _ = family_levels(*args)[1]["retry"]["insufficient_funds"]
    assert 0 < a < se  # within its noise
    assert family_levels(*args, threshold_se=1.0)[0]["retry"] == {}
    half = family_levels(*args, threshold_se=0.5)[0]["retry"].get("insufficient_funds", 0.0)
    assert half == max(a - 0.5 * se, 0.0)
    assert family_levels(*args, threshold_se=0.0)[0]["retry"]["insufficient_funds"] == a
    # a fit below 0 stays off without ``lower``, whatever the threshold
    low = (rng.random(n) < 0.12).astype(float)
    assert family_levels(low, *args[1:], threshold_se=0.0)[0]["retry"] == {}


def test_leveled_moves_the_chosen_rows_of_the_levels_kind_and_category_only():
    q = np.full(4, 0.2)
    kind = np.array(["retry", "retry", "message", "retry"], dtype=object)
    category = np.array(
        ["insufficient_funds", "expired_card", "insufficient_funds", "insufficient_funds"],
        dtype=object,
    )
    levels = {"retry": {"insufficient_funds": 0.5}, "message": {}}
    chosen = np.array([True, True, True, False])
    out = leveled(q, kind, category, levels, chosen)
    np.testing.assert_allclose(logit(out) - logit(q), [0.5, 0.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(leveled(q, kind, category, {}, chosen), q)


def test_the_level_moves_the_searched_schedules_value_and_never_the_fixed_one(small_world):
    decider = small_world.artifact.decider(compiled=False)
    events = events_from_history(small_world.history).tail(40).reset_index(drop=True)
    past = past_rows(events, None)
    features = decider.scorer.event_features(events, None)
    plan = decider.plan(events, None, explore=False, past=past)
    schedule = (RetryRows.of(plan.retries).frame(), MessageRows.of(plan.messages).frame())
    laid = decider.score_laid_out(events, features, past, [schedule, schedule])
    flat = decider.steepened_values(events, features, laid, level_first=True)
    np.testing.assert_allclose(flat[0], laid[0].expected, atol=1e-12)  # no level: the models'
    categories = decider.rules.decide_many(events, None)["category"].astype(str).unique()
    decider.chosen_levels = {"retry": {c: 0.5 for c in categories}, "message": {}}
    searched, fixed = decider.steepened_values(events, features, laid, level_first=True)
    np.testing.assert_allclose(fixed, laid[1].expected, atol=1e-12)
    has_retry = np.isin(events["event_id"], plan.retries.event_id)
    assert (searched[has_retry] > fixed[has_retry]).all()
    np.testing.assert_allclose(searched[~has_retry], fixed[~has_retry], atol=1e-12)
    # the reported probability takes the level; the search (the plan) does not
    reported = decider.reported_values(events, features, (laid[0], laid[1]))
    assert (reported[has_retry] > laid[1].expected[has_retry]).all()
    again = decider.plan(events, None, explore=False, past=past)
    np.testing.assert_array_equal(again.retries.at, plan.retries.at)


def test_the_level_is_fitted_on_the_validation_periods_logged_rows(small_world):
    params = Params()
    events = level_events(small_world.history, params)
    assert len(events) and (events["failed_at"] >= small_world.split.valid_start).all()
    assert (events["failed_at"] < small_world.split.test_start).all()
    decider = small_world.artifact.decider(compiled=False)
    level = fit_chosen_level(decider, small_world.history, events.head(300), params)
    assert level.events == 300
    for kind in ("retry", "message"):
        for family, (a, se, rows) in level.fits[kind].items():
            assert rows >= params.train.chosen_level.min_rows and se > 0
            assert level.by_family()[kind].get(family, 0.0) == soft_threshold(a, se)
    settings = params.train.chosen_level.model_copy(update={"enabled": False})
    off = params.model_copy(
        update={"train": params.train.model_copy(update={"chosen_level": settings})}
    )
    assert level_events(small_world.history, off).empty


def test_a_plans_rows_are_ranked_within_their_kind():
    retries = RetryRows(np.array(["a", "a"], dtype=object), np.array([2, 1]) * HOUR_NS)
    messages = MessageRows(
        np.array(["a"], dtype=object),
        np.array([5]) * HOUR_NS,
        np.array(["link"], dtype=object),
        np.array(["email"], dtype=object),
        np.array([np.nan]),
    )
    frame = chosen_frame(retries, messages)
    assert frame["rank"].tolist() == [2, 1, 1]
    assert frame["template"].tolist() == [None, None, "link"]
