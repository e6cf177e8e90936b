"""The world's true probabilities: will this retry succeed, will this customer respond.

All functions take a frame of *scheduled events* already joined with the invoice's and
customer's latent traits (see :func:`event_frame`) and return one probability per row.
Both the sampler that writes histories and the exact scorer that grades schedules call
these same functions, so what is logged and what is scored cannot disagree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit

from training.simulator.localtime import hour_of_day, naive_utc, to_local, weekday
from training.simulator.paycycles import days_since_payday
from training.simulator.vocabulary import MAC_RETRY_AFTER_HOURS
from training.simulator.world import CATEGORY_BEHAVIOUR, TEMPLATE_FIT, WorldConfig

HOUR_NS = 3_600_000_000_000


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return expit(x)


def _bump(hour: np.ndarray, peak: np.ndarray | float, width: float) -> np.ndarray:
    """Circular Gaussian bump over the 24-hour clock."""
    distance = np.abs((hour - peak + 12.0) % 24.0 - 12.0)
    return np.exp(-0.5 * (distance / width) ** 2)


def event_frame(schedule: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Join scheduled events with latent traits and add time and sequence features.

    ``schedule`` columns: key (one schedule), invoice_id, t (UTC datetime64), kind
    ("retry" or "message"), template, channel. Rows need not be sorted.
    ``truth`` is the per-invoice ground-truth frame (:class:`GroundTruth.invoices`).
    """
    frame = schedule.merge(truth, on="invoice_id", how="left", validate="many_to_one")
    if frame["due_at"].isna().any():
        missing = frame.loc[frame["due_at"].isna(), "invoice_id"].iloc[0]
        raise KeyError(f"invoice {missing!r} has no ground truth")
    frame = frame.sort_values(["key", "t", "kind"], kind="stable").reset_index(drop=True)
    t_ns = naive_utc(frame["t"]).astype(np.int64)
    due_ns = naive_utc(frame["due_at"]).astype(np.int64)
    local = to_local(frame["t"], frame["timezone"])
    frame["local_hour"] = hour_of_day(local)
    frame["local_weekday"] = weekday(local)
    frame["hours_since_failure"] = (t_ns - due_ns) / HOUR_NS
    frame["days_since_payday"] = days_since_payday(
        local, frame["pay_cycle"].to_numpy(), frame["pay_phase"].to_numpy()
    )
    is_retry = (frame["kind"] == "retry").to_numpy()
    is_message = ~is_retry
    frame["retries_before"] = _count_before(frame["key"].to_numpy(), is_retry)
    frame["messages_before"] = _count_before(frame["key"].to_numpy(), is_message)
    # last merchant attempt: the failed charge, or the previous scheduled retry
    last_retry_ns = _last_before(frame["key"].to_numpy(), np.where(is_retry, t_ns, -1))
    last_attempt_ns = np.maximum(last_retry_ns, due_ns)
    frame["hours_since_last_attempt"] = (t_ns - last_attempt_ns) / HOUR_NS
    return frame


def _count_before(keys: np.ndarray, flag: np.ndarray) -> np.ndarray:
    """How many earlier rows of the same key have ``flag`` (rows sorted by key, time)."""
    csum = np.cumsum(flag.astype(np.int64))
    starts = _group_starts(keys)
    base = np.repeat(
        csum[starts] - flag[starts].astype(np.int64), np.diff(np.r_[starts, len(keys)])
    )
    return csum - flag.astype(np.int64) - base


def _last_before(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Running maximum of ``values`` over *earlier* rows of the same key (-1 if none)."""
    frame = pd.DataFrame({"k": keys, "v": values})
    shifted = frame.groupby("k", sort=False)["v"].shift(1, fill_value=-1)
    return shifted.groupby(frame["k"], sort=False).cummax().to_numpy()


def _group_starts(keys: np.ndarray) -> np.ndarray:
    change = np.ones(len(keys), dtype=bool)
    change[1:] = keys[1:] != keys[:-1]
    return np.flatnonzero(change)


def _funds_effect(frame: pd.DataFrame, world: WorldConfig) -> np.ndarray:
    r = world.retry
    since = frame["days_since_payday"].to_numpy()
    boost = r.payday_boost * np.exp(-np.nan_to_num(since, nan=0.0) / r.payday_decay_days)
    return np.where(np.isnan(since), r.irregular_funds, boost)


def _history_effect(frame: pd.DataFrame, loyal: float, repeat: float) -> np.ndarray:
    is_loyal = (frame["prior_failures_12m"].to_numpy() == 0) & (
        frame["tenure_years"].to_numpy() >= 3.0
    )
    is_repeat = frame["prior_failures_12m"].to_numpy() >= 2
    return loyal * is_loyal - repeat * is_repeat


def retry_success(frame: pd.DataFrame, world: WorldConfig) -> tuple[np.ndarray, np.ndarray]:
    """P(success) of each retry row, without and with an updated card."""
    r = world.retry
    reason = frame["reason"].to_numpy()
    mode = pd.Series(reason).map({k: v[1] for k, v in CATEGORY_BEHAVIOUR.items()}).to_numpy()
    base = pd.Series(reason).map(r.base).fillna(-9.0).to_numpy()
    hour = frame["local_hour"].to_numpy()
    logit = (
        base
        + r.morning_boost * _bump(hour, r.morning_peak_hour, 3.0)
        + r.evening_boost * _bump(hour, r.evening_peak_hour, 3.0)
        - r.night_penalty * (hour < 5.0)
        - r.decay_per_failed_retry * frame["retries_before"].to_numpy()
        - r.spacing_penalty
        * np.exp(-frame["hours_since_last_attempt"].to_numpy() / r.spacing_scale_hours)
        + _history_effect(frame, r.loyal_bonus, r.repeat_failer_penalty)
    )
    debit = frame["payment_method"].to_numpy() != "card"
    logit -= r.weekend_debit_penalty * (debit & (frame["local_weekday"].to_numpy() >= 5))
    clearing = np.isin(reason, list(r.clearing_reasons))
    logit += np.where(
        clearing,
        r.clearing_boost * np.exp(-frame["hours_since_failure"].to_numpy() / r.clearing_hours),
        0.0,
    )
    funds = mode == "funds"
    logit += np.where(
        funds,
        _funds_effect(frame, world) - r.fragility_penalty * frame["fragility"].to_numpy(),
        0.0,
    )
    p = _sigmoid(logit) * _still_engaged(frame, world)

    mac = frame["merchant_advice_code"].fillna("").to_numpy()
    hours = frame["hours_since_failure"].to_numpy()
    wait = pd.Series(mac).map(MAC_RETRY_AFTER_HOURS).fillna(0.0).to_numpy()
    p = np.where(hours < wait, 0.0, p)
    p = np.where((mac == "02") & (hours < r.mac02_wait_hours), p * r.mac02_factor, p)
    blocked = (mode == "never") | np.isin(mac, ("03", "21"))
    p = np.where(blocked, 0.0, p)
    needs_update = (mode == "update") | (mac == "01")
    p_not_updated = np.where(needs_update, 0.0, p)
    p_updated = np.where(blocked, 0.0, p)
    return p_not_updated, p_updated


def message_response(frame: pd.DataFrame, world: WorldConfig) -> np.ndarray:
    """P(the customer clicks through) for each message row."""
    m = world.message
    reason = frame["reason"].to_numpy()
    family = pd.Series(reason).map({k: v[0] for k, v in CATEGORY_BEHAVIOUR.items()})
    template = frame["template"].to_numpy()
    fit = np.zeros(len(frame))
    for fam, table in TEMPLATE_FIT.items():
        for name, value in table.items():
            fit[(family.to_numpy() == fam) & (template == name)] = value
    sms = frame["channel"].to_numpy() == "sms"
    hour = frame["local_hour"].to_numpy()
    quiet = (hour >= world.quiet_start_hour) | (hour < world.quiet_end_hour)
    late = frame["hours_since_failure"].to_numpy() >= 7 * 24
    repeat = frame["prior_failures_12m"].to_numpy() >= 2
    large = frame["amount_minor"].to_numpy() > 2.0 * frame["amount_median_minor"].to_numpy()
    logit = (
        m.base
        + frame["engagement"].to_numpy()
        + fit
        + np.where(sms, m.sms_bonus + frame["sms_preference"].to_numpy(), 0.0)
        + m.active_hour_boost
        * _bump(hour, frame["active_peak_hour"].to_numpy(), m.active_hour_width)
        - np.where(quiet, np.where(sms, m.quiet_penalty_sms, m.quiet_penalty_email), 0.0)
        - m.fatigue_per_message * frame["messages_before"].to_numpy()
        + (template == "final_notice") * late * m.final_notice_late_bonus
        + (template == "payment_plan_offer")
        * (repeat * m.plan_offer_repeat_bonus + large * m.plan_offer_large_amount_bonus)
        + _history_effect(frame, m.loyal_bonus, m.repeat_failer_penalty)
    )
    return _sigmoid(logit) * _still_engaged(frame, world)


def _still_engaged(frame: pd.DataFrame, world: WorldConfig) -> np.ndarray:
    """Give-up: the factor each earlier message leaves on an event's chance (1 by default)."""
    keep = 1.0 - world.message.disengage_per_message
    return keep ** frame["messages_before"].to_numpy(dtype=float)


def pay_given_response(frame: pd.DataFrame, world: WorldConfig) -> np.ndarray:
    """P(a customer who clicked pays at once through the link)."""
    m = world.message
    reason = frame["reason"].to_numpy()
    mode = pd.Series(reason).map({k: v[1] for k, v in CATEGORY_BEHAVIOUR.items()}).to_numpy()
    funds = _sigmoid(m.pay_funds_base + _funds_effect(frame, world) - frame["fragility"].to_numpy())
    return np.select(
        [mode == "funds", np.isin(mode, ("update", "never"))],
        [funds, np.full(len(frame), m.pay_card_problem)],
        default=m.pay_issuer,
    )


def updates_card(frame: pd.DataFrame) -> np.ndarray:
    """Whether a click that did not pay still leaves an updated card behind."""
    reason = frame["reason"].to_numpy()
    mode = pd.Series(reason).map({k: v[1] for k, v in CATEGORY_BEHAVIOUR.items()}).to_numpy()
    mac01 = frame["merchant_advice_code"].fillna("").to_numpy() == "01"
    return (frame["template"].to_numpy() == "update_payment_method") & ((mode == "update") | mac01)


def update_hazard_per_hour(truth: pd.DataFrame, world: WorldConfig) -> np.ndarray:
    """Rate at which the card gets updated unprompted (account updater, the customer)."""
    per_day = truth["reason"].map(world.customer.update_hazard_per_day).fillna(0.0).to_numpy()
    mac01 = truth["merchant_advice_code"].fillna("").to_numpy() == "01"
    per_day = np.where(
        mac01 & (per_day == 0), world.customer.update_hazard_per_day["expired_card"], per_day
    )
    return per_day / 24.0


def self_pay_daily_hazard(truth: pd.DataFrame, world: WorldConfig, days: int) -> np.ndarray:
    """(invoices x days) hazards of paying unprompted on each day of the window."""
    c = world.customer
    n = len(truth)
    due = naive_utc(truth["due_at"])
    offsets = (np.arange(days) * 24 + 12).astype("timedelta64[h]")
    mid = (due[:, None] + offsets[None, :]).ravel()
    tz = np.repeat(truth["timezone"].to_numpy(), days)
    since = days_since_payday(
        to_local(mid, tz),
        np.repeat(truth["pay_cycle"].to_numpy(), days),
        np.repeat(truth["pay_phase"].to_numpy(), days),
    ).reshape(n, days)
    mode = truth["reason"].map({k: v[1] for k, v in CATEGORY_BEHAVIOUR.items()}).to_numpy()
    payday = np.where(np.isnan(since), 0.3, np.exp(-np.nan_to_num(since) / 2.5))
    factor = np.where((mode == "funds")[:, None], 1.0 + c.self_pay_payday_factor * payday, 1.0)
    engagement = np.exp(0.5 * truth["engagement"].to_numpy())[:, None]
    return c.self_pay_per_day * factor * engagement
