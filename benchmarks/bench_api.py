"""Load test of ``smartretry serve`` over loopback with the real model, side by side with a
bare FastAPI app and the rules fallback.

    python benchmarks/bench_api.py [--targets anchor,fallback,model] [--rates 100,200,300]
        [--duration 20] [--batch-runs 10] [--outcome-batches 40] [--workers 2]
        [--invoices 20000] [--seed 7] [--work /tmp/smartretry-bench]

Each target runs as a child process on the same port settings and workers, one after
another: ``anchor`` is ``benchmarks/anchor_app.py`` (one route, one pydantic body, the same
uvicorn: what HTTP, validation and JSON cost on this machine with no product code);
``fallback`` is ``smartretry serve --no-model`` (the rules fallback decides: cheap
decisions, so the service's HTTP layer, auth, checks and store alone); ``model`` is
``smartretry serve`` with the model trained by ``bench_world.py``. The load generator is an
open-loop one written with ``aiohttp`` + asyncio (uvloop): request *i* is sent at ``start + i/rate``
whether or not earlier ones were answered (constant arrival rate), and its latency is
counted from that scheduled time, so a slow server cannot slow the generator down and hide
its own queueing (no coordinated omission); its own CPU time per phase is reported
(``generator_cpu``: share of one core), so the anchor's figures show what the generator
can drive. Phases per target:

0. (service targets) single recommendations one at a time (``--idle``), each first
   in-process (``training.api.service.recommend`` on the same artifact: no HTTP, no
   store) and then over HTTP to the idle server, so the HTTP + JSON + store overhead is
   the difference (reported as the median of the per-request differences);
1. single recommendations at each of ``--rates`` per second for ``--duration`` seconds:
   p50/p99 latency, throughput, errors (non-2xx or no answer within ``--timeout``); the
   backlog is drained before the next rate;
2. (service targets) a 1,000-item ``/v1/recommendations/batch``, ``--batch-runs`` times
   one after another, each followed by the same batch in-process;
3. (service targets) outcomes under load: ``--outcome-batches`` batches of
   ``/v1/outcomes`` (a fifth of them sent twice) posted concurrently while single
   recommendations keep arriving at the first of ``--rates``; then the SQLite file is
   read and every event_id must be stored exactly once ("no lost outcome").

At the end a table puts the targets side by side; everything goes to ``--out`` as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
import uvloop
from bench_world import API_KEY, World, prepare

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)  # seconds, answered with 2xx
    errors: dict[str, int] = field(default_factory=dict)
    first: float = 0.0
    last: float = 0.0
    cpu_start: float = field(default_factory=time.process_time)  # the generator's own CPU

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    def report(self, label: str) -> dict[str, Any]:
        ms = np.array(self.latencies) * 1000
        sent = len(self.latencies) + sum(self.errors.values())
        span = max(self.last - self.first, 1e-9)
        out = {
            "label": label,
            "sent": sent,
            "ok": len(self.latencies),
            "errors": self.errors,
            "throughput_per_s": len(self.latencies) / span,
            "p50_ms": float(np.percentile(ms, 50)) if len(ms) else None,
            "p90_ms": float(np.percentile(ms, 90)) if len(ms) else None,
            "p99_ms": float(np.percentile(ms, 99)) if len(ms) else None,
            "max_ms": float(ms.max()) if len(ms) else None,
            "generator_cpu": (time.process_time() - self.cpu_start) / span,
            "load_average_1min": os.getloadavg()[0],  # the machine is shared: record its load
        }
        print(
            f"{label}: sent {sent}, ok {out['ok']}, errors {self.errors or 0}, "
            f"throughput {out['throughput_per_s']:.1f}/s, p50 {_ms(out['p50_ms'])}, "
            f"p99 {_ms(out['p99_ms'])}, max {_ms(out['max_ms'])}, "
            f"generator CPU {out['generator_cpu']:.0%} of a core, "
            f"load average {out['load_average_1min']:.1f}",
            flush=True,
        )
        return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


@contextmanager
def server(world: World, work: Path, port: int, workers: int, threads: int | None, target: str):
    """The ``target`` as a child process: ``smartretry serve`` with a fresh SQLite store
    (``fallback``: ``--no-model``), or the bare anchor app under uvicorn."""
    database = work / f"bench-api-{int(time.time())}.sqlite"
    env = {
        **os.environ,
        "SMARTRETRY_API_KEYS": API_KEY,
        "SMARTRETRY_DATABASE_URL": f"sqlite:///{database}",
        "SMARTRETRY_MAX_BATCH_ITEMS": "1000",
        "SMARTRETRY_RATE_LIMIT_PER_SECOND": "0",  # one key sends the whole load
        "PYTHONWARNINGS": "ignore",
    }
    if threads is not None:  # LightGBM's OpenMP threads per worker
        env["OMP_NUM_THREADS"] = str(threads)
    if target == "anchor":
        command = [
            sys.executable, "-m", "uvicorn", "anchor_app:app",
            "--app-dir", str(Path(__file__).parent), "--log-level", "warning",
            "--port", str(port), "--workers", str(workers),
        ]  # fmt: skip
    else:
        model = ["--no-model"] if target == "fallback" else ["--model", str(world.model_dir)]
        command = [
            sys.executable, "-m", "training.cli.main", "serve", *model,
            "--port", str(port), "--workers", str(workers),
        ]  # fmt: skip
    log = (work / f"serve-{target}.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited; see {log.name}")
            try:
                ready = httpx.get(f"{base}/readyz", timeout=2).json()
                if ready.get("ready") and ready.get("model_loaded") is (target == "model"):
                    break
                raise RuntimeError(f"server is not answering as asked: {ready}")
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield base, database, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


HEADERS = {**AUTH, "Content-Type": "application/json"}


class Sender:
    """Posts pre-encoded JSON with at most ``connections`` requests in flight; requests
    beyond that wait on a semaphore here (their latency still counts from the scheduled
    time). aiohttp, not httpx: httpx spent ~6 ms of the generator's CPU per request, so at
    200/s the generator alone needed most of a core and could not drive the anchor."""

    def __init__(self, base: str, connections: int, timeout: float) -> None:
        self.session = aiohttp.ClientSession(
            base_url=base,
            # idle connections dropped before uvicorn's 5 s keep-alive ends: a request sent
            # on a connection the server is closing fails without reaching it
            connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=2),
            timeout=aiohttp.ClientTimeout(total=timeout),
        )
        self.slots = asyncio.Semaphore(connections)

    async def close(self) -> None:
        await self.session.close()

    async def raw(self, path: str, body: Any, timeout: float | None = None) -> tuple[int, bytes]:
        """Status and body of one POST (``body``: bytes, or a JSON-able value)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        extra = {} if timeout is None else {"timeout": aiohttp.ClientTimeout(total=timeout)}
        async with self.session.post(path, data=data, headers=HEADERS, **extra) as response:
            return response.status, await response.read()

    async def post(
        self, path: str, body: Any, load: Load, at: float, timeout: float | None = None
    ) -> Any:
        """POST counted in ``load`` (latency from ``at``); the answer's JSON, or None."""
        async with self.slots:
            try:
                status, content = await self.raw(path, body, timeout)
            except TimeoutError:
                load.error("timeout")
                return None
            except aiohttp.ClientError as error:
                load.error(type(error).__name__)
                return None
        done = time.perf_counter()
        load.last = max(load.last, done)
        if status // 100 != 2:
            load.error(str(status))
            return None
        load.latencies.append(done - at)
        return Answer(content)


class Answer(bytes):
    """A response body, decoded only when read (after the clock stopped)."""

    def json(self) -> Any:
        return json.loads(self)


async def open_loop(
    client: Sender, path: str, bodies: list[Any], rate: float
) -> tuple[Load, list[Any]]:
    """Send ``bodies[i]`` at ``start + i / rate``; latency from the scheduled time.
    The bodies are encoded before the clock starts."""
    bodies = [json.dumps(body).encode() for body in bodies]
    load = Load()
    start = time.perf_counter() + 0.05
    load.first = start
    tasks = []
    for i, body in enumerate(bodies):
        at = start + i / rate
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(client.post(path, body, load, at)))
    answers = await asyncio.gather(*tasks)
    return load, answers


async def drain(client: Sender, body: Any) -> float:
    """Wait until the server has worked off its backlog: single requests are queued first
    in, first out, so one answered request means everything sent before it is done."""
    start = time.perf_counter()
    await client.raw("/v1/recommendations", body, timeout=600)
    return time.perf_counter() - start


def outcome_batches(decisions: list[dict[str, Any]], count: int, size: int) -> list[dict]:
    """``count`` batches of ``size`` events about answered decisions; unique event ids."""
    rng = random.Random(5)
    out = []
    for b in range(count):
        events = []
        for e in range(size):
            decision = decisions[rng.randrange(len(decisions))]
            base = {
                "event_id": f"ev_{b}_{e}",
                "invoice_id": decision["invoice_id"],
                "occurred_at": "2026-11-21T10:00:00Z",
                "decision_id": decision["decision_id"],
            }
            if e % 2:
                base |= {"type": "attempt", "initiated_by": "merchant", "outcome": "failed",
                         "decline_code": "insufficient_funds"}  # fmt: skip
            else:
                base |= {"type": "message_sent", "message_id": f"msg_{b}_{e}",
                         "channel": "email", "template": "payment_link"}  # fmt: skip
            events.append(base)
        out.append({"events": events})
    return out


@dataclass
class Outcomes:
    load: Load
    sent: int = 0  # events in all posts, repeats included
    acknowledged: set[str] = field(default_factory=set)  # event ids answered 2xx
    refused: dict[str, int] = field(default_factory=dict)  # 4xx code -> events


async def outcomes_under_load(
    client: Sender, singles: list[Any], rate: float, bodies: list[dict]
) -> tuple[Load, Outcomes]:
    """Outcome batches (a fifth twice) posted concurrently during a recommendation load.

    As docs/api.md tells integrators: without an answer (timeout, connection error, 5xx)
    the batch is sent again, up to 5 times; a 4xx is final (the batch is invalid)."""
    resent = bodies[: max(1, len(bodies) // 5)]
    sends = [*bodies, *resent]
    random.Random(3).shuffle(sends)
    out = Outcomes(Load(first=time.perf_counter()))

    async def post(body: dict) -> None:
        ids = [e["event_id"] for e in body["events"]]
        out.sent += len(ids)
        for _ in range(5):
            start = time.perf_counter()
            try:
                async with client.slots:
                    status, content = await client.raw("/v1/outcomes", body)
            except (TimeoutError, aiohttp.ClientError) as error:
                out.load.error(f"{type(error).__name__} (sent again)")
                continue
            out.load.last = max(out.load.last, time.perf_counter())
            if status >= 500:
                out.load.error(f"{status} (sent again)")
                continue
            if status // 100 != 2:
                code = f"{status} {json.loads(content).get('code')}"
                out.load.error(code)
                out.refused[code] = out.refused.get(code, 0) + len(ids)
                return
            out.load.latencies.append(time.perf_counter() - start)
            answer = json.loads(content)
            if answer["accepted"] + answer["duplicates"] != len(ids):
                out.load.error("wrong counts")
            out.acknowledged.update(ids)
            return

    async def post_all() -> None:
        await asyncio.sleep(0.5)
        await asyncio.gather(*(post(b) for b in sends))

    (single_load, _), _ = await asyncio.gather(
        open_loop(client, "/v1/recommendations", singles, rate), post_all()
    )
    return single_load, out


def stored_event_ids(database: Path) -> list[str]:
    with sqlite3.connect(database) as conn:
        return [row[0] for row in conn.execute("SELECT event_id FROM outcome_events")]


class InProcess:
    """The API's code path without HTTP and store: ``training.api.service.recommend`` on the same
    artifact (or the rules fallback), in the generator's process (timed while the server
    is idle). With ``threads``, LightGBM's OpenMP threads are limited as the server's
    are (``OMP_NUM_THREADS``), so both sides decide alike."""

    def __init__(self, world: World, fallback: bool = False, threads: int | None = None) -> None:
        import warnings

        from threadpoolctl import threadpool_limits

        from serving.artifact_decider import load_artifact_decider
        from serving.model_loader import freeze_heap
        from training.policy.fallback import FallbackDecider

        warnings.simplefilter("ignore", FutureWarning)  # pandas deprecations inside the policy
        self.decider = (
            FallbackDecider() if fallback else load_artifact_decider(str(world.model_dir))
        )
        if threads is not None:  # after the load (which loads OpenMP); for the whole process
            threadpool_limits(limits=threads, user_api="openmp")
        freeze_heap()  # as the server does: the model must not slow the generator's GC

    def seconds(self, items: list[Any]) -> float:
        from training.api.service import (
            customer_knowledge,
            customers_to_look_up,
            recommend,
            validate_item,
        )

        start = time.perf_counter()
        validated = [validate_item(i) for i in items]
        ids = customers_to_look_up(validated)
        known = customer_knowledge(self.decider, ids, {}) if ids else {}
        recommend(self.decider, validated, known_customers=known, prefix="")
        return time.perf_counter() - start


async def paired_singles(client: Sender, local: InProcess, bodies: list[Any]) -> dict:
    """Each request in-process, then over HTTP to the idle server (one at a time), so
    both see the same machine load: the difference is HTTP + JSON + store."""
    http, inproc = Load(first=time.perf_counter()), Load(first=time.perf_counter())
    for body in bodies:
        inproc.latencies.append(local.seconds([body]))
        await client.post("/v1/recommendations", body, http, time.perf_counter())
    inproc.last = time.perf_counter()
    out = {
        "http": http.report(f"single over HTTP, one at a time x {len(bodies)}"),
        "in_process": inproc.report(f"single in-process, one at a time x {len(bodies)}"),
    }
    if len(http.latencies) == len(inproc.latencies):  # no failed request: pairs line up
        extra = (np.array(http.latencies) - np.array(inproc.latencies)) * 1000
        out["overhead_ms"] = {
            "p50": float(np.median(extra)),
            "mean": float(extra.mean()),
            "p90": float(np.percentile(extra, 90)),
        }
        print(
            f"HTTP overhead per request (HTTP minus in-process, pairwise): "
            f"p50 {np.median(extra):.2f} ms, "
            f"mean {extra.mean():.2f} ms, p90 {np.percentile(extra, 90):.2f} ms",
            flush=True,
        )
    return out


async def paired_batches(
    client: Sender, local: InProcess, items: list[Any], runs: int, timeout: float
) -> dict:
    """1,000-item batches one after another, alternating HTTP and in-process."""
    http, inproc = Load(first=time.perf_counter()), Load(first=time.perf_counter())
    for _ in range(runs):
        answer = await client.post(
            "/v1/recommendations/batch", {"items": items}, http, time.perf_counter(), timeout
        )
        if answer is not None and len(answer.json()["items"]) != len(items):
            http.error("wrong item count")
        inproc.latencies.append(local.seconds(items))
    inproc.last = time.perf_counter()
    return {
        "http": http.report(f"{len(items):,}-item batch over HTTP x {runs}"),
        "in_process": inproc.report(f"{len(items):,}-item batch in-process x {runs}"),
    }


async def run_target(args: argparse.Namespace, world: World, target: str) -> dict[str, Any]:
    """Every phase the ``target`` takes (the anchor: single requests only)."""
    results: dict[str, Any] = {"target": target, "single": {}}
    service = target != "anchor"
    rates = args.rates
    singles = {rate: world.sample(int(rate * args.duration), known_share=0.2) for rate in rates}
    batch = world.sample(1000, known_share=0.2)
    print(f"--- {target} ---", flush=True)
    with server(world, args.work, free_port(), args.workers, args.threads, target) as (
        base,
        database,
        pid,
    ):
        client = Sender(base, args.connections, args.timeout)
        try:
            first = singles[rates[0]]
            warm, _ = await open_loop(client, "/v1/recommendations", first[:20], 10)
            print(f"warm-up: {len(warm.latencies)} ok", flush=True)
            local = None
            if service:
                local = InProcess(world, target == "fallback", args.threads)
                local.seconds(batch[:50])  # warm-up (caches, first LightGBM call)
                if args.idle:
                    results["single_idle"] = await paired_singles(client, local, first[: args.idle])
            answers: list[Any] = []
            for rate in rates:
                cpu = server_cpu_seconds(pid)
                by_process = process_cpu_seconds(pid)
                load, answered = await open_loop(client, "/v1/recommendations", singles[rate], rate)
                report = results["single"][f"{rate:g}"] = load.report(
                    f"{target}: single @ {rate:g}/s for {args.duration:g} s"
                )
                answers += [a.json() for a in answered if a is not None]
                print(f"backlog drained in {await drain(client, first[0]):.1f} s", flush=True)
                # with the drain request; fewer ms per request when the server falls behind
                # (bigger micro-batches), so it is no measure of speed on its own
                cpu_ms = (server_cpu_seconds(pid) - cpu) * 1000 / (len(singles[rate]) + 1)
                report["server_cpu_ms_per_request"] = cpu_ms
                shares = worker_shares(by_process, process_cpu_seconds(pid))
                report["server_cpu_shares"] = shares
                print(
                    f"server CPU per request (all its processes): {cpu_ms:.2f} ms; "
                    f"by process: {'/'.join(f'{share:.0%}' for share in shares)}",
                    flush=True,
                )
            if not service:
                return results
            assert local is not None
            if args.batch_runs:
                results["batch"] = await paired_batches(
                    client, local, batch, args.batch_runs, args.batch_timeout
                )
            if not args.outcome_batches:
                return results
            decisions = [a for a in answers if "decision_id" in a] or [
                {"invoice_id": "in_x", "decision_id": "dec_x"}
            ]
            bodies = outcome_batches(decisions, args.outcome_batches, args.outcome_size)
            more = world.sample(int(rates[0] * args.outcome_duration), known_share=0.2)
            single_load, outcomes = await outcomes_under_load(client, more, rates[0], bodies)
            results["single_during_outcomes"] = single_load.report("single during outcomes")
            results["outcomes"] = outcomes.load.report(
                f"outcome batches ({outcomes.sent} events sent)"
            )
            await drain(client, first[0])
        finally:
            await client.close()
        stored = stored_event_ids(database)
        lost = outcomes.acknowledged - set(stored)
        duplicated = len(stored) - len(set(stored))
        results["outcomes_check"] = {
            "unique_events_sent": len({e["event_id"] for b in bodies for e in b["events"]}),
            "acknowledged_2xx": len(outcomes.acknowledged),
            "refused_4xx": outcomes.refused,
            "stored": len(stored),
            "lost": len(lost),
            "stored_twice": duplicated,
        }
        print(
            f"outcomes: {results['outcomes_check']['unique_events_sent']} unique events sent, "
            f"{len(outcomes.acknowledged)} acknowledged with 2xx, refused {outcomes.refused or 0}, "
            f"{len(stored)} stored, {len(lost)} acknowledged but not stored (lost), "
            f"{duplicated} stored twice",
            flush=True,
        )
    return results


def server_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of the server and its worker processes so far: per request,
    a figure the machine's load inflates much less than latency does."""
    return sum(process_cpu_seconds(pid).values())


def process_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU time so far of the server's process and each of its children, by process id."""
    import psutil

    root = psutil.Process(pid)
    seconds = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


def worker_shares(before: dict[int, float], after: dict[int, float]) -> list[float]:
    """Each process's share of the CPU spent between two readings, largest first: with the
    decisions most of a request's CPU, the workers' shares of the requests."""
    spent = [after[pid] - before.get(pid, 0.0) for pid in after]
    total = sum(spent) or 1.0
    return sorted((s / total for s in spent), reverse=True)


def free_port() -> int:
    """A port nothing listens on now (the OS picks it)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def side_by_side(runs: list[dict[str, Any]], rates: list[float]) -> None:
    """The single-request figures of every target, one line per rate, and the batches."""
    print("\nsingle requests (open loop)      " + "".join(f"{r['target']:>26s}" for r in runs))
    for rate in rates:
        for label, key in (("throughput /s", "throughput_per_s"), ("p50 ms", "p50_ms"),
                           ("p99 ms", "p99_ms"), ("errors", "errors"),
                           ("server CPU ms/request", "server_cpu_ms_per_request")):  # fmt: skip
            cells = []
            for r in runs:
                value = r["single"][f"{rate:g}"].get(key, "-")
                cells.append(f"{value:26.1f}" if isinstance(value, float) else f"{value!s:>26s}")
            print(f"  {rate:5g}/s {label:22s}" + "".join(cells))
    for r in runs:
        if "batch" in r:
            http = r["batch"]["http"]
            print(f"{r['target']}: 1,000-item batch over HTTP p50 {_ms(http['p50_ms'])}, "
                  f"max {_ms(http['max_ms'])}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--targets",
        default="anchor,fallback,model",
        help="comma list of anchor (bare FastAPI), fallback (serve --no-model), model",
    )
    parser.add_argument(
        "--rates", default="100,200,300", help="single requests per second, comma list"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of steady load")
    parser.add_argument("--batch-runs", type=int, default=10)
    parser.add_argument("--outcome-batches", type=int, default=40)
    parser.add_argument("--outcome-size", type=int, default=250)
    parser.add_argument("--outcome-duration", type=float, default=10.0)
    parser.add_argument(
        "--idle", type=int, default=50, help="single requests one at a time, HTTP and in-process"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--batch-timeout", type=float, default=120.0, help="per batch, seconds")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument(
        "--threads", type=int, default=None, help="OMP_NUM_THREADS of the server (default: unset)"
    )
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/smartretry-bench"))
    parser.add_argument("--out", type=Path, default=None, help="results JSON")
    args = parser.parse_args()
    args.rates = [float(r) for r in args.rates.split(",")]
    targets = [t.strip() for t in args.targets.split(",")]
    unknown = set(targets) - {"anchor", "fallback", "model"}
    if unknown:
        parser.error(f"--targets: unknown {sorted(unknown)}")
    world = prepare(args.work, args.invoices, args.seed)
    runs = [uvloop.run(run_target(args, world, target)) for target in targets]
    side_by_side(runs, args.rates)
    results = {"rates": args.rates, "duration_s": args.duration, "workers": args.workers,
               "load_average": os.getloadavg(), "targets": runs}  # fmt: skip
    out = args.out or args.work / "bench_api.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
