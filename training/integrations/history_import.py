"""Saved billing-system events (JSON lines, one event as the system sent it per line)
turned into a history in the data contract, with a rejects file and a summary of what
was inferred.

Every line goes through the same mapping as the webhooks (:mod:`training.integrations`):
a failure becomes a failed attempt (and its invoice and customer), a success a succeeded
attempt of an invoice seen failing. What the events do not say is inferred and counted:
an invoice's ``due_at`` is its first failure, a customer's ``signup_at`` its first
event (Recurly: its account's ``created_at`` when not after that), a missing time zone the first of its country's zones (tz database ``zone.tab``),
failed attempts are the merchant's. An invoice's ``due_at`` is the export's own when it has
one (Recurly) and it is not after the first failure. Billing systems do not report
dunning messages, so ``messages`` is empty (with the contract's columns); ``smartretry
train`` then learns without a message model (docs/integrations.md).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from training.contract.history import History
from training.contract.io import write_history
from training.contract.tables import TABLES
from training.integrations import adyen, chargebee, lago, recurly, stripe
from training.integrations.common import MalformedEvent, MappedEvent, optional, require

SOURCES = ("stripe", "adyen", "lago", "chargebee", "recurly")


@dataclass
class ImportReport:
    """Counts of what was read, mapped, rejected and inferred."""

    source: str
    lines: int = 0
    failures: int = 0
    successes: int = 0
    ignored: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    inferred: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        parts = [
            f"{self.source}: {self.lines} lines, {self.failures} failures, "
            f"{self.successes} successes, {self.rejected} rejected (rejects/import_rejects.csv)"
        ]
        parts += [f"ignored {n}: {reason}" for reason, n in sorted(self.ignored.items())]
        parts += [f"inferred {n}: {what}" for what, n in sorted(self.inferred.items()) if n]
        return "\n".join(parts)


@lru_cache(maxsize=1)
def _zone_by_country() -> dict[str, str]:
    """The first zone listed per country in the tz database's ``zone.tab``."""
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text()
    zones: dict[str, str] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            country, _, zone = line.split("\t")[:3]
            zones.setdefault(country, zone)
    return zones


def _read_lines(path: Path) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as error:
                yield number, error


def _mapper(
    source: str, report: ImportReport
) -> Callable[[int, dict[str, Any]], list[MappedEvent]]:
    """A function from (line number, event) to mapped events for ``source``."""
    if source == "stripe":
        return lambda _, event: [stripe.map_event(event)]
    if source == "chargebee":
        return lambda _, event: [chargebee.map_event(event)]
    if source == "adyen":
        return lambda _, body: [
            adyen.map_item(entry["NotificationRequestItem"])
            for entry in body.get("notificationItems", [])
        ]
    if source == "recurly":
        return _recurly_mapper(report)
    invoices: dict[str, dict[str, Any]] = {}  # Lago: the invoices sent so far, by id

    def lago_map(number: int, body: dict[str, Any]) -> list[MappedEvent]:
        invoice = lago.invoice_of(body)
        if invoice is not None:
            invoices[str(invoice["lago_id"])] = invoice
        failed = lago.failed_invoice_id(body)
        # a failure's time: the invoice's last update (saved webhooks carry no receipt time)
        known = invoices.get(failed) if failed else None
        when = str((known or {}).get("updated_at") or "")
        if known is not None:
            report.inferred["Lago failure time from its invoice's last update"] += 1
        return [lago.map_event(body, f"line-{number}", when, known)]

    return lago_map


def _recurly_mapper(report: ImportReport) -> Callable[[int, dict[str, Any]], list[MappedEvent]]:
    """Recurly: accounts and invoices read so far give countries, sign-up times and due
    dates to the transactions that follow them."""
    countries: dict[str, str] = {}  # account id -> country
    signups: dict[str, str] = {}  # account id -> created_at
    due: dict[str, str] = {}  # invoice id -> due_at

    def recurly_map(_: int, line: dict[str, Any]) -> list[MappedEvent]:
        mapped: list[MappedEvent] = []
        for obj in recurly.objects_of(line):
            kind = obj.get("object")
            if kind == "account":
                country = recurly.account_country(obj)
                if country:
                    countries[str(require(obj, "id"))] = country
                if obj.get("created_at"):
                    signups[str(require(obj, "id"))] = recurly.iso_time(
                        obj["created_at"], "created_at"
                    )
                report.ignored["Recurly account (read for its country and sign-up)"] += 1
            elif kind == "invoice":
                if obj.get("due_at"):
                    due[str(require(obj, "id"))] = recurly.iso_time(obj["due_at"], "due_at")
                report.ignored["Recurly invoice (read for its due date)"] += 1
            else:
                account = str(optional(obj, "account.id"))
                event = recurly.map_transaction(obj, countries.get(account))
                if event.request is not None and account in signups:
                    customer = event.request.setdefault("customer", {})
                    customer["signup_at"] = signups[account]
                if event.request is not None:
                    if event.extra.get("recurly_status_code"):
                        report.inferred["decline code from Recurly's status_code"] += 1
                    invoice_due = due.get(str(event.request["invoice_id"]))
                    if invoice_due:
                        event.request["due_at"] = invoice_due
                mapped.append(event)
        return mapped

    return recurly_map


def rejects_path(out: Path) -> Path:
    """The importer's rejects (``smartretry validate`` writes ``rejects/rejects.csv``)."""
    return out / "rejects" / "import_rejects.csv"


def import_events(source: str, events_path: Path, out: Path, fmt: str = "csv") -> ImportReport:
    """Write ``out/<table>.<fmt>`` and :func:`rejects_path`; return the report."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    report = ImportReport(source)
    mapper = _mapper(source, report)
    failures: list[dict[str, Any]] = []
    successes: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, event in _read_lines(events_path):
        report.lines += 1
        if not isinstance(event, dict):
            rejects.append({"row": number, "reason": "not a JSON object"})
            continue
        try:
            mapped_events = mapper(number, event)
        except (MalformedEvent, KeyError, TypeError) as error:
            rejects.append({"row": number, "reason": f"malformed event: {error}"})
            continue
        for mapped in mapped_events:
            if mapped.event_id in seen:
                report.ignored["duplicate event id"] += 1
            elif mapped.kind == "failure" and mapped.request is not None:
                failures.append({"row": number, "event_id": mapped.event_id, **mapped.request})
            elif mapped.kind == "outcome" and mapped.outcome is not None:
                successes.append({"row": number, **mapped.outcome})
            else:
                report.ignored[mapped.reason or mapped.kind] += 1
            seen.add(mapped.event_id)
    history, table_rejects = _tables(failures, successes, report)
    rejects += table_rejects
    report.failures, report.successes, report.rejected = len(failures), len(successes), len(rejects)
    write_history(history, out, fmt)
    (out / "rejects").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rejects, columns=["row", "reason"]).to_csv(rejects_path(out), index=False)
    return report


def _tables(
    failures: list[dict[str, Any]], successes: list[dict[str, Any]], report: ImportReport
) -> tuple[History, list[dict[str, Any]]]:
    cols = {name: list(table.column_names) for name, table in TABLES.items()}
    failed = pd.DataFrame(
        failures,
        columns=[
            *cols["invoices"],
            "row",
            "event_id",
            "decline_code",
            "merchant_advice_code",
            "failed_at",
            "customer",
        ],
    )
    failed["failed_at"] = pd.to_datetime(failed["failed_at"], utc=True, format="ISO8601")
    failed["due_at"] = pd.to_datetime(failed["due_at"], utc=True, format="ISO8601")
    failed_attempts = pd.DataFrame(
        {
            "attempt_id": failed["event_id"],
            "invoice_id": failed["invoice_id"],
            "attempted_at": failed["failed_at"],
            "initiated_by": "merchant",
            "outcome": "failed",
            "decline_code": failed["decline_code"],
            "merchant_advice_code": failed["merchant_advice_code"],
        }
    )
    report.inferred["failed attempts initiated by the merchant"] += len(failed)
    invoices = (
        failed.sort_values("failed_at")
        .groupby("invoice_id", sort=True)
        .agg(
            customer_id=("customer_id", "last"),
            amount_minor=("amount_minor", "last"),
            currency=("currency", "last"),
            payment_method=("payment_method", "last"),
            card_brand=("card_brand", "last"),
            processor=("processor", "last"),
            first_failure=("failed_at", "min"),
            given_due_at=("due_at", "min"),
        )
        .reset_index()
    )
    given = invoices["given_due_at"] <= invoices["first_failure"]  # NaT compares False
    invoices["due_at"] = invoices["given_due_at"].where(given, invoices["first_failure"])
    report.inferred["invoice due_at from its first failure"] += int((~given).sum())

    paid = pd.DataFrame(
        successes,
        columns=["row", "event_id", "invoice_id", "occurred_at", "attempt_id", "initiated_by"],
    )
    known = paid["invoice_id"].isin(invoices["invoice_id"])
    rejects = [
        {"row": row, "reason": "success for an invoice with no failure in the export"}
        for row in paid.loc[~known, "row"]
    ]
    paid = paid[known]
    succeeded = pd.DataFrame(
        {
            "attempt_id": paid["attempt_id"].fillna(paid["event_id"]),
            "invoice_id": paid["invoice_id"],
            "attempted_at": pd.to_datetime(paid["occurred_at"], utc=True, format="ISO8601"),
            "initiated_by": paid["initiated_by"],
            "outcome": "succeeded",
        }
    )
    attempts = pd.concat([failed_attempts, succeeded], ignore_index=True)
    attempts = attempts.drop_duplicates("attempt_id").reindex(columns=cols["attempts"])

    customers, customer_rejects = _customers(failed, report)
    return (
        History(
            customers=customers,
            invoices=invoices.reindex(columns=cols["invoices"]),
            attempts=attempts,
            messages=pd.DataFrame(columns=cols["messages"]),
        ),
        rejects + customer_rejects,
    )


def _customers(
    failed: pd.DataFrame, report: ImportReport
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    given = pd.json_normalize(failed["customer"].where(failed["customer"].notna(), {}).tolist())
    frame = pd.DataFrame(
        {
            "row": failed["row"].to_numpy(),
            "customer_id": failed["customer_id"].to_numpy(),
            "failed_at": failed["failed_at"].to_numpy(),
            "country": given.get("country", pd.Series(index=given.index, dtype=object)).to_numpy(),
            "timezone": given.get(
                "timezone", pd.Series(index=given.index, dtype=object)
            ).to_numpy(),
            "given_signup_at": pd.to_datetime(
                given.get("signup_at", pd.Series(index=given.index, dtype=object)),
                utc=True,
                errors="coerce",
            ).to_numpy(),
        }
    )
    customers = (
        frame.sort_values("failed_at")
        .groupby("customer_id", sort=True)
        .agg(
            row=("row", "first"),
            country=("country", "last"),
            timezone=("timezone", "last"),
            signup_at=("failed_at", "min"),
            given_signup_at=("given_signup_at", "min"),
        )
        .reset_index()
    )
    # the export's own sign-up time (Recurly: the account's created_at) when it has one
    # and it is not after the customer's first failure; else the first event
    first_event = pd.to_datetime(customers["signup_at"], utc=True)
    given_signup = pd.to_datetime(customers["given_signup_at"], utc=True)
    given_ok = given_signup.notna() & (given_signup <= first_event)
    customers["signup_at"] = first_event.where(~given_ok, given_signup)
    report.inferred["customer signup_at from its first event"] += int((~given_ok).sum())
    missing_zone = customers["timezone"].isna()
    customers.loc[missing_zone, "timezone"] = customers.loc[missing_zone, "country"].map(
        _zone_by_country()
    )
    report.inferred["customer timezone from its country"] += int(
        (missing_zone & customers["timezone"].notna()).sum()
    )
    no_country = customers["country"].isna()
    rejects = [
        {"row": row, "reason": f"customer {cid}: country unknown (the events carry none)"}
        for row, cid in zip(
            customers.loc[no_country, "row"], customers.loc[no_country, "customer_id"], strict=True
        )
    ]
    columns = list(TABLES["customers"].column_names)
    return customers.loc[~no_country].reindex(columns=columns), rejects
