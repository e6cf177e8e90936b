"""Recovery cycles, rates by dimension and by retry number, on a history known by heart."""

import numpy as np
import pandas as pd
import pytest
from analytics_history import at, make_history
from scipy.stats import binomtest

from training import analytics as ra

AS_OF = at(30)  # every 14-day window closed


@pytest.fixture
def cycles(four_invoices):
    return ra.dunning_cycles(four_invoices, window_days=14, as_of=AS_OF)


def test_cycles_outcome_per_invoice(cycles):
    got = cycles.set_index("invoice_id")
    assert got["recovered"].to_dict() == {"in_1": True, "in_2": False, "in_3": True, "in_4": True}
    assert got["recovered_by"].fillna("-").to_dict() == {
        "in_1": "merchant",
        "in_2": "-",  # the customer paid on day 20, after the window
        "in_3": "customer",
        "in_4": "merchant",
    }
    assert got["days_to_recovery"].fillna(-1).to_dict() == {
        "in_1": 2.0,
        "in_2": -1,
        "in_3": 3.0,
        "in_4": 1.0,
    }
    assert got["decline_category"].to_dict() == {
        "in_1": "insufficient_funds",
        "in_2": "expired_card",
        "in_3": "insufficient_funds",  # SEPA AM04
        "in_4": "do_not_honor",  # Adyen 2 (Refused)
    }
    assert got["country"].to_dict() == {"in_1": "NL", "in_2": "US", "in_3": "US", "in_4": "US"}
    assert got["window_closed"].all()


def test_recovery_rate_is_exactly_one_half_for_stripe(cycles):
    table = ra.recovery_by(cycles, "processor")
    stripe = table.loc["stripe"]
    assert stripe["invoices"] == 2 and stripe["recovered"] == 1
    assert stripe["recovery_rate"] == 0.5
    assert stripe["by_retry_rate"] == 0.5 and stripe["by_customer_rate"] == 0.0
    assert table.index[0] == "stripe"  # most invoices first


@pytest.mark.parametrize(
    ("dimension", "expected"),
    [
        ("payment_method", {"card": 2 / 3, "sepa_debit": 1.0}),
        ("country", {"US": 2 / 3, "NL": 1.0}),
        ("decline_category", {"insufficient_funds": 1.0, "expired_card": 0.0, "do_not_honor": 1.0}),
        ("currency", {"EUR": 1.0, "USD": 0.0, "JPY": 1.0}),
    ],
)
def test_recovery_rate_by_dimension(cycles, dimension, expected):
    table = ra.recovery_by(cycles, dimension)
    assert table["recovery_rate"].to_dict() == pytest.approx(expected)
    assert (table["by_retry_rate"] + table["by_customer_rate"]).to_numpy() == pytest.approx(
        table["recovery_rate"].to_numpy()
    )
    assert (
        (table["ci_low"] <= table["recovery_rate"]) & (table["recovery_rate"] <= table["ci_high"])
    ).all()


def test_success_exactly_at_the_window_end_counts():
    history = make_history(
        [("c", "DE", "Europe/Berlin")],
        [
            ("late", "c", 100, "EUR", "card", "stripe", 0),
            ("later", "c", 100, "EUR", "card", "stripe", 0),
        ],
        [
            ("late", 0, "merchant", "failed", "insufficient_funds"),
            ("late", 14, "merchant", "succeeded", None),
            ("later", 0, "merchant", "failed", "insufficient_funds"),
            ("later", 14.001, "merchant", "succeeded", None),
        ],
    )
    cycles = ra.dunning_cycles(history, 14, as_of=AS_OF).set_index("invoice_id")
    assert cycles["recovered"].to_dict() == {"late": True, "later": False}


def test_open_windows_are_left_out_of_rates(four_invoices):
    cycles = ra.dunning_cycles(four_invoices, 14, as_of=at(10))
    assert not cycles["window_closed"].any()
    assert cycles["observed_days"].tolist() == [10.0] * 4
    assert ra.recovery_by(cycles, "processor").empty
    assert len(ra.recovery_by(cycles, "processor", closed_only=False)) == 3


def test_as_of_defaults_to_the_latest_timestamp(four_invoices):
    cycles = ra.dunning_cycles(four_invoices, 14)
    # the last event is the customer payment on day 20: windows ended on day 14
    assert cycles.attrs["as_of"] == at(20)
    assert cycles["window_closed"].all()


def test_retry_success_by_number(four_invoices, cycles):
    follow_ups = ra.follow_up_attempts(four_invoices, cycles)
    table = ra.retry_success_by_number(follow_ups)
    # retry 1: in_1 failed, in_2 failed, in_4 succeeded; retry 2: in_1 succeeded
    assert table["retries"].to_dict() == {1: 3, 2: 1}
    assert table["succeeded"].to_dict() == {1: 1, 2: 1}
    assert table["success_rate"].to_dict() == pytest.approx({1: 1 / 3, 2: 1.0})
    pooled = ra.retry_success_by_number(follow_ups, max_number=1)
    assert pooled["retries"].to_dict() == {1: 4}


def test_follow_ups_stop_at_the_recovery(four_invoices, cycles):
    follow_ups = ra.follow_up_attempts(four_invoices, cycles)
    # the originals and the customer payment after in_2's window are not follow-ups
    assert sorted(follow_ups["attempt_id"]) == ["att_1", "att_2", "att_4", "att_7", "att_9"]


def test_proportion_interval_matches_the_exact_binomial_interval():
    k = pd.Series([0, 3, 10, 7])
    n = pd.Series([10, 10, 10, 0])
    low, high = ra.proportion_interval(k, n)
    for i in range(3):
        ci = binomtest(int(k[i]), int(n[i])).proportion_ci(0.95, method="exact")
        assert (low[i], high[i]) == pytest.approx((ci.low, ci.high))
    assert np.isnan(low[3]) and np.isnan(high[3])


def test_overview_reports_shares(cycles):
    table = ra.overview(cycles)["value"]
    assert table["recovered within the window"] == "75.0% (3 of 4)"
    assert table["recovered by a merchant retry"] == "50.0% (2 of 4)"
    assert table["median days to recovery (recovered only)"] == "2.0"


def test_missing_column_is_a_clear_error(four_invoices):
    four_invoices.invoices = four_invoices.invoices.drop(columns="currency")
    with pytest.raises(
        ValueError, match=r"table 'invoices' is missing required column\(s\): currency"
    ):
        ra.dunning_cycles(four_invoices, 14)


def test_invoice_without_customer_time_zone_is_a_clear_error(four_invoices):
    four_invoices.customers = four_invoices.customers[
        four_invoices.customers["customer_id"] == "c1"
    ]
    with pytest.raises(ValueError, match=r"3 invoice\(s\) have no customer time zone"):
        ra.dunning_cycles(four_invoices, 14)


def test_unknown_dimension_is_a_clear_error(cycles):
    with pytest.raises(ValueError, match="unknown dimension 'colour'"):
        ra.recovery_by(cycles, "colour")


def test_window_must_be_positive(four_invoices):
    with pytest.raises(ValueError, match="window_days must be > 0"):
        ra.dunning_cycles(four_invoices, 0)
