"""Group operations on arrays sorted by a group key, vectorized.

The policy, the baselines and the dunning-state features all work on long arrays
(events x candidates, events x slots) sorted by event; these helpers answer "which row
starts its group", "how many rows of the group come before this one" and "running
maximum within the group" with numpy alone, never a loop over groups.
"""

from __future__ import annotations

import numpy as np


def group_counter(sizes: np.ndarray) -> np.ndarray:
    """0..size-1 for each group of ``sizes``, concatenated."""
    return np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)


def group_first(sorted_keys: np.ndarray) -> np.ndarray:
    """True on the first row of each run of equal keys."""
    first = np.ones(len(sorted_keys), dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return first


def group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Per row: the index of the first row of its run of equal keys."""
    n = len(sorted_keys)
    return np.maximum.accumulate(np.where(group_first(sorted_keys), np.arange(n), 0))


def _one_group(keys: np.ndarray) -> bool:
    """All keys equal (one event's rows, a lone request's case): one run."""
    return len(keys) > 0 and bool((keys == keys[0]).all())


def rank_in_group(sorted_keys: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within runs of equal keys."""
    if len(sorted_keys) == 0:
        return np.zeros(0, dtype=np.intp)
    if _one_group(sorted_keys):
        return np.arange(len(sorted_keys))
    return np.arange(len(sorted_keys)) - group_starts(sorted_keys)


def best_per_group(order: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The first row of each group in ``order`` (rows sorted by ``keys`` then preference):
    the preferred row of each group, groups in key order."""
    return order[group_first(keys[order])]


def cummax_in_group(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    """Running maximum of ``values`` within runs of equal keys.

    Ranks of the values are offset by run so one global running maximum never carries
    over from one run to the next (int64 times are too large to offset directly).
    """
    if len(values) == 0:
        return values
    if _one_group(sorted_keys):
        return np.maximum.accumulate(values)
    uniques, rank = np.unique(values, return_inverse=True)
    run = np.cumsum(group_first(sorted_keys)) - 1
    offset = run * len(uniques)
    return uniques[np.maximum.accumulate(rank.ravel() + offset) - offset]
