"""The gain shrinkage measured in process and on a Dask LocalCluster on the same history
(docs/scale.md): factor, threshold, the halves' mean promised and cross-valued gains, and
what the measurement adds to the training time on each path.

    python benchmarks/bench_cluster_shrinkage.py --invoices 20000 --parts 8 --workers 2

The history (default world) is simulated and written in the partitioned layout; the
in-process stage reads it whole (``read_history``), trains (``train_models``) and fits
the shrinkage (``fit_gain_shrinkage``); the cluster trains with ``train_on_client``
(``smartretry train --cluster``'s steps, no artifact), which measures it on the cluster.
Settings: ``--params`` (default ./params.yaml); ``--calibration-folds 0`` calibrates the
in-process models on the validation period alone too, as the cluster does.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before LightGBM is imported

from training.artifact.gain_shrinkage import GainShrinkage, fit_gain_shrinkage
from training.config.params import Params, SimulateParams, load_params
from training.contract.io import write_partitioned
from training.declines.table import load_decline_table
from training.models.fit import train_models
from training.pipeline.train_stage import read_history
from training.scale.cluster import cluster_client
from training.scale.train import train_on_client
from training.simulator.run import simulate_history


def line(label: str, fitted: GainShrinkage, train: float, shrinkage: float) -> str:
    return (
        f"{label:12s} factor {fitted.factor:.4f}  threshold {fitted.threshold:.4f}  "
        f"promised {fitted.promised_gain:.4f}  cross-valued {fitted.cross_gain:.4f}  "
        f"events {fitted.events}  train {train:.1f}s  + shrinkage {shrinkage:.1f}s"
        + (f"  ({fitted.note})" if fitted.note else "")
    )


def in_process(data: Path, params: Params) -> tuple[GainShrinkage, float, float]:
    started = time.perf_counter()
    history = read_history(data, params)
    table = load_decline_table()
    result = train_models(history, params.train, table, params.retry_rules.update_requests, False)
    trained = time.perf_counter()
    templates = sorted(history.messages["template"].dropna().unique())
    fitted = fit_gain_shrinkage(history, result.data.log, templates, params, table)
    return fitted, trained - started, time.perf_counter() - trained


def on_cluster(data: Path, params: Params, workers: int) -> tuple[GainShrinkage, float, float]:
    started = time.perf_counter()
    with cluster_client(f"local:{workers}", threads=1) as client:
        result, _, _, _, fitted, _ = train_on_client(client, data, params, False)
    wall = time.perf_counter() - started
    shrinkage = result.seconds.get("gain_shrinkage", 0.0)
    return fitted, wall - shrinkage, shrinkage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=20000)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--params", type=Path, default=None, help="default: ./params.yaml")
    parser.add_argument("--calibration-folds", type=int, default=None)
    args = parser.parse_args()
    params = load_params(args.params)
    if args.calibration_folds is not None:
        model = params.train.model.model_copy(update={"calibration_folds": args.calibration_folds})
        params = params.model_copy(
            update={"train": params.train.model_copy(update={"model": model})}
        )
    history = simulate_history(SimulateParams(invoices=args.invoices, seed=args.seed)).history
    with tempfile.TemporaryDirectory(prefix="bench-shrinkage-") as tmp:
        data = Path(tmp) / "history"
        write_partitioned(history, data, args.parts)
        print(
            f"{args.invoices} invoices (seed {args.seed}) in {args.parts} parts; "
            f"{params.train.gain_shrinkage.events} events, from quantile "
            f"{params.train.gain_shrinkage.from_quantile}, in-process calibration folds "
            f"{params.train.model.calibration_folds}",
            flush=True,
        )
        print(line("in process", *in_process(data, params)), flush=True)
        print(line(f"{args.workers} workers", *on_cluster(data, params, args.workers)), flush=True)


if __name__ == "__main__":
    main()
