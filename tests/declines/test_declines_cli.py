"""`smartretry declines explain|list` through typer's CliRunner, mounted in the main app."""

import io
import json

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from training.cli.main import app

runner = CliRunner()


def run(*args):
    return runner.invoke(app, ["declines", *args])


def test_explain_prints_category_rule_source_and_version(table):
    result = run("explain", "--processor", "stripe", "--code", "Insufficient Funds")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "category:      insufficient_funds" in out
    assert "retryable:     yes" in out
    assert "rule:          retry_allowed" in out
    assert "https://docs.stripe.com/declines/codes" in out
    assert f"table version: {table.version}" in out


@pytest.mark.parametrize(
    ("args", "limit", "dated"),
    [
        (
            ["--processor", "stripe", "--card-brand", "visa"],
            "visa_max_reattempts_30d = 20",
            "2025-05-25",
        ),
        (
            ["--processor", "adyen", "--card-brand", "mastercard"],
            "mastercard_max_attempts_24h = 10",
            "October 2022",
        ),
        (["--processor", "bacs"], "bacs_representment_window_days = 30", "one month"),
    ],
)
def test_explain_states_the_current_limits_with_dates_and_sources(args, limit, dated):
    result = run("explain", *args, "--code", "insufficient_funds")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("limit:")]
    stated = next(line for line in lines if limit in line)
    assert dated in stated and "Source:" in stated
    assert "code checked:" in result.output


def test_explain_json_lists_the_limits_and_when_the_code_was_checked():
    result = run(
        "explain", "--processor", "braintree", "--code", "2107", "--card-brand", "visa", "--json"
    )
    data = json.loads(result.output)
    assert (data["retryable"], data["allowed"]) == ("no", False)
    assert data["code_checked_on"] == "2026-12-05"
    assert {lim["name"] for lim in data["limits"]} >= {"visa_max_reattempts_30d"}


def test_explain_json_with_a_mac(table):
    result = run("explain", "--processor", "braintree", "--code", " 2001 ", "--mac", "21", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["code"] == "2001" and data["code_category"] == "insufficient_funds"
    assert (data["category"], data["retryable"], data["allowed"]) == (
        "dispute_or_revoked",
        "no",
        False,
    )
    assert data["rule"] == "mastercard_mac_stop"
    assert "Mastercard" in data["rule_source"]
    assert data["merchant_advice_code"] == {
        "code": "21",
        "known": True,
        "description": "Payment cancellation: stop recurring payment",
    }
    assert data["card_brand"] == "mastercard"
    assert data["table_version"] == table.version


@pytest.mark.parametrize(
    ("args", "method", "rule"),
    [
        (["--processor", "ach", "--code", "r1"], "ach_debit", "retry_allowed"),
        (["--processor", "sepa", "--code", "MD06"], "sepa_debit", "hard_decline"),
        (["--processor", "visa", "--code", "R1"], "card", "hard_decline"),
        (["--processor", "stripe", "--code", "brand_new_code"], "card", "unknown_code"),
    ],
)
def test_explain_picks_the_payment_method_from_the_processor(args, method, rule):
    data = json.loads(run("explain", *args, "--json").output)
    assert (data["payment_method"], data["rule"]) == (method, rule)


def test_explain_unknown_code_says_so():
    result = run("explain", "--processor", "stripe", "--code", "brand_new_code")
    assert result.exit_code == 0
    assert "NOT in the reference table" in result.output
    assert "category:      other" in result.output


def test_explain_reads_limits_from_params(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"retry_rules": {"visa_max_reattempts_30d": 3}}))
    data = json.loads(
        run(
            "explain", "--processor", "visa", "--code", "51", "--json", "--params", str(params)
        ).output
    )
    assert data["max_additional_retries"] == 3


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["explain", "--processor", "paypal", "--code", "x"], "--processor"),
        (["list", "--processor", "paypal"], "--processor"),
        (
            ["explain", "--processor", "stripe", "--code", "x", "--payment-method", "cash"],
            "--payment-method",
        ),
        (["list", "--json", "--csv"], "--json"),
    ],
)
def test_bad_options_name_the_option(args, option):
    result = run(*args)
    assert result.exit_code == 2
    assert option in result.output
    assert "paypal" in result.output or "cash" in result.output or "choose one" in result.output


def test_list_json_is_the_whole_table(table):
    result = run("list", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["version"] == table.version
    assert len(data["rows"]) == len(table.rows)
    assert {r["processor"] for r in data["rows"]} == set(table.vocabularies)


def test_list_csv_round_trips(table):
    result = run("list", "--csv", "--processor", "SEPA")
    assert result.exit_code == 0
    assert result.output.startswith(f"# version: {table.version}\n")
    rows = pd.read_csv(io.StringIO(result.output), comment="#", dtype=str, keep_default_na=False)
    expected = table.rows[table.rows["processor"] == "sepa"]
    assert rows["code"].tolist() == expected["code"].tolist()
    assert rows["source"].tolist() == expected["source"].tolist()


def test_list_text(table):
    result = run("list", "--processor", "mastercard_mac")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == f"decline reference table, version {table.version}, 12 rows"
    assert lines[1].split() == ["processor", "code", "category", "retryable", "description"]
    assert len(lines) == 2 + 12
