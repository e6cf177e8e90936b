"""The column helpers give what pandas' public API gives, on every dtype the policy uses."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.core.columnar import (
    ColumnTable,
    as_frame,
    column_array,
    column_flags,
    column_values,
    frame_of_arrays,
    utc_array,
    utc_index,
)
from training.core.frames import numbered
from training.core.localtime import to_ns


def _columns(n: int) -> dict[str, object]:
    return {
        "event_id": np.array([f"e{i}" for i in range(n)], dtype=object),
        "code": np.array([None, *range(n - 1)], dtype=object)[:n],
        "amount": np.arange(n, dtype=np.int64),
        "rate": np.linspace(0.0, 1.0, n),
        "flag": np.arange(n) % 2 == 0,
        "failed_at": pd.DatetimeIndex(
            np.arange(n, dtype=np.int64).view("datetime64[ns]")
        ).tz_localize("UTC"),
        "naive": np.arange(n, dtype=np.int64).view("datetime64[ns]"),
        "text": np.array(["ab", "c", "d", "e", "f"][:n]),  # numpy unicode: objects
    }


@pytest.mark.parametrize("n", [0, 1, 5])
def test_frame_of_arrays_equals_the_public_constructor(n: int) -> None:
    columns = _columns(n)
    expected = pd.DataFrame(columns, copy=False)
    built = frame_of_arrays(columns)
    pd.testing.assert_frame_equal(built, expected)
    assert list(built.dtypes) == list(expected.dtypes)
    assert len(built._mgr.blocks) == len(expected._mgr.blocks)  # one per column, no copies


def test_frame_of_arrays_keeps_the_given_index() -> None:
    index = pd.Index([10, 11, 12])
    built = frame_of_arrays({"a": np.array([1, 2, 3])}, index=index)
    pd.testing.assert_frame_equal(built, pd.DataFrame({"a": [1, 2, 3]}, index=index))


def test_frame_of_arrays_rejects_columns_of_unequal_length() -> None:
    with pytest.raises(ValueError, match="unequal length.*'b': 2"):
        frame_of_arrays({"a": np.array([1, 2, 3]), "b": np.array([1, 2])})
    with pytest.raises(ValueError, match="1-D"):
        frame_of_arrays({"a": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="time unit"):
        frame_of_arrays({"a": np.zeros(2, dtype="datetime64[D]")})
    with pytest.raises(TypeError, match="expected an array, got list"):
        frame_of_arrays({"a": [1, 2]})


@pytest.mark.parametrize("n", [0, 1, 5])
def test_column_values_are_the_series_values(n: int) -> None:
    frame = pd.DataFrame(_columns(n))
    for name in frame.columns:
        values = column_values(frame, name)
        expected = frame[name]._values
        assert type(values) is type(expected), name
        assert values.dtype == expected.dtype, name
        pd.testing.assert_series_equal(pd.Series(values, name=name), frame[name])
    assert (to_ns(column_values(frame, "failed_at")) == to_ns(frame["failed_at"])).all()


@pytest.mark.parametrize("n", [0, 1, 5])
def test_a_column_table_reads_as_its_frame(n: int) -> None:
    columns = {**_columns(n), "ext": pd.array([1, None, 3, 4, 5][:n], dtype="Int64")}
    table = ColumnTable.of(columns)
    frame = pd.DataFrame(columns, copy=False)
    assert len(table) == n and table.empty == (n == 0) and table.columns == list(frame.columns)
    assert ("rate" in table, "nope" in table) == (True, False)
    pd.testing.assert_index_equal(table.index, frame.index)
    pd.testing.assert_frame_equal(table.frame(), frame)
    pd.testing.assert_frame_equal(as_frame(table), frame)
    assert as_frame(frame) is frame and numbered(table) is table
    for name in frame.columns:
        values = column_values(table, name)
        assert type(values) is type(frame[name]._values), name
        pd.testing.assert_series_equal(pd.Series(values, name=name), frame[name])
        for dtype in (None, object):
            got, expected = column_array(table, name, dtype), frame[name].to_numpy(dtype=dtype)
            assert got.dtype == expected.dtype, (name, dtype)
            assert pd.Series(got).equals(pd.Series(expected)), (name, dtype)
    assert column_flags(table, "flag").tolist() == column_flags(frame, "flag").tolist()
    assert (to_ns(column_values(table, "failed_at")) == to_ns(frame["failed_at"])).all()
    with pytest.raises(ValueError, match="unequal length"):
        ColumnTable.of({"a": np.zeros(n), "b": np.zeros(n + 1)})


def test_column_values_of_a_repeated_name_and_a_missing_one() -> None:
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ValueError, match="'a' appears more than once"):
        column_values(frame, "a")
    with pytest.raises(KeyError):
        column_values(frame, "b")


def test_column_array_and_flags_are_the_public_conversions() -> None:
    frame = pd.DataFrame(
        {
            "n": np.array([1, 2, 3]),
            "ext": pd.array([1, None, 3], dtype="Int64"),
            "flag": np.array([True, False, True]),
            "maybe": np.array([True, None, False], dtype=object),
        }
    )
    cases = [("n", np.int64), ("n", float), ("n", None), ("ext", float), ("ext", None)]
    for name, dtype in [*cases, ("flag", bool), ("maybe", None)]:
        expected = frame[name].to_numpy(dtype=dtype)
        got = column_array(frame, name, dtype)
        assert got.dtype == expected.dtype, (name, dtype)
        assert pd.Series(got).equals(pd.Series(expected)), (name, dtype)
    assert column_flags(frame, "flag").tolist() == [True, False, True]
    assert column_flags(frame, "maybe").tolist() == [True, False, False]


@pytest.mark.parametrize("n", [0, 1, 5])
def test_utc_times_equal_the_public_conversion(n: int) -> None:
    ns = np.array([np.iinfo(np.int64).min, 0, 1_700_000_000_123_456_789, -5, 7][:n])
    expected = pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize("UTC")
    index = utc_index(ns)
    pd.testing.assert_index_equal(index, expected, exact=True)
    assert index.freq is None and index.name is None
    pd.testing.assert_extension_array_equal(utc_array(ns), expected.array)
    assert utc_index(ns.tolist()).equals(expected)  # any int64-like input
    if n:
        assert pd.isna(index[0])  # the smallest int64 is NaT
        ns[-1] += 1  # a copy: the caller's array may change afterwards
        assert index.asi8[-1] == expected.asi8[-1] != ns[-1]


def test_utc_times_refuse_more_than_one_dimension() -> None:
    with pytest.raises(ValueError, match="1-D"):
        utc_array(np.zeros((2, 2), dtype=np.int64))
