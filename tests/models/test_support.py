"""Time inputs clipped to the range each dunning rank's training rows cover."""

import numpy as np
import pandas as pd
import pytest

from training.models.support import RankSupport

FEATURES = ["amount", "retries_before", "hours_since_failure", "hours_since_last_attempt"]
ROWS = pd.DataFrame(
    {
        "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
        "retries_before": [0, 0, 1, 1, 2],
        "hours_since_failure": [10.0, 96.0, 72.0, 168.0, 200.0],
        "hours_since_last_attempt": [10.0, 96.0, 48.0, np.nan, 40.0],
    }
)


def test_candidates_beyond_a_ranks_offsets_are_scored_at_its_edge():
    support = RankSupport.fit(
        ROWS, FEATURES, "retries_before", ("hours_since_failure", "hours_since_last_attempt")
    )
    candidates = np.array(
        [
            [9.0, 0, 240.0, 240.0],  # a first retry on day 10: held at day 4
            [9.0, 0, 1.0, 1.0],  # earlier than any first retry: held at 10 h
            [9.0, 1, 100.0, 30.0],  # inside rank 1's range: unchanged
            [9.0, 5, 500.0, np.nan],  # a rank never seen: the last one's range, NaN kept
        ]
    )
    clipped = support.clip(candidates)
    assert clipped[0].tolist() == [9.0, 0, 96.0, 96.0]
    assert clipped[1].tolist() == [9.0, 0, 10.0, 10.0]
    assert clipped[2].tolist() == [9.0, 1, 100.0, 48.0]
    assert clipped[3, 2] == 200.0 and np.isnan(clipped[3, 3])
    assert candidates[0, 2] == 240.0  # the input is left alone


def test_a_missing_rank_is_refused_with_its_name():
    rows = ROWS.assign(retries_before=[0, np.nan, 1, 1, 2])
    with pytest.raises(ValueError, match="retries_before"):
        RankSupport.fit(rows, FEATURES, "retries_before", ("hours_since_failure",))


@pytest.mark.parametrize("columns", [(0, 2), (0, 1, 3), (3,), (2, 3)])
def test_clipping_equals_each_ranks_bounds_whatever_the_columns_spacing(columns):
    """Evenly spaced columns are clipped through a slice, others through an index array:
    both equal np.clip with each row's rank's bounds."""
    rng = np.random.default_rng(3)
    rank = np.array([0.0, 1.0, 2.0, 7.0, np.nan, -1.0, 1.5] * 3)
    matrix = rng.normal(0, 100, (len(rank), 5))
    matrix[::4, 3] = np.nan
    matrix[:, 4] = rank
    lower, upper = rng.normal(-50, 10, (3, len(columns))), rng.normal(50, 10, (3, len(columns)))
    support = RankSupport(4, columns, lower, upper)
    at = np.nan_to_num(np.clip(rank, 0, 2), nan=0).astype(int)
    expected = matrix.copy()
    expected[:, list(columns)] = np.clip(matrix[:, list(columns)], lower[at], upper[at])
    np.testing.assert_array_equal(support.clip(matrix), expected)
    clipped = support.clip(matrix, in_place=True)  # the caller's matrix, clipped where it stands
    assert clipped is matrix
    np.testing.assert_array_equal(matrix, expected)


def test_the_clipping_plan_is_not_pickled():
    import pickle

    support = RankSupport.fit(ROWS, FEATURES, "retries_before", ("hours_since_failure",))
    support.clip(np.zeros((2, 4)))
    loaded = pickle.loads(pickle.dumps(support))
    assert "_kept_plan" not in loaded.__dict__
    assert loaded.clip(np.full((1, 4), 500.0))[0, 2] == 200.0


def test_an_owned_matrix_is_clipped_in_place_unless_the_calibration_map_reads_a_clipped_column():
    import lightgbm as lgb

    from training.models.calibrated import CalibratedModel, Calibrator
    from training.models.group_calibration import GroupCalibrator

    rng = np.random.default_rng(0)
    rows = np.column_stack(
        [rng.normal(size=400), rng.integers(0, 3, 400), rng.normal(0, 100, 400)]
    ).astype(float)
    label = (rng.random(400) < 0.3 + 0.1 * (rows[:, 2] > 0)).astype(int)
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_leaves": 4, "min_data_in_leaf": 5},
        lgb.Dataset(rows, label),
        5,
    )
    scores = booster.predict(rows)
    support = RankSupport(1, (2,), np.array([[-50.0], [-20.0], [0.0]]), np.array([[50.0]] * 3))

    def model(group_column: int) -> CalibratedModel:
        grouped = GroupCalibrator.fit(
            scores, label, rows[:, [group_column]], (group_column,), (3,), 1.0, counts=(True,)
        )
        calibrator = Calibrator.fit("sigmoid", scores, label)
        return CalibratedModel(
            "m", ["a", "rank", "t"], {}, booster, calibrator, 0.3, 5,
            group_calibrator=grouped, support=support,
        )  # fmt: skip

    apart = model(1)  # the map reads the rank, never clipped
    owned = rows.copy()
    np.testing.assert_array_equal(
        apart.predict_matrix(owned, owned=True), apart.predict_matrix(rows)
    )
    np.testing.assert_array_equal(owned, support.clip(rows))  # clipped where it stood
    reads_clipped = model(2)  # the map reads the clipped column: the matrix is copied
    owned = rows.copy()
    np.testing.assert_array_equal(
        reads_clipped.predict_matrix(owned, owned=True), reads_clipped.predict_matrix(rows)
    )
    np.testing.assert_array_equal(owned, rows)
