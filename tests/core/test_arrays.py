"""The group helpers give what a pandas group-by gives, one run or many."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.core.arrays import cummax_in_group, rank_in_group


@pytest.mark.parametrize("groups", [1, 3, 40])
def test_rank_and_running_maximum_equal_a_group_by(groups: int) -> None:
    rng = np.random.default_rng(groups)
    keys = np.sort(rng.integers(0, groups, size=200))
    values = rng.integers(-(10**18), 10**18, size=200)
    by = pd.Series(values).groupby(keys)
    np.testing.assert_array_equal(rank_in_group(keys), by.cumcount().to_numpy())
    np.testing.assert_array_equal(cummax_in_group(values, keys), by.cummax().to_numpy())


def test_runs_are_runs_even_when_keys_come_back() -> None:
    keys = np.array([1, 1, 2, 1])  # three runs, not two groups
    np.testing.assert_array_equal(rank_in_group(keys), [0, 1, 0, 0])
    np.testing.assert_array_equal(cummax_in_group(np.array([5, 3, 1, 2]), keys), [5, 5, 1, 2])


def test_empty_and_single_rows() -> None:
    assert len(rank_in_group(np.zeros(0, dtype=np.int64))) == 0
    assert len(cummax_in_group(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))) == 0
    np.testing.assert_array_equal(rank_in_group(np.array([7])), [0])
    np.testing.assert_array_equal(cummax_in_group(np.array([9]), np.array([7])), [9])
