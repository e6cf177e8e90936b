"""Check proposed retry schedules against the rules engine's decisions (vectorized).

``schedule_violations`` decides the events with ``RetryRules`` and lists every way the
schedule breaks a rule; the evaluation runs it on tens of thousands of events, so
everything here is merges, group-bys and numpy comparisons.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.config.retry_limits import RetryLimits
from training.declines.rules import RetryRules, merchant_initiated, to_utc

VIOLATION_COLUMNS = ("event_id", "at", "rule", "explanation")


def schedule_violations(
    rules: RetryRules,
    events: pd.DataFrame,
    retries: pd.DataFrame,
    previous_attempts: pd.DataFrame | None = None,
    messages: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every way a proposed retry schedule breaks the rules; one row per violation.

    ``retries`` has ``event_id`` and ``at``; ``messages`` (``event_id``, ``send_at``,
    ``template``) tell when an update of the payment method becomes plausible.
    Columns: ``VIOLATION_COLUMNS``, sorted by event, time and rule.
    """
    decisions = rules.decide_many(events, previous_attempts)
    return find_violations(rules.limits, events, decisions, retries, previous_attempts, messages)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": pd.Series(dtype="object"),
            "at": pd.Series(dtype="datetime64[ns, UTC]"),
            "rule": pd.Series(dtype="object"),
            "explanation": pd.Series(dtype="object"),
        }
    )


def find_violations(
    limits: RetryLimits,
    events: pd.DataFrame,
    decisions: pd.DataFrame,
    retries: pd.DataFrame,
    previous_attempts: pd.DataFrame | None,
    messages: pd.DataFrame | None,
) -> pd.DataFrame:
    """``schedule_violations`` given the events' ``decisions`` (``RetryRules.decide_many``)."""
    for column in ("event_id", "at"):
        if column not in retries.columns:
            raise ValueError(f"retries: missing column {column!r}")
    if retries.empty:
        return _empty()
    ev = _event_frame(events, decisions)
    r = _retry_frame(retries, ev)
    blocked = ~r["allowed"] & ~(r["needs_update_first"] & (r["max_additional_retries"] > 0))
    prev = _previous(ev, previous_attempts)
    found = [
        *_decision_violations(r, blocked),
        _flagged(
            r,
            _too_close(r, limits),
            "min_spacing",
            f"retries closer together than the minimum spacing of {limits.min_spacing_hours:g} h",
        ),
        _flagged(
            r,
            _over_network_cap(r, ev, prev, days=30, limits=limits),
            "network_cap_30d",
            "more attempts in a rolling 30-day window than the card network allows",
        ),
        _flagged(
            r,
            _over_network_cap(r, ev, prev, days=1, limits=limits),
            "network_cap_24h",
            f"more than {limits.mastercard_max_attempts_24h} Mastercard attempts in a rolling "
            "24 hours",
        ),
        _flagged(
            r,
            _past_window(r, _first_attempt(ev, prev), limits),
            "representment_window",
            "re-presentation after the scheme's window from the original collection",
        ),
        _flagged(
            r,
            _before_update(r, _update_plausible_from(messages, limits)),
            "after_update_without_update",
            "retry of an after_update decline before an update is plausible "
            f"({limits.update_plausible_after_hours:g} h after an update request)",
        ),
    ]
    flagged = [frame for frame in found if frame is not None]
    if not flagged:
        return _empty()
    out = pd.concat(flagged, ignore_index=True)
    return out.sort_values(["event_id", "at", "rule"], kind="stable").reset_index(drop=True)


def _event_frame(events: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """One row per event: id, failure time, normalized method and brand, and the decision
    fields the checks read (in the order of ``events``)."""
    ev = pd.DataFrame(
        {
            "event_id": events["event_id"].to_numpy(),
            "failed_at": to_utc(events["failed_at"], "events.failed_at").reset_index(drop=True),
            "method": events["payment_method"]
            .astype("string")
            .str.strip()
            .str.casefold()
            .to_numpy(),
            "brand": events["card_brand"]
            .astype("string")
            .str.strip()
            .str.casefold()
            .fillna("")
            .to_numpy(),
        }
    )
    for column in ("allowed", "max_additional_retries", "not_before", "needs_update_first", "rule"):
        ev[column] = decisions[column].reset_index(drop=True)
    return ev


def _retry_frame(retries: pd.DataFrame, ev: pd.DataFrame) -> pd.DataFrame:
    """The retries with their event's fields, sorted by event and time; ``n`` numbers an
    event's retries from 1, ``rid`` numbers all rows. Retries of unknown events raise."""
    r = pd.DataFrame(
        {
            "event_id": retries["event_id"].to_numpy(),
            "at": to_utc(retries["at"], "retries.at").reset_index(drop=True),
        }
    )
    r = r.merge(ev, on="event_id", how="left", validate="many_to_one", indicator=True)
    orphan = r["_merge"] == "left_only"
    if orphan.any():
        raise ValueError(
            f"retries: event_id not in events: {r.loc[orphan, 'event_id'].unique().tolist()[:10]}"
        )
    r = (
        r.drop(columns="_merge")
        .sort_values(["event_id", "at"], kind="stable")
        .reset_index(drop=True)
    )
    r["n"] = r.groupby("event_id").cumcount() + 1
    r["rid"] = np.arange(len(r))
    return r


def _flagged(
    r: pd.DataFrame, mask: pd.Series, rule: str, text: pd.Series | str
) -> pd.DataFrame | None:
    """The violation rows of the retries in ``mask`` (``None`` if there are none)."""
    if not mask.any():
        return None
    explanation = text[mask] if isinstance(text, pd.Series) else text
    return pd.DataFrame(
        {
            "event_id": r.loc[mask, "event_id"],
            "at": r.loc[mask, "at"],
            "rule": rule,
            "explanation": explanation,
        }
    )


def _decision_violations(r: pd.DataFrame, blocked: pd.Series) -> list[pd.DataFrame | None]:
    """Retries that the event's own decision forbids: any retry of a blocked event (one
    that may not be retried, not even after an update), one at or before the failure, one
    before ``not_before``, one past ``max_additional_retries``."""
    open_ = ~blocked
    return [
        _flagged(
            r,
            blocked,
            "not_allowed",
            "no retry is allowed for this decline (decision rule: " + r["rule"].astype(str) + ")",
        ),
        _flagged(
            r,
            r["at"] <= r["failed_at"],
            "before_failure",
            "retry scheduled at or before the failed charge",
        ),
        _flagged(
            r,
            open_ & r["not_before"].notna() & (r["at"] < r["not_before"]),
            "before_not_before",
            "retry before the earliest allowed time " + r["not_before"].astype(str),
        ),
        _flagged(
            r,
            open_ & (r["n"] > r["max_additional_retries"]),
            "too_many_retries",
            "retry number "
            + r["n"].astype(str)
            + " exceeds the "
            + r["max_additional_retries"].astype(str)
            + " retries allowed",
        ),
    ]


def _too_close(r: pd.DataFrame, limits: RetryLimits) -> pd.Series:
    """Retries less than ``min_spacing_hours`` after the event's previous retry."""
    gap = r.groupby("event_id")["at"].diff()
    return gap.notna() & (gap < pd.Timedelta(hours=limits.min_spacing_hours))


def _past_window(r: pd.DataFrame, first: pd.Series, limits: RetryLimits) -> pd.Series:
    """ACH and Bacs retries later than the scheme's window after the first collection."""
    first_at = r["event_id"].map(first)
    late = (
        (r["method"] == "ach_debit")
        & (r["at"] > first_at + pd.Timedelta(days=limits.ach_reinitiation_window_days))
    ) | (
        (r["method"] == "bacs_debit")
        & (r["at"] > first_at + pd.Timedelta(days=limits.bacs_representment_window_days))
    )
    return late.fillna(False)


def _before_update(r: pd.DataFrame, plausible: pd.Series) -> pd.Series:
    """Retries of events that need an update first, before an update is plausible."""
    plausible_at = r["event_id"].map(plausible)
    no_update = r["needs_update_first"] & ~(plausible_at.notna() & (plausible_at <= r["at"]))
    return no_update.fillna(False)


def _previous(ev: pd.DataFrame, previous: pd.DataFrame | None) -> pd.DataFrame:
    """Previous attempts strictly before the failure (the failure itself is added apart)."""
    if previous is None or previous.empty:
        return pd.DataFrame(
            {
                "event_id": pd.Series(dtype="object"),
                "t": pd.Series(dtype="datetime64[ns, UTC]"),
                "customer": pd.Series(dtype=bool),
            }
        )
    prev = pd.DataFrame(
        {
            "event_id": previous["event_id"].to_numpy(),
            "t": to_utc(previous["attempted_at"], "previous_attempts.attempted_at").reset_index(
                drop=True
            ),
            "customer": ~merchant_initiated(previous),
        }
    )
    prev = prev.merge(ev[["event_id", "failed_at"]], on="event_id")
    return prev.loc[prev["t"] < prev["failed_at"], ["event_id", "t", "customer"]]


def _over_network_cap(
    r: pd.DataFrame, ev: pd.DataFrame, prev: pd.DataFrame, *, days: int, limits: RetryLimits
) -> pd.Series:
    """Retries that push a card's attempts in the rolling window over its network cap.

    The attempts counted: the previous ones (``prev``, from ``_previous``), the failure
    and the scheduled retries, in the ``days`` up to and including the retry. Visa counts
    merchant-initiated reattempts only: customer-initiated previous attempts are left out.
    """
    if days == 30:
        cap = np.select(
            [r["brand"] == "visa", r["brand"] == "mastercard"],
            [limits.visa_max_reattempts_30d + 1, limits.mastercard_max_attempts_30d],
            default=limits.other_card_max_attempts_30d,
        )
        applies = r["method"] == "card"
    else:
        cap = np.full(len(r), limits.mastercard_max_attempts_24h)
        applies = (r["method"] == "card") & (r["brand"] == "mastercard")
    if not applies.any():
        return pd.Series(False, index=r.index)
    attempts = pd.concat(
        [
            prev,
            ev[["event_id", "failed_at"]].rename(columns={"failed_at": "t"}).assign(customer=False),
            r[["event_id", "at"]].rename(columns={"at": "t"}).assign(customer=False),
        ],
        ignore_index=True,
    )
    pairs = r.loc[applies, ["rid", "event_id", "at", "brand"]].merge(attempts, on="event_id")
    inside = (pairs["t"] <= pairs["at"]) & (pairs["t"] > pairs["at"] - pd.Timedelta(days=days))
    if days == 30:
        inside &= ~(pairs["customer"].astype(bool) & (pairs["brand"] == "visa"))
    count = pairs[inside].groupby("rid").size().reindex(r["rid"], fill_value=0).to_numpy()
    return pd.Series(applies.to_numpy() & (count > cap), index=r.index)


def _first_attempt(ev: pd.DataFrame, prev: pd.DataFrame) -> pd.Series:
    """Per event: the first attempt on the charge, a previous one (``prev``) or the failure."""
    first = ev.set_index("event_id")["failed_at"]
    if not prev.empty:
        earliest = prev.groupby("event_id")["t"].min()
        first = first.to_frame().join(earliest).min(axis=1)
    return first


def _update_plausible_from(messages: pd.DataFrame | None, limits: RetryLimits) -> pd.Series:
    """Per event: the time from which a payment-method update is plausible."""
    if messages is None or messages.empty:
        return pd.Series(dtype="datetime64[ns, UTC]")
    for column in ("event_id", "send_at", "template"):
        if column not in messages.columns:
            raise ValueError(f"messages: missing column {column!r}")
    asks = messages[messages["template"].isin(limits.update_message_templates)]
    if asks.empty:
        return pd.Series(dtype="datetime64[ns, UTC]")
    sent = to_utc(asks["send_at"], "messages.send_at")
    earliest = sent.groupby(asks["event_id"].to_numpy()).min()
    return earliest + pd.Timedelta(hours=limits.update_plausible_after_hours)
