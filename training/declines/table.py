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
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

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
PROCESSORS: tuple[str, ...] = ("stripe", "adyen", "braintree", "sepa", "bacs", "ach")
NETWORK_VOCABULARIES: tuple[str, ...] = ("mastercard_mac", "visa")

REQUIRED_COLUMNS = ("processor", "code", "category", "retryable", "description", "source")
OPTIONAL_COLUMNS = ("aliases", "processor_type", "network_category", "wait_hours")
UNKNOWN_CATEGORY = "other"
# An unknown code is not known to be hard, so it may be retried, conservatively (rules.py).
UNKNOWN_RETRYABLE = "yes"
_RANGE = r"^(\d+)-(\d+)$"
_SEP = "\x1f"  # joins vocabulary and code into one lookup key


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

    # -- single lookups ---------------------------------------------------------------
    def check_processor(self, processor: str) -> str:
        """The normalized vocabulary name, or ``UnknownProcessorError`` naming the valid ones."""
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
        if not processor.index.equals(code.index):
            raise ValueError("classify: processor and code must share one index")
        proc = _on_uniques(normalize_processor, processor.astype("string"))
        key = _on_uniques(normalize_codes, proc, code.astype("string"))
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
        raw = code.astype("string").str.strip()
        raw = raw.mask(raw == "")
        table_code = self.rows["code"].to_numpy()[take]
        in_range = known & self._is_range[take]
        out = pd.DataFrame(
            {
                "category": np.where(
                    known, self.rows["category"].to_numpy()[take], UNKNOWN_CATEGORY
                ),
                "retryable": np.where(
                    known, self.rows["retryable"].to_numpy()[take], UNKNOWN_RETRYABLE
                ),
                "known": known,
                "code": np.where(known & ~in_range, table_code, raw.to_numpy(dtype="object")),
                "raw_code": raw.to_numpy(dtype="object"),
                "table_row": row_int,
            },
            index=code.index,
        )
        out["code"] = out["code"].astype("string")
        out["raw_code"] = out["raw_code"].astype("string")
        return out


def _on_uniques(normalize, *columns: pd.Series) -> pd.Series:
    """Apply a row-wise string normalization once per distinct input (codes repeat a lot)."""
    joined = columns[0].fillna("\x00")
    for column in columns[1:]:
        joined = joined + _SEP + column.fillna("\x00")
    inverse, _ = pd.factorize(joined)
    first = np.unique(inverse, return_index=True)[1]
    done = normalize(*(column.iloc[first].reset_index(drop=True) for column in columns))
    return pd.Series(done.to_numpy()[inverse], index=columns[0].index, dtype="string")


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
