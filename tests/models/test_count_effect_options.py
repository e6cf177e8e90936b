"""The count effect's three options (h85): the first-stage slope served by the calibration
map (``count_effect_fixed_slope``), inputs out of the trees when a model has a count
effect (``count_effect_excluded_inputs``), and the shrinkage's prior
(``count_effect_prior``)."""

from __future__ import annotations

import numpy as np
import pytest
from retry_helpers import FEATURES, fit_drawn_retry
from retry_helpers import retry_rows as _rows

from training.config.params import ModelParams
from training.models.count_effect import fit_count_effect, shrunk
from training.models.fit import MODEL_FEATURES, check_monotone_inputs, model_inputs
from training.models.group_calibration import GroupCalibrator, _design, slope_values
from training.models.support import RankSupport


def _fit(params: ModelParams):
    return fit_drawn_retry(
        lambda rng, n: _rows(rng, n, -0.4),
        (12000, 4000),
        FEATURES,
        params,
        count_effect=("messages_before", "retries_before"),
    )


def _map_rows(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scores, labels, codes (a category, a count) and the count of rows whose truth adds
    0.3 for category 1 and -0.2 a count to the score's log-odds: a map's input."""
    rng = np.random.default_rng(seed)
    n = 8000
    scores = rng.uniform(0.02, 0.5, n)
    category = rng.integers(0, 3, n).astype(float)
    count = rng.integers(0, 4, n).astype(float)
    truth = np.log(scores / (1 - scores)) + 0.3 * (category == 1) - 0.2 * count
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-truth))).astype(int)
    return scores, y, np.column_stack([category, count]), count


def test_the_map_serves_the_first_stage_slope_when_fixed():
    base = ModelParams(num_boost_round=20, min_data_in_leaf=50, calibration_folds=2)
    own = _fit(base)
    fixed = _fit(base.model_copy(update={"count_effect_fixed_slope": ("retry",)}))
    assert own.count_effect is not None and fixed.count_effect is not None
    assert own.group_calibrator is not None and fixed.group_calibrator is not None
    first_stage = fixed.count_effect.per_unit
    served = fixed.group_calibrator.model.coef_[0][-1]
    assert served == first_stage
    # the map's own slope is refitted beside the scores: another figure
    assert own.group_calibrator.model.coef_[0][-1] != pytest.approx(first_stage, abs=1e-6)
    # and the served model applies it: one message more at the same time
    rows = _rows(np.random.default_rng(2), 200, -0.4)[FEATURES]
    rows = rows.assign(messages_before=1.0)
    one, two = fixed.predict(rows), fixed.predict(rows.assign(messages_before=2.0))
    lift = np.log(two / (1 - two)) - np.log(one / (1 - one))
    assert np.allclose(lift, first_stage)


def test_the_fixed_map_fits_the_rest_as_the_free_map_does():
    scores, y, codes, count = _map_rows(0)
    args = (scores, y, codes, (0, 1), (3, 3), 1.0, (False, True), (1,), count[:, None])
    free = GroupCalibrator.fit(*args)
    slope = float(free.model.coef_[0][-1])
    fixed = GroupCalibrator.fit(*args, (slope,))
    assert fixed.model.coef_[0][-1] == slope
    # the same penalised likelihood, at least as well minimised as sklearn's
    design = _design(scores, free.group_codes(codes), (3, 3), slope_values(count[:, None]))

    def objective(model) -> float:
        beta = model.coef_[0]
        z = design @ beta + model.intercept_[0]
        return float(np.sum(np.logaddexp(0, z) - y * z) + 0.5 * beta @ beta)

    assert objective(fixed.model) <= objective(free.model) + 1e-3
    assert np.abs(free.predict(scores, codes) - fixed.predict(scores, codes)).max() < 0.005
    assert np.allclose(fixed.predict(scores, codes), fixed.predict_sparse(scores, codes))


def test_the_prior_sets_the_shrinkage():
    assert shrunk(-0.2, 1.0, 1.0) == pytest.approx(-0.1)
    assert shrunk(-0.2, 1.0, 0.25) == pytest.approx(-0.16)
    assert shrunk(-0.2, 1.0, 0.0) == -0.2
    assert shrunk(-0.2, 0.0, 0.0) == 0.0  # no error known: no slope
    rows = _rows(np.random.default_rng(4), 20000, slope=-0.2)
    args = (rows, rows["y"].to_numpy(), "messages_before", FEATURES, "retries_before")
    unshrunk, default = fit_count_effect(*args, prior=0.0), fit_count_effect(*args)
    assert unshrunk.per_unit == unshrunk.estimate
    z2 = (default.estimate / default.standard_error) ** 2
    assert default.per_unit == pytest.approx(default.estimate * z2 / (1 + z2))
    assert abs(default.per_unit) < abs(unshrunk.per_unit)


def test_inputs_leave_the_trees_only_with_a_count_effect():
    out = {"retry": ["hours_since_last_message"]}
    on = ModelParams(count_effect_excluded_inputs=out)
    assert "hours_since_last_message" in MODEL_FEATURES["retry"]
    assert "hours_since_last_message" not in model_inputs("retry", on)
    assert "hours_since_last_message" in model_inputs("message", on)  # another model's
    off = on.model_copy(update={"count_effects": {}})
    assert "hours_since_last_message" in model_inputs("retry", off)
    with pytest.raises(ValueError, match="count_effect_excluded_inputs"):
        check_monotone_inputs(ModelParams(count_effect_excluded_inputs={"retry": ["typo"]}))


def test_the_rank_support_skips_a_time_input_left_out():
    rows = _rows(np.random.default_rng(1), 500, 0.0)
    rows["hours_since_last_message"] = 5.0
    support = RankSupport.fit(
        rows, FEATURES, "retries_before", ("hours_since_failure", "hours_since_last_message")
    )
    assert support.positions == (FEATURES.index("hours_since_failure"),)


def test_the_map_slope_moves_to_the_first_stage_by_its_precision():
    """``count_effect_map_prior`` (h89): a first stage the data cannot pin (a huge
    standard error) leaves the map's own slope; a precise one sets it."""
    scores, y, codes, count = _map_rows(5)
    args = (scores, y, codes, (0, 1), (3, 3), 1.0, (False, True), (1,), count[:, None], None)
    own = float(GroupCalibrator.fit(*args).model.coef_[0][-1])
    assert own == pytest.approx(-0.2, abs=0.08)
    weak = GroupCalibrator.fit(*args, ((-0.8, 1e6),)).model.coef_[0][-1]
    strong = GroupCalibrator.fit(*args, ((-0.8, 1e-8),)).model.coef_[0][-1]
    middle = GroupCalibrator.fit(*args, ((-0.8, 0.01),)).model.coef_[0][-1]
    none = GroupCalibrator.fit(*args, ((-0.8, np.inf),)).model.coef_[0][-1]
    assert weak == pytest.approx(none, abs=1e-3)
    # no prior: the map's own slope (sklearn's solver stops earlier than the offset fit's)
    assert none == pytest.approx(own, abs=0.02)
    assert strong == pytest.approx(-0.8, abs=1e-3)
    assert -0.8 < middle < own - 0.05  # between, by the two precisions


def test_the_map_prior_reads_the_first_stage():
    base = ModelParams(num_boost_round=20, min_data_in_leaf=50, calibration_folds=2)
    own = _fit(base)
    params = base.model_copy(
        update={"count_effect_map_prior": ("retry",), "count_effect_map_prior_scale": 1e-6}
    )
    tight = _fit(params)
    assert own.group_calibrator is not None and tight.group_calibrator is not None
    assert tight.count_effect is not None
    served = tight.group_calibrator.model.coef_[0][-1]
    assert served == pytest.approx(tight.count_effect.estimate, abs=0.01)
    assert own.group_calibrator.model.coef_[0][-1] != pytest.approx(served, abs=0.01)
    rows = _rows(np.random.default_rng(2), 200, -0.4)[FEATURES].assign(messages_before=1.0)
    one, two = tight.predict(rows), tight.predict(rows.assign(messages_before=2.0))
    lift = np.log(two / (1 - two)) - np.log(one / (1 - one))
    assert np.allclose(lift, served)
