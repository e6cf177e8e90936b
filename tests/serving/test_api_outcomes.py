"""POST /v1/outcomes: validated whole, stored once per event_id, durable before 2xx."""

from __future__ import annotations

import sqlite3

import pytest
from api_helpers import post_json

EVENTS = [
    {
        "event_id": "ev_1",
        "type": "attempt",
        "invoice_id": "in_1029",
        "occurred_at": "2026-11-25T06:00:04Z",
        "initiated_by": "merchant",
        "outcome": "failed",
        "decline_code": "insufficient_funds",
        "decision_id": "dec_8f2c",
    },
    {
        "event_id": "ev_2",
        "type": "message_sent",
        "invoice_id": "in_1029",
        "occurred_at": "2026-11-20T17:30:00Z",
        "message_id": "msg_5",
        "channel": "email",
        "template": "payment_link",
        "decision_id": "dec_8f2c",
    },
    {
        "event_id": "ev_3",
        "type": "message_clicked",
        "invoice_id": "in_1029",
        "occurred_at": "2026-11-20T19:02:11Z",
        "message_id": "msg_5",
    },
]


def test_contract_example_is_accepted(client, row_counts):
    response = post_json(client, "/v1/outcomes", {"events": EVENTS})
    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicates": 0}
    assert row_counts()["outcome_events"] == 3


def test_repeated_event_id_is_acknowledged_and_stored_once(client, row_counts):
    post_json(client, "/v1/outcomes", {"events": EVENTS})
    again = post_json(
        client, "/v1/outcomes", {"events": [EVENTS[0], {**EVENTS[2], "event_id": "ev_4"}]}
    )
    assert again.status_code == 200
    assert again.json() == {"accepted": 1, "duplicates": 1}
    assert row_counts()["outcome_events"] == 4


def test_repeat_inside_one_batch_counts_as_duplicate(client, row_counts):
    response = post_json(client, "/v1/outcomes", {"events": [EVENTS[0], EVENTS[0]]})
    assert response.json() == {"accepted": 1, "duplicates": 1}
    assert row_counts()["outcome_events"] == 1


BAD_BATCHES = [
    # (id, index of the bad event, change, code, field)
    ("unknown type", 1, {"type": "refund"}, "invalid_enum", "events[1].type"),
    ("missing type", 2, {"type": None}, "missing_field", "events[2].type"),
    (
        "bad timestamp",
        2,
        {"occurred_at": "20/11/2026"},
        "invalid_timestamp",
        "events[2].occurred_at",
    ),
    (
        "failed without code",
        0,
        {"decline_code": None},
        "decline_code_required",
        "events[0].decline_code",
    ),
    ("unknown outcome", 0, {"outcome": "maybe"}, "invalid_enum", "events[0].outcome"),
    ("sms typo", 1, {"channel": "sms "}, "invalid_enum", "events[1].channel"),
    ("missing message_id", 2, {"message_id": None}, "missing_field", "events[2].message_id"),
    ("unknown field", 1, {"opened": True}, "unknown_field", "events[1].opened"),
]


@pytest.mark.parametrize(
    ("index", "change", "code", "field"),
    [case[1:] for case in BAD_BATCHES],
    ids=[case[0] for case in BAD_BATCHES],
)
def test_one_bad_event_refuses_the_whole_batch(client, row_counts, index, change, code, field):
    events = [dict(e) for e in EVENTS]
    for key, value in change.items():
        if value is None:
            events[index].pop(key)
        else:
            events[index][key] = value
    response = post_json(client, "/v1/outcomes", {"events": events})
    assert response.status_code == 422
    assert (response.json()["code"], response.json()["field"]) == (code, field)
    assert row_counts()["outcome_events"] == 0


def test_empty_and_oversized_batches(client, settings, row_counts):
    assert post_json(client, "/v1/outcomes", {"events": []}).json()["code"] == "too_few_items"
    many = [{**EVENTS[2], "event_id": f"ev_{i}"} for i in range(settings.max_outcome_events + 1)]
    response = post_json(client, "/v1/outcomes", {"events": many})
    assert (response.status_code, response.json()["code"]) == (422, "too_many_items")
    assert row_counts()["outcome_events"] == 0


def test_documented_maximum_is_stored_in_one_call(client, settings, row_counts):
    many = [{**EVENTS[2], "event_id": f"ev_{i}"} for i in range(settings.max_outcome_events)]
    response = post_json(client, "/v1/outcomes", {"events": many})
    assert response.json() == {"accepted": settings.max_outcome_events, "duplicates": 0}
    assert row_counts()["outcome_events"] == settings.max_outcome_events


def test_store_is_durable_wal_and_full_sync(client, settings):
    post_json(client, "/v1/outcomes", {"events": EVENTS})
    path = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:  # a separate connection sees the committed rows
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM outcome_events").fetchone()[0] == 3
    engine = client.app.state.engine
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
