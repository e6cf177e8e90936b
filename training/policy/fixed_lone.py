"""The fixed schedule of a lone request on Python scalars.

:func:`training.policy.baselines.fixed_schedule_columns` lays its candidates out as
arrays (events x slots) and filters them with a few dozen numpy masks and sorts; for one
event those are arrays of three to six elements, where numpy's per-call overhead is the
whole cost (1.33 M instructions a lone decision). :func:`lone_fixed_columns` takes the
same steps on Python integers: the local-time conversions stay the vectorised helpers of
:mod:`training.core.localtime` (one call each, on the same instants), the masks, sorts,
spacing and caps become a few list operations. The same schedule to the bit
(``tests/policy/test_fixed_lone.py`` checks it against the general path).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from training.config.baselines import BaselineConfig
from training.config.quiet_hours import QuietHours
from training.core.columnar import Table, column_array, column_values
from training.core.localtime import (
    DAY_NS,
    HOUR_NS,
    NAT,
    defer_quiet_ns,
    local_to_utc_ns,
    to_ns,
    utc_offsets,
)
from training.declines.rules import RetryRules

ScheduleColumns = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]
"""A schedule as columns: retries (event_id, at) and messages (event_id, send_at, channel,
template), times as int64 ns, rows sorted by event id then time."""


@lru_cache(maxsize=256)
def day_shifts(days: tuple[float, ...]) -> np.ndarray:
    """Nanoseconds of each number of days (the configured slots: converted once)."""
    return pd.to_timedelta(np.array(days, dtype=float), unit="D").as_unit("ns").asi8


@lru_cache(maxsize=256)
def _shift_list(days: tuple[float, ...]) -> tuple[int, ...]:
    return tuple(day_shifts(days).tolist())


def _first(table: Table, name: str, dtype: Any = None) -> Any:
    return column_array(table, name, dtype)[0]


def _first_ns(table: Table, name: str) -> int:
    return int(to_ns(column_values(table, name))[0])


def lone_fixed_columns(
    events: Table,
    decisions: Table,
    rules: RetryRules,
    config: BaselineConfig,
    quiet_hours: QuietHours,
) -> ScheduleColumns | None:
    """:func:`~training.policy.baselines.fixed_schedule_columns` of one event (``events``
    of one row, ``decisions`` the rules engine's for it); ``None`` where the general path
    must answer (a missing time zone, which it reports, or a missing failure time)."""
    zone = _first(events, "timezone", object)
    if not isinstance(zone, str):
        return None
    failed = _first_ns(events, "failed_at")
    if failed == NAT:
        return None
    window_end = failed + int(_first(events, "window_days", np.int64)) * DAY_NS
    message_shifts = _shift_list(tuple(config.fixed_message_days))
    retry_shifts = _shift_list(tuple(config.fixed_retry_days))
    local_failed = failed + int(utc_offsets(np.array([failed]), zone)[0])
    shifted = [local_failed + s for s in (*message_shifts, *retry_shifts)]
    times = local_to_utc_ns(np.array(shifted, dtype=np.int64), zone).tolist() if shifted else []
    n_m = len(message_shifts)
    channel = _channel(events, config.fixed_message_channel)
    send = _fit_messages(
        times[:n_m] if channel else [],
        zone,
        quiet_hours,
        failed,
        window_end,
        int(_first(events, "max_messages", np.int64)),
    )
    limits = rules.limits
    plausible = NAT
    if send and config.fixed_message_template in limits.update_message_templates:
        plausible = send[0] + int(limits.update_plausible_after_hours * HOUR_NS)
    at = _clip_retries(events, decisions, rules, times[n_m:], plausible, failed, window_end)
    event_id = _first(events, "event_id", object)
    return {"event_id": np.full(len(at), event_id, dtype=object), "at": _ns(at)}, {
        "event_id": np.full(len(send), event_id, dtype=object),
        "send_at": _ns(send),
        "channel": np.full(len(send), channel, dtype=object),
        "template": np.full(len(send), config.fixed_message_template, dtype=object),
    }


def _ns(times: list[int]) -> np.ndarray:
    return np.array(times, dtype=np.int64)


def _channel(events: Table, wanted: str) -> str:
    """The channel the event allows ("": none), the wanted one first, then the other."""
    email = bool(_first(events, "allow_email", bool))
    sms = bool(_first(events, "allow_sms", bool) & _first(events, "sms_opt_in", bool))
    if wanted == "sms":
        return "sms" if sms else "email" if email else ""
    return "email" if email else "sms" if sms else ""


def _fit_messages(
    times: list[int],
    zone: str,
    quiet_hours: QuietHours,
    failed: int,
    window_end: int,
    max_messages: int,
) -> list[int]:
    """The messages' times out of quiet hours, inside the window, sorted and distinct,
    the first ``max_messages``."""
    if not times:
        return []
    moved = defer_quiet_ns(
        np.array(times, dtype=np.int64), zone, quiet_hours.start_hour, quiet_hours.end_hour
    ).tolist()
    kept = _distinct(sorted(t for t in moved if failed <= t <= window_end))
    return kept[: max(max_messages, 0)]


def _distinct(times: list[int]) -> list[int]:
    """Sorted ``times`` without repeats."""
    return [t for k, t in enumerate(times) if k == 0 or t != times[k - 1]]


def _clip_retries(
    events: Table,
    decisions: Table,
    rules: RetryRules,
    times: list[int],
    plausible: int,
    failed: int,
    window_end: int,
) -> list[int]:
    """The allowed retries among ``times``, as the general path's ``_clip_retries`` with
    every retry movable: no earlier than the rules allow, spaced, inside the window and
    the scheme's deadline, at most the limit."""
    limit = min(
        int(_first(decisions, "max_additional_retries", np.int64)),
        int(_first(events, "max_retries", np.int64)),
    )
    if not times or not (_first(decisions, "retryable", object) != "no") or limit <= 0:
        return []
    needs_update = bool(_first(decisions, "needs_update_first", bool))
    if not (bool(_first(decisions, "allowed", bool)) or (needs_update and plausible != NAT)):
        return []
    lower = max(_first_ns(decisions, "not_before"), plausible if needs_update else NAT)
    at = _distinct(sorted(max(t, lower) for t in times))
    # spacing: at_k >= at_{k-1} + s  <=>  at_k' = k*s + max_j<=k(at_j - j*s)
    spacing = int(rules.limits.min_spacing_hours * HOUR_NS)
    spaced, top = [], NAT
    for k, t in enumerate(at):
        top = max(top, t - k * spacing)
        spaced.append(top + k * spacing)
    deadline = _first_ns(decisions, "retry_deadline")  # NaT: no scheme window
    end = window_end if deadline == NAT else min(window_end, deadline)
    return [t for t in spaced if failed < t <= end][:limit]
