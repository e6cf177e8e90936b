"""Log an evaluation next to the model it evaluated, in MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.artifact import DecisionArtifact


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}."))
        elif isinstance(value, bool):
            out[name] = float(value)
        elif isinstance(value, int | float) and value == value:  # not NaN
            out[name] = float(value)
    return out


def log_evaluation(artifact: DecisionArtifact, metrics: dict[str, Any], files: list[Path]) -> str | None:
    """Into the training run of the model (when it has one), else a new run."""
    from training import tracking

    mlflow = tracking.mlflow_module()
    run_id = artifact.metadata.get("run_id")
    experiment = artifact.metadata.get("experiment", "smartretry")
    if run_id is None:
        tracking.use_experiment(experiment)
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else "evaluate") as run:
        mlflow.log_metrics({f"eval.{k}": v for k, v in _flat(metrics).items()})
        for file in files:
            mlflow.log_artifact(str(file), artifact_path="evaluation")
        return run.info.run_id
