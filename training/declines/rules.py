"""The retry-rules engine: the one place that decides whether a failed payment may be retried.

The simulator, the features, the policy and the API's ``decline`` block all ask
``RetryRules``; nothing else encodes network or scheme rules.

Conventions
-----------
* ``previous_attempts`` are the attempts on the same invoice (and card/account) made
  *before* ``failed_at``; the failed charge itself is counted here as one attempt at
  ``failed_at`` (an entry exactly at ``failed_at`` is taken to be that charge and not
  counted twice; one after it is an error).
* Card caps count attempts in the 30 days (24 hours) up to and including ``failed_at``,
  which is conservative for retries later in the window. Debit-scheme caps count
  re-presentations: every attempt after the first one.
* ``max_additional_retries`` is the most retries the rules allow from here on, before any
  product constraint (``max_retries`` of a request, the dunning window) is applied.
* ``retry_deadline`` is the latest time a retry may take place under a scheme window that
  runs from the first collection of the charge (ACH reinitiation, Bacs re-presentation):
  the first attempt plus the window; missing (``NaT``) for cards and SEPA. A failure at or
  after it gets no retry (``*_window`` rules); every schedule (the learned search, the fixed
  schedule, the exploration) keeps its retries no later than it.
* ``allowed`` means a retry is allowed now, given what is known. An ``after_update``
  decline is not allowed until an update is plausible: ``needs_update_first`` is true and
  ``max_additional_retries`` says how many retries may follow the update.
* Unknown or missing codes (category ``other``, ``known=False``) are retried
  conservatively: at most ``unknown_max_retries`` retries, the first no sooner than
  ``unknown_min_wait_hours`` after the failure.

Speed: one decision is a few dozen numpy operations on the event arrays. The texts
(explanation, source) are worded once per distinct decision and, like the code
classification, remembered in a bounded memo. Short calls (the API's) are answered from a
memo of the decisions seen before, filled by the same array computation, so a warm
single-event call stays well under a millisecond. ``tests/declines/test_declines_fast_paths.py``
checks both against reference implementations.

Checking a proposed retry schedule against these decisions is ``violations.py``'s job.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
import pandas as pd

from training.config import retry_limits as src
from training.config.retry_limits import RetryLimits
from training.contract.tables import PAYMENT_METHODS
from training.core.columnar import (
    ColumnTable,
    Table,
    as_frame,
    column_array,
    column_flags,
    column_values,
    frame_of_arrays,
    utc_array,
)
from training.core.select import select
from training.declines.table import (
    DEBIT_VOCABULARIES,
    HARD_CATEGORIES,
    STRING_DTYPE,
    DeclineTable,
    load_decline_table,
    text_values,
)
from training.declines.wording import word_rows

__all__ = ["RetryDecision", "RetryLimits", "RetryRules"]

EVENT_COLUMNS = (
    "event_id",
    "processor",
    "payment_method",
    "card_brand",
    "decline_code",
    "merchant_advice_code",
    "failed_at",
)
_NAT = np.iinfo(np.int64).min
_HOUR_NS = 3_600_000_000_000
_WHOLE_HOURS_MAX = 2_000_000  # 228 years: their nanoseconds fit an int64
# Up to this many events, decisions come from a memo of the events decided before (a miss
# decides the call's events as arrays); longer inputs are decided as arrays directly.
SMALL_INPUT_ROWS = 64
TEXT_MEMO_MAX_ENTRIES = 4096
DECISION_MEMO_MAX_ENTRIES = 4096
DECISION_COLUMNS = (
    "category",
    "retryable",
    "allowed",
    "max_additional_retries",
    "not_before",
    "needs_update_first",
    "rule",
    "explanation",
    "source",
    "retry_deadline",
)
# What the decision memo keeps of one event's decision (``not_before`` from the hours).
_MEMO_COLUMNS = (
    *(c for c in DECISION_COLUMNS if c not in ("not_before", "retry_deadline")),
    "known",
    "code",
    "wait_ns",
)


@dataclass(frozen=True)
class RetryDecision:
    category: str
    retryable: str
    allowed: bool
    max_additional_retries: int
    not_before: datetime | None
    needs_update_first: bool
    rule: str
    explanation: str
    source: str
    retry_deadline: datetime | None = None


@dataclass(frozen=True)
class _Events:
    """Validated, normalized failure events as column arrays (``index`` = the caller's)."""

    index: pd.Index
    event_id: np.ndarray  # unique
    processor: np.ndarray  # normalized vocabulary names
    payment_method: np.ndarray
    card_brand: np.ndarray  # "" when missing
    decline_code: np.ndarray | pd.api.extensions.ExtensionArray  # the column's values, as given
    merchant_advice_code: np.ndarray | pd.api.extensions.ExtensionArray
    failed_at: np.ndarray  # datetime64[ns], UTC
    card_updated: np.ndarray

    @property
    def ids(self) -> pd.Index:
        """``event_id`` as an index (looked up only when there are previous attempts)."""
        return pd.Index(self.event_id)


Columns = dict[str, np.ndarray | pd.api.extensions.ExtensionArray]
_DEBIT_METHODS = tuple(f"{scheme}_debit" for scheme in DEBIT_VOCABULARIES)


@dataclass(frozen=True)
class _Advice:
    """What the decline code says, with the Mastercard merchant advice code (MAC) applied.

    A MAC that says stop or update first overrides a soft decline's category and
    retryability; a hard decline keeps its category (and is never retried anyway).
    """

    code: Columns  # ``classify_columns`` of the decline code
    mac: Columns  # of the MAC (card events only: others count as missing)
    mac_known: np.ndarray
    mac_stop: np.ndarray  # the MAC says do not try again
    mac_update: np.ndarray  # the MAC says update the payment method first
    mac_later: np.ndarray  # the MAC says retry later
    hard: np.ndarray
    category: np.ndarray
    retryable: np.ndarray
    known: np.ndarray  # the decline code is in the table
    updated: np.ndarray
    needs_update: np.ndarray  # ask for a new payment method before any retry
    account_gone: np.ndarray  # the code says the debited account or mandate is gone
    new_details: np.ndarray  # a debit that needs new bank details: no re-presentation


@dataclass(frozen=True)
class _Schemes:
    """Whose attempt caps apply to each event: one mask per network or debit scheme."""

    visa: np.ndarray
    mastercard: np.ndarray
    other_card: np.ndarray
    ach: np.ndarray
    sepa: np.ndarray
    bacs: np.ndarray

    @classmethod
    def of(cls, ev: _Events) -> _Schemes:
        method, brand = ev.payment_method, ev.card_brand
        is_card = method == "card"
        visa, mastercard = is_card & (brand == "visa"), is_card & (brand == "mastercard")
        return cls(
            visa=visa,
            mastercard=mastercard,
            other_card=is_card & ~visa & ~mastercard,
            ach=method == "ach_debit",
            sepa=method == "sepa_debit",
            bacs=method == "bacs_debit",
        )

    def masks(self) -> list[np.ndarray]:
        """The masks in the order of ``_CAP_RULES``."""
        return [self.visa, self.mastercard, self.other_card, self.ach, self.sepa, self.bacs]


# The cap that bounds each scheme's retries, in the order of ``_Schemes.masks``.
_CAP_RULES = (
    "visa_reattempt_cap",
    "mastercard_attempt_cap",
    "card_attempt_cap",
    "ach_representment_cap",
    "sepa_representment_cap",
    "bacs_representment_cap",
)


def to_utc(values: pd.Series, what: str) -> pd.Series:
    """Parse timestamps as UTC (naive ones are taken to be UTC); unparseable ones raise."""
    if values.dtype.kind == "M":  # already timestamps: the same result as parsing, cheaper
        stamps = values.array
        stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
        missing = stamps.isna()
        if missing.any():
            rows = values.index[missing].tolist()[:10]
            raise ValueError(f"{what}: missing or unparseable timestamp at row(s) {rows}")
        return pd.Series(stamps, index=values.index, name=values.name, copy=False)
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    bad = parsed.isna() & values.notna()
    if bad.any() or values.isna().any():
        rows = values.index[bad | values.isna()].tolist()[:10]
        raise ValueError(f"{what}: missing or unparseable timestamp at row(s) {rows}")
    return parsed


def utc_ns(values: pd.Series, what: str) -> np.ndarray:
    """:func:`to_utc` as ``datetime64[ns]`` values (no Series built when the values are
    timestamps already, the usual case); missing ones raise as there."""
    if values.dtype.kind != "M":
        return to_utc(values, what).array.as_unit("ns").asi8.view("datetime64[ns]")
    array = values.array
    ns = (array if array.unit == "ns" else array.as_unit("ns")).asi8
    missing = ns == _NAT
    if missing.any():
        rows = values.index[missing].tolist()[:10]
        raise ValueError(f"{what}: missing or unparseable timestamp at row(s) {rows}")
    return ns.view("datetime64[ns]")


def _utc_column(frame: Table, name: str, what: str) -> np.ndarray:
    """:func:`utc_ns` of column ``name``, without building its Series when it holds
    timestamps and none is missing (the usual case)."""
    values = column_values(frame, name)
    if isinstance(values, pd.arrays.DatetimeArray):
        ns = (values if values.unit == "ns" else values.as_unit("ns")).asi8
    elif isinstance(values, np.ndarray) and values.dtype.kind == "M":  # naive: UTC
        ns = values.astype("datetime64[ns]").view(np.int64)
    else:
        return utc_ns(as_frame(frame)[name], what)
    if (ns == _NAT).any():
        return utc_ns(as_frame(frame)[name], what)  # raises, naming the rows
    return ns.view("datetime64[ns]")


class RetryRules:
    """Decide retries from the decline reference table and the configured limits."""

    def __init__(self, limits: RetryLimits | None = None, table: DeclineTable | None = None):
        self.limits = limits or RetryLimits()
        self.table = table or load_decline_table()
        # decision key -> (explanation, source), for the limits they were worded with
        self._text_memo: dict[tuple[Hashable, ...], tuple[str, str]] = {}
        self._text_memo_limits = self.limits
        # (code dtype, MAC dtype) -> {inputs of one event: its decision}, for the limits
        # and table they were decided with
        self._decision_memo: dict[tuple[Any, Any], dict[tuple[Hashable, ...], tuple]] = {}
        self._decision_memo_for: tuple[Any, Any] = (self.limits, self.table)

    def __getstate__(self) -> dict:
        # the memos are caches: not worth storing
        return {**self.__dict__, "_text_memo": {}, "_decision_memo": {}}

    def __setstate__(self, state: dict) -> None:
        # rules pickled before the memos existed lack their attributes
        self.__dict__.update(
            {
                "_text_memo": {},
                "_text_memo_limits": state.get("limits"),
                "_decision_memo": {},
                "_decision_memo_for": (None, None),
                **state,
            }
        )

    # -- single event ------------------------------------------------------------------
    def decide(
        self,
        *,
        processor: str,
        payment_method: str,
        card_brand: str | None,
        decline_code: str | None,
        merchant_advice_code: str | None,
        failed_at: datetime,
        previous_attempts: Sequence[datetime] = (),
        card_updated: bool = False,
    ) -> RetryDecision:
        """One decision; the same computation as ``decide_many`` on a one-row frame."""
        self.table.check_processor(processor)
        one = [processor, payment_method, card_brand, decline_code, merchant_advice_code]
        events = pd.DataFrame(  # object columns given as such: no per-column type inference
            {
                "event_id": np.array(["event"], dtype=object),
                **{
                    name: np.array([value], dtype=object)
                    for name, value in zip(EVENT_COLUMNS[1:6], one, strict=True)
                },
                "failed_at": [failed_at],
                "card_updated": [card_updated],
            },
            copy=False,
        )
        previous = pd.DataFrame(
            {
                "event_id": ["event"] * len(previous_attempts),
                "attempted_at": list(previous_attempts),
            }
        )
        row = {name: column[0] for name, column in self._decide_columns(events, previous).items()}
        not_before, deadline = row["not_before"], row["retry_deadline"]
        return RetryDecision(
            category=str(row["category"]),
            retryable=str(row["retryable"]),
            allowed=bool(row["allowed"]),
            max_additional_retries=int(row["max_additional_retries"]),
            not_before=None if pd.isna(not_before) else not_before.to_pydatetime(),
            needs_update_first=bool(row["needs_update_first"]),
            rule=str(row["rule"]),
            explanation=str(row["explanation"]),
            source=str(row["source"]),
            retry_deadline=None if pd.isna(deadline) else deadline.to_pydatetime(),
        )

    # -- many events -------------------------------------------------------------------
    def decide_many(
        self, events: pd.DataFrame, previous_attempts: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """One decision per failure event, vectorized; index = ``events.index``.

        Columns: the ``RetryDecision`` fields plus ``known`` and ``code`` (normalized),
        ``retry_deadline`` last.
        """
        columns = self._decide_columns(events, previous_attempts)
        return frame_of_arrays(columns, index=events.index)

    def decide_table(
        self, events: Table, previous_attempts: pd.DataFrame | None = None
    ) -> ColumnTable:
        """:meth:`decide_many` as columns, in the row order of ``events`` (no frame: the
        decision reads them as arrays)."""
        return ColumnTable.of(self._decide_columns(events, previous_attempts))

    def _decide_columns(self, events: Table, previous_attempts: pd.DataFrame | None) -> Columns:
        """The columns of ``decide_many``, in order, as arrays in the row order of ``events``."""
        ev = self._prepare_events(events)
        counts = self._attempt_counts(ev, previous_attempts)
        counts["deadline"] = _deadline_ns(ev, counts["first_at"], self.limits)
        columns = None
        if 0 < len(ev.index) <= SMALL_INPUT_ROWS:
            columns = self._decide_memo(ev, counts)
        if columns is None:
            columns = self._decide_arrays(ev, counts)
            del columns["wait_ns"]
        columns["retry_deadline"] = utc_array(counts["deadline"])
        return columns

    def _decide_memo(self, ev: _Events, counts: dict[str, np.ndarray]) -> Columns | None:
        """``_decide_arrays`` for a few events, through a memo of the events decided before.

        A decision depends on nothing but ``_memo_keys`` and the limits and table; the time
        only shifts ``not_before``. A miss decides the events as arrays and remembers each.
        ``None`` when a code cannot be a dict key.
        """
        lim = self.limits
        if self._decision_memo_for[0] is not lim or self._decision_memo_for[1] is not self.table:
            self._decision_memo, self._decision_memo_for = {}, (lim, self.table)
        memo = self._decision_memo.setdefault(
            (ev.decline_code.dtype, ev.merchant_advice_code.dtype), {}
        )
        try:
            keys = _memo_keys(ev, counts)
            found = [memo.get(key) for key in keys]
        except TypeError:  # unhashable codes: leave them to the arrays
            return None
        if None in found:  # a few events: decide them all, remember each
            columns = self._decide_arrays(ev, counts)
            if len(memo) + len(keys) > DECISION_MEMO_MAX_ENTRIES:
                memo.clear()
            decided = zip(*(columns[c].tolist() for c in _MEMO_COLUMNS), strict=True)
            memo.update(zip(keys, decided, strict=True))
            del columns["wait_ns"]
            return columns
        return _remembered_columns(ev, cast(list[tuple], found))  # no None left in found

    def _decide_arrays(self, ev: _Events, counts: dict[str, np.ndarray]) -> Columns:
        """The decisions as column arrays, plus ``wait_ns`` (behind ``not_before``)."""
        lim = self.limits
        advice = _advice(self.table, ev)
        schemes = _Schemes.of(ev)
        n_prev, in_30d, in_24h = counts["n_prev"], counts["n_30d"] + 1, counts["n_24h"] + 1
        window_over = _window_over(ev, counts["deadline"])
        # Visa counts merchant-initiated reattempts apart from customer-initiated ones
        visa_in_30d = counts["n_30d_merchant"] + 1
        cap_left = _cap_left(schemes, in_30d, visa_in_30d, n_prev, window_over, lim)
        max_retries = _max_retries(cap_left, advice, lim)
        mac_wait = _mac_wait(self.table, advice.mac, lim)
        wait_ns = _hours_ns(_wait_hours(schemes, advice, mac_wait, in_24h, lim))
        cap_rule = select(schemes.masks(), list(_CAP_RULES), default="")
        rule = _rule(advice, schemes, window_over, cap_left, cap_rule)
        explanation, source = self._texts(
            {
                "processor": ev.processor,
                "code": advice.code["code"],
                "category": advice.category,
                "retryable": advice.retryable,
                "rule": rule,
                "cap_rule": cap_rule,
                "code_source": _code_source(self.table, advice),
                "in_30d": in_30d,
                "n_prev": n_prev,
                "mac_wait": mac_wait,
            },
            lim,
        )
        retryable, needs_update = advice.retryable, advice.needs_update
        return {
            "category": advice.category,
            "retryable": retryable,
            "allowed": (retryable != "no") & (max_retries > 0) & ~needs_update,
            "max_additional_retries": max_retries,
            "not_before": _not_before(ev.failed_at, wait_ns, max_retries),
            "needs_update_first": needs_update,
            "rule": rule,
            "explanation": explanation,
            "source": source,
            "known": advice.known,
            "code": advice.code["code"],
            "wait_ns": wait_ns,
        }

    def _texts(
        self, parts: dict[str, np.ndarray | pd.api.extensions.ExtensionArray], lim: RetryLimits
    ) -> tuple[np.ndarray, np.ndarray]:
        """Explanation and source of each decision (``parts``: what the wording reads).

        Both depend on nothing but these parts and the limits, so each distinct decision
        is worded once, and a bounded memo keeps the decisions already worded (a warm API
        call words nothing).
        """
        if self._text_memo_limits is not lim:  # limits replaced: the old texts may be wrong
            self._text_memo, self._text_memo_limits = {}, lim
        distinct: dict[tuple[Hashable, ...], int] = {}  # key -> number, in order of appearance
        keys = zip(*(part.tolist() for part in parts.values()), strict=True)
        # consumed one by one: only the distinct keys are kept (a batch has few)
        at = np.fromiter(
            (distinct.setdefault(key, len(distinct)) for key in keys),
            dtype=np.intp,
            count=len(parts["rule"]),
        )
        explanation, source = self._worded(list(parts), list(distinct), lim)
        return explanation[at], source[at]

    def _worded(
        self, names: list[str], keys: list[tuple[Hashable, ...]], lim: RetryLimits
    ) -> tuple[np.ndarray, np.ndarray]:
        """Explanation and source of distinct decisions (``keys``: their parts, in ``names``
        order), from the memo or, for the new ones, ``wording.word_rows``."""
        memo = self._text_memo
        found = [memo.get(key) for key in keys]
        explanation = _object_array([None if hit is None else hit[0] for hit in found])
        source = _object_array([None if hit is None else hit[1] for hit in found])
        new = [i for i, hit in enumerate(found) if hit is None]
        if new:
            new_keys = [keys[i] for i in new]
            columns = dict(zip(names, zip(*new_keys, strict=True), strict=True))
            explanation[new], source[new] = word_rows(lim, columns)
            if len(memo) + len(new) > TEXT_MEMO_MAX_ENTRIES:
                memo.clear()
            if len(new) <= TEXT_MEMO_MAX_ENTRIES:
                texts = zip(explanation[new], source[new], strict=True)
                memo.update(zip(new_keys, texts, strict=True))
        return explanation, source

    # -- helpers -----------------------------------------------------------------------
    def _prepare_events(self, events: Table) -> _Events:
        names = set(events.columns)  # one set, not an index lookup per name
        missing = [c for c in EVENT_COLUMNS if c not in names]
        if missing:
            raise ValueError(f"events: missing column(s) {missing}")
        ids = column_array(events, "event_id")
        if not _unique_ids(ids):
            event_id = as_frame(events)["event_id"]
            dup = events.index[event_id.isna() | event_id.duplicated()]
            raise ValueError(f"events: event_id missing or repeated at row(s) {dup.tolist()[:10]}")
        processor = _clean_tokens(column_values(events, "processor"))
        bad = ~_among(processor, self.table.vocabularies)
        if bad.any():
            raise ValueError(
                f"events: unknown processor at row(s) {events.index[bad].tolist()[:10]}; "
                f"expected one of {', '.join(self.table.vocabularies)}"
            )
        method = _clean_tokens(column_values(events, "payment_method"))
        bad = ~_among(method, PAYMENT_METHODS)
        if bad.any():
            raise ValueError(
                f"events: payment_method not one of {PAYMENT_METHODS} at row(s) "
                f"{events.index[bad].tolist()[:10]}"
            )
        brand = _clean_tokens(column_values(events, "card_brand"), missing="")
        failed_at = _utc_column(events, "failed_at", "events.failed_at")
        if "card_updated" not in names:
            updated = np.zeros(len(events), dtype=bool)
        else:
            updated = column_flags(events, "card_updated")
        return _Events(
            index=events.index,
            event_id=ids,
            processor=processor,
            payment_method=method,
            card_brand=brand,
            decline_code=column_values(events, "decline_code"),
            merchant_advice_code=column_values(events, "merchant_advice_code"),
            failed_at=failed_at,
            card_updated=updated,
        )

    def _attempt_counts(self, ev: _Events, previous: pd.DataFrame | None) -> dict[str, np.ndarray]:
        """Per event: previous attempts in total, in the last 30 days / 24 hours, first one."""
        n = len(ev.index)
        failed = ev.failed_at
        counts = {
            "n_prev": np.zeros(n, "int64"),
            "n_30d": np.zeros(n, "int64"),
            "n_30d_merchant": np.zeros(n, "int64"),
            "n_24h": np.zeros(n, "int64"),
            "first_at": failed.copy(),
        }
        if previous is not None and not previous.empty:
            for column in ("event_id", "attempted_at"):
                if column not in previous.columns:
                    raise ValueError(f"previous_attempts: missing column {column!r}")
            pos = ev.ids.get_indexer(previous["event_id"])
            if (pos < 0).any():
                orphan = previous["event_id"].to_numpy()[pos < 0]
                raise ValueError(
                    f"previous_attempts: event_id not in events: {pd.unique(orphan).tolist()[:10]}"
                )
            at = to_utc(previous["attempted_at"], "previous_attempts.attempted_at")
            at = at.to_numpy(dtype="datetime64[ns]")
            gap = failed[pos] - at
            if (gap < np.timedelta64(0)).any():
                late = previous["event_id"].to_numpy()[gap < np.timedelta64(0)]
                raise ValueError(
                    f"previous_attempts: attempt after failed_at for event(s) {pd.unique(late).tolist()[:10]}"
                )
            keep = gap > np.timedelta64(0)  # an entry at failed_at is the failed charge itself
            merchant = merchant_initiated(previous)[keep]
            pos, at, gap = pos[keep], at[keep], gap[keep]
            counts["n_prev"] = np.bincount(pos, minlength=n).astype("int64")
            for name, span in (
                ("n_30d", np.timedelta64(30, "D")),
                ("n_24h", np.timedelta64(24, "h")),
            ):
                counts[name] = np.bincount(pos, weights=gap < span, minlength=n).astype("int64")
            in_30d = (gap < np.timedelta64(30, "D")) & merchant
            counts["n_30d_merchant"] = np.bincount(pos, weights=in_30d, minlength=n).astype("int64")
            np.minimum.at(counts["first_at"], pos, at)
        return counts


def merchant_initiated(previous: pd.DataFrame) -> np.ndarray:
    """Which previous attempts the merchant initiated (an optional ``initiated_by``
    column, ``merchant`` or ``customer``; missing means merchant, the conservative side)."""
    if "initiated_by" not in previous.columns:
        return np.ones(len(previous), dtype=bool)
    who = previous["initiated_by"].astype("string").str.strip().str.casefold()
    bad = who.notna() & ~who.isin(("merchant", "customer"))
    if bad.any():
        raise ValueError(
            "previous_attempts.initiated_by: expected merchant or customer at row(s) "
            f"{previous.index[bad.to_numpy()].tolist()[:10]}"
        )
    return (who != "customer").fillna(True).to_numpy(dtype=bool)


def _memo_keys(ev: _Events, counts: dict[str, np.ndarray]) -> list[tuple[Hashable, ...]]:
    """Per event, all that its decision depends on besides the limits and the table: the
    normalized tokens, the raw codes (value and type: ``2001`` and ``2001.0`` may be spelled
    apart), the update flag, the attempt counts and whether the debit window is over."""
    window_over = _window_over(ev, counts["deadline"])
    return list(
        zip(
            ev.processor.tolist(),
            ev.payment_method.tolist(),
            ev.card_brand.tolist(),
            [_memo_key(value) for value in ev.decline_code.tolist()],
            [_memo_key(value) for value in ev.merchant_advice_code.tolist()],
            ev.card_updated.tolist(),
            counts["n_prev"].tolist(),
            counts["n_30d"].tolist(),
            counts["n_30d_merchant"].tolist(),
            counts["n_24h"].tolist(),
            window_over.tolist(),
            strict=True,
        )
    )


def _memo_key(value: Any) -> Hashable:
    """A dict key for one input value: every kind of missing is one key, and the type is
    part of the key so that 1, 1.0 and True (equal in Python) stay apart."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and value != value:
        return None
    return (type(value), value)


def _remembered_columns(ev: _Events, found: list[tuple]) -> Columns:
    """The ``_decide_columns`` of events whose decisions (``_MEMO_COLUMNS``) are known."""
    values = dict(zip(_MEMO_COLUMNS, zip(*found, strict=True), strict=True))
    max_retries = np.array(values["max_additional_retries"], dtype="int64")
    wait_ns = np.array(values["wait_ns"], dtype="int64")
    return {
        "category": _object_array(values["category"]),
        "retryable": _object_array(values["retryable"]),
        "allowed": np.array(values["allowed"], dtype=bool),
        "max_additional_retries": max_retries,
        "not_before": _not_before(ev.failed_at, wait_ns, max_retries),
        "needs_update_first": np.array(values["needs_update_first"], dtype=bool),
        "rule": _object_array(values["rule"]),
        "explanation": _object_array(values["explanation"]),
        "source": _object_array(values["source"]),
        "known": np.array(values["known"], dtype=bool),
        "code": pd.array(values["code"], dtype=STRING_DTYPE),
    }


def _advice(table: DeclineTable, ev: _Events) -> _Advice:
    """Classify the decline codes and the merchant advice codes and combine them."""
    is_card = ev.payment_method == "card"
    code = table.classify_texts(ev.processor.tolist(), text_values(ev.decline_code))
    mac = table.classify_texts(
        ["mastercard_mac"] * len(is_card), _card_only(ev.merchant_advice_code, is_card)
    )
    mac_known = mac["known"]
    mac_ret = mac["retryable"]
    mac_stop = mac_known & (mac_ret == "no")
    mac_update = mac_known & (mac_ret == "after_update")
    hard = _among(code["category"], HARD_CATEGORIES)
    overriding = (mac_stop | mac_update) & ~hard
    base = code["retryable"]
    retryable = select(
        [mac_stop, mac_update & (base != "no")], ["no", "after_update"], default=base
    )
    updated = ev.card_updated
    account_gone = code["known"] & table.account_gone[np.maximum(code["table_row"], 0)]
    is_debit = _among(ev.payment_method, _DEBIT_METHODS)
    # A debit is never re-presented on a mandate that is gone or needs new details: the
    # customer is asked for new bank details, and only a reported update allows a retry.
    new_details = is_debit & ~updated & (account_gone | (retryable == "after_update"))
    return _Advice(
        code=code,
        mac=mac,
        mac_known=mac_known,
        mac_stop=mac_stop,
        mac_update=mac_update,
        mac_later=mac_known & (mac_ret == "yes"),
        hard=hard,
        category=np.where(overriding, mac["category"], code["category"]),
        retryable=retryable,
        known=code["known"],
        updated=updated,
        needs_update=((retryable == "after_update") & ~updated) | new_details,
        account_gone=account_gone,
        new_details=new_details,
    )


def _card_only(
    mac_code: np.ndarray | pd.api.extensions.ExtensionArray, is_card: np.ndarray
) -> list[str | None]:
    """The MACs (a column's values) as text, missing for events that are not card payments
    (MACs are card-only): ``text_values(Series.where(is_card))`` without the Series."""
    if is_card.all():
        return text_values(mac_code)
    if mac_code.dtype != object:  # ``where`` may change the dtype, hence the spelling
        return text_values(pd.Series(mac_code, copy=False).where(is_card))
    texts = _object_array(text_values(mac_code))
    return np.where(is_card, texts, _object_array([None] * len(texts))).tolist()


def _deadline_ns(ev: _Events, first_at: np.ndarray, lim: RetryLimits) -> np.ndarray:
    """``retry_deadline`` as int64 ns: ACH and Bacs re-presentations must fall inside a
    window from the first collection (``first_at``: the first attempt on the charge, the
    failure if none before); ``NaT`` for the other methods."""
    method = ev.payment_method
    ach, bacs = method == "ach_debit", method == "bacs_debit"
    days = np.where(ach, lim.ach_reinitiation_window_days, lim.bacs_representment_window_days)
    deadline = first_at.view(np.int64) + days.astype(np.int64) * (24 * _HOUR_NS)
    return np.where(ach | bacs, deadline, _NAT)


def _window_over(ev: _Events, deadline: np.ndarray) -> np.ndarray:
    """The failure is at or after its ``retry_deadline``: no re-presentation is left."""
    return (deadline != _NAT) & (ev.failed_at.view(np.int64) >= deadline)


def _cap_left(
    schemes: _Schemes,
    in_30d: np.ndarray,
    visa_in_30d: np.ndarray,
    n_prev: np.ndarray,
    window_over: np.ndarray,
    lim: RetryLimits,
) -> np.ndarray:
    """Retries left under each event's cap, never below 0 and 0 once the window is over.

    Card networks count attempts in 30 days (the failure included; Visa caps reattempts,
    so its first attempt is free, and counts merchant-initiated ones only: ``visa_in_30d``);
    debit schemes count re-presentations.
    """
    cap_left = select(
        schemes.masks(),
        [
            lim.visa_max_reattempts_30d + 1 - visa_in_30d,
            lim.mastercard_max_attempts_30d - in_30d,
            lim.other_card_max_attempts_30d - in_30d,
            lim.ach_max_representments - n_prev,
            lim.sepa_max_representments - n_prev,
            lim.bacs_max_representments - n_prev,
        ],
    )
    return np.where(window_over, 0, np.maximum(cap_left, 0))


def _max_retries(cap_left: np.ndarray, advice: _Advice, lim: RetryLimits) -> np.ndarray:
    """The retries left: the cap, at most ``unknown_max_retries`` for an unknown code, and
    none for a decline that is not retryable or a debit that needs new bank details."""
    max_retries = np.where(advice.known, cap_left, np.minimum(cap_left, lim.unknown_max_retries))
    none_left = (advice.retryable == "no") | advice.new_details
    return np.where(none_left, 0, max_retries).astype("int64")


def _mac_wait(table: DeclineTable, mac: Columns, lim: RetryLimits) -> np.ndarray:
    """The wait a merchant advice code asks for: its table row's ``wait_hours``, else
    ``mac02_wait_hours`` (also for events without a MAC; only retry-later MACs use it)."""
    wait = table.wait_hours[np.maximum(mac["table_row"], 0)]
    return np.where(np.isnan(wait), lim.mac02_wait_hours, wait)


def _wait_hours(
    schemes: _Schemes,
    advice: _Advice,
    mac_wait: np.ndarray,
    in_24h: np.ndarray,
    lim: RetryLimits,
) -> np.ndarray:
    """Hours from the failure to the first allowed retry: the minimum spacing, or longer
    for a retry-later MAC, an unknown code, or a Mastercard card at its 24-hour cap."""
    wait_h = np.full(len(mac_wait), lim.min_spacing_hours)
    wait_h = np.where(advice.mac_later, np.maximum(wait_h, mac_wait), wait_h)
    wait_h = np.where(~advice.known, np.maximum(wait_h, lim.unknown_min_wait_hours), wait_h)
    return np.where(
        schemes.mastercard & (in_24h >= lim.mastercard_max_attempts_24h),
        np.maximum(wait_h, 24.0),
        wait_h,
    )


def _hours_ns(hours: np.ndarray) -> np.ndarray:
    """Nanoseconds of ``hours`` (float), as ``pd.to_timedelta(hours, unit="h")`` has them:
    whole hours (the limits' usual values) by integer arithmetic, exact as pandas is,
    others through pandas (``pd.to_timedelta`` costs ~0.1 ms a call)."""
    hours = np.asarray(hours, dtype=np.float64)
    if (np.abs(hours) < _WHOLE_HOURS_MAX).all() and (hours == np.round(hours)).all():
        return hours.astype(np.int64) * _HOUR_NS
    return pd.to_timedelta(hours, unit="h").as_unit("ns").asi8


def _not_before(
    failed_at: np.ndarray, wait_ns: np.ndarray, max_retries: np.ndarray
) -> pd.api.extensions.ExtensionArray:
    """``failed_at`` (``datetime64[ns]``, UTC) plus ``wait_ns`` as UTC timestamps; ``NaT``
    where no retry is left."""
    none = (max_retries <= 0) | (wait_ns == _NAT)
    ns = np.where(none, _NAT, failed_at.view(np.int64) + wait_ns)
    return utc_array(ns)


def _rule(
    advice: _Advice,
    schemes: _Schemes,
    window_over: np.ndarray,
    cap_left: np.ndarray,
    cap_rule: np.ndarray,
) -> np.ndarray:
    """The rule behind each decision: the first of these that applies, most binding first."""
    retryable, needs_update = advice.retryable, advice.needs_update
    window_rule = np.where(schemes.ach, "ach_reinitiation_window", "bacs_representment_window")
    conditions = [
        advice.hard,
        advice.mac_stop,
        retryable == "no",
        window_over,
        cap_left <= 0,
        advice.new_details,
        needs_update & advice.mac_update,
        needs_update,
        ~advice.known,
        advice.mac_later,
        (retryable == "after_update") & advice.updated,
    ]
    choices: list[Any] = [  # names, and arrays for the scheme-dependent ones
        "hard_decline",
        "mastercard_mac_stop",
        "not_retryable",
        window_rule,
        cap_rule,
        "debit_new_details_required",
        "mastercard_mac_update_first",
        "after_update",
        "unknown_code",
        "mastercard_mac_retry_later",
        "payment_method_updated",
    ]
    return select(conditions, choices, default="retry_allowed")


def _code_source(table: DeclineTable, advice: _Advice) -> np.ndarray:
    """Where the classification comes from: the code's table row, else (unknown code) the
    MAC's source or the product's own."""
    return np.where(
        advice.known,
        table.sources[np.maximum(advice.code["table_row"], 0)],
        np.where(advice.mac_known, src.MAC_SOURCE, src.PRODUCT_SOURCE),
    )


def _object_array(values: Sequence[Any]) -> np.ndarray:
    """A 1-d object array of ``values`` (``np.array`` would nest tuples or guess a dtype)."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _clean_tokens(values: pd.Series | np.ndarray, missing: str | None = None) -> np.ndarray:
    """``values.astype("string").str.strip().str.casefold()`` as an object array, worked
    out once per distinct value (a column holds a handful); missing values give ``missing``."""
    texts = text_values(values)
    clean = {text: missing if text is None else text.strip().casefold() for text in set(texts)}
    return _object_array(list(map(clean.__getitem__, texts)))


def _unique_ids(ids: np.ndarray) -> bool:
    """No id missing or repeated (one id needs no index)."""
    if len(ids) == 1:
        return not pd.isna(ids[0])
    if len(ids) == 0:
        return True
    index = pd.Index(ids)
    return not index.hasnans and index.is_unique


def _among(values: np.ndarray, allowed: Iterable[str]) -> np.ndarray:
    """Membership for object arrays that may hold ``None`` (``np.isin`` may sort them),
    checked once per distinct value (a column holds a handful), compared once per hit."""
    allowed = set(allowed)
    hits = [value for value in set(values.tolist()) if value in allowed]
    found = np.zeros(len(values), dtype=bool)
    for name in hits:
        found |= values == name
    return found
