"""Time ``smartretry validate`` on a large history (goal: 100,000 invoices in at most 30 s).

Either validate an existing history folder::

    python benchmarks/bench_validate.py --data data/history

or simulate one first (not timed) and validate it in the chosen format::

    python benchmarks/bench_validate.py --invoices 100000 --seed 7 --format csv

The timed part is exactly what the command does: read the four tables, validate them,
write the rejects file. Reading and validating are also reported separately.
``--break-share 0.3`` first gives that share of invoices an invalid currency (in a copy),
to time the path where many rows, and their attempts and messages, are rejected.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from training.config.params import SimulateParams, ValidateParams
from training.contract.io import find_table_file, read_raw_tables, read_table_file, write_history
from training.contract.validate import validate_folder, validate_tables


def simulate_to(folder: Path, invoices: int, seed: int, fmt: str) -> None:
    from training.simulator.run import simulate_history

    result = simulate_history(SimulateParams(invoices=invoices, seed=seed, format=fmt))
    write_history(result.history, folder, fmt=fmt)


def break_invoices(source: Path, target: Path, share: float, seed: int) -> None:
    """Copy ``source`` to ``target`` with ``share`` of the invoices' currency made invalid."""
    shutil.copytree(source, target)
    path = find_table_file(target, "invoices")
    invoices = read_table_file(path)
    broken = np.random.default_rng(seed).random(len(invoices)) < share
    invoices.loc[broken, "currency"] = "EURO"
    if path.suffix == ".csv":
        invoices.to_csv(path, index=False)
    else:
        invoices.to_parquet(path, index=False)


def bench(folder: Path, repeat: int) -> dict[str, float]:
    settings = ValidateParams(max_reject_share=1.0)
    best = {"read": float("inf"), "validate": float("inf"), "command": float("inf")}
    for _ in range(repeat):
        start = time.perf_counter()
        raw = read_raw_tables(folder)
        read = time.perf_counter()
        validate_tables(raw, settings)
        done = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            begin = time.perf_counter()
            report = validate_folder(folder, settings, rejects_path=Path(scratch) / "rejects.csv")
            end = time.perf_counter()
        best = {
            "read": min(best["read"], read - start),
            "validate": min(best["validate"], done - read),
            "command": min(best["command"], end - begin),
        }
    print(report.summary())
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="existing history folder to validate")
    parser.add_argument("--invoices", type=int, default=100_000, help="invoices to simulate")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--break-share", type=float, default=0.0, help="invoices to break")
    parser.add_argument("--repeat", type=int, default=1, help="runs; the best time is reported")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        folder = args.data
        if folder is None:
            folder = Path(scratch) / "history"
            print(f"simulating {args.invoices} invoices (seed {args.seed}, {args.format}) ...")
            simulate_to(folder, args.invoices, args.seed, args.format)
        if args.break_share > 0:
            broken = Path(scratch) / "broken"
            break_invoices(folder, broken, args.break_share, args.seed)
            folder = broken
        times = bench(folder, args.repeat)
    print(
        f"read {times['read']:.1f} s, validate {times['validate']:.1f} s; "
        f"smartretry validate (read + validate + rejects file): {times['command']:.1f} s"
    )


if __name__ == "__main__":
    main()
