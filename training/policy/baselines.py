"""Rule-based schedules, vectorized over many failure events.

* :func:`fixed_schedule`: the configured default most billing systems ship (retries 3, 5
  and 7 days after the failure at the same local clock time, ``friendly_reminder``
  emails at 0, 3 and 7 days). The API's ``baseline_recovery_probability`` is the model's
  estimate for this schedule.
* :func:`rules_baseline`: what a careful team would hand-write from the decline reason
  (no retry on hard declines; update request first for ``after_update``; insufficient
  funds retried the morning after common paydays; other soft declines spaced out).
  It is the service's fallback when no model is loaded.
* :func:`no_action`: nothing at all (the evaluation's floor).

Every schedule is clipped by the retry-rules engine (:class:`RetryRules`), the one place
that decides whether and when a retry is allowed, and by the request's constraints
(``max_retries``, ``window_days``, ``max_messages``, channels); messages are moved out
of the customer's local quiet hours and SMS needs opt-in. Candidates are built as long
frames (events x slots) and filtered with merges and group-bys, never row by row.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from training.declines.rules import RetryRules
from training.policy.schedule import Schedules, empty_messages, empty_retries
from training.policy.timing import at_local_time, defer_out_of_quiet_hours, from_local, to_local

UTC = "datetime64[ns, UTC]"
Channel = Literal["email", "sms"]
DAY = pd.Timedelta(days=1)


class BaselineConfig(BaseModel):
    """Knobs of the rule-based schedules (``params.yaml`` section ``baselines``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quiet_start_hour: int = Field(21, ge=0, le=23, description="local quiet hours start")
    quiet_end_hour: int = Field(8, ge=0, le=23, description="local quiet hours end")
    fixed_retry_days: tuple[float, ...] = Field(
        (3, 5, 7), description="fixed schedule: retries this many days after the failure"
    )
    fixed_message_days: tuple[float, ...] = Field(
        (0, 3, 7), description="fixed schedule: messages this many days after the failure"
    )
    fixed_message_template: str = "friendly_reminder"
    fixed_message_channel: Channel = "email"
    soft_retry_days: tuple[float, ...] = Field(
        (1, 3, 6, 10), description="rules: other soft declines, retries this many days after"
    )
    payday_month_days: tuple[int, ...] = Field(
        (1, 15), description="rules: paydays by day of month (local)"
    )
    payday_last_business_day: bool = Field(True, description="rules: last Mon-Fri of a month")
    payday_weekdays: tuple[int, ...] = Field((4,), description="rules: weekly paydays, Monday=0")
    payday_retry_hour: int = Field(
        6, ge=0, le=23, description="rules: local hour of a retry the morning after payday"
    )
    update_retry_days: tuple[float, ...] = Field(
        (0, 2, 5),
        description="rules, after_update: retries this many days after an update is plausible",
    )
    rules_message_days: tuple[float, ...] = Field(
        (0, 3, 7), description="rules: messages this many days after the failure"
    )
    rules_message_channels: tuple[Channel, ...] = Field(
        ("email", "sms", "email"),
        min_length=1,
        description="rules: channel of the 1st, 2nd, ... message (SMS only with opt-in)",
    )
    update_template: str = "update_payment_method"
    payment_link_template: str = "payment_link"
    card_problem_categories: tuple[str, ...] = Field(
        (
            "expired_card",
            "card_invalid",
            "lost_or_stolen",
            "fraud_suspected",
            "account_closed",
            "dispute_or_revoked",
            "not_permitted",
        ),
        description="rules: categories answered with the update-payment-method template",
    )


# -- building blocks -------------------------------------------------------------------


def _frame(events: pd.DataFrame) -> pd.DataFrame:
    ev = events.reset_index(drop=True).copy()
    ev["failed_at"] = pd.to_datetime(ev["failed_at"], utc=True).astype(UTC)
    ev["window_end"] = ev["failed_at"] + pd.to_timedelta(ev["window_days"], unit="D")
    return ev


def _slots(ev: pd.DataFrame, days: tuple[float, ...]) -> pd.DataFrame:
    """Events x offsets: event_id, slot (0-based), days."""
    offsets = pd.DataFrame({"slot": np.arange(len(days)), "days": np.asarray(days, dtype=float)})
    return ev[["event_id"]].merge(offsets, how="cross")


def same_local_clock(ts: pd.Series, tz: pd.Series, days: pd.Series) -> pd.Series:
    """``ts`` moved by ``days`` keeping the local wall-clock time (DST-safe)."""
    return from_local(to_local(ts, tz) + pd.to_timedelta(days, unit="D"), tz)


def _limits(ev: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    """Per event: how many retries, from when, and whether an update is needed first."""
    out = ev[["event_id", "failed_at", "window_end", "payment_method"]].copy()
    out["limit"] = np.minimum(
        decisions["max_additional_retries"].to_numpy(), ev["max_retries"].to_numpy()
    )
    out["open"] = (decisions["retryable"].to_numpy() != "no") & (out["limit"].to_numpy() > 0)
    out["needs_update"] = decisions["needs_update_first"].to_numpy(dtype=bool)
    out["allowed"] = decisions["allowed"].to_numpy(dtype=bool)
    out["not_before"] = pd.to_datetime(decisions["not_before"], utc=True).astype(UTC).array
    return out


def _first_attempt(ev: pd.DataFrame, previous: pd.DataFrame | None) -> pd.Series:
    first = ev.set_index("event_id")["failed_at"]
    if previous is None or previous.empty:
        return first
    earliest = pd.to_datetime(previous["attempted_at"], utc=True).groupby(
        previous["event_id"].to_numpy()
    ).min()
    return pd.concat([first, earliest.reindex(first.index)], axis=1).min(axis=1).astype(UTC)


def clip_retries(
    ev: pd.DataFrame,
    candidates: pd.DataFrame,
    decisions: pd.DataFrame,
    rules: RetryRules,
    previous: pd.DataFrame | None = None,
    update_plausible_at: pd.Series | None = None,
) -> pd.DataFrame:
    """Keep what the rules and constraints allow of candidate retries (event_id, at).

    Retries move to the earliest allowed time (``not_before``; for ``after_update``, when
    an update is plausible) or, where the optional bool column ``movable`` is false (a
    retry tied to a moment, like a payday morning), are dropped instead; they are pushed apart to the minimum spacing, cut at the window
    end (and the debit scheme's re-presentation window) and at the allowed count.
    """
    if candidates.empty:
        return empty_retries()
    lim = rules.limits
    per_event = _limits(ev, decisions)
    per_event["first_attempt"] = per_event["event_id"].map(_first_attempt(ev, previous))
    plausible = (
        update_plausible_at
        if update_plausible_at is not None
        else pd.Series(dtype=UTC)
    )
    per_event["plausible"] = per_event["event_id"].map(plausible).astype(UTC)
    movable = candidates["movable"] if "movable" in candidates else True
    c = candidates[["event_id", "at"]].assign(movable=movable).merge(per_event, on="event_id")
    usable = c["open"] & (c["allowed"] | (c["needs_update"] & c["plausible"].notna()))
    c = c[usable]
    at = c["at"].astype(UTC)
    early = (c["not_before"].notna() & (at < c["not_before"])) | (
        c["needs_update"] & (at < c["plausible"])
    )
    c = c[~early | c["movable"].astype(bool)]
    if c.empty:
        return empty_retries()
    at = c["at"].astype(UTC)
    at = at.where(c["not_before"].isna() | (at >= c["not_before"]), c["not_before"])
    at = at.where(~c["needs_update"] | (at >= c["plausible"]), c["plausible"])
    c = c.assign(at=at.astype(UTC)).sort_values(["event_id", "at"], kind="stable")
    c = c.drop_duplicates(["event_id", "at"])
    # spacing: at_k >= at_{k-1} + s  <=>  at_k' = k*s + cummax_j(at_j - j*s)
    spacing = pd.Timedelta(hours=lim.min_spacing_hours)
    k = c.groupby("event_id").cumcount().to_numpy()
    shifted = c["at"] - k * spacing
    c["at"] = (shifted.groupby(c["event_id"].to_numpy()).cummax() + k * spacing).astype(UTC)
    scheme_end = np.where(
        c["payment_method"] == "ach_debit",
        c["first_attempt"] + pd.Timedelta(days=lim.ach_reinitiation_window_days),
        np.where(
            c["payment_method"] == "bacs_debit",
            c["first_attempt"] + pd.Timedelta(days=lim.bacs_representment_window_days),
            c["window_end"],
        ),
    )
    inside = (c["at"] > c["failed_at"]) & (c["at"] <= c["window_end"])
    inside &= c["at"].to_numpy() <= pd.to_datetime(scheme_end, utc=True)
    c = c[inside]
    c = c[c.groupby("event_id").cumcount() < c["limit"]]
    return c[["event_id", "at"]].reset_index(drop=True)


def fit_messages(ev: pd.DataFrame, candidates: pd.DataFrame, config: BaselineConfig) -> pd.DataFrame:
    """Keep what the constraints allow of candidate messages (event_id, send_at, channel, template).

    SMS needs ``allow_sms`` and ``sms_opt_in`` (else email, if allowed), email needs
    ``allow_email`` (else SMS, if permitted); messages move out of local quiet hours, stay
    inside the window and are cut at ``max_messages``.
    """
    if candidates.empty:
        return empty_messages()
    info = ev[["event_id", "timezone", "failed_at", "window_end", "max_messages", "allow_email"]]
    info = info.assign(sms_ok=ev["allow_sms"].to_numpy() & ev["sms_opt_in"].to_numpy())
    c = candidates[["event_id", "send_at", "channel", "template"]].merge(info, on="event_id")
    email_ok = c["allow_email"].to_numpy(dtype=bool)
    sms_ok = c["sms_ok"].to_numpy(dtype=bool)
    wants_sms = c["channel"].to_numpy() == "sms"
    channel = np.where(
        wants_sms,
        np.where(sms_ok, "sms", np.where(email_ok, "email", None)),
        np.where(email_ok, "email", np.where(sms_ok, "sms", None)),
    )
    c = c.assign(channel=channel)[pd.notna(channel)]
    if c.empty:
        return empty_messages()
    c["send_at"] = defer_out_of_quiet_hours(
        c["send_at"].astype(UTC),
        c["timezone"],
        config.quiet_start_hour,
        config.quiet_end_hour,
    ).to_numpy()
    c = c[(c["send_at"] >= c["failed_at"]) & (c["send_at"] <= c["window_end"])]
    c = c.sort_values(["event_id", "send_at"], kind="stable").drop_duplicates(
        ["event_id", "send_at"]
    )
    c = c[c.groupby("event_id").cumcount() < c["max_messages"]]
    return c[["event_id", "send_at", "channel", "template"]].reset_index(drop=True)


def payday_mornings(ev: pd.DataFrame, config: BaselineConfig) -> pd.DataFrame:
    """Candidate retries (event_id, at) at ``payday_retry_hour`` local on each day after a
    payday (1st, 15th, last business day of the month, Fridays), inside the window."""
    max_days = int(ev["window_days"].max()) if len(ev) else 0
    days = _slots(ev, tuple(range(1, max_days + 1))).merge(
        ev[["event_id", "timezone", "failed_at", "window_days"]], on="event_id"
    )
    days = days[days["days"] <= days["window_days"]]
    local_day = to_local(days["failed_at"], days["timezone"]).dt.normalize() + pd.to_timedelta(
        days["days"], unit="D"
    )
    payday = local_day - DAY
    month_end = payday + pd.offsets.MonthEnd(0)
    weekday_end = month_end.dt.weekday
    last_business = month_end - pd.to_timedelta(np.maximum(weekday_end - 4, 0), unit="D")
    is_payday = payday.dt.day.isin(config.payday_month_days) | payday.dt.weekday.isin(
        config.payday_weekdays
    )
    if config.payday_last_business_day:
        is_payday |= payday == last_business
    days = days[is_payday.to_numpy()]
    at = at_local_time(local_day[is_payday], days["timezone"], config.payday_retry_hour)
    return pd.DataFrame(
        {"event_id": days["event_id"].to_numpy(), "at": at.to_numpy(), "movable": False}
    )


def _decisions(
    rules: RetryRules, ev: pd.DataFrame, previous: pd.DataFrame | None, decisions: pd.DataFrame | None
) -> pd.DataFrame:
    if decisions is None:
        decisions = rules.decide_many(ev, previous)
    return decisions.reset_index(drop=True)


# -- the baselines -----------------------------------------------------------------------


def fixed_schedule(
    events: pd.DataFrame,
    previous_attempts: pd.DataFrame | None,
    rules: RetryRules,
    config: BaselineConfig | None = None,
    decisions: pd.DataFrame | None = None,
) -> Schedules:
    """The configured fixed schedule, clipped by the rules and the request's constraints."""
    config = config or BaselineConfig()
    ev = _frame(events)
    decisions = _decisions(rules, ev, previous_attempts, decisions)
    tries = _slots(ev, config.fixed_retry_days).merge(ev[["event_id", "failed_at", "timezone"]])
    tries["at"] = same_local_clock(tries["failed_at"], tries["timezone"], tries["days"])
    sends = _slots(ev, config.fixed_message_days).merge(ev[["event_id", "failed_at", "timezone"]])
    sends["send_at"] = same_local_clock(sends["failed_at"], sends["timezone"], sends["days"])
    sends["channel"] = config.fixed_message_channel
    sends["template"] = config.fixed_message_template
    messages = fit_messages(ev, sends, config)
    retries = clip_retries(
        ev, tries, decisions, rules, previous_attempts, _update_plausible(messages, rules)
    )
    return Schedules(retries, messages).sorted()


def _update_plausible(messages: pd.DataFrame, rules: RetryRules) -> pd.Series:
    asks = messages[messages["template"].isin(rules.limits.update_message_templates)]
    first = asks.groupby("event_id")["send_at"].min()
    return (first + pd.Timedelta(hours=rules.limits.update_plausible_after_hours)).astype(UTC)


def message_templates(decisions: pd.DataFrame, config: BaselineConfig) -> np.ndarray:
    """Update request for card problems and for declines that cannot be retried as is,
    payment link otherwise (the customer can pay, or authenticate, on the hosted page)."""
    category = decisions["category"].to_numpy()
    retryable = decisions["retryable"].to_numpy()
    card_problem = np.isin(category, config.card_problem_categories)
    needs_new_method = (retryable == "no") | (
        (retryable == "after_update") & (category != "authentication_required")
    )
    return np.where(
        card_problem | needs_new_method, config.update_template, config.payment_link_template
    )


def rules_baseline(
    events: pd.DataFrame,
    previous_attempts: pd.DataFrame | None,
    rules: RetryRules,
    config: BaselineConfig | None = None,
    decisions: pd.DataFrame | None = None,
) -> Schedules:
    """Hand-written rules by decline reason, clipped like every schedule.

    ``decisions`` (``rules.decide_many`` of these events, same order) may be passed when
    the caller already has them.
    """
    config = config or BaselineConfig()
    ev = _frame(events)
    decisions = _decisions(rules, ev, previous_attempts, decisions)

    sends = _slots(ev, config.rules_message_days).merge(ev[["event_id", "failed_at", "timezone"]])
    sends["send_at"] = same_local_clock(sends["failed_at"], sends["timezone"], sends["days"])
    channels = np.asarray(config.rules_message_channels, dtype=object)
    sends["channel"] = channels[sends["slot"].to_numpy() % len(channels)]
    template = pd.Series(message_templates(decisions, config), index=ev["event_id"])
    sends["template"] = sends["event_id"].map(template)
    messages = fit_messages(ev, sends, config)

    category = decisions["category"].to_numpy()
    funds = ev.loc[category == "insufficient_funds", ["event_id", "timezone", "failed_at", "window_days"]]
    spaced = ev[(category != "insufficient_funds") & ~decisions["needs_update_first"].to_numpy()]
    tries = _slots(spaced, config.soft_retry_days).merge(ev[["event_id", "failed_at", "timezone"]])
    tries["at"] = same_local_clock(tries["failed_at"], tries["timezone"], tries["days"])

    plausible = _update_plausible(messages, rules)
    updating = ev[decisions["needs_update_first"].to_numpy()]
    updating = updating[updating["event_id"].isin(plausible.index)]
    after = _slots(updating, config.update_retry_days)
    after["at"] = (
        after["event_id"].map(plausible) + pd.to_timedelta(after["days"], unit="D")
    ).astype(UTC)

    parts = [
        payday_mornings(funds, config),
        tries[["event_id", "at"]].assign(movable=True),
        after[["event_id", "at"]].assign(movable=True),
    ]
    parts = [p for p in parts if not p.empty]
    candidates = (
        pd.concat(parts, ignore_index=True) if parts else empty_retries().assign(movable=True)
    )
    retries = clip_retries(ev, candidates, decisions, rules, previous_attempts, plausible)
    return Schedules(retries, messages).sorted()


def no_action(
    events: pd.DataFrame,
    previous_attempts: pd.DataFrame | None = None,
    rules: RetryRules | None = None,
    config: BaselineConfig | None = None,
) -> Schedules:
    """No retry, no message."""
    return Schedules.empty()


def rules_reasons(
    ev: pd.DataFrame, decisions: pd.DataFrame, schedules: Schedules, config: BaselineConfig
) -> list[list[str]]:
    """Plain-words reasons for :func:`rules_baseline` schedules, one list per event."""
    category = decisions["category"].astype(str).str.replace("_", " ")
    retryable = decisions["retryable"].to_numpy()
    n_retries = ev["event_id"].map(schedules.retries.groupby("event_id").size()).fillna(0)
    first = np.select(
        [
            retryable == "no",
            decisions["needs_update_first"].to_numpy(),
            (decisions["category"] == "insufficient_funds").to_numpy() & (n_retries > 0).to_numpy(),
            n_retries.to_numpy() > 0,
        ],
        [
            category + ": this decline must not be retried; the customer is asked for a "
            "new payment method",
            category + ": the payment method needs an update first; retries only once an "
            "update is plausible",
            category + ": retries placed the morning after common paydays "
            "(1st, 15th, last business day, Fridays)",
            category + ": retries spaced out over the dunning window",
        ],
        default=category + ": no retry allowed within the constraints; messages only",
    )
    sms_blocked = ev["allow_sms"].to_numpy() & ~ev["sms_opt_in"].to_numpy()
    quiet = (
        f"messages outside the customer's quiet hours "
        f"({config.quiet_start_hour:02d}:00-{config.quiet_end_hour:02d}:00 local)"
    )
    reasons = []
    for text, blocked, rule in zip(first, sms_blocked, decisions["explanation"], strict=True):
        extra = ["no SMS: the customer has not opted in"] if blocked else []
        reasons.append([str(text), quiet, *extra, f"rule: {rule}"])
    return reasons
