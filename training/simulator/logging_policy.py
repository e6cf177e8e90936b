"""The simulated billing team's own dunning: a legacy fixed schedule plus exploration.

Per invoice the team draws one retry plan and one message plan, independently: the
legacy plan with probability ``1 - explore_rate`` and otherwise one plan uniformly from
the menu (the legacy plan included). With ``explore_mode="random_hours"`` there is no
menu: every invoice gets the legacy plans, and each planned retry and message is, with
probability ``explore_rate``, delayed by a whole number of hours drawn uniformly from
0 to ``explore_max_delay_hours``; its ``propensity`` is then the probability of that very
time, per decision. Every logged retry carries its plan's probability
as ``propensity``, every logged message its message plan's. Plans are offsets in hours
from the failed charge, as most billing systems configure them. The team's system sends
SMS only with opt-in (email otherwise) and holds SMS back during local quiet hours;
it sends email at the planned time, day or night.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from training.simulator.localtime import hour_of_day, naive_utc, to_local, to_utc

Message = tuple[float, str, str]  # (offset hours, template, channel)


class LoggingPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    explore_rate: float = Field(0.4, gt=0, le=1)
    explore_mode: Literal["menu", "random_hours"] = "menu"
    explore_max_delay_hours: int = Field(47, ge=1)
    retry_plans: dict[str, tuple[float, ...]] = {
        "legacy_3_5_7": (72, 120, 168),
        "early": (24, 72, 144),
        "offset_6h": (30, 102, 174),
        "half_day": (12, 60, 132),
        "late": (96, 168, 264),
        "dawn": (18, 90, 210),
        "four_spread": (48, 120, 216, 312),
        "four_quick": (6, 54, 126, 246),
    }
    message_plans: dict[str, tuple[Message, ...]] = {
        "legacy_reminders": (
            (0, "friendly_reminder", "email"),
            (72, "friendly_reminder", "email"),
            (168, "friendly_reminder", "email"),
        ),
        "links": (
            (1, "payment_link", "email"),
            (49, "payment_link", "email"),
            (121, "final_notice", "email"),
        ),
        "update_first": (
            (0, "update_payment_method", "email"),
            (26, "update_payment_method", "sms"),
            (98, "payment_link", "email"),
        ),
        "sms_link": (
            (3, "payment_link", "sms"),
            (75, "friendly_reminder", "email"),
            (200, "final_notice", "sms"),
        ),
        "plan_offer": (
            (2, "friendly_reminder", "email"),
            (50, "payment_plan_offer", "email"),
            (170, "final_notice", "email"),
        ),
        "evening": (
            (10, "payment_link", "email"),
            (82, "update_payment_method", "email"),
            (250, "final_notice", "email"),
        ),
        "plan_first": (
            (4, "payment_plan_offer", "email"),
            (28, "payment_link", "email"),
            (100, "payment_plan_offer", "sms"),
        ),
        "quick_trio": (
            (6, "payment_link", "sms"),
            (30, "update_payment_method", "email"),
            (54, "payment_plan_offer", "email"),
        ),
        "late_push": (
            (20, "friendly_reminder", "email"),
            (140, "final_notice", "email"),
            (230, "payment_link", "email"),
        ),
        "update_sms": (
            (5, "update_payment_method", "sms"),
            (53, "payment_link", "email"),
            (149, "final_notice", "email"),
        ),
    }
    legacy_retry_plan: str = "legacy_3_5_7"
    legacy_message_plan: str = "legacy_reminders"

    def plan_probability(self, plans: dict, legacy: str) -> dict[str, float]:
        if self.explore_mode == "random_hours":  # the plan is fixed; times are explored
            return {name: float(name == legacy) for name in plans}
        uniform = self.explore_rate / len(plans)
        return {name: uniform + (1.0 - self.explore_rate) * (name == legacy) for name in plans}


def draw_plans(
    n: int, policy: LoggingPolicy, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One retry plan and one message plan name per invoice."""
    retry = _draw(n, policy.plan_probability(policy.retry_plans, policy.legacy_retry_plan), rng)
    message = _draw(
        n, policy.plan_probability(policy.message_plans, policy.legacy_message_plan), rng
    )
    return retry, message


def _draw(n: int, probabilities: dict[str, float], rng: np.random.Generator) -> np.ndarray:
    names = np.array(list(probabilities), dtype=object)
    return rng.choice(names, size=n, p=np.array(list(probabilities.values())))


def explore_hours(
    frame: pd.DataFrame, policy: LoggingPolicy, rng: np.random.Generator | None
) -> pd.DataFrame:
    """``random_hours`` exploration: delay each planned event, with probability
    ``explore_rate``, by 0..``explore_max_delay_hours`` whole hours; the propensity of the
    time it ends up at is per decision. A no-op for the menu policy."""
    if policy.explore_mode != "random_hours" or frame.empty:
        return frame
    if rng is None:
        raise ValueError("random_hours exploration needs a random generator")
    n, choices = len(frame), policy.explore_max_delay_hours + 1
    explore = rng.random(n) < policy.explore_rate
    delay = np.where(explore, rng.integers(0, choices, n), 0)
    uniform = policy.explore_rate / choices
    out = frame.copy()
    out["t"] = out["t"] + pd.to_timedelta(delay, unit="h")
    out["propensity"] = np.where(delay == 0, 1.0 - policy.explore_rate + uniform, uniform)
    return out


def planned_retries(
    invoices: pd.DataFrame,
    plan: np.ndarray,
    policy: LoggingPolicy,
    window_hours: float,
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Long frame invoice_id, t, propensity of every retry the plans schedule."""
    probability = policy.plan_probability(policy.retry_plans, policy.legacy_retry_plan)
    rows = []
    for name, offsets in policy.retry_plans.items():
        idx = np.flatnonzero(plan == name)
        for offset in offsets:
            if offset >= window_hours:
                continue
            rows.append(
                pd.DataFrame(
                    {
                        "invoice_id": invoices["invoice_id"].to_numpy()[idx],
                        "t": naive_utc(invoices["due_at"])[idx]
                        + np.timedelta64(int(offset * 3600), "s"),
                        "propensity": probability[name],
                    }
                )
            )
    frame = pd.concat(rows, ignore_index=True)
    frame["t"] = pd.to_datetime(frame["t"], utc=True)
    frame = explore_hours(frame, policy, rng)
    end = frame["invoice_id"].map(invoices.set_index("invoice_id")["due_at"]) + pd.Timedelta(
        hours=window_hours
    )
    return frame[frame["t"] < end].reset_index(drop=True)


def planned_messages(
    invoices: pd.DataFrame,
    timezone: pd.Series,
    sms_opt_in: pd.Series,
    plan: np.ndarray,
    policy: LoggingPolicy,
    window_hours: float,
    quiet: tuple[int, int],
    rng: np.random.Generator | None = None,
) -> pd.DataFrame:
    """Long frame invoice_id, t, template, channel, propensity of the planned messages."""
    probability = policy.plan_probability(policy.message_plans, policy.legacy_message_plan)
    rows = []
    for name, messages in policy.message_plans.items():
        idx = np.flatnonzero(plan == name)
        for offset, template, channel in messages:
            if offset >= window_hours:
                continue
            opted_in = sms_opt_in.to_numpy()[idx]
            rows.append(
                pd.DataFrame(
                    {
                        "invoice_id": invoices["invoice_id"].to_numpy()[idx],
                        "t": naive_utc(invoices["due_at"])[idx]
                        + np.timedelta64(int(offset * 3600), "s"),
                        "template": template,
                        "channel": np.where((channel == "sms") & opted_in, "sms", "email"),
                        "timezone": timezone.to_numpy()[idx],
                        "propensity": probability[name],
                    }
                )
            )
    frame = pd.concat(rows, ignore_index=True)
    frame["t"] = pd.to_datetime(frame["t"], utc=True)
    frame = explore_hours(frame, policy, rng)
    sms = (frame["channel"] == "sms").to_numpy()
    t = frame["t"].to_numpy()
    t[sms] = defer_quiet_hours(t[sms], frame["timezone"].to_numpy()[sms], quiet)
    frame["t"] = pd.to_datetime(t, utc=True)
    end = frame["invoice_id"].map(invoices.set_index("invoice_id")["due_at"]) + pd.Timedelta(
        hours=window_hours
    )
    frame = frame[frame["t"] < end]
    return frame.drop(columns="timezone").reset_index(drop=True)


def defer_quiet_hours(utc: np.ndarray, tz: np.ndarray, quiet: tuple[int, int]) -> np.ndarray:
    """Move times inside local quiet hours (start..end) to the next end hour."""
    start, end = quiet
    local = to_local(utc, tz)
    hour = hour_of_day(local)
    inside = (hour >= start) | (hour < end)
    day = local.astype("datetime64[D]")
    next_day = np.where(hour >= start, day + 1, day)
    target = next_day.astype("datetime64[ns]") + np.timedelta64(end, "h")
    moved = to_utc(target, tz)
    return np.where(inside, moved, naive_utc(utc))


def schedules_given_first_retry(
    invoices: pd.DataFrame,
    timezone: pd.Series,
    sms_opt_in: pd.Series,
    first_retry_hours: np.ndarray,
    policy: LoggingPolicy,
    window_hours: float,
    quiet: tuple[int, int],
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The team's planned retries and messages, drawn given that the first retry comes
    ``first_retry_hours`` after the failure (one per row of ``invoices``, whose
    ``invoice_id`` may repeat under distinct keys: pass the key as ``invoice_id``).

    Menu logging: the retry plan is drawn among the plans that start at that offset, by
    their probability (a ``ValueError`` when none does); ``random_hours``: the legacy
    plan with its exploration, the first retry moved to that offset. Messages are drawn
    as the team draws them, independently of the retries.
    """
    n = len(invoices)
    retry_plan, message_plan = draw_plans(n, policy, rng)
    hours = np.asarray(first_retry_hours, dtype=float)
    if policy.explore_mode == "menu":
        probability = policy.plan_probability(policy.retry_plans, policy.legacy_retry_plan)
        first = {name: offsets[0] for name, offsets in policy.retry_plans.items()}
        for offset in np.unique(hours):
            names = [name for name, start in first.items() if start == offset]
            if not names:
                raise ValueError(f"no retry plan of the logging policy starts at {offset} h")
            p = np.array([probability[name] for name in names])
            rows = np.flatnonzero(hours == offset)
            retry_plan[rows] = rng.choice(np.array(names, dtype=object), len(rows), p=p / p.sum())
    else:
        retry_plan[:] = policy.legacy_retry_plan
    retries = planned_retries(invoices, retry_plan, policy, window_hours, rng)
    due = retries["invoice_id"].map(invoices.set_index("invoice_id")["due_at"])
    wanted = due + pd.to_timedelta(
        retries["invoice_id"].map(pd.Series(hours, index=invoices["invoice_id"].to_numpy())),
        unit="h",
    )
    is_first = ~retries.sort_values("t", kind="stable")["invoice_id"].duplicated()
    retries.loc[is_first[is_first].index, "t"] = wanted[is_first[is_first].index]
    messages = planned_messages(
        invoices, timezone, sms_opt_in, message_plan, policy, window_hours, quiet, rng
    )
    return retries.sort_values(["invoice_id", "t"], kind="stable"), messages
