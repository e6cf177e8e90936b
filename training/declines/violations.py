"""Check proposed retry schedules against the rules engine's decisions (vectorized).

Used by ``RetryRules.schedule_violations`` and, through it, by the evaluation on tens of
thousands of events: everything here is merges, group-bys and numpy comparisons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from training.declines.rules import RetryRules

VIOLATION_COLUMNS = ("event_id", "at", "rule", "explanation")


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
    rules: RetryRules,
    events: pd.DataFrame,
    decisions: pd.DataFrame,
    retries: pd.DataFrame,
    previous_attempts: pd.DataFrame | None,
    messages: pd.DataFrame | None,
) -> pd.DataFrame:
    from training.declines.rules import to_utc

    lim = rules.limits
    for column in ("event_id", "at"):
        if column not in retries.columns:
            raise ValueError(f"retries: missing column {column!r}")
    if retries.empty:
        return _empty()
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

    blocked = ~r["allowed"] & ~(r["needs_update_first"] & (r["max_additional_retries"] > 0))
    found: list[pd.DataFrame] = []

    def flag(mask: pd.Series, rule: str, text: pd.Series | str) -> None:
        if mask.any():
            explanation = text[mask] if isinstance(text, pd.Series) else text
            found.append(
                pd.DataFrame(
                    {
                        "event_id": r.loc[mask, "event_id"],
                        "at": r.loc[mask, "at"],
                        "rule": rule,
                        "explanation": explanation,
                    }
                )
            )

    flag(
        blocked,
        "not_allowed",
        "no retry is allowed for this decline (decision rule: " + r["rule"].astype(str) + ")",
    )
    flag(
        r["at"] <= r["failed_at"],
        "before_failure",
        "retry scheduled at or before the failed charge",
    )
    open_ = ~blocked
    flag(
        open_ & r["not_before"].notna() & (r["at"] < r["not_before"]),
        "before_not_before",
        "retry before the earliest allowed time " + r["not_before"].astype(str),
    )
    flag(
        open_ & (r["n"] > r["max_additional_retries"]),
        "too_many_retries",
        "retry number "
        + r["n"].astype(str)
        + " exceeds the "
        + r["max_additional_retries"].astype(str)
        + " retries allowed",
    )

    gap = r.groupby("event_id")["at"].diff()
    flag(
        gap.notna() & (gap < pd.Timedelta(hours=lim.min_spacing_hours)),
        "min_spacing",
        f"retries closer together than the minimum spacing of {lim.min_spacing_hours:g} h",
    )

    flag(
        _window_counts(r, ev, previous_attempts, days=30, limits=lim),
        "network_cap_30d",
        "more attempts in a rolling 30-day window than the card network allows",
    )
    flag(
        _window_counts(r, ev, previous_attempts, days=1, limits=lim),
        "network_cap_24h",
        f"more than {lim.mastercard_max_attempts_24h} Mastercard attempts in a rolling 24 hours",
    )

    first = _first_attempt(ev, previous_attempts, to_utc)
    first_at = r["event_id"].map(first)
    late = (
        (r["method"] == "ach_debit")
        & (r["at"] > first_at + pd.Timedelta(days=lim.ach_reinitiation_window_days))
    ) | (
        (r["method"] == "bacs_debit")
        & (r["at"] > first_at + pd.Timedelta(days=lim.bacs_representment_window_days))
    )
    flag(
        late.fillna(False),
        "representment_window",
        "re-presentation after the scheme's window from the original collection",
    )

    plausible = _update_plausible_from(messages, lim, to_utc)
    plausible_at = r["event_id"].map(plausible)
    no_update = r["needs_update_first"] & ~(plausible_at.notna() & (plausible_at <= r["at"]))
    flag(
        no_update.fillna(False),
        "after_update_without_update",
        "retry of an after_update decline before an update is plausible "
        f"({lim.update_plausible_after_hours:g} h after an update request)",
    )

    if not found:
        return _empty()
    out = pd.concat(found, ignore_index=True)
    return out.sort_values(["event_id", "at", "rule"], kind="stable").reset_index(drop=True)


def _previous(ev: pd.DataFrame, previous: pd.DataFrame | None, to_utc) -> pd.DataFrame:
    """Previous attempts strictly before the failure (the failure itself is added apart)."""
    if previous is None or previous.empty:
        return pd.DataFrame(
            {"event_id": pd.Series(dtype="object"), "t": pd.Series(dtype="datetime64[ns, UTC]")}
        )
    prev = pd.DataFrame(
        {
            "event_id": previous["event_id"].to_numpy(),
            "t": to_utc(previous["attempted_at"], "previous_attempts.attempted_at").reset_index(
                drop=True
            ),
        }
    )
    prev = prev.merge(ev[["event_id", "failed_at"]], on="event_id")
    return prev.loc[prev["t"] < prev["failed_at"], ["event_id", "t"]]


def _window_counts(r, ev, previous, *, days: int, limits) -> pd.Series:
    """Retries that push a card's attempts in the rolling window over its network cap."""
    from training.declines.rules import to_utc

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
            _previous(ev, previous, to_utc),
            ev[["event_id", "failed_at"]].rename(columns={"failed_at": "t"}),
            r[["event_id", "at"]].rename(columns={"at": "t"}),
        ],
        ignore_index=True,
    )
    pairs = r.loc[applies, ["rid", "event_id", "at"]].merge(attempts, on="event_id")
    inside = (pairs["t"] <= pairs["at"]) & (pairs["t"] > pairs["at"] - pd.Timedelta(days=days))
    count = pairs[inside].groupby("rid").size().reindex(r["rid"], fill_value=0).to_numpy()
    return pd.Series(applies.to_numpy() & (count > cap), index=r.index)


def _first_attempt(ev: pd.DataFrame, previous, to_utc) -> pd.Series:
    prev = _previous(ev, previous, to_utc)
    first = ev.set_index("event_id")["failed_at"]
    if not prev.empty:
        earliest = prev.groupby("event_id")["t"].min()
        first = first.to_frame().join(earliest).min(axis=1)
    return first


def _update_plausible_from(messages: pd.DataFrame | None, limits, to_utc) -> pd.Series:
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
