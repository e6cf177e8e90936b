"""Dunning-message response: open, click and pay-through rates by template, channel and hour.

A message *pays through* when the invoice is recovered by the customer paying after the
message was sent and before the next message of the same invoice (last-touch
attribution): each customer recovery is credited to at most one message, and a message
sent after the recovery gets none.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.analytics.cycles import require_columns
from training.contract.history import History
from training.core.localtime import to_local

RESPONSE_BY = ("template", "channel", "local_send_hour")


def message_outcomes(history: History, cycles: pd.DataFrame) -> pd.DataFrame:
    """The messages sent within their invoice's window, one row each, with their outcome.

    Adds ``local_send_hour`` (customer's time zone), ``opened``, ``clicked`` and
    ``paid_through`` (bools).
    """
    msgs = history.messages
    require_columns(
        msgs, "messages", ("message_id", "invoice_id", "sent_at", "channel", "template")
    )
    info = cycles.set_index("invoice_id")
    msgs = msgs[msgs["invoice_id"].isin(info.index)].copy()
    msgs["sent_at"] = pd.to_datetime(msgs["sent_at"], utc=True)
    due = msgs["invoice_id"].map(info["due_at"])
    msgs = msgs[
        (msgs["sent_at"] >= due) & (msgs["sent_at"] <= msgs["invoice_id"].map(info["window_end"]))
    ]
    msgs = msgs.sort_values(["invoice_id", "sent_at"], kind="stable")
    following = msgs.groupby("invoice_id")["sent_at"].shift(-1)
    recovered_at = msgs["invoice_id"].map(info["recovered_at"])
    by_customer = msgs["invoice_id"].map(info["recovered_by"]).eq("customer")
    msgs["paid_through"] = (
        by_customer
        & (recovered_at >= msgs["sent_at"])
        & (following.isna() | (recovered_at < following))
    ).to_numpy(dtype=bool)
    for flag, column in (("opened", "opened_at"), ("clicked", "clicked_at")):
        present = msgs[column].notna() if column in msgs.columns else False
        msgs[flag] = np.asarray(present, dtype=bool) & np.ones(len(msgs), dtype=bool)
    local = to_local(msgs["sent_at"], msgs["invoice_id"].map(info["timezone"]))
    msgs["local_send_hour"] = local.dt.hour.to_numpy(dtype=np.int64)
    return msgs.reset_index(drop=True)


def message_response(outcomes: pd.DataFrame, by: tuple[str, ...] = RESPONSE_BY) -> pd.DataFrame:
    """Messages sent and their open, click and pay-through rates per group of ``by``.

    ``outcomes`` comes from ``message_outcomes``; most-sent groups first.
    """
    unknown = [c for c in by if c not in outcomes.columns]
    if unknown:
        raise ValueError(f"cannot group messages by {unknown}; columns: {list(outcomes.columns)}")
    grouped = outcomes.groupby(list(by), sort=True)
    table = pd.DataFrame(
        {
            "sent": grouped.size(),
            "opened": grouped["opened"].sum(),
            "clicked": grouped["clicked"].sum(),
            "paid_through": grouped["paid_through"].sum(),
        }
    )
    for name in ("opened", "clicked", "paid_through"):
        table[name] = table[name].astype("int64")
    table["open_rate"] = table["opened"] / table["sent"]
    table["click_rate"] = table["clicked"] / table["sent"]
    table["pay_through_rate"] = table["paid_through"] / table["sent"]
    return table.sort_values("sent", ascending=False, kind="stable")


def response_by_send_hour(
    outcomes: pd.DataFrame, rate: str = "click_rate", min_sent: int = 20
) -> pd.DataFrame:
    """A (template / channel) x local send hour grid of ``rate``.

    Cells with fewer than ``min_sent`` messages are NaN (too few to read); hours with no
    message at all are kept as NaN columns, so the grid always has 24 columns.
    """
    table = message_response(outcomes, RESPONSE_BY)
    if rate not in table.columns or not rate.endswith("_rate"):
        raise ValueError(
            f"unknown rate {rate!r}; expected open_rate, click_rate or pay_through_rate"
        )
    values = table[rate].where(table["sent"] >= min_sent)
    grid = values.unstack("local_send_hour").reindex(columns=range(24))
    grid.index = [f"{template} / {channel}" for template, channel in grid.index]
    grid.index.name = "template / channel"
    grid.columns.name = "local send hour"
    grid.attrs.update(rate=rate, min_sent=min_sent)
    return grid
