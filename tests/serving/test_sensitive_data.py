"""Card numbers (any separator), card security codes and IBANs sent in every string field
of every route: each request is refused, and afterwards no output holds any of them (the
log records of every logger, every column of every store table, the exported history,
the responses). The service writes no MLflow artifact (only training does)."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from api_helpers import flush_decisions, make_settings, post_json, request_body
from fastapi.testclient import TestClient
from sqlalchemy import select
from webhook_helpers import STRIPE_SECRET, post_stripe, stripe_event

from serving.app import create_app
from serving.export import export_outcomes
from serving.store.db import make_engine
from serving.store.models import Base

pytestmark = pytest.mark.slow  # about 700 requests

CARD = "4242424242424242"  # Visa test number (Luhn-valid)
AMEX = "378282246310005"
SEPARATORS = ["", " ", "-", ".", "/", "_", "\t", "\u00a0", "  "]
CARDS = [
    *(sep.join([CARD[i : i + 4] for i in range(0, 16, 4)]) for sep in SEPARATORS),
    "3782 822463 10005",
    f"card {CARD[:4]} {CARD[4:8]} {CARD[8:12]} {CARD[12:]} please",
]
IBANS = ["DE89370400440532013000", "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"]
SECURITY_CODE = ("cvv2", "9137")
SAMPLES = [*CARDS, *IBANS]
# what must appear in no output: the digits/characters of each sample, however separated
# (a security code's value is 3-4 digits, found in any timestamp: its field name is checked)
NEEDLES = {CARD, AMEX, "DE89370400440532013000", "GB82WEST12345698765432"}


def string_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, str):
        yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from string_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from string_paths(item, (*path, index))


def object_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        yield path
        for key, item in value.items():
            yield from object_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from object_paths(item, (*path, index))


def replaced(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(body)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def with_security_code(body: Any, path: tuple[Any, ...]) -> Any:
    changed = copy.deepcopy(body)
    target = changed
    for step in path:
        target = target[step]
    target[SECURITY_CODE[0]] = SECURITY_CODE[1]
    return changed


def attacks(body: dict[str, Any]) -> Iterator[Any]:
    """The body with each sample in each string field, a card number as a JSON number in
    each integer field, and a security code added to each object."""
    for path in string_paths(body):
        for sample in SAMPLES:
            yield replaced(body, path, sample)
    if "amount_minor" in body:
        yield replaced(body, ("amount_minor",), int(CARD))
    for path in object_paths(body):
        yield with_security_code(body, path)


OUTCOME_EVENTS = [
    {
        "event_id": "ev_a",
        "type": "attempt",
        "invoice_id": "in_1029",
        "occurred_at": "2026-11-25T06:00:04Z",
        "initiated_by": "merchant",
        "outcome": "failed",
        "decline_code": "insufficient_funds",
        "decision_id": "dec_8f2c",
    },
    {
        "event_id": "ev_b",
        "type": "message_sent",
        "invoice_id": "in_1029",
        "occurred_at": "2026-11-20T17:30:00Z",
        "message_id": "msg_5",
        "channel": "email",
        "template": "payment_link",
    },
]


def dump_store(database_url: str) -> str:
    """Every column of every table, as text."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = [
                json.dumps(dict(row), default=str)
                for table in Base.metadata.sorted_tables
                for row in conn.execute(select(table)).mappings()
            ]
    finally:
        engine.dispose()
    return "\n".join(rows)


def squeezed(text: str) -> str:
    """The text with every separator removed, so a number split any way is found whole."""
    return "".join(ch for ch in text if ch.isalnum())


def test_card_data_in_any_field_is_refused_and_reaches_no_output(tmp_path, caplog):
    # over 500 requests as fast as the client sends them: the per-key rate limit (its own
    # tests guard it) would answer 429 on a fast machine, so it is off here
    settings = make_settings(tmp_path, stripe_webhook_secret=STRIPE_SECRET, rate_limit_per_second=0)
    outputs: list[str] = []
    with caplog.at_level(logging.DEBUG), TestClient(create_app(settings)) as client:
        # something stored, so the store and the export are not trivially clean
        assert post_json(client, "/v1/recommendations", request_body()).status_code == 200
        assert post_json(client, "/v1/outcomes", {"events": OUTCOME_EVENTS}).status_code == 200

        routes = {
            "/v1/recommendations": list(attacks(request_body())),
            "/v1/recommendations/batch": [
                {"items": [request_body(invoice_id="in_ok"), attack]}
                for attack in attacks(request_body())
            ],
            "/v1/outcomes": [
                *({"events": [e, OUTCOME_EVENTS[1]]} for e in attacks(OUTCOME_EVENTS[0])),
                *({"events": [OUTCOME_EVENTS[0], e]} for e in attacks(OUTCOME_EVENTS[1])),
                {"events": OUTCOME_EVENTS, SECURITY_CODE[0]: SECURITY_CODE[1]},
            ],
        }
        sent = 0
        for path, bodies in routes.items():
            for body in bodies:
                response = post_json(client, path, body)
                assert response.status_code == 422, (path, body, response.text)
                outputs.append(response.text)
                sent += 1
        event = stripe_event("charge.failed")
        for path in string_paths(event):
            for sample in (CARDS[2], CARDS[-1], IBANS[1]):
                attack = replaced(event, path, sample)
                if path != ("id",):
                    attack["id"] = f"evt_attack_{sent}"  # not a replay of an earlier one
                response = post_stripe(client, attack)
                assert response.status_code == 422, response.text
                outputs.append(response.text)
                sent += 1
        flush_decisions(client)
    assert sent > 500
    responses = len(outputs)
    outputs.append(caplog.text)
    outputs.extend(json.dumps(r.__dict__, default=str) for r in caplog.records)
    outputs.append(dump_store(settings.database_url))
    export = tmp_path / "export"
    export_outcomes(make_engine(settings.database_url), export, "csv")
    exported = [p.read_text() for p in export.rglob("*") if p.is_file()]
    assert exported and any("in_1029" in text for text in exported)
    outputs.extend(exported)

    everything = squeezed("\n".join(outputs)).upper()
    found = sorted(needle for needle in NEEDLES if squeezed(needle).upper() in everything)
    assert found == [], f"card data found in an output: {found}"
    # the 422 names the field (cvv2) as the contract wants; nothing else may hold it
    stored_and_logged = squeezed("\n".join(outputs[responses:])).upper()
    assert SECURITY_CODE[0].upper() not in stored_and_logged
