"""The decision writer (write-behind): batches, flush, read-your-writes, shutdown, failures."""

from __future__ import annotations

import functools
import gc
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from api_helpers import make_settings, post_json, request_body
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from serving.app import create_app
from serving.store.db import make_engine, migrate, ping
from serving.store.decision_writer import DecisionWriter
from serving.store.models import Customer, Decision
from serving.store.writes import record_decisions
from training.api.schemas import RecommendationRequest, RecommendationResponse
from training.policy.decisions import new_decision_ids


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    migrate(engine)
    yield engine
    engine.dispose()


def decisions(count: int, customer: str = "cus_77") -> tuple[list, list]:
    """``count`` answered decisions: the contract's request, a fallback-style response."""
    requests, responses = [], []
    for i, decision_id in enumerate(new_decision_ids(count)):
        request = RecommendationRequest.model_validate(
            request_body(invoice_id=f"in_{decision_id}_{i}", customer_id=customer)
        )
        requests.append(request)
        responses.append(
            RecommendationResponse.model_validate(
                {
                    "invoice_id": request.invoice_id,
                    "model_version": "rules-fallback/1",
                    "decline": {"category": "insufficient_funds", "retryable": "yes"},
                    "retries": [],
                    "messages": [],
                    "expected_recovery_probability": None,
                    "baseline_recovery_probability": None,
                    "decision_id": decision_id,
                    "propensity": 1.0,
                    "reasons": ["rule-based schedule"],
                    "fallback": True,
                }
            )
        )
    return requests, responses


def stored(engine: Engine, table: type = Decision) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


class CountingWrite:
    """The real ``record_decisions`` on ``engine``, counting its calls (transactions)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.batches: list[int] = []

    def __call__(
        self, requests: Sequence, responses: Sequence, response_json: Sequence | None = None
    ) -> None:
        self.batches.append(len(requests))
        record_decisions(self.engine, requests, responses, response_json)


def test_decisions_queued_together_share_one_transaction(engine):
    write = CountingWrite(engine)
    writer = DecisionWriter(write, max_delay=5.0)
    writer.start()
    try:
        for _ in range(5):
            writer.submit(*decisions(1))
        assert stored(engine) == 0  # answered, not written yet: waiting for company
        assert writer.pending == 5
        assert writer.flush(timeout=10)
        assert write.batches == [5]
        assert stored(engine) == 5 and writer.pending == 0
    finally:
        writer.close()


def test_a_batch_is_written_after_max_delay_without_a_flush(engine):
    writer = DecisionWriter(CountingWrite(engine), max_delay=0.05)
    writer.start()
    try:
        writer.submit(*decisions(2))
        deadline = time.monotonic() + 10
        while stored(engine) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stored(engine) == 2
    finally:
        writer.close()


def test_close_writes_everything_still_queued(engine):
    writer = DecisionWriter(CountingWrite(engine), max_delay=60.0, max_batch=3)
    writer.start()
    for _ in range(4):
        writer.submit(*decisions(2))
    writer.close(timeout=30)
    assert stored(engine) == 8
    # after close, a late decision is written at once instead of queued
    writer.submit(*decisions(1))
    assert stored(engine) == 9


def test_customer_fields_of_queued_decisions_are_known_until_written(engine):
    writer = DecisionWriter(CountingWrite(engine), max_delay=60.0)
    writer.start()
    try:
        assert writer.queued_customers(["cus_a"]) == {}
        writer.submit(*decisions(1, customer="cus_a"))
        later = RecommendationRequest.model_validate(
            request_body(invoice_id="in_later", customer_id="cus_a", customer={"sms_opt_in": False})
        )
        writer.submit([later], [decisions(1, customer="cus_a")[1][0]])
        queued = writer.queued_customers(["cus_a", "cus_b"])
        assert set(queued) == {"cus_a"}  # cus_b has nothing queued
        # merged in order: the later request's non-null value wins, the rest is kept
        assert queued["cus_a"]["timezone"] == "Europe/Amsterdam"
        assert queued["cus_a"]["sms_opt_in"] is False
        assert stored(engine, Customer) == 0
        assert writer.flush(timeout=30)
        assert writer.queued_customers(["cus_a"]) == {}  # now the store has them
        assert stored(engine, Customer) == 1
    finally:
        writer.close()


def test_a_batch_the_store_refuses_is_retried_then_dropped_and_counted(tmp_path):
    unmigrated = make_engine(f"sqlite:///{tmp_path / 'no-tables.sqlite'}")  # no such table
    write = CountingWrite(unmigrated)
    dropped: list[int] = []
    writer = DecisionWriter(
        write, max_delay=0, retry_delays=(0.01, 0.01), on_dropped=dropped.append
    )
    writer.start()
    try:
        writer.submit(*decisions(3))
        assert writer.flush(timeout=30)
        assert write.batches == [3, 3, 3]  # first try and two retries
        assert dropped == [3] and writer.pending == 0
    finally:
        writer.close()
        unmigrated.dispose()


def test_submit_waits_for_room_when_the_queue_is_full(engine):
    write = CountingWrite(engine)
    writer = DecisionWriter(write, max_delay=60.0, max_batch=2, max_pending=2)
    writer.start()
    try:
        writer.submit(*decisions(2))  # a full batch: written at once
        writer.submit(*decisions(2))
        writer.submit(*decisions(2))  # waits until the writer took the previous two
        assert writer.flush(timeout=30)
        assert sum(write.batches) == 6 and max(write.batches) <= 2
        assert stored(engine) == 6
    finally:
        writer.close()


def test_writer_refuses_a_batch_larger_than_the_queue(engine):
    with pytest.raises(ValueError, match="max_batch"):
        DecisionWriter(functools.partial(record_decisions, engine), max_batch=10, max_pending=5)


def count_decisions(database_url: str) -> int:
    engine = make_engine(database_url)
    try:
        return stored(engine)
    finally:
        engine.dispose()


def test_app_stores_every_answered_decision_by_shutdown(tmp_path):
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings)) as client:
        for i in range(3):
            response = post_json(client, "/v1/recommendations", request_body(invoice_id=f"in_{i}"))
            assert response.status_code == 200
        assert client.app.state.decision_writer is not None
    assert count_decisions(settings.database_url) == 3


def test_without_write_behind_the_decision_is_committed_before_the_answer(tmp_path):
    settings = make_settings(tmp_path, decision_write_behind=False)
    with TestClient(create_app(settings)) as client:
        assert client.app.state.decision_services.write_behind is False
        assert post_json(client, "/v1/recommendations", request_body()).status_code == 200
        assert count_decisions(settings.database_url) == 1


def test_the_loaded_heap_is_frozen_for_the_garbage_collector(client):
    # objects alive after the (re)load are exempt from full collections (serving.model_loader)
    assert gc.get_freeze_count() > 0


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[tuple[Engine, Path, Path]]:
    """A migrated store whose folder can be renamed away (unreachable) and back."""
    folder, away = tmp_path / "down", tmp_path / "down-away"
    folder.mkdir()
    engine = make_engine(f"sqlite:///{folder / 'store.sqlite'}")
    migrate(engine)
    yield engine, folder, away
    engine.dispose()


def wait_until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_during_an_outage_a_batch_is_held_past_its_retries_until_the_store_is_back(outage):
    engine, folder, away = outage
    dropped: list[int] = []
    writer = DecisionWriter(
        CountingWrite(engine),
        max_delay=0,
        retry_delays=(0.01, 0.01),
        on_dropped=dropped.append,
        store_up=functools.partial(ping, engine),
        outage_delay=0.02,
    )
    folder.rename(away)
    engine.dispose()
    writer.start()
    try:
        writer.submit(*decisions(3))
        wait_until(lambda: writer.in_outage)
        time.sleep(0.3)  # many times the retries
        assert writer.pending == 3 and dropped == []
        away.rename(folder)
        assert writer.flush(timeout=30)
        assert stored(engine) == 3 and dropped == [] and not writer.in_outage
    finally:
        writer.close()


def test_a_full_queue_during_an_outage_drops_new_decisions_instead_of_waiting(outage):
    engine, folder, away = outage
    dropped: list[int] = []
    writer = DecisionWriter(
        CountingWrite(engine),
        max_delay=0,
        max_batch=2,
        max_pending=2,
        on_dropped=dropped.append,
        store_up=functools.partial(ping, engine),
        outage_delay=0.02,
    )
    folder.rename(away)
    engine.dispose()
    writer.start()
    try:
        writer.submit(*decisions(2))
        wait_until(lambda: writer.in_outage)
        writer.submit(*decisions(2))  # taken by the writer's held batch: queued
        started = time.monotonic()
        writer.submit(*decisions(2))  # the queue is full: dropped at once
        assert time.monotonic() - started < 1.0
        assert dropped == [2]
        away.rename(folder)
        assert writer.flush(timeout=30)
        assert stored(engine) == 4
    finally:
        writer.close()
