"""Decisions stored off the request path (write-behind).

A recommendation is answered before its decision row is committed: the route hands the
answered ``(request, response)`` pairs to :class:`DecisionWriter`. Its one thread waits
up to ``max_delay`` (50 ms) after the first queued decision and then writes everything
queued in one transaction (:func:`serving.store.writes.record_decisions`). A commit with
``synchronous=FULL`` waits for an fsync (1 to 10 ms here), which no request waits for
any more, and the decisions of many requests share one commit (and one wake-up of the
thread, which competes with the request threads for the GIL).

The trade-off: decisions answered in the last moments before the process dies (killed,
power cut; not a graceful stop, which drains the queue) can be missing from the store,
so ``export-outcomes`` lacks them and their outcomes join to no decision. Outcomes are
not written this way: they are committed before ``/v1/outcomes`` answers.

While the store is unreachable (``store_up`` says so after a failed write), a batch is
held and tried again every ``outage_delay`` seconds for as long as the outage lasts,
without using up its retries: decisions answered during an outage are written once the
store is back. The queue then holds up to ``max_pending`` decisions; beyond that, new
ones are dropped (counted by ``on_dropped``, metric ``smartretry_decisions_dropped_total``)
rather than holding back the answers. A batch the store refuses while reachable is tried
``retry_delays`` more times, then dropped and counted.

Reads stay consistent within the process without waiting for the store: the customer
fields carried by queued requests are kept until written
(:meth:`DecisionWriter.queued_customers`) and a lookup puts them over the stored ones,
so a request sees what an earlier one told.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from serving.store.health import StoreHealth
from training.api.schemas import RecommendationRequest, RecommendationResponse

logger = logging.getLogger(__name__)

Write = Callable[
    [Sequence[RecommendationRequest], Sequence[RecommendationResponse], Sequence[str] | None],
    None,
]
"""``record_decisions(engine, ...)`` bound to its engine: requests, responses, and the
responses' JSON when the route serialized them already (else ``None``)."""
Queued = tuple[RecommendationRequest, RecommendationResponse, str | None]
RETRY_DELAYS_SECONDS = (0.1, 0.5, 2.0)


class DecisionWriter:
    """A queue of answered decisions and the one thread that stores them in batches.

    ``submit`` returns at once unless ``max_pending`` decisions are already waiting (then
    it waits for room: back-pressure instead of unbounded memory). A batch is written
    ``max_delay`` seconds after its first decision, or at once when ``max_batch`` are
    queued or someone waits (:meth:`flush`). A batch that fails is tried again after each
    of ``retry_delays``; after the last it is dropped, logged and reported to
    ``on_dropped(count)``.
    """

    def __init__(
        self,
        write: Write,
        *,
        max_batch: int = 1000,
        max_delay: float = 0.05,
        max_pending: int = 20_000,
        retry_delays: Sequence[float] = RETRY_DELAYS_SECONDS,
        on_dropped: Callable[[int], None] | None = None,
        store_up: Callable[[], bool] | None = None,
        outage_delay: float = 1.0,
        health: StoreHealth | None = None,
    ) -> None:
        if max_batch < 1 or max_pending < max_batch:
            raise ValueError(f"need 1 <= max_batch <= max_pending, got {max_batch}, {max_pending}")
        self._write = write
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.max_pending = max_pending
        self.retry_delays = tuple(retry_delays)
        self.on_dropped = on_dropped
        self.store_up = store_up
        self.outage_delay = outage_delay
        self.health = health
        self.in_outage = False  # the last write failed with the store unreachable
        self._cond = threading.Condition()
        self._queue: deque[Queued] = deque()
        self._customers: Counter[str] = Counter()  # queued or being written, per customer
        self._fields: dict[str, dict[str, Any]] = {}  # what those requests told about them
        self._submitted = 0
        self._urgent = 0  # write at once (no waiting for company) up to this count
        self._finished = 0  # written or dropped
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def pending(self) -> int:
        """Decisions submitted and not yet written (or dropped)."""
        return self._submitted - self._finished

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="decision-writer", daemon=True)
        self._thread.start()

    def submit(
        self,
        requests: Sequence[RecommendationRequest],
        responses: Sequence[RecommendationResponse],
        response_json: Sequence[str] | None = None,
    ) -> None:
        """Queue decisions for storing; when the writer is not running, store them now.
        ``response_json``: the responses as JSON, when serialized already."""
        if not requests:
            return
        with self._cond:
            running = self._thread is not None and not self._closed
            if running and self.in_outage and len(self._queue) >= self.max_pending:
                # the store is down and the queue full: drop rather than hold the answer back
                logger.error(
                    "store unreachable and %d decisions queued: %d decisions not stored",
                    len(self._queue),
                    len(requests),
                )
                if self.on_dropped is not None:
                    self.on_dropped(len(requests))
                return
            if running:
                self._cond.wait_for(lambda: self._closed or len(self._queue) < self.max_pending)
                running = not self._closed
            if running:
                was_empty = not self._queue
                texts = response_json if response_json is not None else [None] * len(requests)
                self._queue.extend(zip(requests, responses, texts, strict=True))
                self._customers.update(r.customer_id for r in requests)
                for request in requests:  # later non-null values win, as in the store
                    given = request.customer.model_dump() if request.customer else {}
                    fields = {k: v for k, v in given.items() if v is not None}
                    if fields:
                        self._fields.setdefault(request.customer_id, {}).update(fields)
                self._submitted += len(requests)
                if was_empty or len(self._queue) >= self.max_batch:
                    # wake the writer only when it has something new to decide: every
                    # wake-up takes the GIL from the threads answering requests
                    self._cond.notify_all()
                return
        self._write(requests, responses, response_json)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every decision submitted so far is written; False on timeout."""
        with self._cond:
            target = self._urgent = self._submitted
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._finished >= target, timeout)

    def queued_customers(self, customer_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Customer fields that queued (not yet written) requests carried, for these ids:
        newer than anything stored, so they win over the store's values."""
        with self._cond:
            return {c: dict(self._fields[c]) for c in set(customer_ids) if c in self._fields}

    def close(self, timeout: float = 60.0) -> None:
        """Write what is queued, then stop the thread (a graceful stop loses nothing)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error(
                    "decision writer did not finish within %s s; %d decisions not stored",
                    timeout,
                    self.pending,
                )

    def _take(self) -> list[Queued] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._queue or self._closed)
            # let decisions arriving meanwhile share the commit, unless someone waits
            self._cond.wait_for(
                lambda: (
                    self._closed
                    or len(self._queue) >= self.max_batch
                    or self._urgent > self._finished
                ),
                self.max_delay,
            )
            if not self._queue:
                return None  # closed and drained
            count = min(len(self._queue), self.max_batch)
            batch = [self._queue.popleft() for _ in range(count)]
            self._cond.notify_all()  # room for waiting submitters
            return batch

    def _store(self, batch: list[Queued]) -> None:
        requests = [request for request, _, _ in batch]
        responses = [response for _, response, _ in batch]
        known = [text for _, _, text in batch if text is not None]
        response_json = known if len(known) == len(batch) else None
        attempt = 0
        while True:
            attempt += 1
            try:
                self._write(requests, responses, response_json)
            except Exception as error:  # any store error: wait out an outage, retry, drop
                if self._unreachable(error):
                    attempt -= 1  # an outage does not use up the batch's retries
                    time.sleep(self.outage_delay)
                    continue
                if attempt > len(self.retry_delays):
                    # the error's type only: a driver error's text carries the statement's
                    # parameters, i.e. the requests (personal data)
                    logger.error(
                        "%d decisions not stored after %d attempts: %s",
                        len(batch),
                        attempt,
                        type(error).__name__,
                    )
                    if self.on_dropped is not None:
                        self.on_dropped(len(batch))
                    return
                delay = self.retry_delays[attempt - 1]
                logger.warning(
                    "storing %d decisions failed (%s), trying again in %s s",
                    len(batch),
                    type(error).__name__,
                    delay,
                )
                time.sleep(delay)
                continue
            if self.in_outage:
                logger.warning("store reachable again: queued decisions are being written")
            self.in_outage = False
            if self.health is not None:
                self.health.succeeded()
            return

    def _unreachable(self, error: Exception) -> bool:
        """The write failed because the store is down (not closing, and ``store_up`` says
        so): hold the batch."""
        if self._closed or self.store_up is None or self.store_up():
            return False
        if not self.in_outage:
            logger.error(
                "store unreachable (%s): decisions are held and written when it is back",
                type(error).__name__,
            )
        self.in_outage = True
        if self.health is not None:
            self.health.failed(error)
        return True

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self._store(batch)
            finally:
                with self._cond:
                    for request, _, _ in batch:
                        self._customers[request.customer_id] -= 1
                        if self._customers[request.customer_id] <= 0:
                            del self._customers[request.customer_id]
                            self._fields.pop(request.customer_id, None)
                    self._finished += len(batch)
                    self._cond.notify_all()
