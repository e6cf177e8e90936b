"""`smartretry simulate --partitions K`: a history too large for memory, one block at a time.

Each part is an independent block of customers simulated by the same world (its own
customers, their invoices, attempts and messages), written as one part of the
partitioned layout (``training/contract/partitioned.py``) before the next block is drawn:
memory holds one block, whatever the total. Ids get the block's number as a suffix
(``cus_17-3``) so they stay unique across parts. Each block's seed is derived from the
run's seed and the block number (``numpy.random.SeedSequence``), so a run is
reproducible. The ground truth is written per part (``TRUTH/part-NNNNN/``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from training.config.params import SimulateParams
from training.contract.history import History
from training.contract.partitioned import part_name
from training.simulator.logging_policy import LoggingPolicy
from training.simulator.run import SimulationResult, simulate_history
from training.simulator.world import WorldConfig

ID_COLUMNS = ("customer_id", "invoice_id", "attempt_id", "message_id")


def block_sizes(invoices: int, parts: int) -> list[int]:
    """Invoices per block: as equal as possible, summing to ``invoices``."""
    base, extra = divmod(invoices, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def block_seed(seed: int, block: int) -> int:
    return int(np.random.SeedSequence([seed, block]).generate_state(1)[0])


def tag_ids(frame: pd.DataFrame, block: int) -> pd.DataFrame:
    """The frame with every id column suffixed ``-<block>`` (missing ids stay missing)."""
    out = frame.copy()
    for column in ID_COLUMNS:
        if column in out.columns:
            values = out[column]
            out[column] = (values.astype(str) + f"-{block}").where(values.notna(), None)
    return out


def simulate_block(
    settings: SimulateParams,
    block: int,
    invoices: int,
    world: WorldConfig | None = None,
    policy: LoggingPolicy | None = None,
) -> SimulationResult:
    """Block ``block`` of a partitioned simulation, ids tagged with its number."""
    block_settings = settings.model_copy(
        update={"invoices": invoices, "seed": block_seed(settings.seed, block)}
    )
    result = simulate_history(block_settings, world, policy)
    history = History.from_tables(
        {name: tag_ids(frame, block) for name, frame in result.history.tables().items()}
    )
    result.truth.invoices = tag_ids(result.truth.invoices, block)
    return SimulationResult(history, result.truth, result.seconds)


def run_partitioned_simulation(
    settings: SimulateParams,
    out: Path,
    parts: int,
    truth_out: Path,
    world: WorldConfig | None = None,
    policy: LoggingPolicy | None = None,
) -> str:
    """Simulate ``settings.invoices`` in ``parts`` blocks, writing each as it is drawn."""
    from training.contract.io import write_part

    if parts < 1:
        raise ValueError(f"parts must be at least 1, not {parts}")
    if parts > settings.invoices:
        raise ValueError(f"parts ({parts}) cannot exceed invoices ({settings.invoices})")
    started = time.perf_counter()
    rows = {"customers": 0, "invoices": 0, "attempts": 0, "messages": 0}
    for block, size in enumerate(
        tqdm(block_sizes(settings.invoices, parts), desc="simulate", unit="part")
    ):
        result = simulate_block(settings, block, size, world, policy)
        write_part(result.history, out, block, settings.format)
        result.truth.save(truth_out / part_name(block))
        for name, frame in result.history.tables().items():
            rows[name] += len(frame)
    return (
        f"simulated {rows['invoices']:,} invoices of {rows['customers']:,} customers in "
        f"{parts} parts in {time.perf_counter() - started:.1f}s: {rows['attempts']:,} "
        f"attempts, {rows['messages']:,} messages\nhistory: {out} (partitioned)\n"
        f"ground truth: {truth_out}/part-NNNNN"
    )
