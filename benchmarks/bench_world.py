"""The simulated world and trained model the serving benchmarks run against.

``prepare(work, invoices, seed)`` simulates a history, trains the real model on it with
``smartretry train`` (default ``params.yaml``, no registration, a private MLflow store in
``work``) and returns held-out requests: one per invoice of the test period, in the API
contract. Everything is cached in ``work`` so the second run starts at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from training.api.from_history import history_requests
from training.config.params import SimulateParams, TrainParams, load_params
from training.contract.io import load_history, write_history
from training.simulator.run import simulate_history

API_KEY = "bench-key-0123456789abcdef"


@dataclass
class World:
    model_dir: Path
    requests: list[dict[str, Any]]
    known_requests: list[dict[str, Any]]  # the same, ``customer`` left out

    def sample(self, n: int, *, known_share: float = 0.0) -> list[dict[str, Any]]:
        """``n`` requests cycling through the held-out ones (invoice ids kept unique); the
        first ``known_share`` of every 10 leave ``customer`` out."""
        out = []
        for i in range(n):
            base = self.known_requests if i % 10 < known_share * 10 else self.requests
            request = dict(base[i % len(base)])
            request["invoice_id"] = f"{request['invoice_id']}_{i}"
            out.append(request)
        return out


def _train(history_dir: Path, model_dir: Path, work: Path, params: Path) -> None:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    command = [
        sys.executable, "-m", "training.cli.main", "train", "--data", str(history_dir),
        "--model-dir", str(model_dir), "--metrics", str(work / "train_metrics.json"),
        "--plots-dir", str(work / "plots"), "--params", str(params), "--no-register",
    ]  # fmt: skip
    subprocess.run(command, check=True, env=env, cwd=work)


def prepare(work: Path, invoices: int, seed: int, params: Path = Path("params.yaml")) -> World:
    work.mkdir(parents=True, exist_ok=True)
    history_dir = work / f"history-{invoices}-{seed}"
    model_dir = work / f"model-{invoices}-{seed}"
    if not history_dir.exists():
        print(f"simulating {invoices} invoices (seed {seed}) ...", flush=True)
        result = simulate_history(SimulateParams(invoices=invoices, seed=seed))
        write_history(result.history, history_dir)
    if not (model_dir / "artifact.joblib").exists():
        print(f"training the model into {model_dir} ...", flush=True)
        _train(history_dir, model_dir, work, params.resolve())
    history, _ = load_history(history_dir)
    train: TrainParams = load_params(params).train
    test_start = json.loads((model_dir / "metadata.json").read_text())["training_data"]
    since = pd.Timestamp(test_start["test_start"]) if "test_start" in test_start else None
    if since is None:  # older metadata: the same split the training used
        from training.models.split import TimeSplit

        since = TimeSplit.from_due_dates(history.invoices["due_at"], train).test_start
    requests = history_requests(history, since)
    known = history_requests(history, since, with_customer=False)
    return World(model_dir, requests, known)
