"""Frames to and from column arrays without pandas' per-column bookkeeping.

A lone API request travels as frames of one row, and there pandas' fixed costs are the
whole cost: ``pd.DataFrame(dict)`` re-checks and re-infers every column (~10-20 µs each,
~0.3 ms for the events' two dozen columns), and the first ``frame[name]`` of each column
builds and caches a Series (~20 µs; a decision reads a few dozen). These two helpers do
what pandas does internally once the checks are done: for columns that already have
their final dtype, and for reading a column's values.

They use private pandas entry points (``arrays_to_mgr`` and ``DataFrame._from_mgr``,
which ``pd.DataFrame(dict)`` itself ends in, and the block manager's ``iget_values``);
so do :func:`utc_array` and :func:`utc_index`, UTC timestamps of int64 nanoseconds
without the ~20-40 µs of checks and inference of ``pd.DatetimeIndex(...).tz_localize``
(``_simple_new``, which those end in);
pyproject.toml pins ``pandas<3`` and tests/core/test_columnar.py checks both helpers
against the public API on every dtype the policy uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from pandas.core.arrays import DatetimeArray
from pandas.core.internals.construction import arrays_to_mgr

_UNITS = ("s", "ms", "us", "ns")
_UTC_NS = pd.DatetimeTZDtype("ns", "UTC")


def frame_of_arrays(columns: Mapping[str, Any], index: pd.Index | None = None) -> pd.DataFrame:
    """``pd.DataFrame(columns, copy=False)`` for columns that are already typed 1-D arrays
    of one length (numpy arrays, pandas extension arrays; a ``DatetimeIndex`` or Series
    is taken as its array): no inference, no alignment, no copy.

    Object arrays stay object (pandas would turn one of only datetimes into datetimes),
    so the caller types its columns (``training.api.requests`` does, by the contract).
    """
    arrays = [_array(values) for values in columns.values()]
    n = len(arrays[0]) if arrays else (0 if index is None else len(index))
    if index is None:
        index = pd.RangeIndex(n)
    if any(len(values) != len(index) for values in arrays):
        sizes = {name: len(values) for name, values in zip(columns, arrays, strict=True)}
        raise ValueError(f"columns of unequal length (index {len(index)}): {sizes}")
    labels = np.empty(len(arrays), dtype=object)
    labels[:] = list(columns)
    names = pd.Index._simple_new(labels)  # pd.Index(list, dtype=object) infers: ~40 µs
    # one block per column, as pd.DataFrame(dict) makes them (DataFrame._from_arrays would
    # stack same-typed columns into 2-D blocks: a copy, and slower to read back)
    manager = arrays_to_mgr(
        arrays, names, index, verify_integrity=False, typ="block", consolidate=False
    )
    return pd.DataFrame._from_mgr(manager, axes=manager.axes)


def _array(values: Any) -> Any:
    if isinstance(values, pd.Index | pd.Series):
        return values.array if isinstance(values.dtype, pd.DatetimeTZDtype) else values.to_numpy()
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise ValueError(f"expected 1-D column arrays, got shape {values.shape}")
        if values.dtype.kind in "US":  # pandas keeps text as objects
            return values.astype(object)
        if values.dtype.kind in "Mm" and np.datetime_data(values.dtype)[0] not in _UNITS:
            raise ValueError(f"expected a time unit pandas keeps, got {values.dtype}")
        return values
    if isinstance(values, pd.api.extensions.ExtensionArray):
        return values
    raise TypeError(f"expected an array, got {type(values).__name__}")


def utc_array(ns: Any) -> DatetimeArray:
    """UTC timestamps (``datetime64[ns, UTC]`` array) of int64 nanoseconds since the epoch
    (the smallest int64 is NaT): ``pd.DatetimeIndex(ns.view("M8[ns]")).tz_localize("UTC")
    .array``, a copy as there (the caller may reuse ``ns``)."""
    values = np.array(ns, dtype=np.int64)
    if values.ndim != 1:
        raise ValueError(f"expected 1-D nanoseconds, got shape {values.shape}")
    return DatetimeArray._simple_new(values.view("datetime64[ns]"), dtype=_UTC_NS)


def utc_index(ns: Any) -> pd.DatetimeIndex:
    """:func:`utc_array` as a ``DatetimeIndex`` (no name, no frequency)."""
    return pd.DatetimeIndex._simple_new(utc_array(ns))


def object_array(values: Any) -> np.ndarray:
    """A 1-D object array of ``values`` (``np.array`` would nest lists or tuples into more
    dimensions, or guess a dtype)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


@dataclass(frozen=True, eq=False)
class ColumnTable:
    """A table's columns as the arrays a frame would hold (numpy arrays; a UTC time
    column as a ``DatetimeArray``), without the frame: what the decision passes between
    its stages (the rules' decisions, the past attempts), where a frame's block manager
    and each column lookup would be fixed costs per request. :func:`column_values`,
    :func:`column_array` and :func:`column_flags` read it as they read a frame;
    :meth:`frame` makes the frame. Never changed in place."""

    data: dict[str, Any]
    rows: int

    @classmethod
    def of(cls, columns: Mapping[str, Any]) -> ColumnTable:
        """Columns typed already (as :func:`frame_of_arrays` takes them), of one length."""
        data = {name: _held(_array(values)) for name, values in columns.items()}
        sizes = {len(values) for values in data.values()}
        if len(sizes) > 1:
            raise ValueError(f"columns of unequal length: { {k: len(v) for k, v in data.items()} }")
        return cls(data, sizes.pop() if sizes else 0)

    def __len__(self) -> int:
        return self.rows

    def __contains__(self, name: object) -> bool:
        return name in self.data  # a column, as ``name in frame``

    @property
    def columns(self) -> list[str]:
        return list(self.data)

    @property
    def index(self) -> pd.RangeIndex:
        """Rows are numbered 0..n-1 (a frame from :meth:`frame` has this index)."""
        return pd.RangeIndex(self.rows)

    @property
    def empty(self) -> bool:
        return self.rows == 0

    def frame(self, index: pd.Index | None = None) -> pd.DataFrame:
        return frame_of_arrays(self.data, index)


def _held(values: Any) -> Any:
    """A column as a frame's block holds it (numpy times as pandas' time arrays)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "Mm":
        return pd.array(values)
    return values


Table: TypeAlias = pd.DataFrame | ColumnTable
"""A frame, or its columns (:class:`ColumnTable`)."""


def as_frame(table: Table) -> pd.DataFrame:
    """``table`` as a frame (a :class:`ColumnTable`'s made, a frame as it is)."""
    return table.frame() if isinstance(table, ColumnTable) else table


def column_values(frame: Table, name: str) -> Any:
    """The values of column ``name`` as its Series holds them (a numpy array, or the
    extension array of a time-zone-aware column: ``frame[name]._values``), without
    building the Series; a view, never to be written to."""
    if isinstance(frame, ColumnTable):
        return frame.data[name]
    loc = frame.columns.get_loc(name)
    if not isinstance(loc, int):
        raise ValueError(f"column {name!r} appears more than once")
    return frame._mgr.iget_values(loc)


def column_array(frame: Table, name: str, dtype: Any = None) -> np.ndarray:
    """``frame[name].to_numpy(dtype=dtype)`` without building the Series (no copy when
    the column has that dtype already, or ``dtype`` is None: never to be written to)."""
    values = column_values(frame, name)
    if isinstance(values, np.ndarray):
        return values if dtype is None else values.astype(dtype, copy=False)
    if isinstance(frame, ColumnTable):
        return pd.Series(values, copy=False).to_numpy(dtype=dtype)
    return frame[name].to_numpy(dtype=dtype)


def column_flags(frame: Table, name: str) -> np.ndarray:
    """A boolean column as a numpy array, missing values as False."""
    values = column_values(frame, name)
    if isinstance(values, np.ndarray) and values.dtype == bool:
        return values
    values = np.asarray(values, dtype=object)
    return np.where(pd.isna(values), False, values).astype(bool)
