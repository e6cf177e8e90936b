"""smartretry export-outcomes: stored requests, decisions and events as a contract history."""

from __future__ import annotations

import pandas as pd
from api_helpers import flush_decisions, post_json, request_body
from typer.testing import CliRunner

from training.cli.main import app as cli
from training.config.params import ValidateParams
from training.contract.io import load_history


def test_export_produces_a_valid_contract_history(client, settings, tmp_path):
    first = post_json(client, "/v1/recommendations", request_body()).json()
    # a later failure of the same invoice (the first retry failed): one more attempt
    retry = request_body(
        failed_at="2026-11-28T05:00:00Z",
        previous_attempts=[
            {"attempted_at": "2026-11-18T09:00:00Z", "decline_code": "insufficient_funds"},
            {"attempted_at": "2026-11-20T14:03:00Z", "decline_code": "insufficient_funds"},
        ],
    )
    post_json(client, "/v1/recommendations", retry)
    # an invoice of a customer the service never got `customer` for
    post_json(
        client,
        "/v1/recommendations",
        request_body(invoice_id="in_2", customer_id="cus_9", customer=None),
    )
    events = [
        {
            "event_id": "e1",
            "type": "message_sent",
            "invoice_id": "in_1029",
            "occurred_at": "2026-11-20T14:03:00Z",
            "message_id": "m1",
            "channel": "email",
            "template": "payment_link",
            "decision_id": first["decision_id"],
        },
        {
            "event_id": "e2",
            "type": "message_opened",
            "invoice_id": "in_1029",
            "occurred_at": "2026-11-20T15:00:00Z",
            "message_id": "m1",
        },
        {
            "event_id": "e3",
            "type": "message_clicked",
            "invoice_id": "in_1029",
            "occurred_at": "2026-11-20T15:01:00Z",
            "message_id": "m1",
        },
        {
            "event_id": "e4",
            "type": "attempt",
            "invoice_id": "in_1029",
            "occurred_at": "2026-11-28T05:00:00Z",
            "initiated_by": "merchant",
            "outcome": "failed",
            "decline_code": "insufficient_funds",
            "decision_id": first["decision_id"],
        },
        {
            "event_id": "e5",
            "type": "attempt",
            "invoice_id": "in_1029",
            "occurred_at": "2026-12-01T05:00:02Z",
            "initiated_by": "merchant",
            "outcome": "succeeded",
            "decision_id": first["decision_id"],
        },
        {
            "event_id": "e6",
            "type": "attempt",
            "invoice_id": "in_unknown",
            "occurred_at": "2026-12-01T05:00:02Z",
            "initiated_by": "customer",
            "outcome": "succeeded",
        },
    ]
    assert post_json(client, "/v1/outcomes", {"events": events}).status_code == 200
    flush_decisions(client)  # decisions are stored just after their answer

    out = tmp_path / "history"
    result = CliRunner().invoke(
        cli, ["export-outcomes", "--out", str(out), "--database-url", settings.database_url]
    )
    assert result.exit_code == 0, result.output
    assert "1 customers have no country" in result.output
    assert "1 events are about invoices no recommendation request carried" in result.output

    history, report = load_history(out, ValidateParams(max_reject_share=1.0))
    # only cus_9 (no country) is rejected, and with it its invoice and attempts
    assert report.rejected_rows == {"customers": 1, "invoices": 1, "attempts": 2, "messages": 0}
    assert set(history.customers["customer_id"]) == {"cus_77"}
    customer = history.customers.iloc[0]
    assert (customer["timezone"], bool(customer["sms_opt_in"])) == ("Europe/Amsterdam", True)
    assert set(history.invoices["invoice_id"]) == {"in_1029"}
    invoice = history.invoices.iloc[0]
    assert invoice["due_at"] == pd.Timestamp("2026-11-18T09:00:00Z")

    attempts = history.attempts.sort_values("attempted_at")
    assert attempts["attempted_at"].tolist() == [
        pd.Timestamp(t)
        for t in (
            "2026-11-18T09:00:00Z",
            "2026-11-20T14:03:00Z",
            "2026-11-28T05:00:00Z",
            "2026-12-01T05:00:02Z",
        )
    ]
    assert attempts["outcome"].tolist() == ["failed", "failed", "failed", "succeeded"]
    # the attempts at the decision's retry times carry those retries' own propensity (1:
    # the fallback's); the original charge none
    assert attempts["propensity"].isna().tolist() == [True, True, False, False]
    assert (attempts["propensity"].dropna() == 1.0).all()

    message = history.messages.iloc[0]
    assert (message["message_id"], message["template"], message["propensity"]) == (
        "m1",
        "payment_link",
        1.0,
    )
    assert message["opened_at"] == pd.Timestamp("2026-11-20T15:00:00Z")
    assert message["clicked_at"] == pd.Timestamp("2026-11-20T15:01:00Z")


def test_export_of_an_empty_store(tmp_path):
    out = tmp_path / "history"
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    result = CliRunner().invoke(cli, ["export-outcomes", "--out", str(out), "--database-url", url])
    assert result.exit_code == 0, result.output
    history, _ = load_history(out)
    assert all(len(t) == 0 for t in history.tables().values())
