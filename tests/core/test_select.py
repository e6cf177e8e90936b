"""``select`` gives what ``np.select`` gives, values and dtype, on the decision path's
inputs (1-d boolean conditions, scalar or 1-d choices) and hands others to it."""

from __future__ import annotations

import numpy as np
import pytest

from training.core.select import select


def _assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tolist() == want.tolist()


@pytest.mark.parametrize("n", [0, 1, 7, 200])
@pytest.mark.parametrize("seed", range(4))
def test_select_equals_np_select(n, seed):
    rng = np.random.default_rng(seed)
    conditions = [rng.random(n) < share for share in (0.1, 0.3, 0.5, 0.0, 1.0)]
    words = np.array(["a", "bb", "ccc"])[rng.integers(0, 3, n)]
    cases = [
        (["hard", "stop_long_word", words, words.astype(object), "x"], "retry_allowed"),
        (["hard", "stop", words, "y", "x"], ""),
        ([1, 2, rng.integers(0, 9, n), 4, 5], 0),
        ([1.5, rng.random(n), 3, np.int64(2), rng.integers(0, 9, n)], 0),
        (["a", "b", "c", "d", "e"], np.array("f", dtype=object)),
    ]
    for choices, default in cases:
        _assert_same(select(conditions, choices, default), np.select(conditions, choices, default))
    _assert_same(select(conditions, [1, 2, 3, 4, 5]), np.select(conditions, [1, 2, 3, 4, 5]))


def test_other_inputs_go_to_np_select():
    grid = np.array([[True, False], [False, True]])
    _assert_same(
        select([grid], [np.ones((2, 2))], -1.0), np.select([grid], [np.ones((2, 2))], -1.0)
    )
    with pytest.raises(TypeError):  # as np.select: conditions must be boolean
        select([np.array([1, 0])], [1])
    with pytest.raises(ValueError):
        select([np.array([True])], [1, 2])
