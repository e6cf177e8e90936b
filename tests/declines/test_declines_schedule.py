"""schedule_violations: each kind of violation is found, a compliant schedule has none."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from training.declines.rules import RetryLimits, RetryRules
from training.declines.violations import schedule_violations

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
H, D = timedelta(hours=1), timedelta(days=1)

EVENTS = {
    "visa_nsf": ("stripe", "card", "visa", "insufficient_funds", None),
    "stolen": ("stripe", "card", "visa", "stolen_card", None),
    "mc_later": ("stripe", "card", "mastercard", "do_not_honor", "02"),
    "expired": ("braintree", "card", "mastercard", "2004", None),
    "ach": ("ach", "ach_debit", None, "R01", None),
    "sepa": ("sepa", "sepa_debit", None, "AM04", None),
    "bacs": ("bacs", "bacs_debit", None, "0", None),
    "visa_busy": ("stripe", "card", "visa", "insufficient_funds", None),
}


def events(*ids):
    return pd.DataFrame(
        [
            dict(
                zip(
                    [
                        "processor",
                        "payment_method",
                        "card_brand",
                        "decline_code",
                        "merchant_advice_code",
                    ],
                    EVENTS[i],
                    strict=True,
                ),
                event_id=i,
                failed_at=T0,
            )
            for i in ids
        ]
    )


def retries(**schedule):
    return pd.DataFrame(
        [{"event_id": e, "at": T0 + off} for e, offs in schedule.items() for off in offs]
    )


PREVIOUS = pd.DataFrame(
    {"event_id": "visa_busy", "attempted_at": [T0 - k * D for k in range(1, 20)]}
)
UPDATE_ASK = pd.DataFrame(
    {"event_id": ["expired"], "send_at": [T0 + 2 * H], "template": ["update_payment_method"]}
)


def test_a_compliant_schedule_has_no_violations(rules):
    out = schedule_violations(
        rules,
        events(*EVENTS),
        retries(
            visa_nsf=[1 * D, 3 * D, 6 * D],
            mc_later=[3 * D, 5 * D],
            expired=[2 * D],
            ach=[2 * D, 5 * D],
            sepa=[3 * D],
            bacs=[4 * D, 10 * D],
            visa_busy=[2 * D],
        ),
        PREVIOUS,
        UPDATE_ASK,
    )
    assert out.empty
    assert list(out.columns) == ["event_id", "at", "rule", "explanation"]


def test_no_retries_no_violations(rules):
    empty = pd.DataFrame(
        {"event_id": pd.Series(dtype=str), "at": pd.Series(dtype="datetime64[ns, UTC]")}
    )
    assert schedule_violations(rules, events("stolen"), empty).empty


@pytest.mark.parametrize(
    ("ids", "schedule", "rule", "at"),
    [
        (["stolen"], {"stolen": [2 * D]}, "not_allowed", 2 * D),
        (["visa_nsf"], {"visa_nsf": [-1 * H]}, "before_failure", -1 * H),
        (["mc_later"], {"mc_later": [1 * D]}, "before_not_before", 1 * D),  # MAC 02: 72 h
        (["ach"], {"ach": [1 * D, 3 * D, 5 * D]}, "too_many_retries", 5 * D),
        (["visa_nsf"], {"visa_nsf": [1 * D, 1 * D + 2 * H]}, "min_spacing", 1 * D + 2 * H),
        (["visa_busy"], {"visa_busy": [2 * D, 4 * D]}, "network_cap_30d", 4 * D),
        (["bacs"], {"bacs": [31 * D]}, "representment_window", 31 * D),
        (["expired"], {"expired": [2 * D]}, "after_update_without_update", 2 * D),
    ],
)
def test_each_kind_of_violation_is_found(rules, ids, schedule, rule, at):
    previous = PREVIOUS[PREVIOUS["event_id"].isin(ids)]
    out = schedule_violations(rules, events(*ids), retries(**schedule), previous)
    hits = out[out["rule"] == rule]
    assert len(hits) == 1, out
    assert hits.iloc[0]["event_id"] == ids[0]
    assert hits.iloc[0]["at"] == pd.Timestamp(T0 + at)
    assert hits.iloc[0]["explanation"]


def test_mastercard_24h_window(table):
    rules = RetryRules(RetryLimits(min_spacing_hours=0, mastercard_max_attempts_24h=3), table)
    ev = events("mc_later").assign(merchant_advice_code=None)
    out = schedule_violations(rules, ev, retries(mc_later=[1 * H, 2 * H, 3 * H]))
    assert out["rule"].tolist() == ["network_cap_24h"]
    assert out["at"].tolist() == [pd.Timestamp(T0 + 3 * H)]


@pytest.mark.parametrize(
    ("messages", "card_updated", "violation"),
    [
        (UPDATE_ASK, False, False),
        (UPDATE_ASK.assign(send_at=T0 + 40 * H), False, True),  # asked too late
        (UPDATE_ASK.assign(template="friendly_reminder"), False, True),  # not an update request
        (None, True, False),  # the billing system reported an update
    ],
)
def test_after_update_retries_need_a_plausible_update(rules, messages, card_updated, violation):
    ev = events("expired").assign(card_updated=card_updated)
    out = schedule_violations(rules, ev, retries(expired=[2 * D]), None, messages)
    assert ("after_update_without_update" in set(out["rule"])) is violation


def test_many_events_are_checked_in_one_call(rules):
    ids = [f"e{i}" for i in range(2000)]
    ev = pd.DataFrame(
        {
            "event_id": ids,
            "processor": "stripe",
            "payment_method": "card",
            "card_brand": "visa",
            "decline_code": ["insufficient_funds", "lost_card"] * 1000,
            "merchant_advice_code": None,
            "failed_at": T0,
        }
    )
    plan = pd.DataFrame({"event_id": ids * 2, "at": [T0 + 2 * D] * 2000 + [T0 + 2 * D + H] * 2000})
    out = schedule_violations(rules, ev, plan)
    assert (out["rule"] == "not_allowed").sum() == 2000
    assert (out["rule"] == "min_spacing").sum() == 2000


def test_bad_schedules_are_clear_errors(rules):
    with pytest.raises(ValueError, match="event_id not in events"):
        schedule_violations(rules, events("visa_nsf"), retries(sepa=[D]))
    with pytest.raises(ValueError, match="missing column 'at'"):
        schedule_violations(rules, events("visa_nsf"), pd.DataFrame({"event_id": ["visa_nsf"]}))


# --- debit safety: a mandate that is gone is never re-presented ------------------------------
DEBIT_METHOD = {"sepa": "sepa_debit", "bacs": "bacs_debit", "ach": "ach_debit"}


def _debit_needs_new_details(rules):
    """Every debit row whose account or mandate is gone, or that needs new details."""
    rows = rules.table.rows
    debit = rows["processor"].isin(list(DEBIT_METHOD))
    needs = (rows["account_gone"] == "yes") | (rows["retryable"] == "after_update")
    return rows.loc[debit & needs, ["processor", "code"]].itertuples(index=False)


def test_debits_that_need_new_details_are_never_re_presented(rules):
    cases = list(_debit_needs_new_details(rules))
    assert {("bacs", "5"), ("bacs", "6"), ("bacs", "B"), ("sepa", "AC04"), ("sepa", "MD01")} <= {
        (c.processor, c.code) for c in cases
    }
    events = pd.DataFrame(
        {
            "event_id": [f"{c.processor}-{c.code}" for c in cases],
            "processor": [c.processor for c in cases],
            "payment_method": [DEBIT_METHOD[c.processor] for c in cases],
            "card_brand": None,
            "decline_code": [c.code for c in cases],
            "merchant_advice_code": None,
            "failed_at": T0,
        }
    )
    decisions = rules.decide_many(events)
    assert not decisions["allowed"].any()
    assert (decisions["max_additional_retries"] == 0).all()
    assert decisions["needs_update_first"].all()  # the plan asks for new bank details
    # a re-presentation two days after an update request is still a violation: a debit
    # needs new details reported, not merely plausible
    asks = pd.DataFrame(
        {"event_id": events["event_id"], "send_at": T0 + H, "template": "update_payment_method"}
    )
    schedule = pd.DataFrame({"event_id": events["event_id"], "at": T0 + 2 * D})
    out = schedule_violations(rules, events, schedule, None, asks)
    assert set(out["event_id"]) == set(events["event_id"])
    assert set(out["rule"]) == {"not_allowed"}


def test_a_reported_update_allows_collecting_on_the_new_details(rules):
    decide = {
        "processor": "sepa",
        "payment_method": "sepa_debit",
        "card_brand": None,
        "decline_code": "AC01",
        "merchant_advice_code": None,
        "failed_at": T0,
    }
    assert rules.decide(**decide).rule == "debit_new_details_required"
    updated = rules.decide(**decide, card_updated=True)
    assert (updated.allowed, updated.rule) == (True, "payment_method_updated")
