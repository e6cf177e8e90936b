"""``cust_observed_share``: the share of the tenure the export observes, in [0, 1]; unlike
``cust_observed_days`` it does not grow with calendar time (docs/evaluation.md, h79)."""

import numpy as np
import pandas as pd

from training.features.customer import customer_features
from training.features.history_log import empty_log

START = pd.Timestamp("2025-01-01", tz="UTC")


def _features(signup: list[str | None], as_of: list[str]) -> pd.DataFrame:
    decisions = pd.DataFrame(
        {
            "customer_id": [f"cus_{i}" for i in range(len(as_of))],
            "as_of": pd.to_datetime(as_of, utc=True),
            "signup_at": pd.to_datetime(signup, utc=True),
        }
    )
    return customer_features(decisions, empty_log(), START)


def test_the_share_of_the_tenure_observed_on_a_tiny_history():
    features = _features(
        # before the export's start, inside it, unknown, at the decision, after it
        ["2023-01-01", "2025-04-11", None, "2025-06-01", "2025-07-01"],
        ["2026-01-01", "2025-05-31", "2025-07-01", "2025-06-01", "2025-06-01"],
    )
    share = features["cust_observed_share"].to_numpy()
    days = features["cust_observed_days"].to_numpy()
    # three years of tenure, one observed; signed up inside the export: all of it
    np.testing.assert_allclose(share[:2], [365 / 1096, 1.0])
    np.testing.assert_allclose(days[:2], [365.0, 50.0])
    assert np.isnan(share[2])  # no signup date: no tenure to share
    np.testing.assert_array_equal(share[3:], [1.0, 1.0])


def test_the_share_stays_within_zero_and_one_where_the_days_grow():
    signup = ["2020-01-01"] * 4 + ["2025-03-01"] * 4
    as_of = ["2024-12-01", "2025-06-01", "2026-06-01", "2030-01-01"] * 2
    features = _features(signup, as_of)
    share = features["cust_observed_share"].to_numpy()
    assert ((share >= 0) & (share <= 1)).all()
    assert share[0] == 0.0  # a decision before the export's start observes nothing
    assert (np.diff(features["cust_observed_days"].to_numpy()[1:4]) > 0).all()
