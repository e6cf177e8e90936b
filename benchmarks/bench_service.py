"""What each part of the HTTP service costs per request, in-process, beside the bare
FastAPI anchor (``benchmarks/anchor_app.py``).

    python benchmarks/bench_service.py [--requests 300] [--postgres URL] [--profile]
        [--invoices 20000] [--seed 7] [--work /tmp/smartretry-bench]

Both apps are called as ASGI applications (no socket, no uvicorn: what the app itself
costs), one request at a time, with the held-out requests of ``bench_world.py``; the
service is ``create_app`` with the rules fallback (``smartretry serve --no-model``), a
fresh SQLite store (and PostgreSQL with ``--postgres``, default
``SMARTRETRY_TEST_POSTGRES_URL``) and its default settings (micro-batching, write-behind on
SQLite). Then each part of the request is timed alone on the same requests, with the
functions the routes call: body parsing, card-data scan, validation, API key, rate limit,
middleware, audit log, metrics, the store's reads, the decision (frames, the fallback
decider, responses), the response's JSON, the micro-batch hand-over and the store writes;
and the same for a 1,000-item batch and a 250-event outcome post. Figures are the median
of ``--repeats`` timings, in microseconds of wall time per request on this thread (the
parts run on one thread, so wall ≈ CPU on an idle machine). ``--profile`` adds the
slowest functions of the whole request (cProfile) on the event loop and on the decision
thread.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import logging
import os
import pstats
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from anchor_app import app as anchor_app
from bench_world import API_KEY, prepare
from service_parts import time_parts

from serving.app import create_app
from serving.settings import Settings

HEADERS = [(b"authorization", f"Bearer {API_KEY}".encode()), (b"content-type", b"application/json")]


async def asgi_post(app: Any, path: str, body: bytes) -> tuple[int, bytes]:
    """One POST through the ASGI app, as uvicorn would call it (one body chunk)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [*HEADERS, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if given:
            await asyncio.Event().wait()  # a disconnect never comes
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await app(scope, receive, send)
    return messages[0]["status"], b"".join(m.get("body", b"") for m in messages[1:])


async def per_request(app: Any, path: str, bodies: list[bytes]) -> tuple[float, float]:
    """Wall and CPU (all threads of the process) µs per request, one at a time."""
    for body in bodies[:20]:  # warm-up
        status, answer = await asgi_post(app, path, body)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {answer[:300]!r}")
    wall, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        await asgi_post(app, path, body)
    n = len(bodies)
    return (time.perf_counter() - wall) * 1e6 / n, (time.process_time() - cpu) * 1e6 / n


class Table:
    """Rows printed as they are measured; ``unit``: of the values given to :meth:`row`."""

    def __init__(self, title: str, unit: str = "µs") -> None:
        self.unit = unit
        print(f"\n{title}", flush=True)

    def row(self, label: str, value: float, note: str = "") -> None:
        print(f"  {label:64s} {value:9.1f} {self.unit}  {note}", flush=True)


def service_settings(database_url: str, **extra: Any) -> Settings:
    return Settings(
        api_keys=[API_KEY], database_url=database_url, model=None,
        rate_limit_per_second=0, **extra,
    )  # fmt: skip


async def with_app(app: Any, work: Callable[[], Awaitable[Any]]) -> Any:
    async with app.router.lifespan_context(app) as state:
        app.state._state.update(state or {})
        return await work()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=200, help="timings per part")
    parser.add_argument("--postgres", default=os.environ.get("SMARTRETRY_TEST_POSTGRES_URL"))
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/smartretry-bench"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    world = prepare(args.work, args.invoices, args.seed)
    items = world.sample(max(args.requests, 1000), known_share=0.2)
    bodies = [json.dumps(i).encode() for i in items[: args.requests]]
    folder = Path(tempfile.mkdtemp(prefix="bench-service-"))
    sqlite_url = f"sqlite:///{folder / 'store.sqlite'}"
    print(f"load average {os.getloadavg()[0]:.2f}; {len(bodies)} requests, one at a time")

    whole = Table("whole /v1/recommendations request, in-process ASGI (µs per request)")
    wall, cpu = asyncio.run(per_request(anchor_app, "/v1/recommendations", bodies))
    whole.row("anchor (bare FastAPI, one pydantic body)", wall, f"CPU {cpu:.0f} µs")
    service = create_app(service_settings(sqlite_url))
    wall, cpu = asyncio.run(
        with_app(service, lambda: per_request(service, "/v1/recommendations", bodies))
    )
    whole.row("service, rules fallback, SQLite (as served)", wall, f"CPU {cpu:.0f} µs")
    service = create_app(service_settings(f"sqlite:///{folder / 'http-only.sqlite'}"))
    wall, cpu = asyncio.run(with_app(service, lambda: http_only(service, bodies)))
    whole.row("service, HTTP layer only (answers decided beforehand)", wall, f"CPU {cpu:.0f} µs")

    time_parts(items, args.repeats, sqlite_url, args.postgres, Table)
    if args.profile:
        profile(service_settings(f"sqlite:///{folder / 'profile.sqlite'}"), bodies)


async def http_only(app: Any, bodies: list[bytes]) -> tuple[float, float]:
    """The service with its micro-batcher answering from answers decided beforehand (by
    the same handler): routing, middleware, auth, body, JSON; no validation, decision or
    store."""
    batcher = app.state.batcher
    decided = {item["invoice_id"]: result for item, result in zip(
        [json.loads(b) for b in bodies], batcher.handle([json.loads(b) for b in bodies]),
        strict=True)}  # fmt: skip
    batcher.handle = lambda items: [decided[item["invoice_id"]] for item in items]
    return await per_request(app, "/v1/recommendations", bodies)


def profile(settings: Settings, bodies: list[bytes]) -> None:
    """cProfile of the whole request: the event loop's thread, and the micro-batcher's
    thread where the decision runs (each profiled on its own)."""
    app = create_app(settings)
    decision = cProfile.Profile()

    async def run() -> None:
        batcher = app.state.batcher
        handle = batcher.handle

        def profiled(batch: list[Any]) -> list[Any]:
            decision.enable()
            try:
                return handle(batch)
            finally:
                decision.disable()

        batcher.handle = profiled
        loop = cProfile.Profile()
        loop.enable()
        for body in bodies:
            await asgi_post(app, "/v1/recommendations", body)
        loop.disable()
        for name, prof in (("event loop", loop), ("decision thread", decision)):
            out = io.StringIO()
            pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(30)
            print(f"\n--- profile: {name} ({len(bodies)} requests) ---\n{out.getvalue()}")

    asyncio.run(with_app(app, run))


if __name__ == "__main__":
    main()
