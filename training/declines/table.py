"""The versioned decline-code reference table and its forgiving, vectorized lookup.

``reference.csv`` (next to this module) holds one row per (vocabulary, raw code): the
processors of the data contract (stripe, adyen, braintree, sepa, bacs, ach) plus the
network vocabularies ``mastercard_mac`` (merchant advice codes) and ``visa`` (response
codes with Visa's decline category). Its first line is ``# version: <version>``.

Lookup is forgiving about form and strict about meaning: case, surrounding blanks,
spaces or hyphens instead of underscores (``Insufficient Funds``), ``2001.0`` from a
float column, ``ARUDD-0`` for Bacs ``0``, ``R1`` for ACH ``R01`` and ``5`` for Visa
``05`` all find their row; a code that is not in the table maps to ``other`` with
``known=False`` and is never guessed.

``classify`` works on the distinct (processor, code) pairs of a call. Short calls (the
API's one to a few events) are answered from a bounded memo of the pairs seen before, so
a warm call costs dict lookups rather than a dozen pandas string operations.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.contract.tables import PROCESSORS

DEFAULT_TABLE_PATH = Path(__file__).with_name("reference.csv")

CATEGORIES: tuple[str, ...] = (
    "insufficient_funds",
    "expired_card",
    "card_invalid",
    "lost_or_stolen",
    "fraud_suspected",
    "account_closed",
    "authentication_required",
    "do_not_honor",
    "issuer_unavailable",
    "processing_error",
    "limit_exceeded",
    "dispute_or_revoked",
    "not_permitted",
    "duplicate",
    "other",
)
RETRYABLE: tuple[str, ...] = ("yes", "no", "after_update")
# Categories that never recover by retrying the same card or account.
HARD_CATEGORIES: frozenset[str] = frozenset(
    {"lost_or_stolen", "fraud_suspected", "account_closed", "dispute_or_revoked", "not_permitted"}
)
# Vocabularies of the data contract's `processor` column, then the network ones.
NETWORK_VOCABULARIES: tuple[str, ...] = ("mastercard_mac", "visa")

REQUIRED_COLUMNS = ("processor", "code", "category", "retryable", "description", "source")
OPTIONAL_COLUMNS = ("aliases", "processor_type", "network_category", "wait_hours")
UNKNOWN_CATEGORY = "other"
# An unknown code is not known to be hard, so it may be retried, conservatively (rules.py).
UNKNOWN_RETRYABLE = "yes"
_RANGE = r"^(\d+)-(\d+)$"
_SEP = "\x1f"  # joins vocabulary and code into one lookup key
# Inputs up to this many rows are classified through the memo (per-row dict lookups);
# longer ones by the vectorized path, which is cheaper per row from a few dozen rows on.
SMALL_INPUT_ROWS = 64
# Distinct (processor, code) inputs remembered per table; when full the memo starts over.
MEMO_MAX_ENTRIES = 4096
CLASSIFIED_COLUMNS = ("category", "retryable", "known", "code", "raw_code", "table_row")


class UnknownProcessorError(ValueError):
    """A processor (vocabulary) name that the reference table does not know."""


@dataclass(frozen=True)
class DeclineInfo:
    processor: str
    raw_code: str | None
    code: str | None
    category: str
    retryable: str
    known: bool
    description: str
    source: str


def normalize_processor(processor: pd.Series) -> pd.Series:
    """``' Stripe '`` -> ``stripe``, ``Mastercard MAC`` -> ``mastercard_mac``."""
    return (
        processor.astype("string")
        .str.strip()
        .str.casefold()
        .str.replace(r"[\s\-]+", "_", regex=True)
    )


def normalize_codes(processor: pd.Series, code: pd.Series) -> pd.Series:
    """Lookup keys for raw codes; ``processor`` must already be normalized.

    Missing and blank codes give ``<NA>``.
    """
    key = code.astype("string").str.strip().str.casefold()
    key = key.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)  # 2001.0 from a float column
    key = key.str.replace(r"[\s\-]+", "_", regex=True)
    key = key.mask(key == "")
    bacs = processor == "bacs"
    key = key.mask(bacs, key.str.replace(r"^arudd_?([0-9a-z])$", r"\1", regex=True))
    key = key.mask(bacs, key.str.replace(r"^addacs_?([0-9a-z])$", r"addacs_\1", regex=True))
    key = key.mask(processor == "ach", key.str.replace(r"^r(\d)$", r"r0\1", regex=True))
    two_digit = processor.isin(list(NETWORK_VOCABULARIES))
    key = key.mask(two_digit, key.str.replace(r"^(\d)$", r"0\1", regex=True))
    return key


def _read_version(path: Path) -> str:
    with path.open(encoding="utf-8") as fh:
        first = fh.readline().strip()
    prefix = "# version:"
    if not first.startswith(prefix) or not first[len(prefix) :].strip():
        raise ValueError(f"{path}: first line must be '# version: <version>', got {first!r}")
    return first[len(prefix) :].strip()


def _validate(rows: pd.DataFrame, path: Path) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    line = rows.index + 3  # file line: version comment, header, 1-based
    checks = {
        "category not one of CATEGORIES": ~rows["category"].isin(CATEGORIES),
        "retryable not one of yes/no/after_update": ~rows["retryable"].isin(RETRYABLE),
        "empty source": rows["source"].str.strip() == "",
        "empty code": rows["code"].str.strip() == "",
        "unknown vocabulary": ~rows["processor"].isin(PROCESSORS + NETWORK_VOCABULARIES),
        "duplicate (processor, code)": rows.duplicated(["processor", "code"], keep=False),
        "hard category not retryable=no": rows["category"].isin(HARD_CATEGORIES)
        & (rows["retryable"] != "no"),
    }
    for reason, bad in checks.items():
        if bad.any():
            raise ValueError(f"{path}: {reason} on line(s) {line[bad.to_numpy()].tolist()}")


@dataclass
class DeclineTable:
    """The reference table with its lookup indexes (build with ``load_decline_table``)."""

    version: str
    rows: pd.DataFrame
    path: Path | None = None

    def __post_init__(self) -> None:
        rows = self.rows
        is_range = rows["code"].str.match(_RANGE)
        self._is_range = is_range.to_numpy(dtype=bool)
        bounds = rows.loc[is_range, "code"].str.extract(_RANGE).astype("int64")
        self._ranges = pd.DataFrame(
            {"processor": rows.loc[is_range, "processor"], "lo": bounds[0], "hi": bounds[1]}
        )
        forms = pd.concat(
            [
                rows["code"],
                rows["aliases"].str.split("|").explode().str.strip().loc[lambda s: s != ""],
            ]
        )
        keys = pd.DataFrame({"processor": rows["processor"].loc[forms.index], "raw": forms})
        keys["key"] = normalize_codes(keys["processor"], keys["raw"])
        keys["row"] = keys.index
        keys = keys.drop_duplicates(["processor", "key", "row"])
        clash = keys.duplicated(["processor", "key"], keep=False)
        if clash.any():
            raise ValueError(
                "decline table: different rows share a lookup form: "
                f"{keys.loc[clash, ['processor', 'raw']].values.tolist()}"
            )
        self._keys = dict(zip(keys["processor"] + _SEP + keys["key"], keys["row"], strict=True))
        self.vocabularies = tuple(sorted(rows["processor"].unique()))
        # (processor dtype, code dtype) -> {(processor key, code key): classified tuple}
        self._memo: dict[tuple[Any, Any], dict[tuple[Hashable, Hashable], tuple]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_memo": {}}  # the memo is a cache: not worth storing

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"_memo": {}, **state})  # tables pickled before the memo existed

    # -- single lookups ---------------------------------------------------------------
    def check_processor(self, processor: str) -> str:
        """The normalized vocabulary name, or ``UnknownProcessorError`` naming the valid ones."""
        if isinstance(processor, str):  # the same steps as normalize_processor, without pandas
            name = re.sub(r"[\s\-]+", "_", processor.strip().casefold())
        else:
            name = normalize_processor(pd.Series([processor]))[0]
        if pd.isna(name) or name not in self.vocabularies:
            raise UnknownProcessorError(
                f"unknown processor {processor!r}; expected one of {', '.join(self.vocabularies)}"
            )
        return str(name)

    def lookup(self, processor: str, code: str | None) -> DeclineInfo:
        name = self.check_processor(processor)
        hit = self.classify(pd.Series([name]), pd.Series([code], dtype="object")).iloc[0]
        row = int(hit["table_row"])
        return DeclineInfo(
            processor=name,
            raw_code=code,
            code=None if pd.isna(hit["code"]) else str(hit["code"]),
            category=str(hit["category"]),
            retryable=str(hit["retryable"]),
            known=bool(hit["known"]),
            description=self.rows.at[row, "description"] if row >= 0 else _unknown_text(code),
            source=self.rows.at[row, "source"] if row >= 0 else "",
        )

    def codes(self, processor: str, category: str) -> list[str]:
        """Raw codes of one vocabulary in one category (code ranges left out)."""
        name = self.check_processor(processor)
        if category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}; expected one of {CATEGORIES}")
        rows = self.rows
        pick = (rows["processor"] == name) & (rows["category"] == category)
        pick &= ~rows["code"].str.match(_RANGE)
        return rows.loc[pick, "code"].tolist()

    # -- vectorized --------------------------------------------------------------------
    def classify(self, processor: pd.Series, code: pd.Series) -> pd.DataFrame:
        """Classify many (processor, raw code) pairs; same index as the inputs.

        Columns: ``category``, ``retryable``, ``known``, ``code`` (the table's spelling for
        known codes, the stripped raw code otherwise, ``<NA>`` when missing), ``raw_code``
        and ``table_row`` (row of ``rows``, -1 when unknown). Unknown processors and codes
        give ``other`` with ``known=False``; nothing raises.
        """
        return pd.DataFrame(self.classify_columns(processor, code), index=code.index, copy=False)

    def classify_columns(
        self, processor: pd.Series, code: pd.Series
    ) -> dict[str, np.ndarray | pd.api.extensions.ExtensionArray]:
        """``classify`` as a dict of column arrays (row order of the inputs), without a frame.

        Short inputs (up to ``SMALL_INPUT_ROWS``) are answered from a memo of the distinct
        pairs seen before, so a warm call costs a few dict lookups; the pairs not in the memo
        go through the vectorized path once. Both give the same values and dtypes.
        """
        if not processor.index.equals(code.index):
            raise ValueError("classify: processor and code must share one index")
        if 0 < len(code) <= SMALL_INPUT_ROWS:
            columns = self._classify_memo(processor, code)
            if columns is not None:
                return columns
        return self._classify_vectorized(processor, code)

    def _classify_memo(
        self, processor: pd.Series, code: pd.Series
    ) -> dict[str, np.ndarray | pd.api.extensions.ExtensionArray] | None:
        """Memo path of ``classify_columns``; ``None`` when a value cannot be a dict key."""
        # the result depends on the value and on the dtype it is spelled in (2001 vs 2001.0)
        memo = self._memo.setdefault((processor.dtype, code.dtype), {})
        try:
            keys = [
                (_memo_key(p), _memo_key(c))
                for p, c in zip(processor.tolist(), code.tolist(), strict=True)
            ]
            found = [memo.get(key) for key in keys]
        except TypeError:  # unhashable values: leave them to the vectorized path
            return None
        if None in found:
            first: dict[tuple[Hashable, Hashable], int] = {}
            for i, (key, hit) in enumerate(zip(keys, found, strict=True)):
                if hit is None:
                    first.setdefault(key, i)
            new = self._classify_texts(first)
            if new is None:  # not plain text: the vectorized path
                at = list(first.values())
                done = self._classify_vectorized(processor.iloc[at], code.iloc[at])
                rows = zip(*(done[c].tolist() for c in CLASSIFIED_COLUMNS), strict=True)
                new = dict(zip(first, rows, strict=True))
            found = [
                hit if hit is not None else new[key] for key, hit in zip(keys, found, strict=True)
            ]
            if len(memo) + len(new) > MEMO_MAX_ENTRIES:
                memo.clear()
            memo.update(new)
        category, retryable, known, table_code, raw, row = zip(*found, strict=True)
        return {
            "category": np.array(category, dtype=object),
            "retryable": np.array(retryable, dtype=object),
            "known": np.array(known, dtype=bool),
            "code": pd.array(table_code, dtype="string"),
            "raw_code": pd.array(raw, dtype="string"),
            "table_row": np.array(row, dtype="int64"),
        }

    def _classify_texts(
        self, keys: dict[tuple[Hashable, Hashable], int]
    ) -> dict[tuple[Hashable, Hashable], tuple] | None:
        """The memo rows of new (processor, code) keys when every value is ``str`` or
        missing (the API's case): the steps of ``_classify_distinct`` with ``re`` on
        Python strings, which for a few keys is far cheaper than a dozen pandas string
        operations. ``None`` when some value is not text (the vectorized path decides)."""
        if not all((p is None or p[0] is str) and (c is None or c[0] is str) for p, c in keys):
            return None
        rows = self.rows
        out: dict[tuple[Hashable, Hashable], tuple] = {}
        for p, c in keys:
            proc = None if p is None else _PROCESSOR_FORM.sub("_", p[1].strip().casefold())
            raw = None if c is None else c[1].strip() or None
            row = -1
            if raw is not None and proc is not None:
                key = _code_key(proc, raw)
                if key is not None:
                    row = self._keys.get(proc + _SEP + key, -1)
                    if row < 0:
                        row = self._range_row(proc, key)
            if row < 0:
                out[(p, c)] = (UNKNOWN_CATEGORY, UNKNOWN_RETRYABLE, False, raw, raw, -1)
                continue
            table_code = raw if self._is_range[row] else rows["code"].iat[row]
            out[(p, c)] = (
                rows["category"].iat[row],
                rows["retryable"].iat[row],
                True,
                table_code,
                raw,
                int(row),
            )
        return out

    def _range_row(self, processor: str, key: str) -> int:
        """The first code range of ``processor`` holding the numeric ``key``, else -1."""
        ranges = self._ranges
        if not (ranges["processor"] == processor).any():
            return -1
        number = pd.to_numeric(pd.Series([key], dtype="string"), errors="coerce")
        value = number.to_numpy(dtype="float64", na_value=np.nan)[0]
        for rng in ranges.itertuples():
            if rng.processor == processor and rng.lo <= value <= rng.hi:
                return int(rng.Index)
        return -1

    def _classify_vectorized(
        self, processor: pd.Series, code: pd.Series
    ) -> dict[str, np.ndarray | pd.api.extensions.ExtensionArray]:
        """Classify each distinct (processor, code) text once, then spread to the rows."""
        proc_text, code_text = processor.astype("string"), code.astype("string")
        pair = _pair_ids(proc_text.to_numpy(), code_text.to_numpy())
        first = np.unique(pair, return_index=True)[1]  # pair ids number first appearances
        done = self._classify_distinct(
            proc_text.iloc[first].reset_index(drop=True),
            code_text.iloc[first].reset_index(drop=True),
        )
        return {name: values[pair] for name, values in done.items()}

    def _classify_distinct(
        self, processor: pd.Series, code: pd.Series
    ) -> dict[str, np.ndarray | pd.api.extensions.ExtensionArray]:
        """The classification itself, on ``string`` columns (of distinct pairs)."""
        proc = normalize_processor(processor)
        key = normalize_codes(proc, code)
        row = (proc + _SEP + key).map(self._keys).to_numpy(dtype="float64", na_value=np.nan)
        number = pd.to_numeric(key, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        for rng in self._ranges.itertuples():
            inside = (
                np.isnan(row)
                & (proc.to_numpy(dtype="object", na_value="") == rng.processor)
                & (number >= rng.lo)
                & (number <= rng.hi)
            )
            row[inside] = rng.Index
        known = ~np.isnan(row)
        row_int = np.where(known, row, -1).astype("int64")
        take = np.where(known, row_int, 0)
        raw = code.str.strip()
        raw = raw.mask(raw == "")
        raw_values = raw.to_numpy(dtype="object")
        table_code = self.rows["code"].to_numpy()[take]
        in_range = known & self._is_range[take]
        return {
            "category": np.where(known, self.rows["category"].to_numpy()[take], UNKNOWN_CATEGORY),
            "retryable": np.where(
                known, self.rows["retryable"].to_numpy()[take], UNKNOWN_RETRYABLE
            ),
            "known": known,
            "code": pd.array(np.where(known & ~in_range, table_code, raw_values), dtype="string"),
            "raw_code": pd.array(raw_values, dtype="string"),
            "table_row": row_int,
        }


_PROCESSOR_FORM = re.compile(r"[\s\-]+")
_FLOAT_FORM = re.compile(r"^(\d+)\.0+$")
_ARUDD = re.compile(r"^arudd_?([0-9a-z])$")
_ADDACS = re.compile(r"^addacs_?([0-9a-z])$")
_ACH_SHORT = re.compile(r"^r(\d)$")
_ONE_DIGIT = re.compile(r"^(\d)$")


def _code_key(processor: str, raw: str) -> str | None:
    """``normalize_codes`` of one stripped, non-blank text code (``processor`` normalized)."""
    key = _PROCESSOR_FORM.sub("_", _FLOAT_FORM.sub(r"\1", raw.casefold()))
    if key == "":
        return None
    if processor == "bacs":
        key = _ADDACS.sub(r"addacs_\1", _ARUDD.sub(r"\1", key))
    elif processor == "ach":
        key = _ACH_SHORT.sub(r"r0\1", key)
    elif processor in NETWORK_VOCABULARIES:
        key = _ONE_DIGIT.sub(r"0\1", key)
    return key


def _memo_key(value: Any) -> Hashable:
    """A dict key for one input value: every kind of missing is one key, and the type is
    part of the key so that 1, 1.0 and True (equal in Python) stay apart."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    return (type(value), value)


def _pair_ids(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Number the distinct (first, second) pairs in order of appearance; missing is a value."""
    first_id, first_values = pd.factorize(first, use_na_sentinel=False)
    second_id, second_values = pd.factorize(second, use_na_sentinel=False)
    combined = first_id.astype("int64") * max(len(second_values), 1) + second_id
    return pd.factorize(combined)[0]


def _unknown_text(code: str | None) -> str:
    if code is None or (isinstance(code, float) and np.isnan(code)) or not str(code).strip():
        return "No decline code on the failed charge."
    return "Code not in the reference table."


def unknown_codes_report(classified: pd.DataFrame, processor: pd.Series) -> pd.DataFrame:
    """Counts of unknown (processor, raw code) pairs, most frequent first.

    A missing code is reported as ``(missing)``. Columns: processor, raw_code, count.
    """
    unknown = ~classified["known"].astype(bool)
    frame = pd.DataFrame(
        {
            "processor": normalize_processor(processor)[unknown].fillna("(missing)"),
            "raw_code": classified.loc[unknown, "raw_code"].fillna("(missing)"),
        }
    )
    report = frame.value_counts(["processor", "raw_code"]).rename("count").reset_index()
    return report.sort_values(
        ["count", "processor", "raw_code"], ascending=[False, True, True]
    ).reset_index(drop=True)


def read_decline_table(path: Path) -> DeclineTable:
    """Read and validate a reference file (not cached)."""
    path = Path(path)
    version = _read_version(path)
    rows = pd.read_csv(path, skiprows=1, dtype="string", keep_default_na=False)
    for column in OPTIONAL_COLUMNS:
        if column not in rows.columns:
            rows[column] = ""
    rows = rows.astype(str)
    _validate(rows, path)
    rows["network_category"] = pd.to_numeric(rows["network_category"]).astype("Int64")
    rows["wait_hours"] = pd.to_numeric(rows["wait_hours"]).astype("Float64")
    return DeclineTable(version=version, rows=rows, path=path)


@lru_cache(maxsize=1)
def _default_table() -> DeclineTable:
    return read_decline_table(DEFAULT_TABLE_PATH)


def load_decline_table(path: Path | None = None) -> DeclineTable:
    """The reference table; the packaged default is read once and cached."""
    if path is None or Path(path).resolve() == DEFAULT_TABLE_PATH.resolve():
        return _default_table()
    return read_decline_table(Path(path))
