"""Time `smartretry simulate` at scale: generating and writing a 100,000-invoice history.

    python benchmarks/bench_simulate.py --invoices 100000 [--format parquet|csv]

Prints wall-clock seconds for the simulation and for writing, and peak memory (RSS).
The figures in docs/simulator.md come from this script.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from training.config.params import SimulateParams
from training.contract.io import write_history
from training.simulator.run import simulate_history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--format", default="parquet", choices=("parquet", "csv"))
    args = parser.parse_args()

    started = time.perf_counter()
    result = simulate_history(SimulateParams(invoices=args.invoices, seed=args.seed))
    simulated = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        write_history(result.history, Path(tmp) / "history", fmt=args.format)
        result.truth.save(Path(tmp) / "truth")
        written = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(result.summary())
    print(
        f"simulate {args.invoices:,} invoices: {simulated:.1f}s; write ({args.format}) "
        f"+ ground truth: {written:.1f}s; total {simulated + written:.1f}s; peak RSS {peak_mb:,.0f} MB"
    )


if __name__ == "__main__":
    main()
