"""Play the logging policy's plans out in the world and write what a billing system logs.

Probabilities come from :mod:`training.simulator.behaviour` through the same
:meth:`GroundTruth.schedule_frame` the exact scorer uses; this module only draws the
random outcomes, one step per event rank, vectorized over invoices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.simulator.behaviour import self_pay_daily_hazard, update_hazard_per_hour
from training.simulator.localtime import hour_of_day, naive_utc, to_local
from training.simulator.truth import GroundTruth
from training.simulator.vocabulary import sample_codes, vary_form

HOUR_S = 3600.0


@dataclass
class Realized:
    attempts: pd.DataFrame
    messages: pd.DataFrame


def _hours(values) -> np.ndarray:
    return naive_utc(values).astype("datetime64[s]").astype(np.int64) / HOUR_S


def _to_time(hours: np.ndarray) -> np.ndarray:
    return (
        (np.round(hours * HOUR_S)).astype(np.int64).astype("datetime64[s]").astype("datetime64[ns]")
    )


def realize(
    truth: GroundTruth,
    invoices: pd.DataFrame,
    planned_retries: pd.DataFrame,
    planned_messages: pd.DataFrame,
    rng: np.random.Generator,
) -> Realized:
    """Draw what happens to every invoice under its planned schedule."""
    world = truth.world
    inv = truth.invoices.set_index("invoice_id").loc[invoices["invoice_id"]].reset_index()
    n = len(inv)
    position = pd.Series(np.arange(n), index=inv["invoice_id"].to_numpy())
    due_h = _hours(inv["due_at"])
    end_h = due_h + truth.window_hours

    # unprompted card update and unprompted payment: latent times per invoice
    rate = update_hazard_per_hour(inv, world)
    with np.errstate(divide="ignore"):
        update_h = due_h + np.where(
            rate > 0, rng.exponential(1.0 / np.where(rate > 0, rate, 1)), np.inf
        )
    days = int(np.ceil(truth.window_hours / 24))
    cumulative = np.cumsum(self_pay_daily_hazard(inv, world, days), axis=1)
    threshold = rng.exponential(1.0, n)
    day = (cumulative < threshold[:, None]).sum(axis=1)
    local_hour = hour_of_day(to_local(inv["due_at"], inv["timezone"]))
    into_day = np.mod(inv["active_peak_hour"].to_numpy() - local_hour + rng.normal(0, 1.5, n), 24)
    self_pay_h = np.where(day < days, due_h + 24 * day + into_day, np.inf)
    self_pay_h = np.where(self_pay_h < end_h, self_pay_h, np.inf)

    retries = planned_retries.assign(key=planned_retries["invoice_id"])
    messages = planned_messages.assign(key=planned_messages["invoice_id"])
    frame = truth.schedule_frame(
        retries[["key", "invoice_id", "t"]].rename(columns={"t": "at"}),
        messages[["key", "invoice_id", "t", "channel", "template"]].rename(
            columns={"t": "send_at"}
        ),
    )
    propensity = pd.concat(
        [
            retries.assign(kind="retry")[["invoice_id", "t", "kind", "propensity"]],
            messages.assign(kind="message")[["invoice_id", "t", "kind", "propensity"]],
        ]
    )
    propensity["t"] = pd.to_datetime(propensity["t"], utc=True)
    frame = frame.merge(
        propensity.drop_duplicates(["invoice_id", "t", "kind"]),
        on=["invoice_id", "t", "kind"],
        how="left",
    )
    g = position.loc[frame["invoice_id"]].to_numpy()
    t_h = _hours(frame["t"])
    rank = frame.groupby("key", sort=False).cumcount().to_numpy()
    next_h = frame.groupby("key", sort=False)["t"].shift(-1)
    next_h = np.where(next_h.isna(), end_h[g], _hours(next_h.fillna(frame["t"])))
    retry = (frame["kind"] == "retry").to_numpy()

    recovered_h = np.full(n, np.inf)
    executed = np.zeros(len(frame), dtype=bool)
    success = np.zeros(len(frame), dtype=bool)
    clicked_h = np.full(len(frame), np.nan)
    paid = np.zeros(len(frame), dtype=bool)
    draws = rng.random((len(frame), 3))
    delay = rng.exponential(world.message.mean_click_delay_hours, len(frame))
    for k in range(int(rank.max()) + 1 if len(frame) else 0):
        rows = np.flatnonzero(rank == k)
        inv_rows = g[rows]
        alive = (recovered_h[inv_rows] > t_h[rows]) & (self_pay_h[inv_rows] > t_h[rows])
        rows, inv_rows = rows[alive], inv_rows[alive]
        executed[rows] = True
        is_retry = retry[rows]
        updated = update_h[inv_rows] <= t_h[rows]
        p = np.where(
            updated,
            frame["p_retry_updated"].to_numpy()[rows],
            frame["p_retry_not_updated"].to_numpy()[rows],
        )
        ok_retry = is_retry & (draws[rows, 0] < p)
        respond = ~is_retry & (draws[rows, 1] < frame["p_response"].to_numpy()[rows])
        click = t_h[rows] + np.minimum(
            delay[rows], np.maximum(next_h[rows] - t_h[rows] - 1 / 60, 1 / 120)
        )
        clicked_h[rows[respond]] = click[respond]
        pays = respond & (draws[rows, 2] < frame["p_pay"].to_numpy()[rows])
        paid[rows] = pays
        success[rows] = ok_retry
        recovered_h[inv_rows[ok_retry]] = t_h[rows][ok_retry]
        recovered_h[inv_rows[pays]] = click[pays]
        newly = respond & ~pays & frame["updates_card"].to_numpy()[rows]
        update_h[inv_rows[newly]] = np.minimum(update_h[inv_rows[newly]], click[newly])

    self_paid = np.isfinite(self_pay_h) & (self_pay_h < recovered_h)
    return Realized(
        attempts=_attempt_rows(
            inv, frame, executed, success, clicked_h, paid, self_pay_h, self_paid, rng
        ),
        messages=_message_rows(frame, executed, clicked_h, world.message, rng),
    )


def _attempt_rows(
    inv: pd.DataFrame,
    frame: pd.DataFrame,
    executed: np.ndarray,
    success: np.ndarray,
    clicked_h: np.ndarray,
    paid: np.ndarray,
    self_pay_h: np.ndarray,
    self_paid: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    original = pd.DataFrame(
        {
            "invoice_id": inv["invoice_id"],
            "attempted_at": inv["due_at"],
            "initiated_by": "merchant",
            "outcome": "failed",
            "decline_code": inv["decline_code"],
            "merchant_advice_code": inv["merchant_advice_code"],
            "propensity": np.nan,
        }
    )
    is_retry = (frame["kind"] == "retry").to_numpy() & executed
    retries = frame[is_retry]
    retry_rows = pd.DataFrame(
        {
            "invoice_id": retries["invoice_id"].to_numpy(),
            "attempted_at": retries["t"].to_numpy(),
            "initiated_by": "merchant",
            "outcome": np.where(success[is_retry], "succeeded", "failed"),
            "reason": retries["reason"].to_numpy(),
            "merchant_advice_code": np.where(
                success[is_retry], None, retries["merchant_advice_code"].to_numpy()
            ),
            "propensity": retries["propensity"].to_numpy(),
        }
    )
    clicked = ~np.isnan(clicked_h)
    customer = frame[clicked]
    customer_rows = pd.DataFrame(
        {
            "invoice_id": customer["invoice_id"].to_numpy(),
            "attempted_at": _to_time(clicked_h[clicked] + 0.5 / 60),
            "initiated_by": "customer",
            "outcome": np.where(paid[clicked], "succeeded", "failed"),
            "reason": customer["reason"].to_numpy(),
            "merchant_advice_code": None,
            "propensity": np.nan,
        }
    )
    selfpay = inv[self_paid]
    selfpay_rows = pd.DataFrame(
        {
            "invoice_id": selfpay["invoice_id"].to_numpy(),
            "attempted_at": _to_time(self_pay_h[self_paid]),
            "initiated_by": "customer",
            "outcome": "succeeded",
            "reason": selfpay["reason"].to_numpy(),
            "merchant_advice_code": None,
            "propensity": np.nan,
        }
    )
    later = pd.concat([retry_rows, customer_rows, selfpay_rows], ignore_index=True)
    processor = later["invoice_id"].map(inv.set_index("invoice_id")["processor"])
    codes = vary_form(sample_codes(processor, later["reason"], rng), rng)
    # numpy's stubs reject None as a where() branch; at run time it is an object scalar
    later["decline_code"] = np.where(later["outcome"] == "failed", codes, None)  # type: ignore[call-overload]
    later["attempted_at"] = pd.to_datetime(later["attempted_at"], utc=True)
    attempts = pd.concat([original, later.drop(columns="reason")], ignore_index=True)
    attempts = attempts.sort_values(["invoice_id", "attempted_at"], kind="stable")
    attempts.insert(0, "attempt_id", [f"att_{i}" for i in range(1, len(attempts) + 1)])
    return attempts.reset_index(drop=True)


def _message_rows(frame, executed, clicked_h, effects, rng) -> pd.DataFrame:
    sent = (frame["kind"] == "message").to_numpy() & executed
    msgs = frame[sent]
    click = clicked_h[sent]
    clicked = ~np.isnan(click)
    sent_h = _hours(msgs["t"])
    sms = msgs["channel"].to_numpy() == "sms"
    open_rate = np.where(sms, effects.open_rate_sms, effects.open_rate_email)
    response = msgs["p_response"].to_numpy()
    opens_anyway = rng.random(len(msgs)) < np.clip((open_rate - response) / (1 - response), 0, 1)
    # people read messages when they are active: the next time their local clock comes
    # round to their active hour (give or take), unless they clicked at once
    sent_local = hour_of_day(to_local(msgs["t"], msgs["timezone"]))
    wait = np.mod(
        msgs["active_peak_hour"].to_numpy() + rng.normal(0, 1.5, len(msgs)) - sent_local, 24
    )
    open_h = np.where(
        clicked,
        sent_h + rng.random(len(msgs)) * (np.nan_to_num(click) - sent_h),
        np.where(opens_anyway, sent_h + wait, np.nan),
    )
    out = pd.DataFrame(
        {
            "message_id": [f"msg_{i}" for i in range(1, len(msgs) + 1)],
            "invoice_id": msgs["invoice_id"].to_numpy(),
            "sent_at": msgs["t"].to_numpy(),
            "channel": msgs["channel"].to_numpy(),
            "template": msgs["template"].to_numpy(),
            "propensity": msgs["propensity"].to_numpy(),
            "opened_at": pd.to_datetime(
                np.where(np.isnan(open_h), np.datetime64("NaT"), _to_time(np.nan_to_num(open_h))),
                utc=True,
            ),
            "clicked_at": pd.to_datetime(
                np.where(clicked, _to_time(np.nan_to_num(click)), np.datetime64("NaT")), utc=True
            ),
        }
    )
    out["sent_at"] = pd.to_datetime(out["sent_at"], utc=True)
    return out
