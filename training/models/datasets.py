"""Training rows and labels for the three models, from a history in the data contract.

* retry model: one row per logged merchant retry; label: it succeeded.
* message model: one row per logged message; label: the customer paid through it
  (a successful customer payment within ``response_hours`` after a click on it; for a
  history without click tracking, the last message sent within ``attribution_hours``
  before a customer payment gets the credit).
* self-cure model: one row per invoice and day of the window while it is still open;
  label: the customer paid unprompted that day (a customer payment no message gets).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.config.params import ActiveHourParams, Params
from training.config.retry_limits import UpdateRequests
from training.contract.history import History
from training.declines.table import DeclineTable
from training.features.customer import CustomerIndex
from training.features.frames import candidate_features, event_features, self_cure_features
from training.features.history_log import customer_event_log
from training.features.invoice import events_from_history


@dataclass
class Dataset:
    features: pd.DataFrame
    label: np.ndarray
    due_at: pd.Series  # the invoice's failure time, for the time-based split
    invoice_id: np.ndarray
    # the logged probability of the row's retry or message (NaN: none logged); None for
    # rows that are no logged decision (self-cure days)
    propensity: np.ndarray | None = None


@dataclass
class TrainingData:
    retry: Dataset
    message: Dataset
    self_cure: Dataset
    events: pd.DataFrame
    event_features: pd.DataFrame
    log: pd.DataFrame


def _propensity(table: pd.DataFrame) -> np.ndarray:
    """The table's ``propensity`` column as floats (NaN where missing or not exported)."""
    if "propensity" not in table.columns:
        return np.full(len(table), np.nan)
    return pd.to_numeric(table["propensity"], errors="coerce").to_numpy(dtype=float)


def history_timeline(history: History) -> pd.DataFrame:
    """Logged timeline: the original charge, merchant retries and messages, with the
    logged propensity of each (NaN where none was logged)."""
    att = history.attempts.sort_values(["invoice_id", "attempted_at"], kind="stable")
    merchant = att[att["initiated_by"] == "merchant"]
    is_original = ~merchant["invoice_id"].duplicated()
    attempts = pd.DataFrame(
        {
            "key": merchant["invoice_id"].to_numpy(),
            "t": merchant["attempted_at"].to_numpy(),
            "kind": np.where(is_original, "original", "retry"),
            "template": None,
            "channel": None,
            "label": (merchant["outcome"] == "succeeded").to_numpy().astype(int),
            "row_id": merchant["attempt_id"].to_numpy(),
            "propensity": _propensity(merchant),
        }
    )
    msgs = history.messages
    messages = pd.DataFrame(
        {
            "key": msgs["invoice_id"].to_numpy(),
            "t": msgs["sent_at"].to_numpy(),
            "kind": "message",
            "template": msgs["template"].to_numpy(),
            "channel": msgs["channel"].to_numpy(),
            "label": message_labels(history).to_numpy(),
            "row_id": msgs["message_id"].to_numpy(),
            "propensity": _propensity(msgs),
        }
    )
    # an empty messages frame is left out (pandas would drop its columns' dtypes)
    timeline = pd.concat([attempts, messages] if len(messages) else [attempts], ignore_index=True)
    timeline["t"] = pd.to_datetime(timeline["t"], utc=True)
    timeline["event_id"] = timeline["key"]
    timeline["candidate"] = timeline["kind"] != "original"
    return timeline


def _customer_payments(history: History) -> pd.DataFrame:
    att = history.attempts
    paid = att[(att["initiated_by"] == "customer") & (att["outcome"] == "succeeded")]
    return paid[["invoice_id", "attempted_at", "attempt_id"]].sort_values("attempted_at")


def message_labels(
    history: History, response_hours: float = 2.0, attribution_hours: float = 48.0
) -> pd.Series:
    """1 where the customer paid through the message (see module docs)."""
    msgs = history.messages
    payments = _customer_payments(history)
    label = pd.Series(0, index=msgs.index)
    if payments.empty or msgs.empty:
        return label
    if msgs["clicked_at"].notna().any():
        clicked = msgs[msgs["clicked_at"].notna()]
        probe = (
            clicked[["invoice_id", "clicked_at"]]
            .assign(pos=clicked.index)
            .sort_values("clicked_at")
        )
        matched = pd.merge_asof(
            probe,
            payments.rename(columns={"attempted_at": "clicked_at"}),
            on="clicked_at",
            by="invoice_id",
            direction="forward",
            tolerance=pd.Timedelta(hours=response_hours),
        )
        label.loc[matched.loc[matched["attempt_id"].notna(), "pos"].to_numpy()] = 1
        return label
    probe = msgs[["invoice_id", "sent_at"]].assign(pos=msgs.index).sort_values("sent_at")
    matched = pd.merge_asof(
        payments.rename(columns={"attempted_at": "sent_at"}),
        probe,
        on="sent_at",
        by="invoice_id",
        direction="backward",
        tolerance=pd.Timedelta(hours=attribution_hours),
    )
    label.loc[matched["pos"].dropna().astype(int).to_numpy()] = 1
    return label


def self_cure_labels(history: History, window_days: int) -> pd.DataFrame:
    """Per invoice: the day of the first recovery and whether it was unprompted."""
    att = history.attempts
    due = history.invoices.set_index("invoice_id")["due_at"]
    success = att[att["outcome"] == "succeeded"].sort_values("attempted_at")
    first = success.drop_duplicates("invoice_id").set_index("invoice_id")
    payments = _customer_payments(history)
    prompted = set()
    msgs = history.messages
    if len(payments) and len(msgs):
        labels = message_labels(history)
        credited = msgs.loc[labels.to_numpy() == 1, "invoice_id"]
        prompted = set(credited)
    day = ((first["attempted_at"] - first.index.map(due)).dt.total_seconds() // 86400).clip(0)
    out = pd.DataFrame({"recovery_day": day})
    out["unprompted"] = (first["initiated_by"] == "customer") & ~first.index.isin(list(prompted))
    out = out.reindex(due.index)
    out["recovery_day"] = out["recovery_day"].fillna(window_days).clip(upper=window_days)
    out["unprompted"] = out["unprompted"].astype("boolean").fillna(False).astype(bool)
    return out


def build_training_data(
    history: History,
    table: DeclineTable,
    window_days: int,
    update: UpdateRequests,
    history_start: pd.Timestamp | None = None,
    active_hour: ActiveHourParams | None = None,
    cell_weights: np.ndarray | None = None,
) -> TrainingData:
    """Every training row of the three models, with features as of decision time.

    ``history_start``: when the exported history begins (default: its first event); a
    part of a partitioned history passes the whole history's start, so its customer
    features are those of the whole history (``training/scale``). ``active_hour``: how
    the customer's active hour weighs its activity events (``train.features.active_hour``;
    default: equally); ``cell_weights``: with learned weighting, the cells' weights
    learned over the whole history (a Dask part; default: learned from ``history``)."""
    events = events_from_history(history)
    log = customer_event_log(history, active_hour, cell_weights)
    index = CustomerIndex.build(log, history_start)
    features = event_features(events, log, table, index=index)
    timeline = history_timeline(history)
    rows = candidate_features(features, timeline, update)
    meta = timeline.loc[rows.index]
    due = events.set_index("event_id")["failed_at"]

    def dataset(kind: str) -> Dataset:
        mask = (meta["kind"] == kind).to_numpy()
        return Dataset(
            features=rows[mask].drop(columns="kind"),
            label=meta.loc[mask, "label"].to_numpy(dtype=int),
            due_at=meta.loc[mask, "key"].map(due).reset_index(drop=True),
            invoice_id=meta.loc[mask, "key"].to_numpy(),
            propensity=meta.loc[mask, "propensity"].to_numpy(dtype=float),
        )

    cure = self_cure_features(features, window_days)
    outcome = self_cure_labels(history, window_days)
    recovery_day = cure["event_id"].map(outcome["recovery_day"]).to_numpy()
    at_risk = cure["day_index"].to_numpy() <= recovery_day
    cure_label = (
        (cure["day_index"].to_numpy() == recovery_day)
        & cure["event_id"].map(outcome["unprompted"]).to_numpy(dtype=bool)
    ).astype(int)
    cure = cure[at_risk]
    self_cure = Dataset(
        features=cure.drop(columns="event_id"),
        label=cure_label[at_risk],
        due_at=cure["event_id"].map(due).reset_index(drop=True),
        invoice_id=cure["event_id"].to_numpy(),
    )
    return TrainingData(dataset("retry"), dataset("message"), self_cure, events, features, log)


def training_data_for(history: History, params: Params, table: DeclineTable) -> TrainingData:
    """The training rows the train stage builds from ``history`` under ``params`` (its
    window, update requests and active-hour weighting), for tools outside that stage."""
    return build_training_data(
        history,
        table,
        params.train.window_days,
        params.retry_rules.update_requests,
        active_hour=params.train.features.active_hour,
    )
