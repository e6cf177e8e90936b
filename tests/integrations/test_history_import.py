"""`smartretry import`: each system's saved events become a history `smartretry validate`
accepts; lines that cannot be mapped are rejected with their row and reason."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from training.cli.main import app
from training.contract.io import load_history
from training.contract.tables import TABLES

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "integrations"
SAVED = {
    "stripe": "stripe_events.jsonl",
    "adyen": "adyen_notifications.jsonl",
    "lago": "lago_webhooks.jsonl",
    "chargebee": "chargebee_events.jsonl",
    "recurly": "recurly_export.jsonl",
}
runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize("source", SAVED)
def test_saved_events_become_a_valid_history(tmp_path: Path, source: str) -> None:
    out = tmp_path / "history"
    imported = run("import", source, "--in", str(FIXTURES / SAVED[source]), "--out", str(out))
    assert imported.exit_code == 0, imported.output
    assert "inferred" in imported.output
    validated = run("validate", "--data", str(out), "--max-reject-share", "0")
    assert validated.exit_code == 0, validated.output
    history, _ = load_history(out)
    assert set(history.attempts["outcome"]) == {"failed", "succeeded"}
    assert history.attempts["invoice_id"].isin(history.invoices["invoice_id"]).all()
    assert pd.read_csv(out / "rejects" / "import_rejects.csv").empty


def test_stripe_import_fields(tmp_path: Path) -> None:
    run("import", "stripe", "--in", str(FIXTURES / SAVED["stripe"]), "--out", str(tmp_path))
    history, _ = load_history(tmp_path)
    invoice = history.invoices.set_index("invoice_id").loc["in_1QAbCd2eZvKYlo2CmN0pQr1s"]
    assert (invoice["amount_minor"], invoice["currency"], invoice["card_brand"]) == (
        4900,
        "EUR",
        "visa",
    )
    assert invoice["due_at"] == pd.Timestamp("2025-11-24T16:00:00Z")
    customer = history.customers.set_index("customer_id").loc["cus_R2xYz0AbCdEf12"]
    assert (customer["country"], customer["timezone"]) == ("NL", "Europe/Amsterdam")
    failed = history.attempts[history.attempts["outcome"] == "failed"]
    assert set(failed["decline_code"]) == {"insufficient_funds", "generic_decline"}


def test_unmappable_lines_are_rejected_with_row_and_reason(tmp_path: Path) -> None:
    lines = (FIXTURES / SAVED["stripe"]).read_text().splitlines()
    paid_alone = json.loads(lines[4])
    paid_alone["id"] = "evt_other"
    paid_alone["data"]["object"]["id"] = "in_never_failed"
    no_object = {"id": "evt_x", "type": "charge.failed"}
    events = tmp_path / "events.jsonl"
    events.write_text(
        "\n".join([*lines, lines[0], "{oops", json.dumps(no_object), json.dumps(paid_alone)]) + "\n"
    )
    out = tmp_path / "history"
    result = run("import", "stripe", "--in", str(events), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "ignored 1: duplicate event id" in result.output
    rejects = pd.read_csv(out / "rejects" / "import_rejects.csv")
    assert rejects.to_dict("records") == [
        {"row": 9, "reason": "not a JSON object"},
        {"row": 10, "reason": "malformed event: data.object: field required"},
        {"row": 11, "reason": "success for an invoice with no failure in the export"},
    ]
    assert run("validate", "--data", str(out)).exit_code == 0


def test_unknown_source_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["import", "zuora", "--in", __file__, "--out", str(tmp_path)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2 and "stripe, adyen, lago, chargebee, recurly" in result.output


def test_recurly_import_fields(tmp_path: Path) -> None:
    """Gateway codes with the gateway as processor, Recurly's own code only when the
    gateway sent none, amounts in minor units, due dates and countries from the
    invoices and accounts of the export, unsupported gateways and types ignored."""
    result = run(
        "import", "recurly", "--in", str(FIXTURES / SAVED["recurly"]), "--out", str(tmp_path)
    )
    assert "inferred 1: decline code from Recurly's status_code" in result.output
    assert "ignored 1: card gateway authorize_net is not a processor of the data contract" in (
        result.output
    )
    assert "ignored 1: verify transaction" in result.output
    history, _ = load_history(tmp_path)
    invoices = history.invoices.set_index("invoice_id")
    assert invoices["processor"].to_dict() == {
        "pdkdmg82v7xz": "stripe",
        "qh4z0c9w1y2b": "adyen",
        "t8x2m5v0n7ka": "braintree",
    }
    assert invoices.loc["qh4z0c9w1y2b", ["amount_minor", "currency", "card_brand"]].tolist() == [
        1250,
        "GBP",
        "mastercard",
    ]
    assert invoices.loc["t8x2m5v0n7ka", "due_at"] == pd.Timestamp("2025-11-26T12:00:00Z")
    failed = history.attempts[history.attempts["outcome"] == "failed"].set_index("attempt_id")
    assert failed["decline_code"].to_dict() == {
        "pdkt2qz7r8a1": "insufficient_funds",
        "qhkt5m1n2d3e": "6",
        "qhkt7p8q9f0g": "expired_card",
        "t8kt4u5v6k7l": "2001",
    }
    paid = history.attempts[history.attempts["outcome"] == "succeeded"].set_index("attempt_id")
    assert paid["initiated_by"].to_dict() == {
        "pdkt9w3x1b2c": "merchant",
        "qhkt1r2s3h4j": "customer",
    }
    customers = history.customers.set_index("customer_id")["country"].to_dict()
    assert customers == {"customer-1042": "US", "customer-2208": "GB", "customer-3317": "US"}
    signup = history.customers.set_index("customer_id")["signup_at"]
    assert (signup == pd.Timestamp("2024-03-11T09:15:00Z")).all()  # the accounts' created_at
    assert history.messages.empty
    assert list(history.messages.columns) == list(TABLES["messages"].column_names)
