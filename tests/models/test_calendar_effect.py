"""The calendar effect (``train.model.calendar_effects``): a weekday whose retries succeed
more often, for one decline category, gets a log-odds offset learned with the timing
held fixed; a weekday pattern the data do not show gets offsets near 0; the served
model adds the offsets to the trees' scores on every scoring path."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from retry_helpers import fit_drawn_retry

from training.config.params import ModelParams
from training.models.calendar_effect import (
    CalendarEffect,
    CalendarSpec,
    calendar_cells,
    fit_calendar_cells,
    fit_calendar_effects,
    frame_offsets,
    total_offsets,
)
from training.models.calibrated import category_codes, encode_matrix
from training.models.count_effect import add_cells
from training.models.fit import _calendar_effects

FEATURES = ["retries_before", "hours_since_failure", "inv_decline_category", "local_weekday"]
CATEGORIES = ["do_not_honor", "insufficient_funds"]


def _rows(rng: np.random.Generator, n: int, boost: float) -> pd.DataFrame:
    """Retries on random weekdays; insufficient funds succeed ``boost`` more log-odds on
    weekday 4 (any weekday would do: nothing in the fit names one)."""
    rank = rng.integers(0, 3, n).astype(float)
    hours = 24.0 + 48.0 * rank + rng.uniform(0, 48, n)
    weekday = rng.integers(0, 7, n).astype(float)
    category = rng.choice(CATEGORIES, n)
    funds = category == "insufficient_funds"
    logit = -2.5 + 0.004 * hours - 0.3 * rank + boost * (funds & (weekday == 4))
    p = 1.0 / (1.0 + np.exp(-logit))
    return pd.DataFrame(
        {
            "retries_before": rank,
            "hours_since_failure": hours,
            "inv_decline_category": category,
            "local_weekday": weekday,
            "y": (rng.random(n) < p).astype(int),
        }
    )


def _effect(rows: pd.DataFrame):
    (effect,) = fit_calendar_effects(
        rows, rows["y"].to_numpy(), ["local_weekday"], FEATURES, CATEGORIES, "retries_before"
    )
    return effect


def test_the_weekday_of_one_category_gets_its_offset_and_a_flat_world_none():
    effect = _effect(_rows(np.random.default_rng(3), 40000, boost=0.7))
    funds, other = effect.table[1], effect.table[0]
    assert funds.argmax() == 4 and funds[4] - np.delete(funds, 4).mean() > 0.45
    assert abs(other[4] - np.delete(other, 4).mean()) < 0.25  # mostly the category's own
    assert effect.position == 3 and effect.category_position == 2
    flat = _effect(_rows(np.random.default_rng(4), 40000, boost=0.0))
    assert np.abs(flat.table).max() < 0.15


def test_the_penalty_follows_how_far_the_values_differ_beyond_their_noise():
    """Chosen by the evidence (no constant): a world without a weekday pattern gets
    offsets near 0 (a fixed penalty of 10 keeps its noise), a family with a strong one
    keeps almost all of it while a family without one is shrunk to the pool."""
    y_of = {}

    def fit(boost: float, ridge: float | None):
        rows = _rows(np.random.default_rng(3), 40000, boost)
        y_of[boost] = rows["y"].to_numpy()
        (effect,) = fit_calendar_effects(
            rows, y_of[boost], ["local_weekday"], FEATURES, CATEGORIES, "retries_before",
            ridge=ridge,
        )  # fmt: skip
        return effect

    flat, flat_fixed = fit(0.0, None), fit(0.0, 10.0)
    assert np.abs(flat.table).max() < 0.05 < 0.08 < np.abs(flat_fixed.table).max()
    assert min(flat.penalties.values()) > 300
    assert set(flat_fixed.penalties.values()) == {10.0}
    strong = fit(0.7, None)
    funds = strong.table[1]
    assert funds[4] - np.delete(funds, 4).mean() > 0.6  # truth 0.7
    assert strong.penalties["insufficient_funds"] < 30
    assert strong.penalties["soft_issuer"] > 300  # do_not_honor's family: no pattern
    assert strong.describe()["penalties"] == {
        name: round(value, 2) for name, value in strong.penalties.items()
    }


def test_a_shared_penalty_judges_the_families_deviations_together():
    """One penalty for all families' offsets: a family with a weak weekday (do_not_honor,
    about +0.1 log-odds on weekday 1) keeps more of it than judged alone (taken to ~0)
    while the strong family keeps most of its own."""
    rng = np.random.default_rng(3)
    rows = _rows(rng, 40000, boost=0.7)
    weak = (rows["inv_decline_category"] == "do_not_honor") & (rows["local_weekday"] == 1)
    rows.loc[weak & (rng.random(len(rows)) < 0.01), "y"] = 1
    y = rows["y"].to_numpy()

    def fit(shared: bool) -> CalendarEffect:
        (effect,) = fit_calendar_effects(
            rows, y, ["local_weekday"], FEATURES, CATEGORIES, "retries_before",
            ridge=None, shared_penalty=shared,
        )  # fmt: skip
        return effect

    def lift(effect: CalendarEffect, row: int, value: int) -> float:
        return float(effect.table[row, value] - np.delete(effect.table[row], value).mean())

    alone, shared = fit(False), fit(True)
    assert shared.penalties["insufficient_funds"] == shared.penalties["soft_issuer"]
    assert alone.penalties["soft_issuer"] > 300 > 30 > alone.penalties["insufficient_funds"]
    assert lift(alone, 0, 1) < 0.05 and lift(shared, 0, 1) > lift(alone, 0, 1) + 0.04
    assert min(lift(alone, 1, 4), lift(shared, 1, 4)) > 0.6  # truth 0.7


def test_an_input_pooled_only_with_its_own_penalty():
    """The day of the month pooled only (no family's offsets) and chosen by the evidence
    beside a weekday with the fixed penalty: a day without a pattern gets ~0, the same
    for every category up to the centring."""
    rng = np.random.default_rng(3)
    rows = _rows(rng, 40000, boost=0.7)
    rows["local_day_of_month"] = rng.integers(1, 32, len(rows)).astype(float)
    columns = ["local_weekday", "local_day_of_month"]
    weekday, day = fit_calendar_effects(
        rows, rows["y"].to_numpy(), columns, [*FEATURES, "local_day_of_month"], CATEGORIES,
        "retries_before", pooled_only=["local_day_of_month"],
        input_ridge={"local_day_of_month": None}, ridge=10.0,
    )  # fmt: skip
    assert set(weekday.penalties.values()) == {10.0} and len(weekday.penalties) == 3
    assert day.penalties.keys() == {"pooled"} and day.penalties["pooled"] > 300
    assert day.table.shape == (3, 32) and np.abs(day.table).max() < 0.05
    parallel = day.table - day.table[:, :1]
    assert np.abs(parallel - parallel[0]).max() < 1e-12
    assert weekday.table[1, 4] - np.delete(weekday.table[1], 4).mean() > 0.45


def test_a_rare_category_gets_its_family_s_weekday():
    """limit_exceeded (rare) shares insufficient funds' family: per family it gets the
    family's weekday, per category (its own few rows, shrunk to the pool) much less."""
    rng = np.random.default_rng(6)
    rows = _rows(rng, 40000, boost=0.7)
    rare = (rows["inv_decline_category"] == "insufficient_funds") & (rng.random(len(rows)) < 0.04)
    rows.loc[rare, "inv_decline_category"] = "limit_exceeded"
    categories = ["do_not_honor", "insufficient_funds", "limit_exceeded"]
    y = rows["y"].to_numpy()

    def lift(groups: str) -> np.ndarray:
        (effect,) = fit_calendar_effects(
            rows, y, ["local_weekday"], FEATURES, categories, "retries_before", groups
        )
        return effect.table[:, 4] - np.delete(effect.table, 4, axis=1).mean(axis=1)

    family, category = lift("family"), lift("category")
    assert family[2] == pytest.approx(family[1]) and family[1] > 0.45
    assert category[2] < family[2] - 0.1  # the category's own rows: shrunk further
    assert abs(family[0]) < 0.25  # another family keeps about the pool
    with pytest.raises(ValueError, match="family or category"):
        fit_calendar_effects(
            rows, y, ["local_weekday"], FEATURES, categories, "retries_before", "x"
        )


def test_the_parts_cells_give_the_rows_fit():
    """The cluster's path: each part's cells, added up, fit the rows' offsets (the same
    likelihood; measured 1e-14 apart), weighing the rows as many."""
    rows = _rows(np.random.default_rng(8), 20000, boost=0.7)
    y = rows["y"].to_numpy()
    (whole,) = fit_calendar_effects(
        rows, y, ["local_weekday"], FEATURES, CATEGORIES, "retries_before"
    )
    parts = [
        calendar_cells(rows.iloc[i::3], y[i::3], ["local_weekday"], "retries_before")
        for i in range(3)
    ]
    cells = add_cells(parts)
    assert len(cells) < 500 and cells["rows"].sum() == len(rows)
    (summed,) = fit_calendar_cells(cells, ["local_weekday"], FEATURES, CATEGORIES, "retries_before")
    assert summed.rows == whole.rows == len(rows)
    np.testing.assert_allclose(summed.table, whole.table, atol=1e-6)
    assert summed.penalties.keys() == whole.penalties.keys()  # the same penalties chosen
    for name, value in whole.penalties.items():
        assert summed.penalties[name] == pytest.approx(value, rel=1e-3), name
    assert np.abs(whole.table).max() > 0.3
    frame = rows.head(50)
    codes = category_codes(frame["inv_decline_category"], CATEGORIES)
    expected = whole.offsets(frame["local_weekday"].to_numpy(), codes)
    np.testing.assert_array_equal(frame_offsets((whole,), frame, CATEGORIES), expected)


def test_offsets_read_the_matrix_codes_and_add_nothing_where_unknown():
    effect = _effect(_rows(np.random.default_rng(5), 20000, boost=0.7))
    frame = pd.DataFrame(
        {
            "retries_before": [0.0, 0.0, 0.0, 0.0],
            "hours_since_failure": [30.0] * 4,
            "inv_decline_category": ["insufficient_funds", "never_seen", "do_not_honor", None],
            "local_weekday": [4.0, 4.0, np.nan, 9.0],
        }
    )
    codes = category_codes(frame["inv_decline_category"], CATEGORIES)
    assert codes[0] == 1 and np.isnan(codes[1])
    offsets = effect.offsets(frame["local_weekday"].to_numpy(), codes)
    assert offsets[0] == effect.table[1, 4]
    assert offsets[1] == effect.table[-1, 4]  # an unseen category: the pooled effect
    assert offsets[2] == 0.0 and offsets[3] == 0.0
    matrix = encode_matrix(frame, FEATURES, {"inv_decline_category": CATEGORIES})
    assert np.array_equal(effect.matrix_offsets(matrix), offsets)


def test_offsets_of_odd_values_are_those_of_the_checks_with_isfinite():
    """Values and codes that are NaN, infinite, negative, fractional or beyond the table
    get what the checks with np.isfinite gave (offsets() leaves np.isfinite out)."""
    table = np.arange(4 * 7, dtype=float).reshape(4, 7) + 0.5
    effect = CalendarEffect("local_weekday", 0, 1, table, rows=1)
    odd = np.array([np.nan, np.inf, -np.inf, -0.5, -0.0, 0.0, 2.7, 6.9, 7.0, 1e300])
    values, codes = np.meshgrid(odd, np.append(odd, [1.0, 2.9, 3.0]))
    v, c = values.ravel(), codes.ravel()
    known = np.isfinite(v) & (v >= 0) & (v < 7)
    seen = np.isfinite(c) & (c >= 0) & (c < 3)
    row = np.where(seen, c, 3).astype(np.intp)
    expected = np.where(known, table[row, np.where(known, v, 0.0).astype(np.intp)], 0.0)
    assert np.array_equal(effect.offsets(v, c), expected)


def test_total_offsets_sum_the_effects_and_one_effect_s_are_its_own():
    table = np.arange(4 * 7, dtype=float).reshape(4, 7) - 10.0
    first = CalendarEffect("local_weekday", 0, 1, table, rows=1)
    second = CalendarEffect("local_weekday", 2, 1, table[:, ::-1] * 0.5, rows=1)
    matrix = np.array([[0.0, 1.0, 6.0], [3.0, np.nan, 2.0], [np.nan, 2.0, 9.0]])
    one = first.matrix_offsets(matrix)
    assert np.array_equal(total_offsets((first,), matrix), one)
    assert np.array_equal(
        total_offsets((first, second), matrix), one + second.matrix_offsets(matrix)
    )
    assert np.array_equal(total_offsets((), matrix), np.zeros(3))


def _model(boost: float, effects: CalendarSpec | None):
    params = ModelParams(num_boost_round=40, min_data_in_leaf=50, calibration_folds=1)
    return fit_drawn_retry(
        lambda rng, n: _rows(rng, n, boost),
        (30000, 8000),
        FEATURES,
        params,
        calendar_effects=effects,
    )


def test_the_served_model_follows_the_weekday_further_than_the_trees_alone():
    probe = _rows(np.random.default_rng(12), 6000, 0.9)
    probe = probe[probe["inv_decline_category"] == "insufficient_funds"]
    on, off = probe.assign(local_weekday=4.0), probe.assign(local_weekday=2.0)

    def ratio(model) -> float:
        return float(model.predict(on).mean() / model.predict(off).mean())

    model = _model(0.9, (["local_weekday"], "retries_before", "family", None))
    assert len(model.calendar_effects) == 1
    assert ratio(model) > 1.6  # truth: about exp(0.9) ~ 2.5 in odds
    # the trees fitted the rest: without its offsets the model is almost flat in the weekday
    assert ratio(replace(model, calendar_effects=())) < 1.25
    # the encoded-matrix path (the policy's) gives the same probabilities
    matrix = model.encoded(on)
    assert np.allclose(model.predict_matrix(matrix), model.predict(on), atol=1e-12)


def test_calendar_effects_on_no_input_are_refused():
    assert _calendar_effects("retry", ModelParams(calendar_effects={})) is None
    assert _calendar_effects("message", ModelParams()) is None  # the default: retries only
    chosen = ModelParams(calendar_effects={"retry": ["local_weekday"]})
    spec = CalendarSpec(["local_weekday"], "retries_before", "family", 10.0)  # fixed penalty
    assert _calendar_effects("retry", chosen) == spec
    grouped = ModelParams(
        calendar_effects={"retry": ["local_weekday"]}, calendar_effect_groups="category"
    )
    assert _calendar_effects("retry", grouped) == spec._replace(groups="category")
    evidence = ModelParams(calendar_effect_penalty=None)  # chosen from the rows
    assert _calendar_effects("retry", evidence) == spec._replace(penalty=None)
    both = ["local_weekday", "local_day_of_month"]
    options = ModelParams(
        calendar_effects={"retry": both},
        calendar_effect_pooled_only=["local_day_of_month"],
        calendar_effect_shared_penalty=True,
        calendar_effect_input_penalty={"local_day_of_month": None},
    )
    assert _calendar_effects("retry", options) == spec._replace(
        columns=both,
        pooled_only=("local_day_of_month",),
        shared_penalty=True,
        input_penalty={"local_day_of_month": None},
    )
    with pytest.raises(ValueError, match="no input"):
        _calendar_effects("retry", ModelParams(calendar_effect_pooled_only=["template"]))
    with pytest.raises(ValueError, match="no input"):
        _calendar_effects("retry", ModelParams(calendar_effects={"retry": ["template"]}))
