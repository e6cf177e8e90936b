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
arrays (events x slots) and filtered with numpy masks and sorts, never row by row; local
times are converted once per time zone, not per row.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from training.config.baselines import BaselineConfig
from training.config.quiet_hours import QuietHours
from training.core.arrays import cummax_in_group, rank_in_group
from training.core.columnar import Table, column_array, column_flags, column_values
from training.core.frames import Schedules
from training.core.localtime import (
    DAY_NS,
    HOUR_NS,
    LATEST_NS,
    NAT,
    defer_quiet_ns,
    from_ns,
    local_to_utc_ns,
    to_ns,
    utc_offsets,
)
from training.declines.rules import RetryRules
from training.policy.fixed_lone import ScheduleColumns, day_shifts, lone_fixed_columns

# -- building blocks -------------------------------------------------------------------
# Internally an event is its position in ``events`` and a time is int64 nanoseconds since
# the epoch (UTC, or naive local wall-clock where named ``local``; NaT is the smallest
# int64, "no bound"): plain numpy takes and comparisons instead of merges and Series keep
# a one-event call cheap for the API. Schedules become frames only at the very end.

NS_PER_HOUR = HOUR_NS
NS_PER_DAY = DAY_NS


class _Events:
    """Column arrays of the events frame, by position."""

    def __init__(self, events: Table) -> None:
        self.frame = events
        self.n = len(events)
        self.event_id = column_array(events, "event_id", object)
        self.timezone = column_array(events, "timezone", object)
        missing = pd.isna(self.timezone)
        if missing.any():
            raise ValueError(f"timezone: missing for event_id {self.event_id[missing][0]!r}")
        self.failed = to_ns(column_values(events, "failed_at")).copy()
        self.window_days = column_array(events, "window_days", np.int64)
        self.window_end = self.failed + self.window_days * NS_PER_DAY
        self.max_retries = column_array(events, "max_retries", np.int64)
        self.max_messages = column_array(events, "max_messages", np.int64)
        self.email_ok = column_array(events, "allow_email", bool)
        self.sms_ok = column_array(events, "allow_sms", bool) & column_array(
            events, "sms_opt_in", bool
        )
        self.method = column_array(events, "payment_method", object)
        self.card_updated = (
            column_flags(events, "card_updated")
            if "card_updated" in events
            else np.zeros(self.n, bool)
        )
        self._local_failed: np.ndarray | None = None
        zones = self.timezone  # one name when every event has the same (a lone request)
        same = self.n > 0 and isinstance(zones[0], str) and (zones == zones[0]).all()
        self.one_zone: str | None = str(zones[0]) if same else None

    @property
    def local_failed(self) -> np.ndarray:
        """Local wall-clock time of each failure (converted once, shared by all slots)."""
        if self._local_failed is None:
            zones = self.timezone if self.one_zone is None else self.one_zone
            self._local_failed = self.failed + utc_offsets(self.failed, zones)
        return self._local_failed

    def zones(self, pos: np.ndarray) -> np.ndarray | str:
        """The time zones of the events at ``pos`` (one name when all events share it)."""
        zone = self.one_zone
        return self.timezone[pos] if zone is None else zone

    def positions(self, event_ids: pd.Series | np.ndarray) -> np.ndarray:
        """Position of each id among the events (-1: none); one event without an index."""
        if self.n == 1:
            return np.where(np.asarray(event_ids, dtype=object) == self.event_id[0], 0, -1)
        index = pd.Index(self.event_id)
        return index.get_indexer(pd.Index(event_ids))

    def sort_rank(self) -> np.ndarray:
        """Rank of each event's ``event_id`` in sorted order (schedules sort by it)."""
        if self.n <= 1:
            return np.zeros(self.n, dtype=np.intp)
        return pd.factorize(self.event_id, sort=True)[0]


def _slots(pos: np.ndarray, days: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (event position, slot, offset in days) pair, events outer."""
    k = len(days)
    return (
        np.repeat(pos, k),
        np.tile(np.arange(k), len(pos)),
        np.tile(np.asarray(days, dtype=float), len(pos)),
    )


def _at_same_clock(
    ev: _Events, pos: np.ndarray, slot: np.ndarray, days: tuple[float, ...]
) -> np.ndarray:
    """The failure moved by ``days[slot]`` keeping the local wall-clock time (DST-safe)."""
    if len(pos) == 0:
        return np.empty(0, dtype="int64")
    shift = day_shifts(tuple(days))[slot]
    return local_to_utc_ns(ev.local_failed[pos] + shift, ev.zones(pos))


def _same_clock_slots(ev: _Events, *days: tuple[float, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per tuple of ``days``: every (event position, the failure moved by each of the
    days keeping the local wall-clock time), events outer, as :func:`_at_same_clock`
    gives them; every tuple's times converted to UTC in one call (the conversion is
    element-wise: the same instants)."""
    every = np.arange(ev.n)
    slots = [_slots(every, d)[:2] for d in days]
    pos = np.concatenate([p for p, _ in slots])
    if len(pos) == 0:
        return [(p, np.empty(0, dtype="int64")) for p, _ in slots]
    shift = np.concatenate([day_shifts(tuple(d))[s] for (_, s), d in zip(slots, days, strict=True)])
    at = local_to_utc_ns(ev.local_failed[pos] + shift, ev.zones(pos))
    out, start = [], 0
    for p, _ in slots:
        out.append((p, at[start : start + len(p)]))
        start += len(p)
    return out


def _distinct(pos: np.ndarray, at: np.ndarray) -> np.ndarray:
    """False where a (sorted) row repeats the previous row's event and time."""
    if len(pos) == 0:
        return np.zeros(0, dtype=bool)
    return np.concatenate([[True], (pos[1:] != pos[:-1]) | (at[1:] != at[:-1])])


def _order(pos: np.ndarray, at: np.ndarray) -> np.ndarray:
    return np.lexsort((at, pos))


def _clip_retries(
    ev: _Events,
    decisions: Table,
    rules: RetryRules,
    pos: np.ndarray,
    at: np.ndarray,
    movable: np.ndarray,
    plausible: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Allowed retries as (event position, time), sorted by position then time."""
    lim = rules.limits
    limit = np.minimum(column_array(decisions, "max_additional_retries", np.int64), ev.max_retries)
    is_open = (column_array(decisions, "retryable", object) != "no") & (limit > 0)
    needs_update = column_array(decisions, "needs_update_first", bool)
    allowed = column_array(decisions, "allowed", bool)
    not_before = to_ns(column_values(decisions, "not_before"))
    has_plausible = plausible != NAT

    usable = is_open[pos] & (allowed[pos] | (needs_update[pos] & has_plausible[pos]))
    pos, at, movable = pos[usable], at[usable], movable[usable]
    lower = np.maximum(not_before[pos], np.where(needs_update[pos], plausible[pos], NAT))
    early = at < lower
    keep = ~early | movable
    pos, at, lower = pos[keep], at[keep], lower[keep]
    at = np.maximum(at, lower)

    order = _order(pos, at)
    pos, at = pos[order], at[order]
    distinct = _distinct(pos, at)
    pos, at = pos[distinct], at[distinct]
    # spacing: at_k >= at_{k-1} + s  <=>  at_k' = k*s + cummax_j<=k(at_j - j*s), per event
    spacing = int(lim.min_spacing_hours * NS_PER_HOUR)
    k = rank_in_group(pos)
    at = cummax_in_group(at - k * spacing, pos) + k * spacing

    deadline = to_ns(column_values(decisions, "retry_deadline"))  # NaT: no scheme window
    end = np.where(deadline == NAT, ev.window_end, np.minimum(ev.window_end, deadline))
    inside = (at > ev.failed[pos]) & (at <= end[pos])
    pos, at = pos[inside], at[inside]
    within = rank_in_group(pos) < limit[pos]
    return pos[within], at[within]


class _Messages(NamedTuple):
    """Messages as arrays (event position, send time, channel, template), sorted."""

    pos: np.ndarray
    send_at: np.ndarray
    channel: np.ndarray
    template: np.ndarray


def _fit_messages(
    ev: _Events,
    quiet_hours: QuietHours,
    pos: np.ndarray,
    send_at: np.ndarray,
    channel: np.ndarray,
    template: np.ndarray,
) -> _Messages:
    wants_sms = channel == "sms"
    email_ok, sms_ok = ev.email_ok[pos], ev.sms_ok[pos]
    channel = np.where(
        wants_sms,
        np.where(sms_ok, "sms", np.where(email_ok, "email", "")),
        np.where(email_ok, "email", np.where(sms_ok, "sms", "")),
    )
    keep = channel != ""
    pos, send_at, channel, template = pos[keep], send_at[keep], channel[keep], template[keep]
    send_at = defer_quiet_ns(send_at, ev.zones(pos), quiet_hours.start_hour, quiet_hours.end_hour)
    inside = (send_at >= ev.failed[pos]) & (send_at <= ev.window_end[pos])
    pos, send_at, channel, template = (
        pos[inside],
        send_at[inside],
        channel[inside],
        template[inside],
    )
    order = _order(pos, send_at)
    pos, send_at, channel, template = pos[order], send_at[order], channel[order], template[order]
    distinct = _distinct(pos, send_at)
    within = distinct.copy()
    within[distinct] = rank_in_group(pos[distinct]) < ev.max_messages[pos[distinct]]
    return _Messages(pos[within], send_at[within], channel[within].astype(object), template[within])


def _schedule_columns(
    ev: _Events, retry_pos: np.ndarray, retry_at: np.ndarray, messages: _Messages
) -> ScheduleColumns:
    rank = ev.sort_rank()
    r = np.lexsort((retry_at, rank[retry_pos]))
    m = np.lexsort((messages.send_at, rank[messages.pos]))
    retries = {"event_id": ev.event_id[retry_pos[r]], "at": retry_at[r]}
    return retries, {
        "event_id": ev.event_id[messages.pos[m]],
        "send_at": messages.send_at[m],
        "channel": messages.channel[m],
        "template": messages.template[m].astype(object),
    }


def schedule_frames(columns: ScheduleColumns) -> Schedules:
    """The frames of a schedule given as columns (sorted as :meth:`Schedules.sorted`)."""
    retries, messages = columns
    return Schedules(
        pd.DataFrame({**retries, "at": from_ns(retries["at"])}, copy=False),
        pd.DataFrame({**messages, "send_at": from_ns(messages["send_at"])}, copy=False),
    )


def _payday_mornings(
    ev: _Events, pos: np.ndarray, config: BaselineConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate retries at ``payday_retry_hour`` local on each day after a payday (1st,
    15th, last business day of the month, Fridays), inside the window.

    Calendar arithmetic runs on numpy ``datetime64[D]`` days (1970-01-01 was a Thursday).
    """
    if len(pos) == 0:
        return pos, np.empty(0, dtype="int64")
    max_days = int(ev.window_days[pos].max())
    failed_day = ev.local_failed[pos].view("M8[ns]").astype("M8[D]")
    pos, slot, days = _slots(pos, tuple(range(1, max_days + 1)))
    inside = days <= ev.window_days[pos]
    pos, local_day = pos[inside], np.repeat(failed_day, max_days)[inside] + days[inside].astype(int)
    payday = local_day - np.timedelta64(1, "D")
    month = payday.astype("M8[M]")
    day_of_month = (payday - month.astype("M8[D]")).astype(int) + 1
    weekday = (payday.astype(int) + 3) % 7  # Monday=0
    month_end = (month + 1).astype("M8[D]") - np.timedelta64(1, "D")
    end_weekday = (month_end.astype(int) + 3) % 7
    last_business = month_end - np.maximum(end_weekday - 4, 0).astype("m8[D]")
    is_payday = np.isin(day_of_month, config.payday_month_days) | np.isin(
        weekday, config.payday_weekdays
    )
    if config.payday_last_business_day:
        is_payday |= payday == last_business
    pos, local_day = pos[is_payday], local_day[is_payday]
    local = local_day.astype("M8[ns]").view("int64") + config.payday_retry_hour * NS_PER_HOUR
    return pos, local_to_utc_ns(local, ev.zones(pos))


def _update_plausible(ev: _Events, messages: _Messages, rules: RetryRules) -> np.ndarray:
    """Per event: when an update is plausible (first update request + the rules' delay)."""
    plausible = np.full(ev.n, LATEST_NS)
    asks = np.isin(messages.template, rules.limits.update_message_templates)
    np.minimum.at(plausible, messages.pos[asks], messages.send_at[asks])
    delay = int(rules.limits.update_plausible_after_hours * NS_PER_HOUR)
    return np.where(plausible == LATEST_NS, NAT, plausible + delay)


def _decisions(
    rules: RetryRules, ev: _Events, previous: pd.DataFrame | None, decisions: Table | None
) -> pd.DataFrame:
    """The rules' decisions, by event position (only their column arrays are read)."""
    if decisions is None:
        decisions = rules.decide_table(ev.frame, previous)  # by position, as read
    return decisions


# -- the baselines -----------------------------------------------------------------------


def fixed_schedule(
    events: Table,
    previous_attempts: pd.DataFrame | None,
    rules: RetryRules,
    config: BaselineConfig | None = None,
    decisions: Table | None = None,
    *,
    quiet_hours: QuietHours,
) -> Schedules:
    """The configured fixed schedule, clipped by the rules and the request's constraints.

    ``decisions`` (``rules.decide_many`` of these events, same order) may be passed when
    the caller already has them.
    """
    columns = fixed_schedule_columns(
        events, previous_attempts, rules, config, decisions, quiet_hours=quiet_hours
    )
    return schedule_frames(columns)


def fixed_schedule_columns(
    events: Table,
    previous_attempts: pd.DataFrame | None,
    rules: RetryRules,
    config: BaselineConfig | None = None,
    decisions: Table | None = None,
    *,
    quiet_hours: QuietHours,
) -> ScheduleColumns:
    """:func:`fixed_schedule` as columns (what the decision scores it from); a lone
    request's on Python scalars (:mod:`training.policy.fixed_lone`: the same schedule)."""
    config = config or BaselineConfig()
    if len(events) == 1:
        if decisions is None:
            decisions = rules.decide_table(events, previous_attempts)
        lone = lone_fixed_columns(events, decisions, rules, config, quiet_hours)
        if lone is not None:
            return lone
    ev = _Events(events)
    decisions = _decisions(rules, ev, previous_attempts, decisions)
    (pos, send_at), (retry_pos, retry_at) = _same_clock_slots(
        ev, config.fixed_message_days, config.fixed_retry_days
    )
    messages = _fit_messages(
        ev,
        quiet_hours,
        pos,
        send_at,
        np.full(len(pos), config.fixed_message_channel, dtype=object),
        np.full(len(pos), config.fixed_message_template, dtype=object),
    )
    retry_pos, retry_at = _clip_retries(
        ev,
        decisions,
        rules,
        retry_pos,
        retry_at,
        np.ones(len(retry_pos), dtype=bool),
        _update_plausible(ev, messages, rules),
    )
    return _schedule_columns(ev, retry_pos, retry_at, messages)


def message_templates(
    decisions: Table,
    config: BaselineConfig,
    update_template: str,
    card_updated: np.ndarray | None = None,
) -> np.ndarray:
    """Update request for card problems and for declines that cannot be retried as is,
    payment link otherwise (the customer can pay, or authenticate, on the hosted page).

    ``update_template``: the update request the rules send (the first of the retry rules'
    ``update_message_templates``, so the rules engine counts it as one).
    ``card_updated``: per event, the payment method was updated since the first attempt
    (``payment_method_updated_at``); the customer is then not asked to update it again
    for a card problem, but sent the payment link. A decline that must not be retried
    still asks for another payment method."""
    category = column_array(decisions, "category", object)
    retryable = column_array(decisions, "retryable", object)
    updated = np.zeros(len(category), dtype=bool) if card_updated is None else card_updated
    card_problem = np.isin(category, config.card_problem_categories) & ~updated
    needs_new_method = (retryable == "no") | (
        (retryable == "after_update") & (category != "authentication_required") & ~updated
    )
    return np.where(
        card_problem | needs_new_method, update_template, config.payment_link_template
    ).astype(object)


def rules_baseline(
    events: Table,
    previous_attempts: pd.DataFrame | None,
    rules: RetryRules,
    config: BaselineConfig | None = None,
    decisions: Table | None = None,
    *,
    quiet_hours: QuietHours,
) -> Schedules:
    """Hand-written rules by decline reason, clipped like every schedule.

    ``decisions`` (``rules.decide_many`` of these events, same order) may be passed when
    the caller already has them.
    """
    columns = rules_baseline_columns(
        events, previous_attempts, rules, config, decisions, quiet_hours=quiet_hours
    )
    return schedule_frames(columns)


def rules_baseline_columns(
    events: Table,
    previous_attempts: pd.DataFrame | None,
    rules: RetryRules,
    config: BaselineConfig | None = None,
    decisions: Table | None = None,
    *,
    quiet_hours: QuietHours,
) -> ScheduleColumns:
    """:func:`rules_baseline` as columns (what the fallback answers from)."""
    config = config or BaselineConfig()
    ev = _Events(events)
    decisions = _decisions(rules, ev, previous_attempts, decisions)
    every = np.arange(ev.n)

    pos, slot, _ = _slots(every, config.rules_message_days)
    channels = np.asarray(config.rules_message_channels, dtype=object)
    messages = _fit_messages(
        ev,
        quiet_hours,
        pos,
        _at_same_clock(ev, pos, slot, config.rules_message_days),
        channels[slot % len(channels)],
        message_templates(
            decisions, config, rules.limits.update_message_templates[0], ev.card_updated
        )[pos],
    )
    plausible = _update_plausible(ev, messages, rules)

    funds = column_array(decisions, "category", object) == "insufficient_funds"
    needs_update = column_array(decisions, "needs_update_first", bool)
    payday_pos, payday_at = _payday_mornings(ev, every[funds], config)
    soft_pos, soft_slot, _ = _slots(every[~funds & ~needs_update], config.soft_retry_days)
    soft_at = _at_same_clock(ev, soft_pos, soft_slot, config.soft_retry_days)
    upd_pos, _, upd_days = _slots(
        every[needs_update & (plausible != NAT)], config.update_retry_days
    )
    upd_at = plausible[upd_pos] + (upd_days * NS_PER_DAY).astype("int64")

    retry_pos, retry_at = _clip_retries(
        ev,
        decisions,
        rules,
        np.concatenate([payday_pos, soft_pos, upd_pos]),
        np.concatenate([payday_at, soft_at, upd_at]),
        np.concatenate(
            [np.zeros(len(payday_pos), bool), np.ones(len(soft_pos) + len(upd_pos), bool)]
        ),
        plausible,
    )
    return _schedule_columns(ev, retry_pos, retry_at, messages)


def no_action(
    events: Table,
    previous_attempts: pd.DataFrame | None = None,
    rules: RetryRules | None = None,
    config: BaselineConfig | None = None,
) -> Schedules:
    """No retry, no message."""
    return Schedules.empty()


def rules_reasons(
    ev: pd.DataFrame, decisions: Table, schedule: ScheduleColumns, quiet_hours: QuietHours
) -> list[list[str]]:
    """Plain-words reasons for :func:`rules_baseline` schedules (``schedule``: its
    columns, :func:`rules_baseline_columns`), one list per event."""
    # numpy, not pandas string methods and a group-by: a lone request pays each in full
    category_codes = column_array(decisions, "category", object).astype(str)
    labels, code = np.unique(category_codes, return_inverse=True)
    category = np.array([label.replace("_", " ") for label in labels], dtype=object)[code]
    retryable = column_array(decisions, "retryable", object)
    retried, counts = np.unique(schedule[0]["event_id"].astype(str), return_counts=True)
    ids = column_array(ev, "event_id", object).astype(str)
    n_retries = np.zeros(len(ids), dtype=np.int64)
    if len(retried):
        at = np.minimum(np.searchsorted(retried, ids), len(retried) - 1)
        n_retries = np.where(retried[at] == ids, counts[at], 0)
    first = np.select(
        [
            retryable == "no",
            column_array(decisions, "needs_update_first", bool),
            (labels[code] == "insufficient_funds") & (n_retries > 0),
            n_retries > 0,
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
    sms_blocked = column_array(ev, "allow_sms", bool) & ~column_array(ev, "sms_opt_in", bool)
    quiet = (
        f"messages outside the customer's quiet hours "
        f"({quiet_hours.start_hour:02d}:00-{quiet_hours.end_hour:02d}:00 local)"
    )
    explanation = column_array(decisions, "explanation", object).tolist()
    reasons = []
    for text, blocked, rule in zip(first.tolist(), sms_blocked.tolist(), explanation, strict=True):
        extra = ["no SMS: the customer has not opted in"] if blocked else []
        reasons.append([str(text), quiet, *extra, f"rule: {rule}"])
    return reasons
