"""The active hour's learned event weights (``train.features.active_hour``, issue 13, h95):
the cells, the as-of circular mean, the click slope, the weights learned from a history,
and the weighted estimate; off by default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config.params import ActiveHourParams, TrainParams
from training.features.active_hour import (
    asof_circular,
    click_slope,
    event_cells,
    learn_cell_weights,
)
from training.features.customer import CustomerIndex, customer_features
from training.features.history_log import (
    ACTIVITY_KINDS,
    ACTIVITY_WEIGHT,
    activity_events,
    customer_event_log,
    learned_activity_weights,
)


def test_the_default_learns_the_weights_and_params_yaml_agrees() -> None:
    from training.config.params import load_params

    assert TrainParams().features.active_hour.weighting == "learned"
    assert load_params().train.features.active_hour.weighting == "learned"


def test_cells_are_kind_by_hours_since_the_latest_send() -> None:
    lag = np.array([0.5, 1.0, 2.9, 3.0, 11.0, 12.0, 100.0, np.nan])
    cells = event_cells(np.zeros(len(lag), dtype=int), 3, lag)
    assert cells.tolist() == [0, 1, 1, 2, 2, 3, 3, 3]  # no send before: the last band
    assert event_cells(np.array([2]), 3, np.array([0.1])).tolist() == [8]


def test_asof_circular_mean_counts_only_earlier_events_of_the_customer() -> None:
    codes = np.array([0, 0, 0, 1])
    seconds = np.array([10, 20, 30, 10])
    hours = np.array([23.0, 1.0, 12.0, 5.0])
    mean, count = asof_circular(
        codes, seconds, hours, np.array([0, 0, 0, 1, 1]), np.array([10, 21, 30, 11, 5])
    )
    assert count.tolist() == [0, 2, 2, 1, 0]
    assert np.isnan(mean[0]) and np.isnan(mean[4])
    # 23 h and 1 h average to midnight across the wrap, not to noon
    assert min(mean[1], 24 - mean[1]) == pytest.approx(0.0, abs=1e-9)
    assert mean[3] == pytest.approx(5.0)


def test_click_slope_recovers_a_logistic_slope() -> None:
    rng = np.random.default_rng(3)
    x = rng.random(40_000)
    y = rng.random(len(x)) < 1 / (1 + np.exp(-(-3.0 + 1.2 * x)))
    slope, se = click_slope(x, y)
    assert abs(slope - 1.2) < 3 * se
    assert 0.0 < se < 0.2


def _world(rng: np.random.Generator, customers: int = 600):
    """Customers with a true hour; cell 0 events near it, cell 1 events at random hours;
    sends at random hours, clicked more often near the true hour."""
    true = rng.uniform(0, 24, customers)
    rows = []
    for cell, noise in ((0, 1.0), (1, None)):
        code = np.repeat(np.arange(customers), 4)
        hour = (
            true[code] + rng.normal(0, noise, len(code)) if noise else rng.uniform(0, 24, len(code))
        )
        rows.append(
            pd.DataFrame(
                {
                    "code": code,
                    "seconds": rng.integers(0, 1000, len(code)),
                    "local_hour": np.mod(hour, 24),
                    "cell": cell,
                }
            )
        )
    events = pd.concat(rows, ignore_index=True)
    code = np.repeat(np.arange(customers), 30)
    hour = rng.uniform(0, 24, len(code))
    close = (1 + np.cos(2 * np.pi * (hour - true[code]) / 24)) ** 2 / 4
    sends = pd.DataFrame(
        {
            "code": code,
            "seconds": rng.integers(1000, 2000, len(code)),
            "local_hour": hour,
            "clicked": rng.random(len(code)) < 1 / (1 + np.exp(-(-2.5 + 2.0 * close))),
        }
    )
    return events, sends


def test_learned_weights_favour_the_events_that_predict_clicks() -> None:
    events, sends = _world(np.random.default_rng(11))
    weights = learn_cell_weights(events, sends, cells=3)
    assert weights[0] == 1.0
    assert weights[1] < 0.3
    assert weights[2] == 0.0  # no events in that cell


def test_no_informative_cell_leaves_the_weights_equal() -> None:
    events, sends = _world(np.random.default_rng(12))
    sends["clicked"] = np.random.default_rng(13).random(len(sends)) < 0.1
    assert learn_cell_weights(events, sends, cells=3).tolist() == [1.0, 1.0, 1.0]


def test_activity_events_follow_the_log_kinds_and_time_the_latest_send(history) -> None:
    events = activity_events(history)
    assert list(pd.unique(events["kind"])) == list(ACTIVITY_KINDS)
    clicks = events[events["kind"] == "click"]
    assert clicks["hours_since_send"].notna().all()  # a click always follows its send
    assert (events["hours_since_send"].dropna() >= 0).all()


def test_equal_weighting_is_main_and_learned_adds_the_weight_column(history) -> None:
    main = customer_event_log(history)
    equal = customer_event_log(history, ActiveHourParams(weighting="equal"))
    pd.testing.assert_frame_equal(main, equal)
    assert ACTIVITY_WEIGHT not in main
    learned = customer_event_log(history, ActiveHourParams(weighting="learned"))
    pd.testing.assert_frame_equal(learned.drop(columns=ACTIVITY_WEIGHT), main)
    weight = learned[ACTIVITY_WEIGHT].to_numpy()
    assert (weight[learned["activity"].to_numpy() == 0] == 0).all()
    active = weight[learned["activity"].to_numpy() == 1]
    assert active.max() == 1.0 and (active >= 0).all() and active.min() < 1.0
    assert len(learned_activity_weights(history)) == int(learned["activity"].sum())


def _log(hours_weights: list[tuple[float, float]]) -> pd.DataFrame:
    at = pd.Timestamp("2026-01-05", tz="UTC")
    rows = []
    for i, (hour, weight) in enumerate(hours_weights):
        rows.append(
            {
                "customer_id": "cus_a",
                "at": at + pd.Timedelta(days=i, hours=hour),
                "local_hour": hour,
                "local_weekday": 0,
                "local_day_of_month": 5 + i,
                "days_in_month": 31,
                "failure": 0,
                "recovery": 0,
                "recovery_by_retry": 0,
                "recovery_by_customer": 0,
                "payment": 0,
                "activity": 1,
                "email_sent": 0,
                "sms_sent": 0,
                "email_click": 0,
                "sms_click": 0,
                ACTIVITY_WEIGHT: weight,
            }
        )
    return pd.DataFrame(rows)


def test_the_estimate_weighs_each_event_by_its_weight() -> None:
    decisions = pd.DataFrame(
        {
            "customer_id": ["cus_a"],
            "as_of": [pd.Timestamp("2026-02-01", tz="UTC")],
            "signup_at": [pd.Timestamp("2025-01-01", tz="UTC")],
        }
    )
    log = _log([(20.0, 1.0), (20.0, 1.0), (8.0, 0.0), (8.0, 0.0), (8.0, 0.0)])
    weighted = customer_features(decisions, index=CustomerIndex.build(log)).iloc[0]
    assert weighted["cust_active_hour"] == pytest.approx(20.0)
    assert weighted["cust_active_hour_strength"] == pytest.approx(1.0)
    assert weighted["cust_activity"] == 5  # the count stays the events'
    equal = customer_features(
        decisions, index=CustomerIndex.build(log.drop(columns=ACTIVITY_WEIGHT))
    )
    assert equal.iloc[0]["cust_active_hour"] == pytest.approx(8.0)
