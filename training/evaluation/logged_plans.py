"""Which schedule plan the logging policy drew for each invoice, read back from a history.

Off-policy estimates need, per invoice, the probability with which the logging policy
chose what it did. smartretry reads the history under one documented assumption: the
team's system drew, at the failed charge, one *retry plan* (offsets after the failure)
and one *message plan* (offsets and templates) from a finite menu, and every logged
retry or message carries its plan's probability as ``propensity``. The menu is learned
from the history itself: the plans of invoices that ran to the end of the window
unrecovered (so every planned event was logged), kept when seen often enough.

An invoice recovered early shows only a prefix of its plans; it is *consistent* with
every menu plan that agrees with that prefix and would not have acted before the
recovery. The importance weight of a target choice is then
1[choice consistent] / P(logging drew a consistent plan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import pandas as pd

from training.contract.history import History

RETRY_TOLERANCE_H = 1.0
MESSAGE_DEFERRAL_H = 13.0  # a message may be held back out of quiet hours by at most this


@dataclass
class Menu:
    """Plans with their nominal offsets (hours after the failure; NaN-padded) and logging
    probability. Message plans also have templates ("" padded)."""

    retry_offsets: np.ndarray  # (retry plans x width)
    retry_probability: np.ndarray
    message_offsets: np.ndarray  # (message plans x width)
    message_templates: np.ndarray
    message_probability: np.ndarray

    @property
    def size(self) -> int:
        return len(self.retry_offsets) * len(self.message_offsets)


@dataclass
class LoggedSchedules:
    """Per invoice (padded matrices): logged retry offsets, message offsets and templates,
    end of observation (recovery, or the window's end) in hours after the failure."""

    invoice_id: np.ndarray
    retry_offsets: np.ndarray
    message_offsets: np.ndarray
    message_templates: np.ndarray
    end_hours: np.ndarray
    recovered: np.ndarray
    retry_propensity: np.ndarray
    message_propensity: np.ndarray

    @property
    def complete(self) -> np.ndarray:
        """Never recovered: every planned event was logged."""
        return ~self.recovered


def _wide(invoice: pd.Series, values: pd.Series, ids: pd.Series, fill) -> np.ndarray:
    """Rows of one invoice side by side in time order: (invoices x positions)."""
    position = invoice.groupby(invoice).cumcount()
    wide = pd.DataFrame({"i": invoice.to_numpy(), "k": position.to_numpy(), "v": values.to_numpy()})
    table = wide.pivot(index="i", columns="k", values="v").reindex(ids.to_numpy())
    if table.shape[1] == 0:
        return np.full((len(ids), 1), fill, dtype=object if isinstance(fill, str) else float)
    return table.fillna(fill).to_numpy(dtype=object if isinstance(fill, str) else float)


def read_logged(history: History, window_days: int) -> LoggedSchedules:
    """Logged schedules of every invoice, relative to its failure time."""
    ids = history.invoices["invoice_id"]
    due = history.invoices.set_index("invoice_id")["due_at"]
    att = history.attempts.sort_values(["invoice_id", "attempted_at"], kind="stable")
    merchant = att[att["initiated_by"] == "merchant"]
    retries = merchant[merchant["invoice_id"].duplicated()]  # all but the original charge
    retry_h = np.round(
        (retries["attempted_at"] - retries["invoice_id"].map(due)).dt.total_seconds() / 3600
    )
    msgs = history.messages.sort_values(["invoice_id", "sent_at"], kind="stable")
    msg_h = np.round((msgs["sent_at"] - msgs["invoice_id"].map(due)).dt.total_seconds() / 3600)
    success = (
        att[att["outcome"] == "succeeded"].drop_duplicates("invoice_id").set_index("invoice_id")
    )
    end = (success["attempted_at"] - success.index.map(due)).dt.total_seconds() / 3600
    window = window_days * 24.0
    end_hours = np.minimum(ids.map(end).fillna(window).to_numpy(), window)

    def first_p(rows: pd.DataFrame) -> pd.Series:
        return ids.map(
            rows.dropna(subset=["propensity"]).groupby("invoice_id")["propensity"].first()
        )

    return LoggedSchedules(
        invoice_id=ids.to_numpy(),
        retry_offsets=_wide(retries["invoice_id"], retry_h, ids, np.nan),
        message_offsets=_wide(msgs["invoice_id"], msg_h, ids, np.nan),
        message_templates=_wide(msgs["invoice_id"], msgs["template"], ids, ""),
        end_hours=end_hours,
        recovered=end_hours < window,
        retry_propensity=first_p(retries).to_numpy(dtype=float),
        message_propensity=first_p(msgs).to_numpy(dtype=float),
    )


def learn_menu(logged: LoggedSchedules, min_support: int = 20) -> Menu:
    """The plans the logging policy drew from (seen complete often enough) and their
    probabilities (the median logged propensity of each)."""
    done = logged.complete
    retry = _plans(logged.retry_offsets[done], logged.retry_propensity[done], min_support, np.nan)
    keys = logged.message_templates[done]
    messages = _plans(keys, logged.message_propensity[done], min_support, "")
    # nominal message times: the earliest logged per position (quiet hours only delay)
    plan = plan_index(keys, messages[0])
    offsets = pd.DataFrame(logged.message_offsets[done])
    earliest = offsets[plan >= 0].groupby(plan[plan >= 0]).min()
    message_offsets = earliest.reindex(np.arange(len(messages[0]))).to_numpy(dtype=float)
    return Menu(retry[0].astype(float), retry[1], message_offsets, messages[0], messages[1])


def plan_index(sequences: np.ndarray, plans: np.ndarray) -> np.ndarray:
    """For each row of ``sequences`` the index of the identical row of ``plans`` (-1 if
    none); both padded to the same width or narrower plans."""
    width = max(sequences.shape[1], plans.shape[1]) if len(plans) else sequences.shape[1]
    fill = "" if sequences.dtype == object else np.nan
    seq = _widen(sequences, width, fill)
    menu = _widen(plans, width, fill)
    equal = (seq[:, None, :] == menu[None, :, :]).all(axis=2)
    return np.where(equal.any(axis=1), equal.argmax(axis=1), -1)


def _plans(
    rows: np.ndarray, propensity: np.ndarray, min_support: int, fill
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct padded rows seen at least ``min_support`` times with a propensity."""
    frame = pd.DataFrame(rows).fillna(-1.0) if isinstance(fill, float) else pd.DataFrame(rows)
    frame["p"] = propensity
    frame = frame.dropna(subset=["p"])
    columns = [c for c in frame.columns if c != "p"]
    stats = frame.groupby(columns).agg(n=("p", "size"), p=("p", "median")).reset_index()
    stats = stats[stats["n"] >= min_support]
    plans = stats[columns].to_numpy()
    if isinstance(fill, float):
        plans = np.where(plans.astype(float) == -1.0, np.nan, plans).astype(float)
    return plans, stats["p"].to_numpy(dtype=float)


def _widen(a: np.ndarray, width: int, fill) -> np.ndarray:
    if a.shape[1] >= width:
        return a[:, :width]
    pad = np.full((a.shape[0], width - a.shape[1]), fill, dtype=a.dtype)
    return np.concatenate([a, pad], axis=1)


def consistent_retry_plans(logged: LoggedSchedules, menu: Menu) -> np.ndarray:
    """(invoices x retry plans) bool: the plan agrees with what was logged."""
    width = max(logged.retry_offsets.shape[1], menu.retry_offsets.shape[1])
    seen = _widen(logged.retry_offsets, width, np.nan)
    plans = _widen(menu.retry_offsets, width, np.nan)
    return _consistent(seen, plans, logged.end_hours, RETRY_TOLERANCE_H, RETRY_TOLERANCE_H)


def consistent_message_plans(logged: LoggedSchedules, menu: Menu) -> np.ndarray:
    """(invoices x message plans) bool: templates and times agree with what was logged."""
    width = max(logged.message_offsets.shape[1], menu.message_offsets.shape[1])
    seen = _widen(logged.message_offsets, width, np.nan)
    plans = _widen(menu.message_offsets, width, np.nan)
    times = _consistent(seen, plans, logged.end_hours, 0.5, MESSAGE_DEFERRAL_H)
    seen_t = _widen(logged.message_templates, width, "")
    plan_t = _widen(menu.message_templates, width, "")
    agree = (seen_t[:, None, :] == plan_t[None, :, :]) | (seen_t[:, None, :] == "")
    return times & agree.all(axis=2)


def _consistent(
    seen: np.ndarray, plans: np.ndarray, end: np.ndarray, early: float, late: float
) -> np.ndarray:
    """Logged offsets match the plan's first ones (within [-early, +late] hours) and the
    plan's remaining events fall at or after the end of observation."""
    s = seen[:, None, :]
    p = plans[None, :, :]
    logged_here = ~np.isnan(s)
    planned = ~np.isnan(p)
    match = np.where(logged_here, planned & (s >= p - early) & (s <= p + late), True)
    unlogged_planned = planned & ~logged_here
    after_end = np.where(unlogged_planned, p + late >= end[:, None, None] - early, True)
    # numpy types .all(axis=...) as "scalar or array"; over 3-D input it is a 2-D array
    return cast(np.ndarray, (match & after_end).all(axis=2))
