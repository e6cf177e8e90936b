"""Log an evaluation next to the model it evaluated, in MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.artifact.decision_artifact import DecisionArtifact


def log_evaluation(
    artifact: DecisionArtifact, metrics: dict[str, Any], files: list[Path]
) -> str | None:
    """Into the training run of the model (when it has one), else a new run."""
    from training.tracking import mlflow_runs as tracking

    mlflow = tracking.mlflow_module()
    run_id = artifact.metadata.get("run_id")
    if run_id is None:
        tracking.use_experiment(artifact.metadata.get("experiment", "smartretry"))
    with mlflow.start_run(run_id=run_id, run_name=None if run_id else "evaluate") as run:
        mlflow.log_metrics(tracking.finite_metrics(metrics, "eval."))
        for file in files:
            mlflow.log_artifact(str(file), artifact_path="evaluation")
        return run.info.run_id
