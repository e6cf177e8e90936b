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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from training.declines import limits as src
from training.declines.limits import RetryLimits
from training.declines.table import HARD_CATEGORIES, DeclineTable, load_decline_table
from training.declines.wording import explain, rule_sources

__all__ = ["RetryDecision", "RetryLimits", "RetryRules"]

PAYMENT_METHODS = ("card", "sepa_debit", "bacs_debit", "ach_debit")
EVENT_COLUMNS = (
    "event_id",
    "processor",
    "payment_method",
    "card_brand",
    "decline_code",
    "merchant_advice_code",
    "failed_at",
)
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


def to_utc(values: pd.Series, what: str) -> pd.Series:
    """Parse timestamps as UTC (naive ones are taken to be UTC); unparseable ones raise."""
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
        events = pd.DataFrame(
            {
                "event_id": ["event"],
                "processor": [processor],
                "payment_method": [payment_method],
                "card_brand": [card_brand],
                "decline_code": pd.Series([decline_code], dtype="object"),
                "merchant_advice_code": pd.Series([merchant_advice_code], dtype="object"),
                "failed_at": [failed_at],
                "card_updated": [card_updated],
            }
        )
        previous = pd.DataFrame(
            {
                "event_id": ["event"] * len(previous_attempts),
                "attempted_at": list(previous_attempts),
            }
        )
        row = self.decide_many(events, previous).iloc[0]
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
        ev = self._prepare_events(events)
        counts = self._attempt_counts(ev, previous_attempts)
        lim = self.limits
        rows = self.table.rows

        code = self.table.classify(ev["processor"], ev["decline_code"])
        mac_raw = ev["merchant_advice_code"].where(ev["payment_method"] == "card")
        mac = self.table.classify(pd.Series("mastercard_mac", index=ev.index), mac_raw)
        mac_known = mac["known"].to_numpy()
        mac_ret = mac["retryable"].to_numpy()
        mac_stop = mac_known & (mac_ret == "no")
        mac_update = mac_known & (mac_ret == "after_update")
        mac_later = mac_known & (mac_ret == "yes")

        hard = code["category"].isin(HARD_CATEGORIES).to_numpy()
        overriding = (mac_stop | mac_update) & ~hard
        category = np.where(overriding, mac["category"], code["category"])
        base = code["retryable"].to_numpy()
        retryable = np.select(
            [mac_stop, mac_update & (base != "no")], ["no", "after_update"], default=base
        )
        updated = ev["card_updated"].to_numpy()
        needs_update = (retryable == "after_update") & ~updated
        known = code["known"].to_numpy()

        method = ev["payment_method"].to_numpy()
        brand = ev["card_brand"].to_numpy()
        is_card = method == "card"
        visa, mastercard = is_card & (brand == "visa"), is_card & (brand == "mastercard")
        other_card = is_card & ~visa & ~mastercard
        ach, sepa, bacs = method == "ach_debit", method == "sepa_debit", method == "bacs_debit"

        n_prev = counts["n_prev"].to_numpy()
        in_30d = counts["n_30d"].to_numpy() + 1
        in_24h = counts["n_24h"].to_numpy() + 1
        failed_at = ev["failed_at"]
        age = (failed_at - counts["first_at"]).to_numpy()
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
            np.maximum(mac["table_row"].to_numpy(), 0)
        ]
        mac_wait = np.where(np.isnan(mac_wait), lim.mac02_wait_hours, mac_wait)
        wait_h = np.full(len(ev), lim.min_spacing_hours)
        wait_h = np.where(mac_later, np.maximum(wait_h, mac_wait), wait_h)
        wait_h = np.where(~known, np.maximum(wait_h, lim.unknown_min_wait_hours), wait_h)
        wait_h = np.where(
            mastercard & (in_24h >= lim.mastercard_max_attempts_24h),
            np.maximum(wait_h, 24.0),
            wait_h,
        )
        not_before = failed_at + pd.to_timedelta(wait_h, unit="h")
        not_before = not_before.where(max_retries > 0)

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
        out = pd.DataFrame(
            {
                "category": category,
                "retryable": retryable,
                "allowed": allowed,
                "max_additional_retries": max_retries,
                "not_before": not_before,
                "needs_update_first": needs_update,
                "rule": rule,
            },
            index=ev.index,
        )
        code_source = np.where(
            known,
            rows["source"].to_numpy()[np.maximum(code["table_row"].to_numpy(), 0)],
            np.where(mac_known, src.MAC_SOURCE, src.PRODUCT_SOURCE),
        )
        out["source"] = rule_sources(rule, cap_rule, code_source)
        out["explanation"] = explain(lim, ev, code, out, cap_rule, in_30d, n_prev, mac_wait)
        out["known"] = known
        out["code"] = code["code"]
        return out[[*DECISION_COLUMNS, "known", "code"]]

    def schedule_violations(
        self,
        events: pd.DataFrame,
        retries: pd.DataFrame,
        previous_attempts: pd.DataFrame | None = None,
        messages: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Every way a proposed retry schedule breaks the rules; one row per violation."""
        from training.declines.schedule import find_violations

        decisions = self.decide_many(events, previous_attempts)
        return find_violations(self, events, decisions, retries, previous_attempts, messages)

    # -- helpers -----------------------------------------------------------------------
    def _prepare_events(self, events: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in EVENT_COLUMNS if c not in events.columns]
        if missing:
            raise ValueError(f"events: missing column(s) {missing}")
        if events["event_id"].isna().any() or events["event_id"].duplicated().any():
            dup = events.index[events["event_id"].isna() | events["event_id"].duplicated()]
            raise ValueError(f"events: event_id missing or repeated at row(s) {dup.tolist()[:10]}")
        ev = events[list(EVENT_COLUMNS)].copy()
        ev["processor"] = ev["processor"].astype("string").str.strip().str.casefold()
        bad = ~ev["processor"].isin(self.table.vocabularies).fillna(False)
        if bad.any():
            raise ValueError(
                f"events: unknown processor at row(s) {ev.index[bad].tolist()[:10]}; "
                f"expected one of {', '.join(self.table.vocabularies)}"
            )
        ev["payment_method"] = ev["payment_method"].astype("string").str.strip().str.casefold()
        bad = ~ev["payment_method"].isin(PAYMENT_METHODS).fillna(False)
        if bad.any():
            raise ValueError(
                f"events: payment_method not one of {PAYMENT_METHODS} at row(s) "
                f"{ev.index[bad].tolist()[:10]}"
            )
        ev["card_brand"] = ev["card_brand"].astype("string").str.strip().str.casefold().fillna("")
        ev["failed_at"] = to_utc(ev["failed_at"], "events.failed_at")
        updated = events["card_updated"] if "card_updated" in events else False
        ev["card_updated"] = pd.Series(updated, index=ev.index).fillna(False).astype(bool)
        return ev

    def _attempt_counts(self, ev: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
        """Per event: previous attempts in total, in the last 30 days / 24 hours, first one."""
        n = len(ev)
        failed = ev["failed_at"].to_numpy(dtype="datetime64[ns]")
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
            pos = pd.Index(ev["event_id"]).get_indexer(previous["event_id"])
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
            counts["n_prev"] = np.bincount(pos, minlength=n)
            counts["n_30d"] = np.bincount(pos, weights=gap < np.timedelta64(30, "D"), minlength=n)
            counts["n_24h"] = np.bincount(pos, weights=gap < np.timedelta64(24, "h"), minlength=n)
            np.minimum.at(counts["first_at"], pos, at)
        out = pd.DataFrame(counts, index=ev.index)
        for column in ("n_prev", "n_30d", "n_24h"):
            out[column] = out[column].astype("int64")
        out["first_at"] = pd.to_datetime(out["first_at"], utc=True)
        return out
