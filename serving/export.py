"""Turn what the service stored into a history in the data contract, for the next training run.

* customers: the values requests carried (latest non-null wins). A customer whose
  requests never carried ``customer`` gets ``timezone`` UTC and ``sms_opt_in`` false (the
  defaults the service decided with) and, as ``signup_at``, its earliest invoice's
  ``due_at``; ``country`` stays empty, so the contract validation rejects such customers
  (and their invoices) and says so: send ``customer`` at least once per customer.
* invoices: as requests carried them; ``due_at`` is the earliest failed charge seen.
* attempts: the failed charges and ``previous_attempts`` of requests, plus every
  ``attempt`` event. An event and a request describing the same charge (same invoice and
  time) are one attempt; the event wins. A merchant attempt that executes a retry of the
  decision it names (the nearest of its retries within ``MATCH_TOLERANCE``) carries that
  retry's own ``propensity``; any other attempt none (the billing system chose its time,
  not the exploration).
* messages: ``message_sent`` events, with ``opened_at`` / ``clicked_at`` from the first
  ``message_opened`` / ``message_clicked`` event of the same ``message_id``; one that
  sends a message of the decision it names (same template and channel, within
  ``MATCH_TOLERANCE``) carries that message's own ``propensity``, any other none.

A returned row's own propensity is the probability that the exploration returned it
(:mod:`training.policy.exploration`), stored with the decision; for decisions stored
before it was (migration 0005) the decision's ``propensity`` stands in: exact for the
first retry, a lower bound for the later ones and the messages.

Events about invoices no request ever carried cannot be placed in the contract (no
invoice row) and are counted in the summary instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select

from serving.store.models import Customer, Decision, Invoice, OutcomeEvent
from training.contract.history import History
from training.contract.io import write_history
from training.contract.tables import CUSTOMERS

UTC = "datetime64[ns, UTC]"
MATCH_TOLERANCE = pd.Timedelta(hours=1)
"""How far a reported attempt or message may be from the decision's retry or message it
executes (a queue that runs late, clocks apart); a decision's retries are the rules'
minimum spacing apart (24 h by default), so at most one is that close."""


@dataclass(frozen=True)
class ExportSummary:
    customers: int
    invoices: int
    attempts: int
    messages: int
    customers_without_country: int
    events_for_unknown_invoices: int
    paths: dict[str, Path]

    def __str__(self) -> str:
        lines = [
            f"exported {self.customers} customers, {self.invoices} invoices, "
            f"{self.attempts} attempts, {self.messages} messages"
        ]
        if self.customers_without_country:
            lines.append(
                f"warning: {self.customers_without_country} customers have no country "
                "(their requests never carried `customer`); validation will reject them"
            )
        if self.events_for_unknown_invoices:
            lines.append(
                f"warning: {self.events_for_unknown_invoices} events are about invoices no "
                "recommendation request carried; left out"
            )
        return "\n".join(lines)


def _read(engine: Engine, model: Any) -> pd.DataFrame:
    table = model.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(table)).mappings().all()
    return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in table.columns])


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True, format="ISO8601").astype(UTC)


def _customers(stored: pd.DataFrame, invoices: pd.DataFrame) -> pd.DataFrame:
    first_due = invoices.groupby("customer_id")["due_at"].min()
    out = stored[list(CUSTOMERS.column_names)].copy()
    out["signup_at"] = _utc(out["signup_at"]).fillna(out["customer_id"].map(first_due))
    out["timezone"] = out["timezone"].fillna("UTC")
    out["sms_opt_in"] = out["sms_opt_in"].astype("boolean").fillna(False).astype(bool)
    return out.reset_index(drop=True)


def _request_attempts(decisions: pd.DataFrame) -> pd.DataFrame:
    requests = decisions["request"].tolist()
    failed = pd.DataFrame(
        {
            "invoice_id": [r["invoice_id"] for r in requests],
            "attempted_at": [r["failed_at"] for r in requests],
            "decline_code": [r["decline_code"] for r in requests],
            "merchant_advice_code": [r.get("merchant_advice_code") for r in requests],
        }
    )
    previous = pd.json_normalize(requests, record_path="previous_attempts", meta=["invoice_id"])
    frames = [failed]
    if not previous.empty:
        frames.append(previous.reindex(columns=failed.columns))
    out = pd.concat(frames, ignore_index=True)
    out["attempted_at"] = _utc(out["attempted_at"])
    out = out.drop_duplicates(["invoice_id", "attempted_at"])
    out["attempt_id"] = (
        out["invoice_id"] + "@" + out["attempted_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
    out["initiated_by"] = "merchant"
    out["outcome"] = "failed"
    out["propensity"] = np.nan
    return out


def _event_frame(events: pd.DataFrame, kind: str) -> pd.DataFrame:
    part = events[events["type"] == kind]
    payload = pd.DataFrame(part["payload"].tolist(), index=part.index)
    base = ["event_id", "invoice_id", "occurred_at", "decision_id", "message_id"]
    payload = payload.reindex(columns=[*base, *(c for c in payload.columns if c not in base)])
    payload["occurred_at"] = _utc(payload["occurred_at"])
    return payload


def _returned(decisions: pd.DataFrame, kind: str, time: str) -> pd.DataFrame:
    """The decisions' returned ``kind`` (``retries`` or ``messages``), one row each, with
    ``decision_id``, the time as ``returned_at`` (messages: also template and channel) and
    ``own``, the row's own propensity (the decision's where it was not stored)."""
    responses = decisions["response"].tolist()
    rows = pd.json_normalize(responses, record_path=kind, meta=["decision_id"])
    if rows.empty:
        return pd.DataFrame(
            {
                "decision_id": pd.Series(dtype=object),
                "returned_at": pd.Series(dtype=UTC),
                "template": pd.Series(dtype=object),
                "channel": pd.Series(dtype=object),
                "own": pd.Series(dtype="float64"),
            }
        )
    rows["returned_at"] = _utc(rows[time])
    rows["rank"] = rows.groupby("decision_id", sort=False).cumcount()
    stored = [r.get(kind) if isinstance(r, dict) else None for r in decisions["row_propensities"]]
    own = pd.Series(stored, index=decisions["decision_id"].to_numpy(), dtype=object)
    own = own.explode().dropna()
    table = pd.DataFrame(
        {
            "decision_id": own.index.to_numpy(),
            "rank": own.groupby(level=0, sort=False).cumcount().to_numpy(),
            "own": own.to_numpy(dtype="float64"),
        }
    )
    rows = rows.merge(table, on=["decision_id", "rank"], how="left")
    decided = decisions.set_index("decision_id")["propensity"].astype("float64")
    rows["own"] = rows["own"].fillna(rows["decision_id"].map(decided))
    return rows.reindex(columns=["decision_id", "returned_at", "template", "channel", "own"])


def _own_propensity(
    reported: pd.DataFrame, time: str, returned: pd.DataFrame, by: list[str]
) -> np.ndarray:
    """Per ``reported`` row, the own propensity of the row of its decision it executes:
    the same decision (and ``by`` columns), the nearest time within ``MATCH_TOLERANCE``;
    NaN when none."""
    out = np.full(len(reported), np.nan)
    named = reported["decision_id"].notna().to_numpy()
    if not named.any() or returned.empty:
        return out
    keys = ["decision_id", *by]
    left = reported.loc[named, [*keys, time]].assign(row=np.flatnonzero(named))
    left = left.astype({k: object for k in keys}).sort_values(time, kind="stable")
    right = returned[[*keys, "returned_at", "own"]].astype({k: object for k in keys})
    matched = pd.merge_asof(
        left,
        right.sort_values("returned_at", kind="stable"),
        left_on=time,
        right_on="returned_at",
        by=keys,
        direction="nearest",
        tolerance=MATCH_TOLERANCE,
    )
    out[matched["row"].to_numpy()] = matched["own"].to_numpy(dtype="float64")
    return out


def _attempts(
    decisions: pd.DataFrame, events: pd.DataFrame, returned: pd.DataFrame
) -> pd.DataFrame:
    from_requests = _request_attempts(decisions) if not decisions.empty else None
    reported = _event_frame(events, "attempt")
    columns = [
        "attempt_id",
        "invoice_id",
        "attempted_at",
        "initiated_by",
        "outcome",
        "decline_code",
        "merchant_advice_code",
        "propensity",
    ]
    if not reported.empty:
        reported = reported.reindex(
            columns=[
                "event_id",
                "attempt_id",
                "invoice_id",
                "occurred_at",
                "initiated_by",
                "outcome",
                "decline_code",
                "merchant_advice_code",
                "decision_id",
            ]
        )
        reported["attempt_id"] = reported["attempt_id"].fillna(reported["event_id"])
        reported = reported.rename(columns={"occurred_at": "attempted_at"})
        own = _own_propensity(reported, "attempted_at", returned, [])
        reported["propensity"] = np.where(reported["initiated_by"] == "merchant", own, np.nan)
        reported = reported.drop_duplicates("attempt_id")
    frames = [f[columns] for f in (reported, from_requests) if f is not None and not f.empty]
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)  # events first: they win the dedup below
    out = out.drop_duplicates(["invoice_id", "attempted_at"]).drop_duplicates("attempt_id")
    out["propensity"] = out["propensity"].astype("float64")
    return out.sort_values(["invoice_id", "attempted_at"], kind="stable").reset_index(drop=True)


def _messages(events: pd.DataFrame, returned: pd.DataFrame) -> pd.DataFrame:
    columns = ["message_id", "invoice_id", "sent_at", "channel", "template", "propensity"]
    sent = _event_frame(events, "message_sent")
    if sent.empty:
        return pd.DataFrame(columns=[*columns, "opened_at", "clicked_at"])
    sent = sent.rename(columns={"occurred_at": "sent_at"}).reindex(
        columns=[*columns[:-1], "decision_id"]
    )
    sent["propensity"] = _own_propensity(sent, "sent_at", returned, ["template", "channel"])
    sent = sent.drop_duplicates("message_id")[columns]
    for kind, column in (("message_opened", "opened_at"), ("message_clicked", "clicked_at")):
        reactions = _event_frame(events, kind)
        first = (
            reactions.groupby("message_id")["occurred_at"].min()
            if not reactions.empty
            else pd.Series(dtype=UTC)
        )
        sent[column] = sent["message_id"].map(first).astype(UTC)
    return sent.sort_values(["invoice_id", "sent_at"], kind="stable").reset_index(drop=True)


def export_history(engine: Engine) -> tuple[History, dict[str, int]]:
    """The stored requests, decisions and outcome events as contract tables."""
    decisions = _read(engine, Decision)
    invoices = _read(engine, Invoice)
    invoices["due_at"] = _utc(invoices["due_at"])
    invoices["amount_minor"] = invoices["amount_minor"].astype("int64")
    invoices = invoices.drop(columns=["first_seen_at", "updated_at"])
    customers = _customers(_read(engine, Customer), invoices)
    events = _read(engine, OutcomeEvent)
    # card updates have no table in the data contract (the rules use them when serving)
    events = events[events["type"] != "payment_method_updated"]
    known = events["invoice_id"].isin(invoices["invoice_id"])
    unknown_events = int((~known).sum())
    events = events[known]
    history = History(
        customers=customers,
        invoices=invoices,
        attempts=_attempts(decisions, events, _returned(decisions, "retries", "at")),
        messages=_messages(events, _returned(decisions, "messages", "send_at")),
    )
    counts = {
        "customers_without_country": int(customers["country"].isna().sum()),
        "events_for_unknown_invoices": unknown_events,
    }
    return history, counts


def export_outcomes(engine: Engine, out: Path | str, fmt: str = "parquet") -> ExportSummary:
    history, counts = export_history(engine)
    paths = write_history(history, out, fmt)
    return ExportSummary(
        customers=len(history.customers),
        invoices=len(history.invoices),
        attempts=len(history.attempts),
        messages=len(history.messages),
        paths=paths,
        **counts,
    )
