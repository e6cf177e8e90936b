"""The parts of a request timed one by one (``bench_service.py``): the functions the routes
and the middleware call, on the same held-out requests, median µs per request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from bench_world import API_KEY
from sqlalchemy import Engine, text
from uvicorn.logging import AccessFormatter

from serving.app import MetricsMiddleware
from serving.audit import audit_request
from serving.body import parse_json_object
from serving.keys import KeyRegistry
from serving.metrics import Metrics
from serving.microbatch import MicroBatcher
from serving.rate_limit import TokenBuckets
from serving.settings import hash_key
from serving.store.db import make_engine, migrate, normalize_url
from serving.store.writes import (
    known_customers,
    latest_payment_method_updates,
    record_decisions,
    record_outcomes,
)
from serving.timeouts import RequestTimeoutMiddleware
from training.api.requests import requests_to_frames
from training.api.schemas import (
    BatchResponse,
    OutcomesRequest,
    RecommendationRequest,
    RecommendationResponse,
)
from training.api.sensitive import scan
from training.api.service import responses_from_decisions
from training.policy.fallback import FallbackDecider

MICRO_BATCH = 20  # single requests decided together at ~200/s on two workers


def _median_us(run: Callable[[], Any], repeats: int, per: int = 1) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1e6 / per


class Cycle:
    """Hands out the next of ``values`` on each call (every timing sees other requests)."""

    def __init__(self, values: list[Any]) -> None:
        self.values, self.i = values, 0

    def __call__(self) -> Any:
        self.i = (self.i + 1) % len(self.values)
        return self.values[self.i]


def decide(decider: FallbackDecider, requests: list[RecommendationRequest]) -> list[Any]:
    ids = [str(i) for i in range(len(requests))]
    events, previous = requests_to_frames([r.model_dump() for r in requests], ids, {})
    return responses_from_decisions(
        requests, ids, decider.decide(events, previous), decider.model_version
    )


@contextlib.contextmanager
def postgres_store(url: str) -> Iterator[str]:
    """A fresh schema on the PostgreSQL server, dropped afterwards."""
    schema = f"bench_service_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    try:
        yield normalize_url(url) + separator + "options=" + quote(f"-csearch_path={schema}")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _async_us(make: Callable[[], Any], repeats: int) -> float:
    """Median µs of awaiting ``make()`` on one event loop."""

    async def run() -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            await make()
            times.append(time.perf_counter() - start)
        times.sort()
        return times[len(times) // 2] * 1e6

    return asyncio.run(run())


def _middleware(repeats: int) -> tuple[float, float]:
    """Metrics (with the audit record) + timeout middleware around a no-op app, minus the
    no-op app alone; the audit record goes to a logger with no handler here."""

    async def noop(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    wrapped = MetricsMiddleware(RequestTimeoutMiddleware(noop, 60), Metrics())
    scope = {"type": "http", "path": "/v1/recommendations", "method": "POST", "state": {}}

    async def send(_: Any) -> None:
        return None

    bare = _async_us(lambda: noop(scope, None, send), repeats)
    return _async_us(lambda: wrapped(scope, None, send), repeats), bare


def _log_lines(repeats: int) -> tuple[float, float]:
    """The audit record and uvicorn's access-log line, formatted and written to a file
    (``smartretry serve`` writes both to stderr)."""
    scope = {
        "path": "/v1/recommendations", "method": "POST", "state": {"key_id": "cfg-01234567"},
        "route": None,
    }  # fmt: skip
    sink = open(os.devnull, "w")
    audit = logging.getLogger("smartretry.audit")
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    audit.propagate = False
    access = logging.getLogger("bench.access")
    access_handler = logging.StreamHandler(sink)
    access_handler.setFormatter(
        AccessFormatter('%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s')
    )
    access.addHandler(access_handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    try:
        audit_us = _median_us(lambda: audit_request(scope, 200), repeats)
        access_us = _median_us(
            lambda: access.info(
                '%s - "%s %s HTTP/%s" %d',
                "127.0.0.1:5000",
                "POST",
                "/v1/recommendations",
                "1.1",
                200,
            ),  # fmt: skip
            repeats,
        )
    finally:
        audit.removeHandler(handler)
        access.removeHandler(access_handler)
        sink.close()
    return audit_us, access_us


def _handover(repeats: int) -> float:
    """One item through the micro-batcher (queue, its thread, the answer back)."""

    async def run() -> float:
        batcher = MicroBatcher(lambda items: items, 256)
        batcher.start()
        times = []
        for i in range(repeats):
            start = time.perf_counter()
            await batcher.submit(i)
            times.append(time.perf_counter() - start)
        await batcher.stop()
        times.sort()
        return times[len(times) // 2] * 1e6

    return asyncio.run(run())


def _outcome_body(responses: list[RecommendationResponse], size: int, tag: str) -> dict:
    events = []
    for e in range(size):
        r = responses[e % len(responses)]
        base = {"event_id": f"ev_{tag}_{e}", "invoice_id": r.invoice_id,
                "occurred_at": "2026-11-21T10:00:00Z", "decision_id": r.decision_id}  # fmt: skip
        if e % 2:
            base |= {"type": "attempt", "initiated_by": "merchant", "outcome": "failed",
                     "decline_code": "insufficient_funds"}  # fmt: skip
        else:
            base |= {"type": "message_sent", "message_id": f"msg_{tag}_{e}",
                     "channel": "email", "template": "payment_link"}  # fmt: skip
        events.append(base)
    return {"events": events}


def fresh(responses: list[RecommendationResponse], tag: str) -> list[RecommendationResponse]:
    """The responses with new decision ids (each stored decision needs its own)."""
    return [r.model_copy(update={"decision_id": f"{r.decision_id}_{tag}"}) for r in responses]


def _store_parts(
    table: Any,
    name: str,
    engine: Engine,
    requests: list[RecommendationRequest],
    responses: list[RecommendationResponse],
    repeats: int,
) -> None:
    migrate(engine)
    pairs = Cycle(list(zip(requests, fresh(responses, "single"), strict=True)))
    n = len(requests)
    table.row(
        f"{name}: card-update lookup (payment_method_updated)",
        _median_us(
            lambda: latest_payment_method_updates(
                engine, [pairs()[0].customer_id], [pairs()[0].invoice_id]
            ),
            repeats,
        ),
    )
    table.row(
        f"{name}: customer lookup (20 % of requests)",
        _median_us(lambda: known_customers(engine, [pairs()[0].customer_id]), repeats),
    )
    try:  # the route's reads in one transaction (this branch; not in older code)
        from serving.store.writes import request_lookups
    except ImportError:
        request_lookups = None
    if request_lookups is not None:
        table.row(
            f"{name}: both in one read transaction (request_lookups)",
            _median_us(
                lambda: request_lookups(
                    engine,
                    [pairs()[0].customer_id],
                    [pairs()[0].invoice_id],
                    [pairs()[0].customer_id],
                ),  # fmt: skip
                repeats,
            ),
        )
    table.row(
        f"{name}: store one decision (its own transaction)",
        _median_us(lambda: record_decisions(engine, *map(list, zip(pairs(), strict=True))), 50),
        "write-behind off (PostgreSQL default)",
    )
    chunk = MICRO_BATCH
    start = iter(range(0, n - chunk, chunk))
    batched = fresh(responses, "batched")

    def batch() -> None:
        i = next(start)
        record_decisions(engine, requests[i : i + chunk], batched[i : i + chunk])

    table.row(
        f"{name}: store decisions, {chunk} per transaction, per decision",
        _median_us(batch, 20, per=chunk),
        "write-behind (SQLite default)",
    )


def _decision_rows(
    t: Any, decider: FallbackDecider, requests: list[RecommendationRequest], size: int, reps: int
) -> None:
    """The decision of ``size`` requests in one call (a lone request, or a micro-batch)."""
    groups = Cycle(
        [requests[i : i + size] for i in range(0, min(len(requests), 200 * size) - size + 1, size)]
    )
    ids = [str(i) for i in range(size)]
    frames = Cycle(
        [requests_to_frames([r.model_dump() for r in g], ids, {}) for g in groups.values]
    )
    label = "alone" if size == 1 else f"in a micro-batch of {size}"
    t.row(f"decision {label}: request frames (requests_to_frames)", _median_us(
        lambda: requests_to_frames([r.model_dump() for r in groups()], ids, {}), reps, per=size))  # fmt: skip
    t.row(f"decision {label}: rules fallback (FallbackDecider.decide)", _median_us(
        lambda: decider.decide(*frames()), reps, per=size))  # fmt: skip
    t.row(f"decision {label}: whole (frames, decide, responses)", _median_us(
        lambda: decide(decider, groups()), reps, per=size))  # fmt: skip


def time_parts(
    items: list[dict[str, Any]],
    repeats: int,
    sqlite_url: str,
    postgres_url: str | None,
    Table: Any,
) -> None:
    bodies = [json.dumps(i).encode() for i in items]
    parsed = [json.loads(b) for b in bodies]
    requests = [RecommendationRequest.model_validate(p) for p in parsed]
    decider = FallbackDecider()
    responses = decide(decider, requests)
    next_body, next_parsed = Cycle(bodies), Cycle(parsed)
    next_response = Cycle(responses)

    t = Table("parts of one /v1/recommendations request (µs per request)")
    t.row("request body → JSON object (parse_json_object)", _median_us(
        lambda: parse_json_object(next_body()), repeats))  # fmt: skip
    t.row("card-data scan (training.api.sensitive.scan)", _median_us(
        lambda: scan(next_parsed()), repeats))  # fmt: skip
    t.row("validation (RecommendationRequest.model_validate)", _median_us(
        lambda: RecommendationRequest.model_validate(next_parsed()), repeats))  # fmt: skip
    registry = KeyRegistry([hash_key(API_KEY)], engine=None, cache_seconds=5)  # type: ignore[arg-type]
    t.row("API key check (KeyRegistry.authenticate)", _median_us(
        lambda: registry.authenticate(API_KEY), repeats))  # fmt: skip
    buckets = TokenBuckets(1e9, 10**9)
    t.row("rate limit (TokenBuckets.take)", _median_us(lambda: buckets.take("k"), repeats))
    wrapped, bare = _middleware(repeats)
    t.row("middleware: metrics + timeout (+ audit call, no handler)", wrapped - bare)
    audit_us, access_us = _log_lines(repeats)
    t.row("audit log record, formatted and written", audit_us)
    t.row("uvicorn access-log line, formatted and written", access_us)
    metrics = Metrics()
    t.row("metrics: decision counters", _median_us(
        lambda: metrics.observe_decisions([("soft", "true", True)]), repeats))  # fmt: skip
    t.row("micro-batch hand-over (queue → thread → answer)", _handover(repeats))
    for size in (1, MICRO_BATCH):
        _decision_rows(t, decider, requests, size, max(20, repeats // size))
    t.row("response → JSON (model_dump_json)", _median_us(
        lambda: next_response().model_dump_json().encode(), repeats))  # fmt: skip

    stores = [("SQLite", sqlite_url)]
    if postgres_url:
        stores.append(("PostgreSQL", postgres_url))
    with contextlib.ExitStack() as stack:
        urls = [(n, stack.enter_context(postgres_store(u)) if n == "PostgreSQL" else u)
                for n, u in stores]  # fmt: skip
        engines = [(n, make_engine(u)) for n, u in urls]
        for name, engine in engines:
            _store_parts(t, name, engine, requests, responses, repeats)

        b = Table("a 1,000-item /v1/recommendations/batch (ms per batch)", "ms")
        batch_body = json.dumps({"items": items[:1000]}).encode()
        batch_requests = requests[:1000]
        b.row("body → JSON object", _median_us(lambda: parse_json_object(batch_body), 5) / 1e3)
        body = json.loads(batch_body)
        b.row("card-data scan of the body", _median_us(lambda: scan(body), 5) / 1e3)
        b.row("validation of the items", _median_us(
            lambda: [RecommendationRequest.model_validate(i) for i in body["items"]], 5) / 1e3)  # fmt: skip
        batch_responses = decide(decider, batch_requests)
        b.row("decision (frames, rules fallback, responses)", _median_us(
            lambda: decide(decider, batch_requests), 3) / 1e3)  # fmt: skip
        b.row("response → JSON", _median_us(
            lambda: BatchResponse(items=batch_responses).model_dump_json(), 5) / 1e3)  # fmt: skip
        for name, engine in engines:
            stored = Cycle([fresh(batch_responses, f"b{k}") for k in range(3)])
            b.row(f"{name}: store the 1,000 decisions (one transaction)", _median_us(
                lambda e=engine, s=stored: record_decisions(e, batch_requests, s()), 3) / 1e3)  # fmt: skip

        o = Table("a 250-event /v1/outcomes post (ms per post)", "ms")
        posts = Cycle([json.dumps(_outcome_body(responses, 250, str(k))).encode()
                       for k in range(40)])  # fmt: skip
        o.row("body → JSON object", _median_us(lambda: parse_json_object(posts()), 20) / 1e3)
        o.row("card-data scan", _median_us(lambda: scan(json.loads(posts())), 20) / 1e3)
        o.row("validation (OutcomesRequest)", _median_us(
            lambda: OutcomesRequest.model_validate_json(posts()), 20) / 1e3)  # fmt: skip
        for name, engine in engines:
            events = Cycle([OutcomesRequest.model_validate_json(posts()).events
                            for _ in range(40)])  # fmt: skip
            o.row(f"{name}: store the events (one durable transaction)", _median_us(
                lambda e=engine, ev=events: record_outcomes(e, ev()), 20) / 1e3)  # fmt: skip
        for _, engine in engines:
            engine.dispose()
