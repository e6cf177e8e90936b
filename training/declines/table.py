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

``classify`` works on the distinct (processor, code) pairs of a call, each classified once
with ``re`` on Python strings and remembered in a bounded memo: a warm call costs a few
dict lookups whatever its size, and a batch classifies only the pairs it has not seen.
``tests/declines/test_declines_fast_paths.py`` keeps the former pandas implementation as
the reference that this one must equal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
# Families of categories that call for the same kind of dunning (reports group by them).
DECLINE_FAMILIES: dict[str, tuple[str, ...]] = {
    "insufficient_funds": ("insufficient_funds", "limit_exceeded"),
    "soft_issuer": ("do_not_honor", "authentication_required", "duplicate", "other"),
    "card_update": ("expired_card", "card_invalid"),
    "hard": ("lost_or_stolen", "fraud_suspected", "account_closed", "not_permitted"),
    "dispute": ("dispute_or_revoked",),
    "technical": ("issuer_unavailable", "processing_error"),
}
_FAMILY_OF = {category: family for family, cats in DECLINE_FAMILIES.items() for category in cats}


def family_of(categories: pd.Series) -> pd.Series:
    """The decline family of each canonical decline category (``other`` when none)."""
    return categories.map(lambda c: _FAMILY_OF.get(str(c), "other"))


# Vocabularies of the data contract's `processor` column, then the network ones.
NETWORK_VOCABULARIES: tuple[str, ...] = ("mastercard_mac", "visa")

REQUIRED_COLUMNS = ("processor", "code", "category", "retryable", "description", "source")
OPTIONAL_COLUMNS = (
    "aliases",
    "processor_type",
    "network_category",
    "wait_hours",
    "checked_on",
    "account_gone",
)
# Debit schemes: a returned collection is re-presented on the same mandate.
DEBIT_VOCABULARIES: tuple[str, ...] = ("sepa", "bacs", "ach")
UNKNOWN_CATEGORY = "other"
# An unknown code is not known to be hard, so it may be retried, conservatively (rules.py).
UNKNOWN_RETRYABLE = "yes"
_RANGE = r"^(\d+)-(\d+)$"
_SEP = "\x1f"  # joins vocabulary and code into one lookup key
# Distinct (processor, code) texts remembered per table; when full the memo starts over.
MEMO_MAX_ENTRIES = 4096
CLASSIFIED_COLUMNS = ("category", "retryable", "known", "code", "raw_code", "table_row")
# The "string" dtype, resolved once: resolving the alias costs more than a small array.
STRING_DTYPE = pd.StringDtype()
# One classified pair: category, retryable, known, code, raw_code, table_row.
Classified = tuple[str, str, bool, str | None, str | None, int]
_TEXT_TYPES = frozenset({str, type(None)})


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
    checked_on: str = ""  # when the row was last checked against its source


def normalize_processor(processor: pd.Series) -> pd.Series:
    """``' Stripe '`` -> ``stripe``, ``Mastercard MAC`` -> ``mastercard_mac`` (``string``)."""
    text = processor.astype(STRING_DTYPE)
    return text.map(_processor_key, na_action="ignore").astype(STRING_DTYPE)


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
        "checked_on not an ISO date (YYYY-MM-DD)": (rows["checked_on"] != "")
        & pd.to_datetime(rows["checked_on"], format="%Y-%m-%d", errors="coerce").isna(),
        "account_gone not yes or empty": ~rows["account_gone"].isin(("yes", "")),
        "account_gone on a card vocabulary or with retryable=yes": (rows["account_gone"] == "yes")
        & (~rows["processor"].isin(DEBIT_VOCABULARIES) | (rows["retryable"] == "yes")),
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
        # codes and aliases are never blank (``_validate``, the filter above)
        keys["key"] = [
            _code_key(processor, raw.strip())
            for processor, raw in zip(keys["processor"], keys["raw"], strict=True)
        ]
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
        # per row: the code says the debited account or mandate is gone (tables saved in
        # artifacts before the column existed have none)
        gone = rows["account_gone"] if "account_gone" in rows else pd.Series("", index=rows.index)
        self.account_gone = (gone == "yes").to_numpy(dtype=bool)
        self._row_arrays()
        # (processor text, code text), as ``astype("string")`` spells them -> classified
        self._memo: dict[tuple[str | None, str | None], Classified] = {}
        # one such pair -> its classified columns (a lone request's lookups; one row each)
        self._columns_memo: dict[tuple[str | None, str | None], ClassifiedColumns] = {}

    def _row_arrays(self) -> None:
        """Per row, as arrays once: the rules read them on every decision they word (a
        column of the frame read and converted costs ~0.1 M instructions a call)."""
        rows = self.rows
        self.wait_hours = (
            rows["wait_hours"].to_numpy(dtype="float64", na_value=np.nan)
            if "wait_hours" in rows
            else np.full(len(rows), np.nan)
        )
        self.sources = rows["source"].to_numpy()

    def __getstate__(self) -> dict[str, Any]:
        # the memos are caches: not worth storing
        return {**self.__dict__, "_memo": {}, "_columns_memo": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # (tables pickled before the memos or the row arrays existed)
        self.__dict__.update({"_memo": {}, "_columns_memo": {}, **state})
        if "sources" not in state:
            self._row_arrays()

    # -- single lookups ---------------------------------------------------------------
    def check_processor(self, processor: str) -> str:
        """The normalized vocabulary name, or ``UnknownProcessorError`` naming the valid ones."""
        if isinstance(processor, str):  # normalize_processor without pandas
            name = _processor_key(processor)
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
            checked_on=str(self.rows.at[row, "checked_on"]) if row >= 0 else "",
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

        Each distinct (processor, code) pair, as text, is classified once and spread to its
        rows; pairs seen before come from the memo.
        """
        if not processor.index.equals(code.index):
            raise ValueError("classify: processor and code must share one index")
        return self.classify_texts(text_values(processor), text_values(code))

    def classify_texts(
        self, processor: Sequence[str | None], code: Sequence[str | None]
    ) -> dict[str, np.ndarray | pd.api.extensions.ExtensionArray]:
        """:meth:`classify_columns` of values already spelled as text (:func:`text_values`,
        ``None``: missing), one pair per row."""
        pairs = zip(processor, code, strict=True)
        distinct: dict[tuple[str | None, str | None], int] = {}  # pair -> number, as they come
        at = np.array([distinct.setdefault(pair, len(distinct)) for pair in pairs], dtype=np.intp)
        if len(distinct) == 1:  # one pair (a lone request's): its columns made once
            (pair,) = distinct
            columns = self._columns_memo.get(pair)
            if columns is None:
                columns = _classified_columns(self._classified([pair]))
                if len(self._columns_memo) >= MEMO_MAX_ENTRIES:
                    self._columns_memo.clear()
                self._columns_memo[pair] = columns
        else:
            columns = _classified_columns(self._classified(list(distinct)))
        return {name: values[at] for name, values in columns.items()}  # copies: never shared

    def _classified(self, pairs: list[tuple[str | None, str | None]]) -> list[Classified]:
        """``_classify_pair`` of each pair, through the bounded memo."""
        memo = self._memo
        found = [memo.get(pair) for pair in pairs]
        new = {
            pair: self._classify_pair(*pair)
            for pair, hit in zip(pairs, found, strict=True)
            if hit is None
        }
        if new:
            if len(memo) + len(new) > MEMO_MAX_ENTRIES:
                memo.clear()
            if len(new) <= MEMO_MAX_ENTRIES:
                memo.update(new)
        return [new[pair] if hit is None else hit for pair, hit in zip(pairs, found, strict=True)]

    def _classify_pair(self, processor: str | None, code: str | None) -> Classified:
        """The classification of one (processor, code) pair given as text (``None``: missing).

        The processor is normalized as in ``normalize_processor``, the code as the table's
        forms were (``_code_key``); a miss tries the processor's code ranges."""
        proc = None if processor is None else _processor_key(processor)
        raw = None if code is None else code.strip() or None
        row = -1
        if raw is not None and proc is not None:
            key = _code_key(proc, raw)
            if key is not None:
                row = self._keys.get(proc + _SEP + key, -1)
                if row < 0:
                    row = self._range_row(proc, key)
        if row < 0:
            return (UNKNOWN_CATEGORY, UNKNOWN_RETRYABLE, False, raw, raw, -1)
        rows = self.rows
        table_code = raw if self._is_range[row] else rows["code"].iat[row]
        category, retryable = rows["category"].iat[row], rows["retryable"].iat[row]
        return (category, retryable, True, table_code, raw, int(row))

    def _range_row(self, processor: str, key: str) -> int:
        """The first code range of ``processor`` holding the numeric ``key``, else -1."""
        ranges = self._ranges
        if not (ranges["processor"] == processor).any():
            return -1
        number = pd.to_numeric(pd.Series([key], dtype=STRING_DTYPE), errors="coerce")
        value = number.to_numpy(dtype="float64", na_value=np.nan)[0]
        for rng in ranges.itertuples():
            if rng.processor == processor and rng.lo <= value <= rng.hi:
                return int(rng.Index)
        return -1


_PROCESSOR_FORM = re.compile(r"[\s\-]+")
_FLOAT_FORM = re.compile(r"^(\d+)\.0+$")
_ARUDD = re.compile(r"^arudd_?([0-9a-z])$")
_ADDACS = re.compile(r"^addacs_?([0-9a-z])$")
_ACH_SHORT = re.compile(r"^r(\d)$")
_ONE_DIGIT = re.compile(r"^(\d)$")


def _processor_key(processor: str) -> str:
    """``' Stripe '`` -> ``stripe``: strip, casefold, blanks and hyphens to ``_``."""
    return _PROCESSOR_FORM.sub("_", processor.strip().casefold())


def _code_key(processor: str, raw: str) -> str | None:
    """The lookup key of one stripped text code (``processor`` normalized); blank: ``None``.

    Case, blanks and hyphens do not matter, ``2001.0`` (from a float column) is ``2001``,
    and the vocabularies' short forms are padded: Bacs ``ARUDD-0`` and ``ADDACS 1``, ACH
    ``R1``, the networks' one-digit codes."""
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


def text_values(
    values: pd.Series | np.ndarray | pd.api.extensions.ExtensionArray,
) -> list[str | None]:
    """The values as ``values.astype("string")`` spells them, missing ones as ``None``
    (a column's Series or its values).

    Text and ``None`` (the API's inputs) are their own spelling: no conversion needed."""
    if values.dtype == object:
        given = values.tolist()
        if set(map(type, given)) <= _TEXT_TYPES:
            return given
    series = values if isinstance(values, pd.Series) else pd.Series(values, copy=False)
    return [None if value is pd.NA else value for value in series.astype(STRING_DTYPE).tolist()]


ClassifiedColumns = dict[str, np.ndarray | pd.api.extensions.ExtensionArray]
"""The ``CLASSIFIED_COLUMNS`` arrays of classified pairs, by name."""


def _classified_columns(found: list[Classified]) -> ClassifiedColumns:
    """The ``CLASSIFIED_COLUMNS`` arrays of classified pairs."""
    category, retryable, known, code, raw, row = zip(*found, strict=True) if found else [()] * 6
    return {
        "category": _object_array(category),
        "retryable": _object_array(retryable),
        "known": np.array(known, dtype=bool),
        "code": pd.array(code, dtype=STRING_DTYPE),
        "raw_code": pd.array(raw, dtype=STRING_DTYPE),
        "table_row": np.array(row, dtype="int64"),
    }


def _object_array(values: tuple[Any, ...]) -> np.ndarray:
    """A 1-d object array of ``values`` (``np.array`` would nest tuples or guess a dtype)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


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
