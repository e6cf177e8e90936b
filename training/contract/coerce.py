"""Turn raw contract columns into canonical dtypes, recording every value that does not parse.

Raw columns come from CSV (every value a string, ``""`` meaning missing) or from Parquet
(typed as stored). Each column is converted according to its kind in ``tables.py``; a
value that is present but cannot be converted becomes missing in the typed frame and is
reported as a problem ``(row, field, reason)``, so it is rejected rather than lost.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from training.contract.tables import Column, Table

PROBLEM_COLUMNS = ("row", "field", "reason")

# A time of day followed by Z or an offset; a bare local time (or a date alone) is ambiguous.
_OFFSET_PATTERN = r"[T ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
_INT_PATTERN = r"[+-]?\d{1,18}"
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


def timestamp_reason(field: str) -> str:
    return f"{field} is not a valid ISO 8601 timestamp"


def no_offset_reason(field: str) -> str:
    return f"{field} has no UTC offset or Z"


TYPE_REASONS = {
    "int": "{field} is not an integer",
    "float": "{field} is not a number",
    "bool": "{field} is not a boolean (true/false)",
}


def problems_frame(rows: pd.Index | np.ndarray, field: str, reason: str) -> pd.DataFrame:
    """A problems frame with one row per ``rows`` label, all with the same field and reason."""
    rows = np.asarray(rows, dtype=np.int64)
    return pd.DataFrame(
        {
            "row": rows,
            "field": np.full(len(rows), field, dtype=object),
            "reason": np.full(len(rows), reason, dtype=object),
        }
    )


def empty_problems() -> pd.DataFrame:
    return problems_frame(np.array([], dtype=np.int64), "", "")


def is_missing(series: pd.Series) -> pd.Series:
    """Missing means null, or the empty string (how CSV spells an empty field)."""
    missing = series.isna()
    if ptypes.is_object_dtype(series) or ptypes.is_string_dtype(series):
        missing |= series.astype(object).eq("").to_numpy()
    return missing


def _as_text(series: pd.Series, missing: pd.Series) -> pd.Series:
    """Present values as Python ``str``, missing ones as ``None`` (object dtype)."""
    return series.astype(str).astype(object).where(~missing, None)


def _to_utc_ns(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """A datetime column to ``datetime64[ns, UTC]``; naive values are taken as UTC."""
    stamps = (
        series.dt.tz_convert("UTC") if series.dt.tz is not None else series.dt.tz_localize("UTC")
    )
    lo, hi = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    out_of_range = stamps.notna() & ((stamps < lo) | (stamps > hi))
    stamps = stamps.where(~out_of_range).dt.as_unit("ns")
    return stamps, out_of_range


def _parse_timestamps(
    series: pd.Series, missing: pd.Series, field: str
) -> tuple[pd.Series, list[pd.DataFrame]]:
    if ptypes.is_datetime64_any_dtype(series):
        stamps, bad = _to_utc_ns(series)
        return stamps, [problems_frame(series.index[bad], field, timestamp_reason(field))]
    text = _as_text(series, missing)
    has_offset = text.str.contains(_OFFSET_PATTERN, regex=True, na=False).astype(bool)
    parsed = pd.to_datetime(text.where(has_offset), format="ISO8601", utc=True, errors="coerce")
    stamps = pd.Series(parsed, index=series.index).dt.as_unit("ns")
    present = ~missing
    bad_parse = present & has_offset & stamps.isna()
    naive = present & ~has_offset
    naive_parses = pd.to_datetime(
        text.where(naive), format="ISO8601", errors="coerce", utc=True
    ).notna()
    return stamps, [
        problems_frame(
            series.index[bad_parse | (naive & ~naive_parses)], field, timestamp_reason(field)
        ),
        problems_frame(series.index[naive & naive_parses], field, no_offset_reason(field)),
    ]


def _parse_int(series: pd.Series, missing: pd.Series) -> tuple[pd.Series, pd.Series]:
    if ptypes.is_integer_dtype(series):
        return series.astype("Int64"), pd.Series(False, index=series.index)
    if ptypes.is_float_dtype(series):
        values = series.to_numpy(dtype=float)
        whole = np.isfinite(values) & (values == np.floor(values)) & (np.abs(values) < 2**62)
        ints = pd.Series(np.where(whole, values, 0).astype(np.int64), index=series.index)
        return ints.astype("Int64").where(whole), pd.Series(~whole, index=series.index) & ~missing
    text = _as_text(series, missing)
    ok = text.str.fullmatch(_INT_PATTERN, na=False).astype(bool)
    ints = pd.to_numeric(text.where(ok), errors="coerce").astype("Int64")
    return ints, ~missing & ~ok


def _parse_float(series: pd.Series, missing: pd.Series) -> tuple[pd.Series, pd.Series]:
    if ptypes.is_numeric_dtype(series) and not ptypes.is_bool_dtype(series):
        values = series.astype(float)
    else:
        values = pd.to_numeric(_as_text(series, missing), errors="coerce").astype(float)
    return values, ~missing & values.isna()


def _parse_bool(series: pd.Series, missing: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Missing becomes ``False`` (the contract's default for ``sms_opt_in``)."""
    if ptypes.is_bool_dtype(series):
        return series.fillna(False).astype(bool), pd.Series(False, index=series.index)
    if ptypes.is_numeric_dtype(series):
        values = series.astype(float)
        ok = missing | values.isin([0.0, 1.0])
        return values.eq(1.0) & ok, ~ok
    lowered = _as_text(series, missing).str.lower()
    truthy, falsy = lowered.isin(_TRUE), lowered.isin(_FALSE)
    return truthy.astype(bool), ~missing & ~truthy & ~falsy


def coerce_column(series: pd.Series, column: Column) -> tuple[pd.Series, pd.DataFrame]:
    """Convert one column to its canonical dtype; return it with the problems found."""
    missing = is_missing(series)
    field = column.name
    if column.kind == "timestamp":
        values, found = _parse_timestamps(series, missing, field)
        return values, pd.concat(found, ignore_index=True)
    if column.kind in ("id", "string", "enum"):
        return _as_text(series, missing), empty_problems()
    parser = {"int": _parse_int, "float": _parse_float, "bool": _parse_bool}[column.kind]
    values, bad = parser(series, missing)
    reason = TYPE_REASONS[column.kind].format(field=field)
    return values, problems_frame(series.index[bad.to_numpy()], field, reason)


def empty_column(column: Column, index: pd.Index) -> pd.Series:
    """An optional column absent from the input, in its canonical dtype."""
    if column.kind == "timestamp":
        return pd.Series(pd.NaT, index=index, dtype="datetime64[ns, UTC]")
    if column.kind == "bool":
        return pd.Series(False, index=index, dtype=bool)
    if column.kind == "float":
        return pd.Series(np.nan, index=index, dtype=float)
    if column.kind == "int":
        return pd.Series(pd.NA, index=index, dtype="Int64")
    return pd.Series(None, index=index, dtype=object)


def coerce_table(raw: pd.DataFrame, table: Table) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed frame holding exactly the contract's columns (extra ones dropped), and problems.

    ``raw`` must carry every required column (checked before) and a row-number index.
    """
    typed: dict[str, pd.Series] = {}
    found = [empty_problems()]
    for column in table.columns:
        if column.name in raw.columns:
            typed[column.name], problems = coerce_column(raw[column.name], column)
            found.append(problems)
        else:
            typed[column.name] = empty_column(column, raw.index)
    return pd.DataFrame(typed, index=raw.index), pd.concat(found, ignore_index=True)
