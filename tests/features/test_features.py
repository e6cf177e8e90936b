"""Features are computed as of the decision time, the same way for training and serving."""

import numpy as np
import pandas as pd
import pytest

from training.api.requests import requests_to_frames
from training.config.retry_limits import RetryLimits
from training.contract.history import History
from training.features.customer import CUSTOMER_CONTEXT, CUSTOMER_FEATURES, customer_features
from training.features.frames import RETRY_FEATURES, candidate_features, event_features
from training.features.history_log import customer_event_log, empty_log
from training.features.invoice import events_from_history
from training.models.datasets import build_training_data, history_timeline
from training.policy.scorer import build_timeline, past_rows

UPDATE = RetryLimits().update_requests


def _repeat_customer_invoice(history: History) -> str:
    """An invoice whose customer failed before (so history features are populated)."""
    inv = history.invoices.sort_values("due_at")
    counts = inv.groupby("customer_id").cumcount()
    return inv.loc[counts.to_numpy() >= 2, "invoice_id"].iloc[0]


def _rows_for(history: History, table, invoice_id: str) -> pd.DataFrame:
    events = events_from_history(history)
    log = customer_event_log(history)
    features = event_features(events, log, table)
    timeline = history_timeline(history)
    timeline = timeline[timeline["key"] == invoice_id]
    rows = candidate_features(features, timeline, UPDATE)
    return rows.sort_values(["hours_since_failure", "kind"], kind="stable").reset_index(drop=True)


def test_planted_future_events_change_no_feature(history, table):
    invoice_id = _repeat_customer_invoice(history)
    before = _rows_for(history, table, invoice_id)
    inv = history.invoices.set_index("invoice_id").loc[invoice_id]
    later = inv["due_at"] + pd.Timedelta(hours=1)
    # the same customer fails again, pays, clicks, all after this invoice failed
    planted_invoice = pd.DataFrame(
        [
            {
                **history.invoices.set_index("invoice_id").loc[invoice_id].to_dict(),
                "invoice_id": "in_planted",
                "due_at": later,
            }
        ]
    )
    planted_attempts = pd.DataFrame(
        [
            {
                "attempt_id": "att_p1",
                "invoice_id": "in_planted",
                "attempted_at": later,
                "initiated_by": "merchant",
                "outcome": "failed",
                "decline_code": "insufficient_funds",
                "merchant_advice_code": None,
                "propensity": np.nan,
            },
            {
                "attempt_id": "att_p2",
                "invoice_id": "in_planted",
                "attempted_at": later + pd.Timedelta(hours=2),
                "initiated_by": "customer",
                "outcome": "succeeded",
                "decline_code": None,
                "merchant_advice_code": None,
                "propensity": np.nan,
            },
        ]
    )
    planted_messages = pd.DataFrame(
        [
            {
                "message_id": "msg_p1",
                "invoice_id": "in_planted",
                "sent_at": later,
                "channel": "email",
                "template": "payment_link",
                "propensity": np.nan,
                "opened_at": later + pd.Timedelta(minutes=5),
                "clicked_at": later + pd.Timedelta(minutes=6),
            }
        ]
    )
    # and clicks on this invoice's own messages, which the plan cannot know either
    messages = history.messages.copy()
    own = messages["invoice_id"] == invoice_id
    messages.loc[own, "clicked_at"] = messages.loc[own, "sent_at"] + pd.Timedelta(minutes=3)
    planted = History(
        history.customers,
        pd.concat([history.invoices, planted_invoice], ignore_index=True),
        pd.concat([history.attempts, planted_attempts], ignore_index=True),
        pd.concat([messages, planted_messages], ignore_index=True),
    )
    after = _rows_for(planted, table, invoice_id)
    pd.testing.assert_frame_equal(before, after)
    # ...while an event before the decision does change them (the test can fail)
    earlier = planted_invoice.assign(
        invoice_id="in_earlier", due_at=inv["due_at"] - pd.Timedelta(days=30)
    )
    moved = History(
        history.customers,
        pd.concat([history.invoices, earlier], ignore_index=True),
        history.attempts,
        history.messages,
    )
    changed = _rows_for(moved, table, invoice_id)
    assert not changed["cust_failures_12m"].equals(before["cust_failures_12m"])


def test_serving_path_builds_the_training_features(history, table):
    """An API request for a logged invoice, with its logged schedule proposed, gets the
    exact feature rows the model was trained on."""
    invoice_id = _repeat_customer_invoice(history)
    data = build_training_data(history, table, window_days=14, update=UPDATE)
    trained = data.retry.features[data.retry.invoice_id == invoice_id]
    assert len(trained) > 0

    inv = history.invoices.set_index("invoice_id").loc[invoice_id]
    customer = history.customers.set_index("customer_id").loc[inv["customer_id"]]
    original = (
        history.attempts[history.attempts["invoice_id"] == invoice_id]
        .sort_values("attempted_at")
        .iloc[0]
    )
    request = {
        "invoice_id": invoice_id,
        "customer_id": inv["customer_id"],
        "amount_minor": int(inv["amount_minor"]),
        "currency": inv["currency"],
        "payment_method": inv["payment_method"],
        "card_brand": inv["card_brand"],
        "processor": inv["processor"],
        "decline_code": original["decline_code"],
        "merchant_advice_code": original["merchant_advice_code"],
        "failed_at": inv["due_at"].isoformat(),
        "customer": {
            "country": customer["country"],
            "timezone": customer["timezone"],
            "signup_at": customer["signup_at"].isoformat(),
            "sms_opt_in": bool(customer["sms_opt_in"]),
        },
    }
    events, previous = requests_to_frames([request], event_ids=[invoice_id])
    features = event_features(events, data.log, table, previous)
    logged = history_timeline(history)
    logged = logged[(logged["key"] == invoice_id) & (logged["kind"] != "original")]
    keys = pd.DataFrame({"key": [invoice_id], "event_id": [invoice_id]})
    retries = logged[logged["kind"] == "retry"].rename(columns={"t": "at"})
    messages = logged[logged["kind"] == "message"].rename(columns={"t": "send_at"})
    timeline = build_timeline(keys, past_rows(events, previous), retries, messages)
    served = candidate_features(features, timeline, UPDATE)
    served = served[served["kind"] == "retry"][list(RETRY_FEATURES)].reset_index(drop=True)
    expected = trained[list(RETRY_FEATURES)].reset_index(drop=True)
    pd.testing.assert_frame_equal(served, expected, check_dtype=False)


def test_unknown_customer_gets_cold_start_values():
    decisions = pd.DataFrame(
        {
            "customer_id": ["cus_new"],
            "as_of": pd.to_datetime(["2026-01-01"], utc=True),
            "signup_at": pd.to_datetime([None], utc=True),
        }
    )
    features = customer_features(decisions, empty_log())
    row = features.iloc[0]
    assert row["cust_failures_12m"] == 0 and row["cust_payments"] == 0
    assert np.isnan(row["cust_pay_day_of_month"]) and np.isnan(row["cust_recovery_rate"])
    assert list(features.columns) == [*CUSTOMER_FEATURES, *CUSTOMER_CONTEXT]


def test_history_features_are_per_customer(history, table):
    """Computing on one customer's slice of the log gives the same as on the whole log
    (the group-by over customer_id lets a distributed run split by customer)."""
    events = events_from_history(history)
    log = customer_event_log(history)
    customer = events["customer_id"].value_counts().index[0]
    mine = events[events["customer_id"] == customer]
    start = log["at"].min()
    whole = event_features(mine, log, table)
    sliced = event_features(mine, log[log["customer_id"] == customer].reset_index(drop=True), table)
    decisions = pd.DataFrame(
        {
            "customer_id": mine["customer_id"],
            "as_of": mine["failed_at"],
            "signup_at": mine["signup_at"],
        }
    )
    pd.testing.assert_frame_equal(
        customer_features(decisions, log, start),
        customer_features(decisions, log[log["customer_id"] == customer], start),
    )
    assert whole.shape == sliced.shape


@pytest.mark.parametrize("column", ["inv_decline_category", "inv_retryable"])
def test_decline_features_use_the_reference_table(history, table, column):
    events = events_from_history(history)
    features = event_features(events.head(200), customer_event_log(history), table)
    assert features[column].notna().all()
    assert set(features["inv_decline_category"]) <= set(table.rows["category"])


def test_grid_fast_path_matches_the_timeline_path(small_world):
    """The search's direct retry-grid features equal those of scoring each candidate
    through its full timeline (earlier failed retries as rows, messages as context)."""
    from training.config.policy import PolicyConfig
    from training.core.arrays import group_counter
    from training.policy.retry_search import retry_grid_columns
    from training.policy.scorer import build_timeline

    decider = small_world.artifact.decider()
    events = events_from_history(small_world.history).tail(25).reset_index(drop=True)
    features = decider.scorer.event_features(events, None)
    previous = pd.DataFrame(
        {
            "event_id": events["event_id"].iloc[:5],
            "attempted_at": events["failed_at"].iloc[:5] - pd.Timedelta(days=2),
        }
    )
    past = past_rows(events, previous)
    messages = pd.DataFrame(
        {
            "event_id": np.repeat(events["event_id"].to_numpy(), 2),
            "send_at": np.repeat(events["failed_at"].to_numpy(), 2)
            + np.tile([pd.Timedelta(hours=1), pd.Timedelta(hours=30)], len(events)),
            "template": np.tile(["update_payment_method", "payment_link"], len(events)),
            "channel": "email",
        }
    )
    rng = np.random.default_rng(3)
    ids = np.repeat(events["event_id"].to_numpy(), 8)
    hour = 3_600_000_000_000
    at = (
        pd.DatetimeIndex(events["failed_at"]).asi8.repeat(8) + rng.integers(1, 300, len(ids)) * hour
    )
    k = rng.integers(0, 4, len(ids))
    config = PolicyConfig()
    pos, columns = retry_grid_columns(features, past, messages, ids, at, k, config, UPDATE)
    model = decider.scorer.models.retry
    fast = features.model_matrix(model, pos, columns)

    n = len(ids)
    keys = pd.DataFrame({"key": np.arange(n), "event_id": ids})
    phantom = np.repeat(np.arange(n), k)
    gap = int(config.nominal_retry_gap_hours * hour)
    retries = pd.DataFrame(
        {
            "key": np.concatenate([np.arange(n), phantom]),
            "at": pd.to_datetime(
                np.concatenate([at, at[phantom] - (group_counter(k) + 1) * gap]), utc=True
            ),
        }
    )
    context = keys.merge(messages, on="event_id")
    timeline = build_timeline(keys, past, retries, context, ("retry",))
    proposed = timeline.index[timeline["candidate"].to_numpy()]
    timeline.loc[proposed, "candidate"] = np.r_[np.ones(n, bool), np.zeros(len(phantom), bool)]
    slow = candidate_features(features.features, timeline, UPDATE)
    slow = slow.assign(key=timeline.loc[slow.index, "key"].to_numpy()).sort_values("key")
    np.testing.assert_array_equal(fast, model.encoded(slow))  # pair rates included
