"""Fault drill of ``smartretry serve`` on PostgreSQL: concurrent clients, the server
killed with ``kill -9`` mid-run and restarted, clients retrying.

    python benchmarks/bench_faults.py --database-url postgresql://u:p@host/db
        [--events 10000] [--recommendations 5000] [--clients 16] [--batch 20]
        [--kill-at 0.4] [--write-behind] [--json figures.json]

(``--database-url`` defaults to ``SMARTRETRY_TEST_POSTGRES_URL``.) The run works in a
fresh schema of that database, dropped at the end. The server is ``smartretry serve
--no-model`` (the rules fallback decides: the drill is about the store, not the model),
one uvicorn worker, with the production settings for PostgreSQL (decisions committed
before the answer, ``decision_write_behind`` unset). ``--clients`` concurrent clients
send ``--events`` outcome events (``--batch`` per request, every fifth batch sent twice
on purpose) and ``--recommendations`` single recommendations, mixed. When ``--kill-at``
of the work has been acknowledged, the server gets SIGKILL, is started again on the same
port, and the clients go on: a request without an answer (connection refused or reset,
5xx) is sent again after a short pause, outcomes with the same event ids. Then the store
is read and the figures printed:

* outcome events acknowledged and not stored (lost): must be 0;
* event ids stored more than once: must be 0;
* recommendations answered whose decision is not stored: must be 0;
* decisions stored that no client saw (answer lost in the kill: allowed, counted).

``tests/serving/test_faults_postgres.py`` runs this script at a smaller scale.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from sqlalchemy import create_engine, text

API_KEY = "bench-faults-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
REPO = Path(__file__).resolve().parents[1]


def normalize(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_schema(url: str):
    """A URL whose search_path is a new schema, dropped afterwards."""
    schema = f"smartretry_faults_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalize(url))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    try:
        yield normalize(url) + separator + "options=" + quote(f"-csearch_path={schema}")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


class Server:
    """``smartretry serve`` as a child process that can be killed and started again."""

    def __init__(self, database_url: str, port: int, log: Path, write_behind: bool) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        self.env = {
            **os.environ,
            "SMARTRETRY_API_KEYS": API_KEY,
            "SMARTRETRY_DATABASE_URL": database_url,
            "SMARTRETRY_RATE_LIMIT_PER_SECOND": "0",
            "PYTHONWARNINGS": "ignore",
        }
        self.env.pop("SMARTRETRY_DECISION_WRITE_BEHIND", None)  # the PostgreSQL default
        if write_behind:  # to measure what write-behind risks
            self.env["SMARTRETRY_DECISION_WRITE_BEHIND"] = "true"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start and wait until ready; returns the seconds it took."""
        began = time.monotonic()
        command = [
            sys.executable, "-m", "training.cli.main", "serve", "--no-model",
            "--port", str(self.port),
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
            )
        deadline = began + 120
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - began
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after 120 s; see {self.log}")
            time.sleep(0.1)

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def recommendation(i: int) -> dict[str, Any]:
    return {
        "invoice_id": f"in_{i:06x}",
        "customer_id": f"cus_{i % 997:04x}",
        "amount_minor": 1000 + i % 9000,
        "currency": "EUR",
        "payment_method": "card",
        "card_brand": "visa",
        "processor": "stripe",
        "decline_code": "insufficient_funds",
        "failed_at": "2026-11-20T14:03:00Z",
        "customer": {"country": "NL", "timezone": "Europe/Amsterdam", "sms_opt_in": True},
    }


def outcome_batch(first: int, size: int) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"ev_{i:06d}",
            "type": "attempt",
            "invoice_id": f"in_{i % 5000:06x}",
            "occurred_at": "2026-11-25T06:00:04Z",
            "initiated_by": "merchant",
            "outcome": "failed" if i % 3 else "succeeded",
            **({"decline_code": "insufficient_funds"} if i % 3 else {}),
        }
        for i in range(first, first + size)
    ]


@dataclass
class Tally:
    acknowledged: set[str] = field(default_factory=set)
    answered: set[str] = field(default_factory=set)
    retries: int = 0
    done: int = 0
    failures: dict[str, int] = field(default_factory=dict)


async def send(client: httpx.AsyncClient, path: str, body: Any, tally: Tally) -> dict[str, Any]:
    """Post until answered 2xx; an answer-less or 5xx attempt is sent again (same body)."""
    while True:
        try:
            response = await client.post(path, json=body, headers=AUTH, timeout=30)
        except httpx.TransportError as error:
            kind = type(error).__name__
        else:
            if response.status_code < 300:
                answer: dict[str, Any] = response.json()
                return answer
            if response.status_code < 500 and response.status_code != 429:
                raise RuntimeError(f"{path} refused: {response.status_code} {response.text}")
            kind = str(response.status_code)
        tally.failures[kind] = tally.failures.get(kind, 0) + 1
        tally.retries += 1
        await asyncio.sleep(0.2)


async def drive(args: argparse.Namespace, server: Server) -> tuple[Tally, dict[str, float]]:
    work: list[tuple[str, Any]] = []
    for first in range(0, args.events, args.batch):
        batch = outcome_batch(first, min(args.batch, args.events - first))
        work.append(("/v1/outcomes", {"events": batch}))
        if (first // args.batch) % 5 == 0:
            work.append(("/v1/outcomes", {"events": batch}))  # a duplicate on purpose
    work += [("/v1/recommendations", recommendation(i)) for i in range(args.recommendations)]
    random.Random(args.seed).shuffle(work)
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    tally = Tally()
    timing: dict[str, float] = {}
    kill_after = int(len(work) * args.kill_at)
    killed = asyncio.Event()

    async def client_loop(client: httpx.AsyncClient) -> None:
        while True:
            try:
                path, body = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            answer = await send(client, path, body, tally)
            if path == "/v1/outcomes":
                tally.acknowledged.update(e["event_id"] for e in body["events"])
            else:
                tally.answered.add(answer["decision_id"])
            tally.done += 1
            if tally.done >= kill_after and not killed.is_set():
                killed.set()

    async def killer() -> None:
        await killed.wait()
        timing["killed_at_done"] = tally.done
        began = time.monotonic()
        await asyncio.to_thread(server.kill)
        timing["restart_ready_s"] = await asyncio.to_thread(server.start)
        timing["down_s"] = time.monotonic() - began

    began = time.monotonic()
    limits = httpx.Limits(max_connections=args.clients)
    async with httpx.AsyncClient(base_url=server.base, limits=limits) as client:
        kill_task = asyncio.create_task(killer())
        await asyncio.gather(*(client_loop(client) for _ in range(args.clients)))
        if not killed.is_set():
            killed.set()
        await kill_task
    timing["run_s"] = time.monotonic() - began
    timing["requests"] = len(work)
    return tally, timing


def audit(database_url: str, tally: Tally) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            stored_events = conn.execute(
                text("SELECT event_id, count(*) FROM outcome_events GROUP BY event_id")
            ).all()
            decisions = set(conn.execute(text("SELECT decision_id FROM decisions")).scalars())
    finally:
        engine.dispose()
    stored = {event_id for event_id, _ in stored_events}
    return {
        "events_acknowledged": len(tally.acknowledged),
        "events_stored": len(stored),
        "events_acknowledged_lost": len(tally.acknowledged - stored),
        "events_stored_twice": sum(1 for _, n in stored_events if n > 1),
        "recommendations_answered": len(tally.answered),
        "answered_not_stored": len(tally.answered - decisions),
        "decisions_stored": len(decisions),
        "decisions_stored_unseen": len(decisions - tally.answered),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    with fresh_schema(args.database_url) as url:
        server = Server(url, args.port or free_port(), work / "serve.log", args.write_behind)
        try:
            first_start = server.start()
            tally, timing = asyncio.run(drive(args, server))
        finally:
            server.stop()
        figures: dict[str, Any] = {
            "events": args.events,
            "recommendations": args.recommendations,
            "clients": args.clients,
            "write_behind": args.write_behind,
            **audit(url, tally),
            "client_retries": tally.retries,
            "retry_causes": tally.failures,
            "first_start_s": round(first_start, 2),
            **{k: round(v, 2) for k, v in timing.items()},
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("SMARTRETRY_TEST_POSTGRES_URL"),
        help="PostgreSQL URL (default: SMARTRETRY_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--recommendations", type=int, default=5_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch", type=int, default=20, help="events per /v1/outcomes")
    parser.add_argument("--kill-at", type=float, default=0.4, help="share of work done")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument(
        "--write-behind",
        action="store_true",
        help="store decisions after answering (not the PostgreSQL default): shows what a "
        "kill -9 then loses",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", default="/tmp/smartretry-bench-faults")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url (or SMARTRETRY_TEST_POSTGRES_URL) is required")
    figures = run(args)
    for key, value in figures.items():
        print(f"{key}: {value}", flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    bad = (
        figures["events_acknowledged_lost"]
        + figures["events_stored_twice"]
        + figures["answered_not_stored"]
    )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
