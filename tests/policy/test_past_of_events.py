"""The past attempts of schedule keys: a lone request's shortcut against the general path."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.core.columnar import ColumnTable, utc_array
from training.policy.scorer import past_of_events


def _past(ids: list[str], hours: list[int], kinds: list[str]) -> ColumnTable:
    start = pd.Timestamp("2025-03-01", tz="UTC").value
    ns = start + np.array(hours, dtype=np.int64) * 3600 * 10**9
    return ColumnTable.of(
        {
            "event_id": np.array(ids, dtype=object),
            "t": utc_array(ns),
            "kind": np.array(kinds, dtype=object),
        }
    )


def test_one_event_keys_get_the_rows_the_general_path_gives():
    lone = _past(["a", "a", "a"], [0, 30, 54], ["original", "retry", "retry"])
    # the same event's rows among another event's: the general path (factorized events)
    mixed = _past(
        ["b", "a", "b", "a", "a"],
        [1, 0, 20, 30, 54],
        ["original", "original", "retry", "retry", "retry"],
    )
    key = np.array([3, 0, 7, 1])
    ids = np.array(["a"] * 4, dtype=object)
    got = past_of_events(key, ids, lone)
    want = past_of_events(key, ids, mixed)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    assert got[0].tolist() == [3, 3, 3, 0, 0, 0, 7, 7, 7, 1, 1, 1]
    assert got[3].tolist() == ["original", "retry", "retry"] * 4


def test_no_keys_and_unknown_events():
    lone = _past(["a"], [0], ["original"])
    empty = past_of_events(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=object), lone)
    assert all(len(part) == 0 for part in empty)
    try:
        past_of_events(np.array([0]), np.array(["z"], dtype=object), lone)
    except KeyError:
        pass
    else:
        raise AssertionError("an event without past attempts must raise")
