"""Time the whole train stage on a large simulated history (goal: 100,000 invoices in at
most 5 minutes with peak memory at most 4 GB on a 2-core machine).

    python benchmarks/bench_train.py --invoices 100000 --seed 7 [--params params.yaml]

The history is simulated and written first (not timed). Then ``smartretry train`` runs
as a child process exactly as the DVC stage calls it (read + validate, features, three
LightGBM fits with early stopping + calibration, artifact, metrics, plots, MLflow run,
registration and champion check), against a fresh MLflow store in a temporary folder.
Reported: wall-clock seconds of the command, its peak resident memory (the child's
``ru_maxrss``, so the simulation in this process does not count), and from the metrics
JSON the seconds of each step, among them the bare LightGBM fits, so the overhead of
feature building is visible. The figures in docs/training.md come from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
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
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = Path(tmp)
        result = simulate_history(SimulateParams(invoices=args.invoices, seed=args.seed))
        write_history(result.history, root / "history")
        print(result.summary(), flush=True)
        del result
        command = [
            sys.executable,
            "-m",
            "training.cli.main",
            "train",
            "--data",
            str(root / "history"),
            "--model-dir",
            str(root / "model"),
            "--metrics",
            str(root / "train_metrics.json"),
            "--plots-dir",
            str(root / "plots"),
            "--params",
            str(args.params.resolve()),
        ]
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
        started = time.perf_counter()
        subprocess.run(command, check=True, env=env, cwd=root)
        wall = time.perf_counter() - started
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
        metrics = json.loads((root / "train_metrics.json").read_text())
        size_mb = (root / "model" / "artifact.joblib").stat().st_size / 1024**2

    seconds = metrics["seconds"]
    fits = sum(v for k, v in seconds.items() if k.startswith("train_fit_"))
    print(
        f"\nsmartretry train on {args.invoices:,} invoices: {wall:.1f}s wall, peak RSS {peak_gb:.2f} GB"
    )
    print(
        f"  read+validate {seconds['load']:.1f}s, features {seconds['train_features']:.1f}s, "
        f"model steps {seconds['train_total'] - seconds['train_features']:.1f}s "
        f"(bare LightGBM fits {fits:.1f}s: "
        + ", ".join(
            f"{k.removeprefix('train_fit_')} {v:.1f}s"
            for k, v in seconds.items()
            if k.startswith("train_fit_")
        )
        + f"), artifact save {seconds['save']:.1f}s, plots {seconds['plots']:.1f}s, "
        f"MLflow + registry = the rest ({wall - seconds['before_tracking']:.1f}s incl. start-up)"
    )
    print(
        f"  artifact {size_mb:.0f} MB; rows per model: "
        + ", ".join(
            f"{name} {int(m['train_rows']):,} train / {int(m['rows']):,} test"
            for name, m in metrics["models"].items()
        )
    )


if __name__ == "__main__":
    main()
