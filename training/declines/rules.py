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
* ``allowed`` means a retry is allowed now, given what is known. An ``after_update``
  decline is not allowed until an update is plausible: ``needs_update_first`` is true and
  ``max_additional_retries`` says how many retries may follow the update.
* Unknown or missing codes (category ``other``, ``known=False``) are retried
  conservatively: at most ``unknown_max_retries`` retries, the first no sooner than
  ``unknown_min_wait_hours`` after the failure.

Speed: one decision is a few dozen numpy operations on the event arrays. The texts
(explanation, source) are worded once per distinct decision; for short calls they, like the
code classification, come from a bounded memo, so the API's single-event calls stay near
a millisecond. ``tests/declines/test_declines_fast_paths.py`` checks that both paths agree.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from training.config import retry_limits as src
from training.config.retry_limits import RetryLimits
from training.contract.tables import PAYMENT_METHODS
from training.declines.table import (
    HARD_CATEGORIES,
    DeclineTable,
    _memo_key,
    load_decline_table,
)
from training.declines.wording import explain, rule_sources, word_rows

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
# Up to this many events, explanations and sources come from a memo of the distinct
# decisions seen before (``wording`` builds each text once); longer inputs are worded whole.
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
)
# What the decision memo keeps of one event's decision (``not_before`` from the hours).
_MEMO_COLUMNS = (
    *(c for c in DECISION_COLUMNS if c != "not_before"),
    "known",
    "code",
    "wait_hours",
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


@dataclass(frozen=True)
class _Events:
    """Validated, normalized failure events as column arrays (``index`` = the caller's)."""

    index: pd.Index
    ids: pd.Index  # event_id, unique
    processor: np.ndarray  # normalized vocabulary names
    payment_method: np.ndarray
    card_brand: np.ndarray  # "" when missing
    decline_code: pd.Series  # as given
    merchant_advice_code: pd.Series  # as given
    failed_at: pd.Series  # UTC
    card_updated: np.ndarray


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
        not_before = row["not_before"]
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
        )

    # -- many events -------------------------------------------------------------------
    def decide_many(
        self, events: pd.DataFrame, previous_attempts: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """One decision per failure event, vectorized; index = ``events.index``.

        Columns: the ``RetryDecision`` fields plus ``known`` and ``code`` (normalized).
        """
        columns = self._decide_columns(events, previous_attempts)
        return pd.DataFrame(columns, index=events.index, copy=False)

    def _decide_columns(
        self, events: pd.DataFrame, previous_attempts: pd.DataFrame | None
    ) -> dict[str, np.ndarray | pd.api.extensions.ExtensionArray]:
        """The columns of ``decide_many``, in order, as arrays in the row order of ``events``."""
        ev = self._prepare_events(events)
        counts = self._attempt_counts(ev, previous_attempts)
        if 0 < len(ev.index) <= SMALL_INPUT_ROWS:
            columns = self._decide_memo(ev, counts)
            if columns is not None:
                return columns
        columns = self._decide_arrays(ev, counts)
        del columns["wait_hours"]
        return columns

    def _decide_memo(
        self, ev: _Events, counts: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray | pd.api.extensions.ExtensionArray] | None:
        """``_decide_arrays`` for a few events from a memo of the decisions seen before.

        A decision depends on nothing but the normalized tokens, the raw codes (value and
        type, as in ``DeclineTable``'s memo), the attempt counts, whether the debit windows
        are over, and the limits and table; the time only shifts ``not_before``, which is
        worked out as in ``_decide_arrays``. ``None`` when a code cannot be a dict key.
        """
        lim = self.limits
        if self._decision_memo_for[0] is not lim or self._decision_memo_for[1] is not self.table:
            self._decision_memo, self._decision_memo_for = {}, (lim, self.table)
        memo = self._decision_memo.setdefault(
            (ev.decline_code.dtype, ev.merchant_advice_code.dtype), {}
        )
        age = ev.failed_at.to_numpy(dtype="datetime64[ns]") - counts["first_at"]
        day = np.timedelta64(1, "D")
        try:
            keys = list(
                zip(
                    ev.processor.tolist(),
                    ev.payment_method.tolist(),
                    ev.card_brand.tolist(),
                    [_memo_key(value) for value in ev.decline_code.tolist()],
                    [_memo_key(value) for value in ev.merchant_advice_code.tolist()],
                    ev.card_updated.tolist(),
                    counts["n_prev"].tolist(),
                    counts["n_30d"].tolist(),
                    counts["n_24h"].tolist(),
                    (age >= lim.ach_reinitiation_window_days * day).tolist(),
                    (age >= lim.bacs_representment_window_days * day).tolist(),
                    strict=True,
                )
            )
            found = [memo.get(key) for key in keys]
        except TypeError:  # unhashable codes: leave them to the arrays
            return None
        if None in found:  # a few events: decide them all, remember each
            columns = self._decide_arrays(ev, counts)
            if len(memo) + len(keys) > DECISION_MEMO_MAX_ENTRIES:
                memo.clear()
            decided = zip(*(columns[c].tolist() for c in _MEMO_COLUMNS), strict=True)
            memo.update(zip(keys, decided, strict=True))
            del columns["wait_hours"]
            return columns
        values = dict(zip(_MEMO_COLUMNS, zip(*found, strict=True), strict=True))
        max_retries = np.array(values["max_additional_retries"], dtype="int64")
        not_before = (
            ev.failed_at.array
            + pd.to_timedelta(np.array(values["wait_hours"], dtype="float64"), unit="h").array
        )
        not_before[max_retries <= 0] = pd.NaT
        return {
            "category": _object_array(values["category"]),
            "retryable": _object_array(values["retryable"]),
            "allowed": np.array(values["allowed"], dtype=bool),
            "max_additional_retries": max_retries,
            "not_before": not_before,
            "needs_update_first": np.array(values["needs_update_first"], dtype=bool),
            "rule": _object_array(values["rule"]),
            "explanation": _object_array(values["explanation"]),
            "source": _object_array(values["source"]),
            "known": np.array(values["known"], dtype=bool),
            "code": pd.array(values["code"], dtype="string"),
        }

    def _decide_arrays(
        self, ev: _Events, counts: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray | pd.api.extensions.ExtensionArray]:
        """The decisions as column arrays, plus ``wait_hours`` (behind ``not_before``)."""
        lim = self.limits
        rows = self.table.rows

        method = ev.payment_method
        is_card = method == "card"
        code = self.table.classify_columns(
            pd.Series(ev.processor, index=ev.index, copy=False), ev.decline_code
        )
        mac_code = ev.merchant_advice_code
        mac = self.table.classify_columns(
            pd.Series("mastercard_mac", index=ev.index),
            mac_code if is_card.all() else mac_code.where(is_card),  # MACs are card-only
        )
        mac_known = mac["known"]
        mac_ret = mac["retryable"]
        mac_stop = mac_known & (mac_ret == "no")
        mac_update = mac_known & (mac_ret == "after_update")
        mac_later = mac_known & (mac_ret == "yes")

        hard = _among(code["category"], HARD_CATEGORIES)
        overriding = (mac_stop | mac_update) & ~hard
        category = np.where(overriding, mac["category"], code["category"])
        base = code["retryable"]
        retryable = np.select(
            [mac_stop, mac_update & (base != "no")], ["no", "after_update"], default=base
        )
        updated = ev.card_updated
        needs_update = (retryable == "after_update") & ~updated
        known = code["known"]

        brand = ev.card_brand
        visa, mastercard = is_card & (brand == "visa"), is_card & (brand == "mastercard")
        other_card = is_card & ~visa & ~mastercard
        ach, sepa, bacs = method == "ach_debit", method == "sepa_debit", method == "bacs_debit"

        n_prev = counts["n_prev"]
        in_30d = counts["n_30d"] + 1
        in_24h = counts["n_24h"] + 1
        age = ev.failed_at.to_numpy(dtype="datetime64[ns]") - counts["first_at"]
        day = np.timedelta64(1, "D")
        window_over = (ach & (age >= lim.ach_reinitiation_window_days * day)) | (
            bacs & (age >= lim.bacs_representment_window_days * day)
        )
        cap_left = np.select(
            [visa, mastercard, other_card, ach, sepa, bacs],
            [
                lim.visa_max_reattempts_30d + 1 - in_30d,
                lim.mastercard_max_attempts_30d - in_30d,
                lim.other_card_max_attempts_30d - in_30d,
                lim.ach_max_representments - n_prev,
                lim.sepa_max_representments - n_prev,
                lim.bacs_max_representments - n_prev,
            ],
        )
        cap_left = np.where(window_over, 0, np.maximum(cap_left, 0))
        max_retries = np.where(known, cap_left, np.minimum(cap_left, lim.unknown_max_retries))
        max_retries = np.where(retryable == "no", 0, max_retries).astype("int64")

        mac_wait = rows["wait_hours"].to_numpy(dtype="float64", na_value=np.nan)[
            np.maximum(mac["table_row"], 0)
        ]
        mac_wait = np.where(np.isnan(mac_wait), lim.mac02_wait_hours, mac_wait)
        wait_h = np.full(len(ev.index), lim.min_spacing_hours)
        wait_h = np.where(mac_later, np.maximum(wait_h, mac_wait), wait_h)
        wait_h = np.where(~known, np.maximum(wait_h, lim.unknown_min_wait_hours), wait_h)
        wait_h = np.where(
            mastercard & (in_24h >= lim.mastercard_max_attempts_24h),
            np.maximum(wait_h, 24.0),
            wait_h,
        )
        not_before = ev.failed_at.array + pd.to_timedelta(wait_h, unit="h").array
        not_before[max_retries <= 0] = pd.NaT

        allowed = (retryable != "no") & (max_retries > 0) & ~needs_update
        cap_rule = np.select(
            [visa, mastercard, other_card, ach, sepa, bacs],
            [
                "visa_reattempt_cap",
                "mastercard_attempt_cap",
                "card_attempt_cap",
                "ach_representment_cap",
                "sepa_representment_cap",
                "bacs_representment_cap",
            ],
            default="",
        )
        window_rule = np.where(ach, "ach_reinitiation_window", "bacs_representment_window")
        conditions = [
            hard,
            mac_stop,
            retryable == "no",
            window_over,
            cap_left <= 0,
            needs_update & mac_update,
            needs_update,
            ~known,
            mac_later,
            (retryable == "after_update") & updated,
        ]
        rule = np.select(
            conditions,
            [
                "hard_decline",
                "mastercard_mac_stop",
                "not_retryable",
                window_rule,
                cap_rule,
                "mastercard_mac_update_first",
                "after_update",
                "unknown_code",
                "mastercard_mac_retry_later",
                "payment_method_updated",
            ],
            default="retry_allowed",
        )
        code_source = np.where(
            known,
            rows["source"].to_numpy()[np.maximum(code["table_row"], 0)],
            np.where(mac_known, src.MAC_SOURCE, src.PRODUCT_SOURCE),
        )
        explanation, source = self._texts(
            {
                "processor": ev.processor,
                "code": code["code"],
                "category": category,
                "retryable": retryable,
                "rule": rule,
                "cap_rule": cap_rule,
                "code_source": code_source,
                "in_30d": in_30d,
                "n_prev": n_prev,
                "mac_wait": mac_wait,
            },
            lim,
        )
        return {
            "category": category,
            "retryable": retryable,
            "allowed": allowed,
            "max_additional_retries": max_retries,
            "not_before": not_before,
            "needs_update_first": needs_update,
            "rule": rule,
            "explanation": explanation,
            "source": source,
            "known": known,
            "code": code["code"],
            "wait_hours": wait_h,
        }

    def _texts(
        self, parts: dict[str, np.ndarray], lim: RetryLimits
    ) -> tuple[np.ndarray, np.ndarray]:
        """Explanation and source of each decision (``parts``: what the wording reads).

        Both depend on nothing but these parts and the limits, so each distinct decision
        is worded once; short inputs also keep a memo of the decisions already worded (a
        warm API call words nothing).
        """
        n = len(parts["rule"])
        if not 0 < n <= SMALL_INPUT_ROWS:  # word each distinct decision once
            combination = _combination_ids(list(parts.values()))
            first = np.unique(combination, return_index=True)[1]
            explanation, source = self._word(
                {name: part[first] for name, part in parts.items()}, lim
            )
            return explanation[combination], source[combination]
        if self._text_memo_limits is not lim:  # limits replaced: the old texts may be wrong
            self._text_memo, self._text_memo_limits = {}, lim
        memo = self._text_memo
        keys = list(zip(*(parts[name].tolist() for name in parts), strict=True))
        found = [memo.get(key) for key in keys]
        if None in found:
            first: dict[tuple[Hashable, ...], int] = {}
            for i, (key, hit) in enumerate(zip(keys, found, strict=True)):
                if hit is None:
                    first.setdefault(key, i)
            at = np.fromiter(first.values(), dtype="int64", count=len(first))
            explanation, source = word_rows(
                lim, {name: part[at].tolist() for name, part in parts.items()}
            )
            new = dict(zip(first, zip(explanation, source, strict=True), strict=True))
            found = [
                hit if hit is not None else new[key] for key, hit in zip(keys, found, strict=True)
            ]
            if len(memo) + len(new) > TEXT_MEMO_MAX_ENTRIES:
                memo.clear()
            memo.update(new)
        explanation, source = zip(*found, strict=True)
        return np.array(explanation, dtype=object), np.array(source, dtype=object)

    @staticmethod
    def _word(parts: dict[str, np.ndarray], lim: RetryLimits) -> tuple[np.ndarray, np.ndarray]:
        """``wording.explain`` and ``wording.rule_sources`` of every row of ``parts``."""
        index = pd.RangeIndex(len(parts["rule"]))
        explanation = explain(
            lim,
            pd.DataFrame({"processor": parts["processor"]}, index=index),
            pd.DataFrame({"code": parts["code"]}, index=index),
            pd.DataFrame({name: parts[name] for name in ("category", "retryable", "rule")}),
            parts["cap_rule"],
            parts["in_30d"],
            parts["n_prev"],
            parts["mac_wait"],
        )
        source = rule_sources(parts["rule"], parts["cap_rule"], parts["code_source"])
        return explanation.to_numpy(dtype=object), np.asarray(source, dtype=object)

    def schedule_violations(
        self,
        events: pd.DataFrame,
        retries: pd.DataFrame,
        previous_attempts: pd.DataFrame | None = None,
        messages: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Every way a proposed retry schedule breaks the rules; one row per violation."""
        from training.declines.violations import find_violations

        decisions = self.decide_many(events, previous_attempts)
        return find_violations(self, events, decisions, retries, previous_attempts, messages)

    # -- helpers -----------------------------------------------------------------------
    def _prepare_events(self, events: pd.DataFrame) -> _Events:
        missing = [c for c in EVENT_COLUMNS if c not in events.columns]
        if missing:
            raise ValueError(f"events: missing column(s) {missing}")
        ids = pd.Index(events["event_id"])
        if ids.hasnans or not ids.is_unique:
            event_id = events["event_id"]
            dup = events.index[event_id.isna() | event_id.duplicated()]
            raise ValueError(f"events: event_id missing or repeated at row(s) {dup.tolist()[:10]}")
        processor = _clean_tokens(events["processor"])
        bad = ~_among(processor, self.table.vocabularies)
        if bad.any():
            raise ValueError(
                f"events: unknown processor at row(s) {events.index[bad].tolist()[:10]}; "
                f"expected one of {', '.join(self.table.vocabularies)}"
            )
        method = _clean_tokens(events["payment_method"])
        bad = ~_among(method, PAYMENT_METHODS)
        if bad.any():
            raise ValueError(
                f"events: payment_method not one of {PAYMENT_METHODS} at row(s) "
                f"{events.index[bad].tolist()[:10]}"
            )
        brand = _clean_tokens(events["card_brand"], missing="")
        failed_at = to_utc(events["failed_at"], "events.failed_at")
        if "card_updated" not in events:
            updated = np.zeros(len(events), dtype=bool)
        elif events["card_updated"].dtype == bool:
            updated = events["card_updated"].to_numpy()
        else:
            updated = events["card_updated"].fillna(False).astype(bool).to_numpy()
        return _Events(
            index=events.index,
            ids=ids,
            processor=processor,
            payment_method=method,
            card_brand=brand,
            decline_code=events["decline_code"],
            merchant_advice_code=events["merchant_advice_code"],
            failed_at=failed_at,
            card_updated=updated,
        )

    def _attempt_counts(self, ev: _Events, previous: pd.DataFrame | None) -> dict[str, np.ndarray]:
        """Per event: previous attempts in total, in the last 30 days / 24 hours, first one."""
        n = len(ev.index)
        failed = ev.failed_at.to_numpy(dtype="datetime64[ns]")
        counts = {
            "n_prev": np.zeros(n, "int64"),
            "n_30d": np.zeros(n, "int64"),
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
            pos, at, gap = pos[keep], at[keep], gap[keep]
            counts["n_prev"] = np.bincount(pos, minlength=n).astype("int64")
            for name, span in (
                ("n_30d", np.timedelta64(30, "D")),
                ("n_24h", np.timedelta64(24, "h")),
            ):
                counts[name] = np.bincount(pos, weights=gap < span, minlength=n).astype("int64")
            np.minimum.at(counts["first_at"], pos, at)
        return counts


def _object_array(values: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _clean_tokens(values: pd.Series, missing: str | None = None) -> np.ndarray:
    """``values.astype("string").str.strip().str.casefold()`` as an object array, worked
    out once per distinct value (a column holds a handful); missing values give ``missing``."""
    if len(values) <= SMALL_INPUT_ROWS and values.dtype == object:
        given = values.tolist()  # the API's few rows: text or None, cheaper without factorize
        if all(value is None or type(value) is str for value in given):
            out = np.empty(len(given), dtype=object)
            out[:] = [missing if value is None else value.strip().casefold() for value in given]
            return out
    codes, uniques = pd.factorize(values)
    done = [str(value).strip().casefold() for value in uniques]
    return np.array([*done, missing], dtype=object)[codes]


def _combination_ids(columns: list[np.ndarray]) -> np.ndarray:
    """Number the distinct rows of ``columns`` in order of appearance; missing is a value."""
    combined = np.zeros(len(columns[0]), dtype="int64")
    for column in columns:
        codes, uniques = pd.factorize(column, use_na_sentinel=False)
        combined = pd.factorize(combined * max(len(uniques), 1) + codes)[0]
    return combined


def _among(values: np.ndarray, allowed: Iterable[str]) -> np.ndarray:
    """Membership for object arrays that may hold ``None`` (``np.isin`` may sort them)."""
    found = np.zeros(len(values), dtype=bool)
    for name in allowed:
        found |= values == name
    return found
