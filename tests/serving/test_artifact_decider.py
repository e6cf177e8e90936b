"""The years a loaded model warms its customers' zones for, and the customers it knows
(serving/artifact_decider.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from serving.artifact_decider import ArtifactDecider, decision_years

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def test_a_replay_of_older_data_covers_its_last_year_to_the_year_after_now():
    metadata = {
        "training_data": {
            "train_period": "2024-01-01 .. 2025-04-02",
            "test_period": "2025-08-05 .. 2025-12-28",
            "source": "/data/2031-01-01/history",  # not a period: ignored
        }
    }
    assert decision_years(metadata, NOW) == (2025, 2027)


def test_without_periods_the_current_year_and_the_next():
    assert decision_years({}, NOW) == (2026, 2027)
    assert decision_years({"training_data": None}, NOW) == (2026, 2027)


def _as_frame_gave(customers: pd.DataFrame, ids: list[str]) -> dict:
    """The lookup as it was written first: the rows selected as a frame, then Python values."""
    table = customers.drop_duplicates("customer_id", keep="last").set_index("customer_id")
    found = table.index.intersection(pd.Index(ids).unique())
    rows = table.loc[found]
    return rows.astype(object).where(rows.notna(), None).to_dict(orient="index")


def _typed(found: dict) -> list:
    return [(k, [(f, type(v), v) for f, v in fields.items()]) for k, fields in found.items()]


def test_known_customers_as_the_frame_gave_them_values_types_missing_and_order():
    customers = pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3", "c4", "c2"],
            "country": ["FR", None, "GB", np.nan, "DE"],
            "timezone": ["Europe/Paris", "Europe/Berlin", None, "UTC", "Europe/Berlin"],
            "signup_at": pd.to_datetime(
                [
                    "2021-01-02T03:04:05Z",
                    None,
                    "2022-05-06T07:08:09Z",
                    "2023-01-01T00:00:00Z",
                    "2020-01-01T00:00:00Z",
                ],
                utc=True,
            ),  # fmt: skip
            "plan": ["basic", "team", "team", None, "pro"],
            "sms_opt_in": [True, False, True, False, True],
        }
    )
    decider = ArtifactDecider(decider=None, customers=customers)  # type: ignore[arg-type]
    for ids in (["c3"], ["c2"], ["nobody"], ["c4", "nobody", "c1", "c4"], ["c1", "c2", "c3", "c4"]):
        assert _typed(decider.known_customers(ids)) == _typed(_as_frame_gave(customers, ids))
    assert decider.known_customers(["c2"]) == {
        "c2": {"country": "DE", "timezone": "Europe/Berlin",
               "signup_at": pd.Timestamp("2020-01-01", tz="UTC"), "plan": "pro",
               "sms_opt_in": True}
    }  # fmt: skip
    assert decider.known_customers(["c4"])["c4"]["country"] is None  # NaN read as missing
    assert type(decider.known_customers(["c1"])["c1"]["sms_opt_in"]) is bool
