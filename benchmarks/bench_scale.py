"""Train on a Dask LocalCluster of 1 and of 2 workers: time, peak memory per worker,
scaling of the feature stage (docs/scale.md).

    python benchmarks/bench_scale.py --invoices 1000000 --parts 32 --workers 1,2
    python benchmarks/bench_scale.py --invoices 20000 --parts 8 --workers 1,2 --in-process

The partitioned history is simulated first, one block of customers per part
(``smartretry simulate --partitions``, in a child process: its peak memory is reported
apart). Then, for each worker count, a fresh LocalCluster (one process per worker,
``--threads`` threads and ``--memory-limit`` each) runs the cluster part of
``smartretry train --cluster``: validation per part, training rows per part, the three
``lightgbm.dask`` fits with calibration and test scoring, and the gain shrinkage's half
trainings and searches when the settings ask for it (``train.gain_shrinkage.events`` > 0).
Reported per run: seconds of validation, features, each fit and the gain shrinkage,
each worker process's peak resident memory
(``ru_maxrss``, read on the worker after the run), the client's, and the test AUCs;
then the speed-up of 2 workers over 1 on the validation + feature stage. With
``--in-process`` the same history is also trained by the in-process stage (only for
sizes that fit in one process) and the AUC differences are printed.
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
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before LightGBM is imported

from training.config.params import Params, load_params
from training.scale.cluster import cluster_client
from training.scale.train import train_on_client


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def simulate(out: Path, invoices: int, parts: int, seed: int) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "training.cli.main", "simulate", "--out", str(out),
        "--invoices", str(invoices), "--partitions", str(parts), "--seed", str(seed),
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    print(done.stdout.strip(), flush=True)
    return {"seconds": seconds, "peak_gb": peak}


def on_cluster(
    data: Path, workers: int, threads: int, params: Params, memory_limit: str
) -> dict[str, Any]:
    started = time.perf_counter()
    with cluster_client(f"local:{workers}", memory_limit, threads) as client:
        result, customers, _, fingerprint, _, _ = train_on_client(client, data, params, False)
        peaks = client.run(_peak_gb)
    wall = time.perf_counter() - started
    return {
        "workers": workers,
        "threads_per_worker": threads,
        "wall_seconds": wall,
        "seconds": result.seconds,
        "worker_peak_gb": sorted(peaks.values()),
        "client_peak_gb": _peak_gb(),
        "auc": {name: m["auc"] for name, m in result.metrics.items()},
        "rows": fingerprint["rows"],
        "customers": len(customers),
    }


def in_process(data: Path, params: Params) -> dict[str, Any]:
    from training.declines.table import load_decline_table
    from training.models.fit import train_models
    from training.pipeline.train_stage import read_history

    started = time.perf_counter()
    history = read_history(data, params)
    result = train_models(
        history, params.train, load_decline_table(), params.retry_rules.update_requests, False
    )
    return {
        "wall_seconds": time.perf_counter() - started,
        "seconds": result.seconds,
        "auc": {name: m["auc"] for name, m in result.metrics.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=32)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--params", type=Path, default=None, help="default: ./params.yaml")
    parser.add_argument(
        "--threads", type=int, default=1, help="threads (cores) per worker: 1 compares 1 core to 2"
    )
    parser.add_argument("--memory-limit", default="10GB", help="per worker (Dask pauses/kills)")
    parser.add_argument("--data", type=Path, default=None, help="an existing partitioned history")
    parser.add_argument("--in-process", action="store_true", help="also train in one process")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    params = load_params(args.params)

    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        report: dict[str, Any] = {"invoices": args.invoices, "parts": args.parts}
        data = args.data
        if data is None:
            data = Path(tmp) / "history"
            report["simulate"] = simulate(data, args.invoices, args.parts, args.seed)
            print(
                f"simulated in {report['simulate']['seconds']:.1f}s, "
                f"peak {report['simulate']['peak_gb']:.2f} GB",
                flush=True,
            )
        runs = []
        for workers in (int(w) for w in args.workers.split(",")):
            run = on_cluster(data, workers, args.threads, params, args.memory_limit)
            runs.append(run)
            s = run["seconds"]
            print(
                f"{workers} worker(s) x {run['threads_per_worker']} threads: "
                f"{run['wall_seconds']:.1f}s wall (validate {s['validate']:.1f}s, "
                f"features {s['features']:.1f}s, "
                + ", ".join(f"{k} {v:.1f}s" for k, v in s.items() if k.startswith("fit_"))
                + (f", gain shrinkage {s['gain_shrinkage']:.1f}s" if "gain_shrinkage" in s else "")
                + f"); worker peak {', '.join(f'{g:.2f}' for g in run['worker_peak_gb'])} GB, "
                f"client peak {run['client_peak_gb']:.2f} GB; test AUC "
                + ", ".join(f"{k} {v:.4f}" for k, v in run["auc"].items()),
                flush=True,
            )
        report["runs"] = runs
        if len(runs) > 1:
            stage = [r["seconds"]["validate"] + r["seconds"]["features"] for r in runs]
            report["feature_stage_speedup"] = stage[0] / stage[-1]
            print(
                f"validate + features: {stage[0]:.1f}s on {runs[0]['workers']} worker(s), "
                f"{stage[-1]:.1f}s on {runs[-1]['workers']}: {report['feature_stage_speedup']:.2f}x"
            )
        if args.in_process:
            local = in_process(data, params)
            report["in_process"] = local
            print(
                f"in process: {local['wall_seconds']:.1f}s; AUC "
                + ", ".join(
                    f"{k} {v:.4f} (Dask - in-process: "
                    + ", ".join(f"{r['auc'][k] - v:+.4f}" for r in runs)
                    + ")"
                    for k, v in local["auc"].items()
                )
            )
        report["load_average"] = os.getloadavg()
        print(f"load average (1, 5, 15 min): {report['load_average']}")
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
