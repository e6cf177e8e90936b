"""The customer event log: everything a customer did, one row per event, from a history.

Customer features are aggregates of this log *as of* a decision time. Training builds it
from the whole history; serving from the log shipped inside the model artifact plus the
outcomes reported since. Columns:

    customer_id, at (UTC), local_hour, local_weekday, local_day_of_month, days_in_month,
    and one int8 flag per kind: failure, recovery, recovery_by_retry, recovery_by_customer,
    payment, activity, email_sent, sms_sent, email_click, sms_click
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.config.params import ActiveHourParams
from training.contract.history import History
from training.core.localtime import to_local
from training.features.active_hour import (
    LAG_EDGES,
    event_cells,
    fit_rows,
    learn_cell_weights,
)

FLAGS = (
    "failure",
    "recovery",
    "recovery_by_retry",
    "recovery_by_customer",
    "payment",
    "activity",
    "email_sent",
    "sms_sent",
    "email_click",
    "sms_click",
)
LOG_COLUMNS = (
    "customer_id",
    "at",
    "local_hour",
    "local_weekday",
    "local_day_of_month",
    "days_in_month",
    *FLAGS,
)


def _rows(customer_id: pd.Series, at: pd.Series, **flags: np.ndarray | int) -> pd.DataFrame:
    frame = pd.DataFrame({"customer_id": customer_id.to_numpy(), "at": at.to_numpy()})
    for name in FLAGS:
        frame[name] = np.asarray(flags.get(name, 0), dtype=np.int8) * np.ones(len(frame), np.int8)
    return frame


def customer_event_log(
    history: History,
    settings: ActiveHourParams | None = None,
    cell_weights: np.ndarray | None = None,
) -> pd.DataFrame:
    """Build the log from the four contract tables (vectorized). ``settings``: how the
    active hour weighs the activity events (default: equally, no weight column);
    ``cell_weights``: with learned weighting, the cells' weights to use instead of
    learning them from ``history`` (a Dask part: the weights learned over all parts)."""
    inv = history.invoices[["invoice_id", "customer_id", "due_at"]]
    owner = inv.set_index("invoice_id")["customer_id"]
    att = history.attempts
    att_customer = att["invoice_id"].map(owner)
    succeeded = (att["outcome"] == "succeeded").to_numpy()
    by_customer = (att["initiated_by"] == "customer").to_numpy()

    first_success = (
        att[succeeded].sort_values("attempted_at", kind="stable").drop_duplicates("invoice_id")
    )
    first_by_retry = (first_success["initiated_by"] == "merchant").to_numpy()

    msgs = history.messages
    msg_customer = msgs["invoice_id"].map(owner)
    sms = (msgs["channel"] == "sms").to_numpy()
    opened = msgs["opened_at"].notna().to_numpy()
    clicked = msgs["clicked_at"].notna().to_numpy()

    parts = [
        _rows(inv["customer_id"], inv["due_at"], failure=1),
        _rows(
            first_success["invoice_id"].map(owner),
            first_success["attempted_at"],
            recovery=1,
            recovery_by_retry=first_by_retry,
            recovery_by_customer=~first_by_retry,
        ),
        _rows(att_customer[succeeded], att["attempted_at"][succeeded], payment=1),
        _rows(att_customer[by_customer], att["attempted_at"][by_customer], activity=1),
        _rows(msg_customer, msgs["sent_at"], email_sent=~sms, sms_sent=sms),
        _rows(msg_customer[opened], msgs["opened_at"][opened], activity=1),
        _rows(
            msg_customer[clicked],
            msgs["clicked_at"][clicked],
            activity=1,
            email_click=~sms[clicked],
            sms_click=sms[clicked],
        ),
    ]
    if settings is not None and settings.weighting == "learned":
        weights = learned_activity_weights(history, settings.weight_power, cell_weights)
        activity = [parts[3], parts[5], parts[6]]  # the order of ACTIVITY_KINDS
        bounds = np.cumsum([0] + [len(p) for p in activity])
        for part in parts:
            part[ACTIVITY_WEIGHT] = 0.0
        for i, part in enumerate(activity):
            part[ACTIVITY_WEIGHT] = weights[bounds[i] : bounds[i + 1]]
    log = pd.concat([p for p in parts if len(p)], ignore_index=True)
    log["at"] = pd.to_datetime(log["at"], utc=True)
    timezone = history.customers.set_index("customer_id")["timezone"]
    return add_local_time(log, log["customer_id"].map(timezone))


ACTIVITY_KINDS = ("customer_attempt", "open", "click")
"""The events behind the ``activity`` flag: customer-initiated attempts, message opens and
clicks (:func:`activity_events`)."""
ACTIVITY_WEIGHT = "activity_weight"
"""An optional float column: each activity event's weight in the active-hour estimate
(``train.features.active_hour.weighting: learned``); absent, every event weighs 1."""


def activity_events(history: History) -> pd.DataFrame:
    """The log's activity events, one row each: customer_id, at (UTC), kind (one of
    :data:`ACTIVITY_KINDS`) and hours_since_send, the hours since the latest message sent
    to the customer at or before the event (NaN: none was). In the order of
    :data:`ACTIVITY_KINDS`, each kind in its table's order (vectorized)."""
    owner = history.invoices.set_index("invoice_id")["customer_id"]
    att, msgs = history.attempts, history.messages
    by_customer = att[(att["initiated_by"] == "customer").to_numpy()]
    opened = msgs[msgs["opened_at"].notna().to_numpy()]
    clicked = msgs[msgs["clicked_at"].notna().to_numpy()]
    parts = [
        (by_customer["invoice_id"], by_customer["attempted_at"]),
        (opened["invoice_id"], opened["opened_at"]),
        (clicked["invoice_id"], clicked["clicked_at"]),
    ]
    events = pd.concat(
        [
            pd.DataFrame(
                {
                    "customer_id": ids.map(owner).to_numpy(),
                    "at": pd.to_datetime(at, utc=True).reset_index(drop=True),
                    "kind": kind,
                }
            )
            for (ids, at), kind in zip(parts, ACTIVITY_KINDS, strict=True)
        ],
        ignore_index=True,
    )
    sends = pd.DataFrame(
        {
            "customer_id": msgs["invoice_id"].map(owner).to_numpy(),
            "sent_at": pd.to_datetime(msgs["sent_at"], utc=True).reset_index(drop=True),
        }
    ).sort_values("sent_at", kind="stable")
    by_time = pd.merge_asof(
        events.reset_index().sort_values("at", kind="stable"),
        sends,
        left_on="at",
        right_on="sent_at",
        by="customer_id",
        direction="backward",
    ).set_index("index")
    lag = (by_time["at"] - by_time["sent_at"]) / pd.Timedelta(hours=1)
    events["hours_since_send"] = lag.reindex(events.index).to_numpy(dtype=float)
    return events


def _local_hours(at: pd.Series, customer_id: pd.Series, timezone: pd.Series) -> np.ndarray:
    local = to_local(at, customer_id.map(timezone).fillna("UTC"))
    return (local.dt.hour + local.dt.minute / 60.0).to_numpy()


CELLS = len(ACTIVITY_KINDS) * (len(LAG_EDGES) + 1)
"""The cells of the activity events (kind x lag band): one learned weight each."""


def _learning_tables(history: History) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The activity events (code, seconds, local_hour, cell; the order of
    :func:`activity_events`) and the sends to customers with an activity event (code,
    seconds, local_hour, clicked; the messages' order) the cell weights are learned from."""
    events = activity_events(history)
    timezone = history.customers.set_index("customer_id")["timezone"]
    owner = history.invoices.set_index("invoice_id")["customer_id"]
    msgs = history.messages
    sends = pd.DataFrame(
        {
            "customer_id": msgs["invoice_id"].map(owner).to_numpy(),
            "at": pd.to_datetime(msgs["sent_at"], utc=True).reset_index(drop=True),
            "clicked": msgs["clicked_at"].notna().to_numpy(),
        }
    )
    customers = pd.Index(pd.unique(events["customer_id"]))

    def frame(table: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "code": customers.get_indexer(table["customer_id"]).astype(np.int64),
                "seconds": table["at"].astype("int64").to_numpy() // 10**9,
                "local_hour": _local_hours(table["at"], table["customer_id"], timezone),
            }
        )

    kind = pd.Categorical(events["kind"], categories=ACTIVITY_KINDS).codes
    cells = event_cells(kind, len(ACTIVITY_KINDS), events["hours_since_send"].to_numpy())
    ev = frame(events).assign(cell=cells)
    sent = frame(sends).assign(clicked=sends["clicked"].to_numpy())
    return ev, sent[sent["code"].to_numpy() >= 0]


def send_seconds(history: History) -> np.ndarray:
    """The times (epoch seconds, int64) of the sends the learning's cutoff is taken over
    (:func:`~training.features.active_hour.learn_cutoff`); a Dask part sends its own."""
    return _learning_tables(history)[1]["seconds"].to_numpy(dtype=np.int64)


def activity_fit_rows(history: History, cutoff: float) -> pd.DataFrame:
    """The history's rows for the cells' slopes before ``cutoff``
    (:func:`~training.features.active_hour.fit_rows`)."""
    ev, sent = _learning_tables(history)
    return fit_rows(ev, sent, cutoff, CELLS)


def learn_activity_cell_weights(history: History) -> np.ndarray:
    """The :data:`CELLS` weights learned from the whole ``history`` in process."""
    ev, sent = _learning_tables(history)
    return learn_cell_weights(ev, sent, CELLS)


def learned_activity_weights(
    history: History, power: float = 1.0, cell_weights: np.ndarray | None = None
) -> np.ndarray:
    """Each event of :func:`activity_events` (same order): its cell's weight, learned
    from the history (:mod:`training.features.active_hour`) or given (``cell_weights``,
    one per cell: learned over every part of a Dask cluster's history), to the ``power``."""
    ev, sent = _learning_tables(history)  # the events once: their cells and the learning
    weights = learn_cell_weights(ev, sent, CELLS) if cell_weights is None else cell_weights
    return np.asarray(weights, dtype=float)[ev["cell"].to_numpy()] ** power


def add_local_time(log: pd.DataFrame, timezone: pd.Series) -> pd.DataFrame:
    """Local clock fields of each event, in the customer's time zone."""
    local = to_local(log["at"], timezone.fillna("UTC"))
    log["local_hour"] = (local.dt.hour + local.dt.minute / 60.0).to_numpy()
    log["local_weekday"] = local.dt.weekday.to_numpy()
    log["local_day_of_month"] = local.dt.day.to_numpy()
    log["days_in_month"] = local.dt.days_in_month.to_numpy()
    columns = [*LOG_COLUMNS, *([ACTIVITY_WEIGHT] if ACTIVITY_WEIGHT in log else [])]
    return log.sort_values(["customer_id", "at"], kind="stable").reset_index(drop=True)[columns]


def empty_log() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=np.int8) for c in LOG_COLUMNS})
    frame["customer_id"] = frame["customer_id"].astype(object)
    frame["at"] = pd.Series(dtype="datetime64[ns, UTC]")
    for c in ("local_hour", "local_weekday", "local_day_of_month", "days_in_month"):
        frame[c] = frame[c].astype(float)
    return frame
