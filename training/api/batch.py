"""``smartretry recommend``: batch scoring of a JSON Lines file of recommendation requests.

The same code path as the API: every line goes through :func:`training.api.service.recommend`
(sensitive-data scan, the contract's validation in :mod:`training.api.schemas`, the decider,
the rules fallback when the decider raises), with the customers the model artifact knows.
The input is read and answered ``batch_size`` lines at a time, so a file of any size
streams through in bounded memory. Output line *i* answers input line *i*: a response, or
a per-item error ``{"invoice_id", "error": {"code", "message", "field"}}`` exactly as the
batch endpoint returns it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from training.api.schemas import ErrorBody, ItemError, RecommendationResponse
from training.api.service import customer_knowledge, customers_to_look_up, recommend, validate_item
from training.policy.decisions import Decider
from training.policy.fallback import FallbackDecider

DEFAULT_BATCH_SIZE = 1000


@dataclass
class BatchSummary:
    items: int = 0
    errors: int = 0
    fallback: int = 0
    seconds: float = 0.0

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def add(self, results: list[RecommendationResponse | ItemError]) -> None:
        self.items += len(results)
        self.errors += sum(isinstance(r, ItemError) for r in results)
        self.fallback += sum(isinstance(r, RecommendationResponse) and r.fallback for r in results)

    def summary(self) -> str:
        text = (
            f"{self.items} items, {self.errors} errors, {self.seconds:.2f} s, "
            f"{self.items_per_second:.0f} items/s"
        )
        return text + (f", {self.fallback} answered by the rules fallback" if self.fallback else "")


def parse_line(line: str, number: int) -> Any:
    """A JSON value, or an :class:`ItemError` naming the line when it is not JSON."""
    try:
        return json.loads(line)
    except json.JSONDecodeError as error:
        message = f"line {number}: not valid JSON ({error.msg} at column {error.colno})"
        if not line.strip():
            message = f"line {number}: empty line (one JSON request per line)"
        return ItemError(invoice_id=None, error=ErrorBody(code="invalid_json", message=message))


def read_batches(lines: Iterable[str], batch_size: int) -> Iterator[list[Any]]:
    """Parsed lines in lists of ``batch_size`` (the last one shorter)."""
    batch: list[Any] = []
    for number, line in enumerate(lines, start=1):
        batch.append(parse_line(line.rstrip("\r\n"), number))
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def score_batch(
    decider: Decider, items: list[Any], fallback: Decider | None = None
) -> list[RecommendationResponse | ItemError]:
    """Answers for one batch of parsed lines, in order (what the batch endpoint does,
    without the store: only the model's known customers fill a missing ``customer``)."""
    validated = [validate_item(item) for item in items]
    ids = customers_to_look_up(validated)
    known = customer_knowledge(decider, ids, {}) if ids else {}
    return recommend(decider, validated, known_customers=known, fallback=fallback, prefix="")


def score_stream(
    decider: Decider,
    source: Iterable[str],
    sink: TextIO,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    fallback: Decider | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> BatchSummary:
    """Answer every line of ``source`` into ``sink`` (one JSON object per line)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    summary = BatchSummary()
    start = time.perf_counter()
    for items in read_batches(source, batch_size):
        results = score_batch(decider, items, fallback)
        sink.write("".join(r.model_dump_json() + "\n" for r in results))
        summary.add(results)
        if on_batch is not None:
            on_batch(len(results))
    summary.seconds = time.perf_counter() - start
    return summary


def run_recommend(
    decider: Decider,
    input_path: Path,
    output_path: Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
) -> BatchSummary:
    """Score ``input_path`` (JSON Lines) into ``output_path``, with a progress bar on stderr."""
    from tqdm import tqdm

    output_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        input_path.open(encoding="utf-8") as source,
        output_path.open("w", encoding="utf-8") as sink,
        tqdm(unit=" req", disable=not progress, desc="recommend") as bar,
    ):
        return score_stream(
            decider,
            source,
            sink,
            batch_size=batch_size,
            fallback=FallbackDecider(),
            on_batch=bar.update,
        )
