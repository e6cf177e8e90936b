"""The retry-rules engine: caps, merchant advice codes, schemes, updates, unknown codes."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import yaml

from training.config.params import load_params
from training.declines.rules import RetryLimits, RetryRules
from training.declines.table import HARD_CATEGORIES

FAILED_AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)


def card(code, brand="visa", mac=None, processor="stripe", **kw):
    return dict(
        processor=processor,
        payment_method="card",
        card_brand=brand,
        decline_code=code,
        merchant_advice_code=mac,
        failed_at=FAILED_AT,
        **kw,
    )


def debit(processor, code, **kw):
    method = {"sepa": "sepa_debit", "bacs": "bacs_debit", "ach": "ach_debit"}[processor]
    return dict(
        processor=processor,
        payment_method=method,
        card_brand=None,
        decline_code=code,
        merchant_advice_code=None,
        failed_at=FAILED_AT,
        **kw,
    )


def days_ago(*days):
    return [FAILED_AT - d * D for d in days]


# --- card network caps over a rolling 30 days ---------------------------------------------
@pytest.mark.parametrize(
    ("previous", "allowed", "left", "rule"),
    [
        ([], True, 20, "retry_allowed"),
        (days_ago(*range(1, 20)), True, 1, "retry_allowed"),  # 19 before + this one = 20
        (days_ago(*range(1, 21)), False, 0, "visa_reattempt_cap"),  # 21 attempts in 30 days
        (days_ago(*range(1, 20), 31, 40), True, 1, "retry_allowed"),  # older ones roll off
    ],
)
def test_visa_reattempt_cap_counts_attempts_in_the_last_30_days(
    rules, previous, allowed, left, rule
):
    d = rules.decide(**card("insufficient_funds"), previous_attempts=previous)
    assert (d.allowed, d.max_additional_retries, d.rule) == (allowed, left, rule)
    assert "Visa" in d.source and "2025-05-25" in d.source


def test_visa_counts_customer_initiated_attempts_apart(rules):
    """Visa counts merchant-initiated reattempts apart from the customer's own attempts;
    Mastercard counts every attempt on the card."""
    at = days_ago(*range(1, 21))  # 20 earlier attempts: the Visa cap is used up
    events = pd.DataFrame(
        [
            {**card("insufficient_funds", brand), "event_id": brand}
            for brand in ("visa", "mastercard")
        ]
    )
    for who, visa_left in (("merchant", 0), ("customer", 20)):
        previous = pd.DataFrame(
            {
                "event_id": np.repeat(["visa", "mastercard"], len(at)),
                "attempted_at": at + at,
                "initiated_by": who,
            }
        )
        out = rules.decide_many(events, previous).set_index(events["event_id"])
        assert out.loc["visa", "max_additional_retries"] == visa_left
        assert out.loc["mastercard", "max_additional_retries"] == 35 - 21
    bad = pd.DataFrame({"event_id": ["visa"], "attempted_at": days_ago(1), "initiated_by": ["x"]})
    with pytest.raises(ValueError, match="initiated_by: expected merchant or customer"):
        rules.decide_many(events, bad)


def test_mastercard_cap_is_35_attempts_in_30_days(rules):
    d = rules.decide(
        **card("insufficient_funds", "mastercard"), previous_attempts=days_ago(*range(1, 30))
    )
    assert d.max_additional_retries == 35 - 30
    d = rules.decide(
        **card("insufficient_funds", "mastercard"),
        previous_attempts=[FAILED_AT - k * 0.5 * D for k in range(1, 35)],
    )
    assert (d.allowed, d.rule) == (False, "mastercard_attempt_cap")


def test_mastercard_24h_cap_pushes_the_next_retry_out(rules):
    lim = RetryLimits(min_spacing_hours=1, mastercard_max_attempts_24h=3)
    d = RetryRules(lim, rules.table).decide(
        **card("insufficient_funds", "mastercard"),
        previous_attempts=[FAILED_AT - 2 * H, FAILED_AT - 4 * H],
    )
    assert d.not_before == FAILED_AT + 24 * H


def test_caps_are_configuration(rules):
    strict = RetryRules(RetryLimits(visa_max_reattempts_30d=2), rules.table)
    assert (
        strict.decide(
            **card("insufficient_funds"), previous_attempts=days_ago(1)
        ).max_additional_retries
        == 1
    )
    assert not strict.decide(**card("insufficient_funds"), previous_attempts=days_ago(1, 2)).allowed


# --- Mastercard merchant advice codes -----------------------------------------------------------
@pytest.mark.parametrize(
    ("code", "mac", "category", "retryable", "rule"),
    [
        ("insufficient_funds", "03", "do_not_honor", "no", "mastercard_mac_stop"),
        ("insufficient_funds", "21", "dispute_or_revoked", "no", "mastercard_mac_stop"),
        ("generic_decline", "01", "card_invalid", "after_update", "mastercard_mac_update_first"),
        ("insufficient_funds", "04", "card_invalid", "after_update", "mastercard_mac_update_first"),
        ("stolen_card", "01", "lost_or_stolen", "no", "hard_decline"),  # hard stays hard
        ("insufficient_funds", "02", "insufficient_funds", "yes", "mastercard_mac_retry_later"),
        ("expired_card", "02", "expired_card", "after_update", "after_update"),
        ("insufficient_funds", "99", "insufficient_funds", "yes", "retry_allowed"),  # unknown MAC
    ],
)
def test_mac_overrides_the_code(rules, code, mac, category, retryable, rule):
    d = rules.decide(**card(code, "mastercard", mac))
    assert (d.category, d.retryable, d.rule) == (category, retryable, rule)
    if retryable == "no":
        assert not d.allowed and d.max_additional_retries == 0 and d.not_before is None


@pytest.mark.parametrize(
    ("mac", "hours"), [("02", 72), ("24", 24), ("25", 24), ("27", 96), ("30", 240)]
)
def test_mac_retry_later_waits(rules, mac, hours):
    d = rules.decide(**card("do_not_honor", "mastercard", mac))
    assert d.allowed and d.not_before == FAILED_AT + hours * H


def test_mac02_wait_is_configuration(rules):
    lim = RetryLimits(mac02_wait_hours=30, min_spacing_hours=0)
    d = RetryRules(lim, rules.table).decide(**card("do_not_honor", "mastercard", "02"))
    assert d.not_before == FAILED_AT + 30 * H


def test_mac_is_ignored_outside_cards(rules):
    d = rules.decide(**debit("sepa", "AM04"), previous_attempts=[])
    with_mac = rules.decide(**{**debit("sepa", "AM04"), "merchant_advice_code": "03"})
    assert d == with_mac and d.allowed


# --- debit schemes ----------------------------------------------------------------------------
@pytest.mark.parametrize("code", ["R01", "R09", "r1"])
@pytest.mark.parametrize(("previous", "left"), [([], 2), (days_ago(5), 1), (days_ago(5, 10), 0)])
def test_ach_r01_r09_at_most_two_representments(rules, code, previous, left):
    d = rules.decide(**debit("ach", code), previous_attempts=previous)
    assert d.max_additional_retries == left
    assert d.allowed is (left > 0)
    if left == 0:
        assert d.rule == "ach_representment_cap" and "Nacha" in d.source


def test_ach_reinitiation_window_is_180_days(rules):
    d = rules.decide(**debit("ach", "R01"), previous_attempts=days_ago(181))
    assert (d.allowed, d.rule) == (False, "ach_reinitiation_window")


@pytest.mark.parametrize(
    ("processor", "code"),
    [
        ("ach", "R02"),
        ("ach", "R10"),
        ("ach", "R29"),
        ("ach", "R08"),
        ("ach", "R16"),
        ("sepa", "MD06"),
        ("sepa", "AC04"),
        ("bacs", "B"),
        ("bacs", "ADDACS-1"),
    ],
)
def test_debit_hard_returns_are_never_retried(rules, processor, code):
    d = rules.decide(**debit(processor, code))
    assert not d.allowed and d.max_additional_retries == 0


def test_sepa_and_bacs_representment_limits(rules):
    assert rules.decide(**debit("sepa", "AM04")).max_additional_retries == 2
    assert (
        rules.decide(**debit("sepa", "am04"), previous_attempts=days_ago(3, 6)).rule
        == "sepa_representment_cap"
    )
    assert (
        rules.decide(
            **debit("bacs", "ARUDD-0"), previous_attempts=days_ago(4)
        ).max_additional_retries
        == 1
    )
    late = rules.decide(**debit("bacs", "0"), previous_attempts=days_ago(31))
    assert (late.allowed, late.rule) == (False, "bacs_representment_window")


# --- after_update, hard declines, unknown codes ------------------------------------------------
def test_after_update_needs_an_update_first(rules):
    d = rules.decide(**card("expired_card"))
    assert (d.retryable, d.allowed, d.needs_update_first, d.rule) == (
        "after_update",
        False,
        True,
        "after_update",
    )
    assert d.max_additional_retries > 0  # retries may follow the update
    updated = rules.decide(**card("expired_card", card_updated=True))
    assert (updated.allowed, updated.needs_update_first, updated.rule) == (
        True,
        False,
        "payment_method_updated",
    )


def test_hard_declines_are_never_allowed_for_any_row(rules, table):
    hard = table.rows[table.rows["category"].isin(HARD_CATEGORIES)].reset_index(drop=True)
    method = hard["processor"].map({"sepa": "sepa_debit", "bacs": "bacs_debit", "ach": "ach_debit"})
    events = pd.DataFrame(
        {
            "event_id": hard.index,
            "processor": hard["processor"],
            "payment_method": method.fillna("card"),
            "card_brand": "visa",
            "decline_code": hard["code"],
            "merchant_advice_code": "02",
            "failed_at": FAILED_AT,
            "card_updated": True,
        }
    )
    out = rules.decide_many(events)
    assert len(out) > 100
    assert not out["allowed"].any()
    assert (out["max_additional_retries"] == 0).all()
    assert out["not_before"].isna().all()
    assert set(out["category"]) <= HARD_CATEGORIES


@pytest.mark.parametrize("code", [None, "", "totally_new_code"])
def test_unknown_codes_are_retried_conservatively(rules, code):
    d = rules.decide(**card(code))
    assert (d.category, d.retryable, d.rule) == ("other", "yes", "unknown_code")
    assert d.max_additional_retries == 1
    assert d.not_before == FAILED_AT + 72 * H


# --- decide and decide_many agree ------------------------------------------------------------------
CASES = [
    (
        card("insufficient_funds"),
        days_ago(2),
        ("insufficient_funds", "yes", True, 19, "retry_allowed"),
    ),
    (card("stolen_card"), [], ("lost_or_stolen", "no", False, 0, "hard_decline")),
    (
        card("2004", "mastercard", processor="braintree"),
        [],
        ("expired_card", "after_update", False, 34, "after_update"),
    ),
    (
        card("12", "amex", processor="adyen"),
        [],
        ("insufficient_funds", "yes", True, 15, "retry_allowed"),
    ),
    (
        card("do_not_honor", "mastercard", "21"),
        [],
        ("dispute_or_revoked", "no", False, 0, "mastercard_mac_stop"),
    ),
    (card("05", "visa", processor="visa"), [], ("do_not_honor", "yes", True, 20, "retry_allowed")),
    (card("46", "visa", processor="visa"), [], ("account_closed", "no", False, 0, "hard_decline")),
    (debit("ach", "R09"), days_ago(3), ("insufficient_funds", "yes", True, 1, "retry_allowed")),
    (debit("sepa", "MS02"), [], ("dispute_or_revoked", "no", False, 0, "hard_decline")),
    (debit("bacs", "0"), [], ("insufficient_funds", "yes", True, 2, "retry_allowed")),
    (card(None, "discover"), [], ("other", "yes", True, 1, "unknown_code")),
    (card("duplicate_transaction"), [], ("duplicate", "no", False, 0, "not_retryable")),
    (card("2107", processor="braintree"), [], ("card_invalid", "no", False, 0, "not_retryable")),
    (
        card("2052", processor="braintree"),
        [],
        ("processing_error", "no", False, 0, "not_retryable"),
    ),
    (debit("bacs", "5"), [], ("account_closed", "no", False, 0, "hard_decline")),
    (
        debit("bacs", "3"),
        [],
        ("card_invalid", "after_update", False, 0, "debit_new_details_required"),
    ),
]


def test_decide_and_decide_many_agree(rules):
    events = pd.DataFrame([{**kw, "event_id": f"e{i}"} for i, (kw, _, _) in enumerate(CASES)])
    events.index = events.index * 10 + 3  # decisions keep the caller's index
    previous = pd.DataFrame(
        [
            {"event_id": f"e{i}", "attempted_at": t}
            for i, (_, prev, _) in enumerate(CASES)
            for t in prev
        ]
    )
    many = rules.decide_many(events, previous)
    assert many.index.equals(events.index)
    for (kw, prev, expected), (_, row) in zip(CASES, many.iterrows(), strict=True):
        one = rules.decide(**kw, previous_attempts=prev)
        got = (one.category, one.retryable, one.allowed, one.max_additional_retries, one.rule)
        assert got == expected
        assert got == (
            row["category"],
            row["retryable"],
            row["allowed"],
            row["max_additional_retries"],
            row["rule"],
        )
        assert (one.needs_update_first, one.explanation, one.source) == (
            row["needs_update_first"],
            row["explanation"],
            row["source"],
        )
        assert one.not_before == (None if pd.isna(row["not_before"]) else row["not_before"])


# --- bad input ---------------------------------------------------------------------------------------
def test_bad_input_is_a_clear_error(rules):
    with pytest.raises(ValueError, match="unknown processor 'paypal'"):
        rules.decide(**{**card("x"), "processor": "paypal"})
    events = pd.DataFrame([{**card("insufficient_funds"), "event_id": "a"}])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['failed_at'\]"):
        rules.decide_many(events.drop(columns="failed_at"))
    with pytest.raises(ValueError, match="payment_method not one of"):
        rules.decide_many(events.assign(payment_method="cash"))
    with pytest.raises(ValueError, match="unparseable timestamp"):
        rules.decide_many(events.assign(failed_at="yesterday"))
    with pytest.raises(ValueError, match="attempt after failed_at"):
        rules.decide_many(
            events, pd.DataFrame({"event_id": ["a"], "attempted_at": [FAILED_AT + D]})
        )
    with pytest.raises(ValueError, match="event_id not in events"):
        rules.decide_many(
            events, pd.DataFrame({"event_id": ["zz"], "attempted_at": [FAILED_AT - D]})
        )


def test_the_failed_charge_listed_again_is_not_counted_twice(rules):
    once = rules.decide(**card("insufficient_funds"), previous_attempts=days_ago(1))
    twice = rules.decide(**card("insufficient_funds"), previous_attempts=[*days_ago(1), FAILED_AT])
    assert once == twice


def test_limits_come_from_params_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "retry_rules": {
                    "visa_max_reattempts_30d": 4,
                    "update_message_templates": ["new_card"],
                }
            }
        )
    )
    limits = load_params(path).retry_rules
    assert limits.visa_max_reattempts_30d == 4
    assert limits.update_message_templates == ("new_card",)
    assert RetryRules(limits).decide(**card("insufficient_funds")).max_additional_retries == 4
    path.write_text(yaml.safe_dump({"retry_rules": {"visa_cap": 4}}))
    with pytest.raises(ValueError, match="visa_cap"):
        load_params(path)


def test_every_limit_documents_its_source():
    for name, field in RetryLimits.model_fields.items():
        assert field.description, name
        if name != "update_message_templates":
            assert "Source:" in field.description, name


def test_project_params_yaml_states_the_documented_defaults():
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "params.yaml"
    if not path.exists():
        pytest.skip("no params.yaml in this checkout")
    assert load_params(path).retry_rules == RetryLimits()
