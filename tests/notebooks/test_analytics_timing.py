"""Hour-of-week grids in local time and Kaplan-Meier time to recovery."""

import numpy as np
import pytest
from analytics_history import T0, at, make_history

from training import analytics as ra


@pytest.fixture
def follow_ups(four_invoices):
    cycles = ra.dunning_cycles(four_invoices, 14, as_of=at(30))
    return ra.follow_up_attempts(four_invoices, cycles)


def test_hour_of_week_counts_in_local_time(follow_ups):
    assert T0.day_name() == "Monday" and T0.hour == 8  # 08:30 UTC
    grid = ra.hour_of_week(follow_ups, "merchant", "successes")
    assert grid.shape == (7, 24)
    assert list(grid.index) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    # in_1's 2nd retry: Wed 08:30 UTC = 09:30 Amsterdam; in_4's retry: Tue 03:30 New York
    assert grid.loc["Wed", 9] == 1 and grid.loc["Tue", 3] == 1
    assert grid.to_numpy().sum() == 2


def test_hour_of_week_success_rate(follow_ups):
    rate = ra.hour_of_week(follow_ups, "merchant", "success_rate")
    # Tue 03:30 New York: in_2's retry failed and in_4's succeeded
    assert rate.loc["Tue", 3] == 0.5
    assert rate.loc["Tue", 9] == 0.0  # in_1's failed first retry, Amsterdam
    assert rate.loc["Wed", 9] == 1.0
    assert np.isnan(rate.loc["Mon", 0])  # nothing tried there
    assert rate.notna().to_numpy().sum() == 3


def test_hour_of_week_customer_payments(follow_ups):
    counts = ra.hour_of_week(follow_ups, "customer", "successes")
    # in_3 paid Thu 08:30 UTC = 03:30 New York; in_2's payment came after its window
    assert counts.loc["Thu", 3] == 1 and counts.to_numpy().sum() == 1
    share = ra.hour_of_week(follow_ups, "customer", "share")
    assert share.loc["Thu", 3] == 1.0 and share.to_numpy().sum() == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initiated_by": "bank"}, "initiated_by must be"),
        ({"statistic": "mean"}, "unknown statistic 'mean'"),
    ],
)
def test_hour_of_week_bad_arguments(follow_ups, kwargs, message):
    with pytest.raises(ValueError, match=message):
        ra.hour_of_week(follow_ups, **kwargs)


def test_recovery_curve_without_censoring_is_the_empirical_share(four_invoices):
    cycles = ra.dunning_cycles(four_invoices, 14, as_of=at(30))
    curves = ra.recovery_curves(cycles, by=None)
    assert set(curves["group"]) == {"all invoices"}
    curve = curves.set_index("days")["recovered_share"]
    # recoveries on days 1, 2 and 3; in_2 never (censored at the window end, day 14)
    assert curve[0.0] == 0.0
    assert curve[1.0] == pytest.approx(0.25)
    assert curve[2.0] == pytest.approx(0.5)
    assert curve[14.0] == pytest.approx(0.75)
    assert (curves["ci_low"] <= curves["recovered_share"] + 1e-12).all()
    assert (curves["recovered_share"] <= curves["ci_high"] + 1e-12).all()


def test_recovery_curve_censors_open_windows():
    """A recovered day 1, C day 3, D never (window closed), B due day 12 still open on day 14.

    Kaplan-Meier: S(1) = 3/4; B leaves the risk set at 2 days; S(3) = 3/4 * 1/2 = 3/8, so
    5/8 recovered, where counting B as lost would say 1/2.
    """
    history = make_history(
        [("c", "DE", "Europe/Berlin")],
        [
            (name, "c", 100, "EUR", "card", "stripe", due)
            for name, due in [("A", 0), ("B", 12), ("C", 0), ("D", 0)]
        ],
        [
            ("A", 0, "merchant", "failed", "insufficient_funds"),
            ("A", 1, "merchant", "succeeded", None),
            ("B", 12, "merchant", "failed", "insufficient_funds"),
            ("C", 0, "merchant", "failed", "insufficient_funds"),
            ("C", 3, "merchant", "succeeded", None),
            ("D", 0, "merchant", "failed", "insufficient_funds"),
        ],
    )
    cycles = ra.dunning_cycles(history, 14, as_of=at(14))
    assert cycles.set_index("invoice_id")["window_closed"].to_dict() == {
        "A": True,
        "B": False,
        "C": True,
        "D": True,
    }
    curves = ra.recovery_curves(cycles, by="processor", min_invoices=1)
    assert set(curves["group"]) == {"all invoices", "stripe"}
    milestones = ra.recovery_milestones(curves, days=(1, 3, 7))
    row = milestones.loc["all invoices"]
    assert row["invoices"] == 4
    assert row["recovered by day 1"] == pytest.approx(0.25)
    assert row["recovered by day 3"] == pytest.approx(5 / 8)
    assert row["recovered by day 14"] == pytest.approx(5 / 8)
    assert row["days to 50% recovered"] == pytest.approx(3.0)
    assert ra.recovery_by(cycles, "processor")["recovery_rate"]["stripe"] == pytest.approx(2 / 3)


def test_small_groups_get_no_curve(four_invoices):
    cycles = ra.dunning_cycles(four_invoices, 14, as_of=at(30))
    curves = ra.recovery_curves(cycles, by="decline_category", min_invoices=2)
    assert set(curves["group"]) == {"all invoices", "insufficient_funds"}
