"""`smartretry recommend --cluster`: score a partitioned request set on a Dask cluster.

A partitioned request set is a folder of JSON Lines files (``*.jsonl``, e.g.
``part-00000.jsonl``), each scored whole by one task with the batch scorer
(:func:`training.api.batch.run_recommend`, the API's code path) into the file of the same
name in the output folder. Each worker loads the decider once (``load``, keyed by
``key``) and keeps it for the parts it scores. Input and output folders must be visible
to the workers under the same path (a shared or local file system).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from training.api.batch import BatchSummary, run_recommend
from training.policy.decisions import Decider

_DECIDERS: dict[str, Decider] = {}  # per worker process: loaded once, reused by its tasks


def request_parts(folder: Path) -> list[Path]:
    """The request files of a partitioned request set, in name order."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder of *.jsonl request files")
    parts = sorted(p for p in folder.iterdir() if p.suffix == ".jsonl" and p.is_file())
    if not parts:
        raise ValueError(f"no *.jsonl request files in {folder}")
    return parts


def score_part(
    key: str, load: Callable[[], Decider], source: str, target: str, batch_size: int
) -> BatchSummary:
    """Score one request file on a worker, with the worker's decider for ``key``."""
    if key not in _DECIDERS:
        _DECIDERS[key] = load()
    return run_recommend(
        _DECIDERS[key], Path(source), Path(target), batch_size=batch_size, progress=False
    )


def recommend_on_cluster(
    client: Any,
    key: str,
    load: Callable[[], Decider],
    input_dir: Path,
    output_dir: Path,
    batch_size: int,
) -> BatchSummary:
    """Score every part of ``input_dir`` into ``output_dir``; the summed summary (its
    ``seconds``: the wall time of the whole set)."""
    started = time.perf_counter()
    parts = request_parts(input_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    futures = client.map(
        score_part,
        [key] * len(parts),
        [load] * len(parts),
        [str(p.resolve()) for p in parts],
        [str((output_dir / p.name).resolve()) for p in parts],
        [batch_size] * len(parts),
        pure=False,
    )
    total = BatchSummary()
    for summary in client.gather(futures):
        total.items += summary.items
        total.errors += summary.errors
        total.fallback += summary.fallback
    total.seconds = time.perf_counter() - started
    return total
