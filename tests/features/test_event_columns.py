"""The numpy building blocks of the event features: advice codes, previous-attempt counts,
dunning start, and the column dicts behind invoice_features / customer_features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.core.localtime import NAT, to_ns
from training.features.customer import (
    CUSTOMER_CONTEXT,
    CUSTOMER_FEATURES,
    CustomerIndex,
    customer_columns,
    customer_features,
)
from training.features.history_log import customer_event_log
from training.features.invoice import (
    INVOICE_CATEGORICAL,
    INVOICE_NUMERIC,
    advice_codes,
    dunning_start_ns,
    events_from_history,
    invoice_columns,
    invoice_features,
    previous_attempt_counts,
)


def _events() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": ["e1", "e2", "e3", "e1"],  # a repeated id gets the same values
            "failed_at": pd.to_datetime(
                [
                    "2026-03-10T12:00Z",
                    "2026-03-10T12:00Z",
                    "2026-03-10T12:00Z",
                    "2026-03-09T00:00Z",
                ],
                utc=True,
            ),
        }
    )


def _previous() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "event_id": ["e1", "e1", "e2", "e9", None],
            "attempted_at": pd.to_datetime(
                [
                    "2026-03-08T08:00Z",
                    None,
                    "2026-03-11T00:00Z",
                    "2026-01-01T00:00Z",
                    "2026-01-01T00:00Z",
                ],
                utc=True,
            ),
        }
    )


def test_advice_codes_pad_strip_and_fill():
    values = pd.Series(["1", " 21 ", None, np.nan, 3, "02", "24"], dtype=object)
    got = advice_codes(values)
    assert got.dtype == object
    assert got.tolist() == ["01", "21", "none", "none", "03", "02", "24"]
    expected = values.where(values.notna(), "none").astype(str).str.strip().str.zfill(2)
    assert got.tolist() == expected.tolist()


def test_previous_attempt_counts_per_event_id():
    got = previous_attempt_counts(_events(), _previous())
    assert got.tolist() == [2.0, 1.0, 0.0, 2.0]
    assert previous_attempt_counts(_events(), None).tolist() == [0.0] * 4
    assert previous_attempt_counts(_events(), _previous().iloc[:0]).tolist() == [0.0] * 4
    only_missing_ids = _previous().iloc[4:]
    assert previous_attempt_counts(_events(), only_missing_ids).tolist() == [0.0] * 4


def test_dunning_start_is_the_earliest_known_attempt():
    events = _events()
    got = dunning_start_ns(events, _previous())
    expected = pd.to_datetime(
        ["2026-03-08T08:00Z", "2026-03-10T12:00Z", "2026-03-10T12:00Z", "2026-03-08T08:00Z"],
        utc=True,
    ).asi8
    assert got.tolist() == expected.tolist()
    assert dunning_start_ns(events, None).tolist() == to_ns(events["failed_at"]).tolist()
    events.loc[2, "failed_at"] = pd.NaT
    assert dunning_start_ns(events, _previous())[2] == NAT


def test_one_event_alone_gets_what_it_gets_among_others():
    """A lone request's path (one event, no factorize or index) equals the general one,
    with a missing failure time too."""
    events = _events()
    events.loc[2, "failed_at"] = pd.NaT
    previous = _previous()
    counts = previous_attempt_counts(events, previous)
    starts = dunning_start_ns(events, previous)
    for row in range(3):
        alone = events.iloc[[row]].reset_index(drop=True)
        assert previous_attempt_counts(alone, previous).tolist() == [counts[row]]
        assert dunning_start_ns(alone, previous).tolist() == [starts[row]]
        assert (
            dunning_start_ns(alone, previous.iloc[4:]).tolist()
            == to_ns(alone["failed_at"]).tolist()
        )


def test_column_dicts_are_the_feature_frames(history, table):
    events = events_from_history(history).head(300).copy()
    events.loc[events.index[:5], "timezone"] = None  # missing zone: local time is UTC
    features = invoice_features(events, None, table)
    columns = invoice_columns(events, None, table)
    assert list(columns) == [*INVOICE_NUMERIC, *INVOICE_CATEGORICAL]
    assert list(features.columns) == list(columns)
    utc_hour = events["failed_at"].dt.hour + events["failed_at"].dt.minute / 60.0
    np.testing.assert_array_equal(
        features["inv_failed_local_hour"].to_numpy()[:5], utc_hour.to_numpy()[:5]
    )

    log = customer_event_log(history)
    index = CustomerIndex.build(log)
    decisions = pd.DataFrame(
        {
            "customer_id": events["customer_id"].to_numpy(),
            "as_of": events["failed_at"].to_numpy(),
            "signup_at": events["signup_at"].to_numpy(),
        },
        index=events.index,
    )
    frame = customer_features(decisions, index=index)
    arrays = customer_columns(
        decisions["customer_id"].to_numpy(),
        to_ns(decisions["as_of"]),
        to_ns(decisions["signup_at"]),
        index,
    )
    assert list(arrays) == [*CUSTOMER_FEATURES, *CUSTOMER_CONTEXT] == list(frame.columns)
    assert (frame.dtypes == np.float64).all()
    for name, values in arrays.items():
        np.testing.assert_array_equal(frame[name].to_numpy(), values, err_msg=name)
    assert frame["cust_payments"].gt(0).any()  # real history, not only cold starts
    assert customer_features(decisions.iloc[:0], index=index).shape == (0, len(arrays))
