"""The dunning state's searches (training/features/dunning_state.py): on a batch's
thousands of queries each group's first key is searched once per group; the counts and
latest times equal those of one search per query."""

from __future__ import annotations

import numpy as np

from training.features.dunning_state import GROUP_SEARCH_ROWS, _latest_of, _Queries


def test_one_search_per_group_equals_one_per_query():
    rng = np.random.default_rng(4)
    n_groups = 300
    times_group = np.sort(rng.integers(0, n_groups, 900))
    times = 490_000 + rng.integers(0, 400, len(times_group)).astype(float)
    order = np.lexsort((times, times_group))
    times_group, times = times_group[order], times[order]
    for rows in (GROUP_SEARCH_ROWS + 500, 50):
        group = rng.integers(0, n_groups, rows)
        hours = 490_000 + rng.integers(0, 400, rows).astype(float)
        queries = _Queries.of(group, hours)
        keys = times_group * 1e7 + times
        per_query = np.searchsorted(keys, queries.group_start, side="left")
        np.testing.assert_array_equal(queries.starts(keys), per_query)
        for side in ("left", "right"):
            count, latest = _latest_of(times_group, times, queries, side=side)
            position = np.searchsorted(keys, queries.keys, side=side)
            want = position - per_query
            np.testing.assert_array_equal(count, want.astype(float))
            np.testing.assert_array_equal(
                latest, np.where(want > 0, times[np.maximum(position - 1, 0)], np.nan)
            )
        # taken rows keep their groups
        part = queries.take(np.flatnonzero(group % 2 == 0))
        np.testing.assert_array_equal(
            part.starts(keys), np.searchsorted(keys, part.group_start, side="left")
        )
