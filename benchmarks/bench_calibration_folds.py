"""What calibrating on the validation period alone (the cluster path) changes against
the out-of-fold calibration of the in-process path: both fitted in process on one
simulated history, the test period's probabilities compared row by row.

    python benchmarks/bench_calibration_folds.py --invoices 20000
"""

from __future__ import annotations

import argparse

import numpy as np

from training.config.params import SimulateParams, default_params
from training.declines.table import load_decline_table
from training.models.fit import train_models
from training.simulator.run import simulate_history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invoices", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    history = simulate_history(SimulateParams(invoices=args.invoices, seed=args.seed)).history
    params = default_params()
    table = load_decline_table()
    update = params.retry_rules.update_requests
    runs = {}
    for folds in (params.train.model.calibration_folds, 0):
        settings = params.train.model_copy(
            update={"model": params.train.model.model_copy(update={"calibration_folds": folds})}
        )
        runs[folds] = train_models(history, settings, table, update, progress=False)
    oof, valid_only = runs[params.train.model.calibration_folds], runs[0]
    print(
        f"{args.invoices} invoices, seed {args.seed}: out-of-fold "
        f"({params.train.model.calibration_folds} folds) vs validation period alone"
    )
    for name, _ in oof.models.items():
        y, p_oof = oof.test_predictions[name]
        _, p_valid = valid_only.test_predictions[name]
        a, b = oof.metrics[name], valid_only.metrics[name]
        print(
            f"{name:9s} rows {len(y):6d}  mean |diff| {np.mean(np.abs(p_oof - p_valid)):.4f}  "
            f"max {np.max(np.abs(p_oof - p_valid)):.4f}  "
            f"mean p {p_oof.mean():.4f} / {p_valid.mean():.4f} (observed {y.mean():.4f})  "
            f"log loss {a['log_loss']:.4f} / {b['log_loss']:.4f}  "
            f"calibration error {a['calibration_error']:.4f} / {b['calibration_error']:.4f}"
        )


if __name__ == "__main__":
    main()
