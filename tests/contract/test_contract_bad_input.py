"""Every bad-input case of the contract: the row is rejected with the exact reason expected."""

from __future__ import annotations

import pandas as pd
import pytest

from training.contract.tables import TABLES

# (table, row, column, bad value, {(field, reason)} expected for that row, and only that)
CASES = [
    # unknown enum values
    (
        "invoices",
        0,
        "payment_method",
        "cash",
        {
            (
                "payment_method",
                "payment_method is not one of card, sepa_debit, bacs_debit, ach_debit",
            )
        },
    ),
    (
        "invoices",
        0,
        "card_brand",
        "diners",
        {("card_brand", "card_brand is not one of visa, mastercard, amex, discover, other")},
    ),
    (
        "invoices",
        1,
        "processor",
        "paypal",
        {("processor", "processor is not one of stripe, adyen, braintree, sepa, bacs, ach")},
    ),
    (
        "attempts",
        0,
        "initiated_by",
        "bot",
        {("initiated_by", "initiated_by is not one of merchant, customer")},
    ),
    ("attempts", 1, "outcome", "pending", {("outcome", "outcome is not one of succeeded, failed")}),
    ("messages", 0, "channel", "push", {("channel", "channel is not one of email, sms")}),
    # conditional required values
    (
        "invoices",
        0,
        "card_brand",
        "",
        {("card_brand", "card_brand is missing (required for card payments)")},
    ),
    (
        "attempts",
        0,
        "decline_code",
        "",
        {("decline_code", "decline_code is missing (required when outcome is failed)")},
    ),
    # foreign keys that point nowhere
    (
        "invoices",
        2,
        "customer_id",
        "nobody",
        {("customer_id", "customer_id not found in customers")},
    ),
    ("attempts", 3, "invoice_id", "i404", {("invoice_id", "invoice_id not found in invoices")}),
    ("messages", 1, "invoice_id", "i404", {("invoice_id", "invoice_id not found in invoices")}),
    # timestamps that do not parse, or carry no offset
    (
        "customers",
        0,
        "signup_at",
        "yesterday",
        {("signup_at", "signup_at is not a valid ISO 8601 timestamp")},
    ),
    (
        "invoices",
        1,
        "due_at",
        "2024-13-45T00:00:00Z",
        {("due_at", "due_at is not a valid ISO 8601 timestamp")},
    ),
    (
        "messages",
        0,
        "opened_at",
        "03/02/2024 09:00",
        {("opened_at", "opened_at is not a valid ISO 8601 timestamp")},
    ),
    (
        "attempts",
        1,
        "attempted_at",
        "2024-02-04T10:00:00",
        {("attempted_at", "attempted_at has no UTC offset or Z")},
    ),
    ("messages", 1, "sent_at", "2024-02-15", {("sent_at", "sent_at has no UTC offset or Z")}),
    # amounts
    ("invoices", 0, "amount_minor", "-100", {("amount_minor", "amount_minor is not > 0")}),
    ("invoices", 0, "amount_minor", "0", {("amount_minor", "amount_minor is not > 0")}),
    ("invoices", 0, "amount_minor", "12.5", {("amount_minor", "amount_minor is not an integer")}),
    ("invoices", 0, "amount_minor", "ten", {("amount_minor", "amount_minor is not an integer")}),
    # time order
    (
        "attempts",
        1,
        "attempted_at",
        "2024-01-31T09:00:00Z",
        {("attempted_at", "attempted_at is before its invoice's due_at")},
    ),
    (
        "attempts",
        0,
        "attempted_at",
        "2024-02-01T09:59:59+01:00",  # 08:59:59Z, due 09:00Z
        {("attempted_at", "attempted_at is before its invoice's due_at")},
    ),
    (
        "messages",
        0,
        "sent_at",
        "2024-02-28T08:00:00Z",
        {("sent_at", "sent_at is before its invoice's due_at")},
    ),
    (
        "messages",
        0,
        "opened_at",
        "2024-03-02T07:59:00Z",
        {("opened_at", "opened_at is before sent_at")},
    ),
    (
        "messages",
        1,
        "clicked_at",
        "2024-02-15T17:00:00Z",
        {("clicked_at", "clicked_at is before sent_at")},
    ),
    # propensity, floats and booleans
    ("attempts", 1, "propensity", "0", {("propensity", "propensity is not in (0, 1]")}),
    ("attempts", 1, "propensity", "1.5", {("propensity", "propensity is not in (0, 1]")}),
    ("messages", 0, "propensity", "-0.1", {("propensity", "propensity is not in (0, 1]")}),
    ("messages", 0, "propensity", "high", {("propensity", "propensity is not a number")}),
    (
        "customers",
        1,
        "sms_opt_in",
        "maybe",
        {("sms_opt_in", "sms_opt_in is not a boolean (true/false)")},
    ),
    # codes: ISO 3166-1, ISO 4217, IANA
    ("customers", 0, "country", "XX", {("country", "country is not an ISO 3166-1 alpha-2 code")}),
    ("customers", 0, "country", "nl", {("country", "country is not an ISO 3166-1 alpha-2 code")}),
    ("customers", 1, "country", "USA", {("country", "country is not an ISO 3166-1 alpha-2 code")}),
    ("invoices", 2, "currency", "EURO", {("currency", "currency is not an ISO 4217 code")}),
    (
        "customers",
        0,
        "timezone",
        "Mars/Olympus_Mons",
        {("timezone", "timezone is not an IANA time zone")},
    ),
    ("customers", 0, "timezone", "CEST", {("timezone", "timezone is not an IANA time zone")}),
    # unique ids: the later row is rejected, the first one kept
    (
        "customers",
        1,
        "customer_id",
        "c1",
        {("customer_id", "duplicate customer_id (first occurrence kept)")},
    ),
    (
        "invoices",
        2,
        "invoice_id",
        "i1",
        {("invoice_id", "duplicate invoice_id (first occurrence kept)")},
    ),
    (
        "attempts",
        4,
        "attempt_id",
        "a1",
        {("attempt_id", "duplicate attempt_id (first occurrence kept)")},
    ),
    (
        "messages",
        1,
        "message_id",
        "m1",
        {("message_id", "duplicate message_id (first occurrence kept)")},
    ),
]

# every required column left empty
CASES += [
    (name, 0, column, "", {(column, f"{column} is missing (required)")})
    for name, table in TABLES.items()
    for column in table.required_columns
]


def _case_id(case: tuple) -> str:
    table, row, column, value, _ = case
    return f"{table}.{column}={value!r}@{row}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_bad_value_rejected_with_exact_reason(raw_tables, validate_csv, case):
    table, row, column, value, expected = case
    tables = raw_tables
    tables[table].loc[row, column] = value
    history, report = validate_csv(tables)

    mine = report.rejects[report.rejects["table"] == table]
    assert set(mine["row"]) == {row}
    assert set(zip(mine["field"], mine["reason"], strict=True)) == expected
    assert len(history.tables()[table]) == len(tables[table]) - 1
    assert report.rejected_rows[table] == 1


def test_reject_line_carries_key_and_raw_row(raw_tables, validate_csv):
    tables = raw_tables
    tables["invoices"]["note"] = "kept in raw"
    tables["invoices"].loc[1, "amount_minor"] = "-4500"
    _, report = validate_csv(tables)
    line = report.rejects.iloc[0]
    assert (line["table"], line["row"], line["id"], line["field"]) == (
        "invoices",
        1,
        "i2",
        "amount_minor",
    )
    raw = pd.read_json(pd.io.common.StringIO(line["raw"]), typ="series", dtype=False)
    assert raw["amount_minor"] == "-4500" and raw["note"] == "kept in raw"


def test_row_broken_two_ways_lists_both_reasons(raw_tables, validate_csv):
    tables = raw_tables
    tables["invoices"].loc[0, ["currency", "processor"]] = ["EURO", "paypal"]
    _, report = validate_csv(tables)
    mine = report.rejects[report.rejects["table"] == "invoices"]
    assert sorted(mine["field"]) == ["currency", "processor"]
    assert report.rejected_rows["invoices"] == 1


def test_rejected_parent_rejects_its_children(raw_tables, validate_csv):
    tables = raw_tables
    tables["customers"].loc[0, "country"] = "XX"  # c1 owns invoices i1, i2
    history, report = validate_csv(tables)
    rejects = report.rejects.set_index(["table", "id"])["reason"]
    assert rejects["invoices", "i1"] == "customer_id refers to a rejected customers row"
    assert rejects["invoices", "i2"] == "customer_id refers to a rejected customers row"
    for attempt in ("a1", "a2", "a3"):
        assert rejects["attempts", attempt] == "invoice_id refers to a rejected invoices row"
    assert rejects["messages", "m1"] == "invoice_id refers to a rejected invoices row"
    assert list(history.invoices["invoice_id"]) == ["i3"]
    assert list(history.attempts["attempt_id"]) == ["a4", "a5"]
    assert list(history.messages["message_id"]) == ["m2"]


def test_duplicate_keeps_first_row(raw_tables, validate_csv):
    tables = raw_tables
    tables["customers"].loc[1, "customer_id"] = "c1"  # c2 disappears, its invoice i3 dangles
    history, report = validate_csv(tables)
    assert list(history.customers["country"]) == ["NL"]
    i3 = report.rejects[(report.rejects["table"] == "invoices") & (report.rejects["id"] == "i3")]
    assert list(i3["reason"]) == ["customer_id not found in customers"]


def test_accepted_forms(raw_tables, validate_csv):
    tables = raw_tables
    tables["invoices"].loc[0, "due_at"] = "2024-02-01 10:00:00+01:00"
    tables["invoices"].loc[1, "due_at"] = "2024-03-01T01:00:00-0500"
    tables["customers"]["sms_opt_in"] = ["TRUE", "0"]
    tables["customers"].loc[1, "sms_opt_in"] = ""
    tables["attempts"].loc[0, "attempted_at"] = "2024-02-01T09:00:00Z"  # exactly due_at
    tables["invoices"].loc[1, "card_brand"] = "visa"  # not required for SEPA, allowed
    history, report = validate_csv(tables)
    assert report.total_rejected == 0
    assert list(history.invoices["due_at"].dt.hour) == [9, 6, 14]
    assert list(history.customers["sms_opt_in"]) == [True, False]


def test_missing_optional_columns_get_defaults(raw_tables, validate_csv):
    tables = raw_tables
    tables["customers"] = tables["customers"].drop(columns=["sms_opt_in", "plan"])
    tables["messages"] = tables["messages"].drop(columns=["opened_at", "propensity"])
    history, report = validate_csv(tables)
    assert report.total_rejected == 0
    assert history.customers["sms_opt_in"].dtype == bool
    assert not history.customers["sms_opt_in"].any()
    assert history.customers["plan"].isna().all()
    assert str(history.messages["opened_at"].dtype) == "datetime64[ns, UTC]"
    assert history.messages["propensity"].isna().all()
