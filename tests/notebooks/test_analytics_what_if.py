"""The what-if explorer of notebook 03, on the session's small world and model."""

from __future__ import annotations

import pandas as pd
import pytest

from training.analytics import what_if as wi
from training.analytics import what_if_requests as wr
from training.config.params import Params
from training.core.localtime import local_hour


@pytest.fixture(scope="module")
def explorer(small_world) -> wi.WhatIfExplorer:
    return wi.WhatIfExplorer(small_world.artifact)


@pytest.fixture(scope="module")
def request_(small_world) -> dict:
    invoice = wr.held_out_invoice(small_world.history, small_world.artifact, Params(), seed=1)
    return wr.starting_request(None, small_world.history, invoice, small_world.artifact, Params())


@pytest.fixture(scope="module")
def decided(explorer, request_) -> wi.WhatIf:
    return explorer.decide(request_)


def test_request_for_invoice_is_the_failed_charge(small_world, request_):
    invoice = small_world.history.invoices.set_index("invoice_id").loc[request_["invoice_id"]]
    assert request_["customer_id"] == invoice["customer_id"]
    assert request_["amount_minor"] == invoice["amount_minor"]
    assert request_["processor"] == "stripe"  # the held-out pick prefers Stripe ...
    assert request_["decline_code"] == "insufficient_funds"  # ... and insufficient funds
    with pytest.raises(ValueError, match="invoice_id 'nope' is not in the history"):
        wr.request_for_invoice(small_world.history, "nope")


def test_a_typed_event_is_validated_like_the_api(request_):
    bad = {**request_, "amount_minor": -5}
    with pytest.raises(ValueError, match="amount_minor"):
        wr.check_request(bad)
    with pytest.raises(ValueError, match="give an event"):
        wr.starting_request(None, None, None, None, Params())


def test_changed_puts_each_field_where_it_belongs(request_):
    out = wr.changed(request_, timezone="Asia/Tokyo", max_retries=2, channels=["email"])
    assert out["customer"]["timezone"] == "Asia/Tokyo"
    assert out["constraints"] == {"max_retries": 2, "channels": ["email"]}
    assert request_["constraints"] is None  # the original is untouched
    assert wr.changed(request_, decline_category="lost_or_stolen")["decline_code"] == "lost_card"
    with pytest.raises(ValueError, match="cannot change 'colour'"):
        wr.changed(request_, colour="red")
    with pytest.raises(ValueError, match="processor 'sepa' has no decline code in 'expired_card'"):
        wr.changed({**request_, "processor": "sepa"}, decline_category="expired_card")


def test_schedule_lists_every_retry_and_message(decided, explorer):
    schedule = explorer.schedule(decided)
    assert len(schedule) == len(decided.decisions.retries) + len(decided.decisions.messages)
    assert schedule["days_after_failure"].is_monotonic_increasing
    assert (schedule["days_after_failure"] > 0).all()
    summary = decided.summary().iloc[0]
    assert summary["decline_category"] == "insufficient_funds"
    assert 0 < summary["expected_recovery_rate"] < 1


def test_retry_curve_matches_the_schedules_first_retry(decided, explorer):
    curve = explorer.retry_curve(decided)
    assert len(curve) == 14 * 24  # every hour of the 14-day window
    assert curve["success_probability"].between(0, 1).all()
    retries = decided.decisions.retries
    assert len(retries) > 0
    by_time = curve.set_index("at")
    first = retries.iloc[0]
    # the first retry of the schedule has no new retry before it: same probability
    assert by_time.loc[first["at"], "success_probability"] == pytest.approx(
        first["success_probability"]
    )
    assert by_time.loc[retries["at"], "allowed"].all()
    hours = local_hour(curve["at"], decided.timezone)
    assert (curve["quiet_hours"] == ((hours >= 21) | (hours < 8))).all()


def test_no_allowed_retry_hour_for_a_lost_card(explorer, request_):
    lost = explorer.decide(wr.changed(request_, decline_category="lost_or_stolen"))
    assert lost.decisions.retries.empty
    assert not explorer.retry_curve(lost)["allowed"].any()


def test_message_options_rank_what_the_policy_compares(decided, explorer, request_):
    options = explorer.message_options(decided)
    first = decided.decisions.messages.iloc[0]
    chosen = options[options["chosen_first"]]
    assert chosen[["template", "channel"]].values.tolist() == [
        [first["template"], first["channel"]]
    ]
    assert options["response_rate"].is_monotonic_decreasing
    no_sms = explorer.message_options(explorer.decide(wr.changed(request_, sms_opt_in=False)))
    assert set(no_sms["channel"]) == {"email"}


def test_variants_change_one_thing_at_a_time(explorer, request_):
    variants = wr.standard_variants(
        request_,
        ["insufficient_funds", "expired_card", "lost_or_stolen"],
        "America/Los_Angeles",
        {"max_retries": 2, "channels": ["email"]},
    )
    assert list(variants) == [
        "as given",
        "expired_card (expired_card)",
        "lost_or_stolen (lost_card)",
        "time zone America/Los_Angeles",
        "constraints max_retries=2, channels=email",
    ]
    table, decided = explorer.compare(variants)
    assert list(table.index) == list(variants)
    assert table.loc["lost_or_stolen (lost_card)", "retries"] == 0
    assert table.loc["expired_card (expired_card)", "retryable"] == "after_update"
    assert table.loc["time zone America/Los_Angeles", "timezone"] == "America/Los_Angeles"
    limited = decided["constraints max_retries=2, channels=email"].decisions
    assert len(limited.retries) <= 2
    assert set(limited.messages["channel"]) <= {"email"}
    assert pd.api.types.is_float_dtype(table["expected_recovery_rate"])


def test_a_typed_event_without_customer_uses_what_the_model_knows(explorer, request_):
    event = {k: v for k, v in request_.items() if k != "customer"}
    started = wr.starting_request(event, None, None, None, Params())
    assert started["customer"] is None
    decided = explorer.decide(started)
    assert decided.timezone == request_["customer"]["timezone"]  # from the artifact
    assert bool(decided.events["sms_opt_in"].iloc[0]) == request_["customer"]["sms_opt_in"]
