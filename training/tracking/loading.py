"""Load a decision artifact from wherever it is kept: a local folder or file written by
``smartretry train``, or an MLflow model URI (``models:/smart-retry@champion``,
``runs:/<run>/model``). The artifact itself knows nothing of MLflow; this layer does."""

from __future__ import annotations

from pathlib import Path

from training.artifact.decision_artifact import DecisionArtifact
from training.tracking.mlflow_runs import load_registered_artifact

MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")


def load_artifact(uri_or_path: str | Path) -> DecisionArtifact:
    """The decision artifact at a local path or an MLflow model URI."""
    text = str(uri_or_path)
    if text.startswith(MLFLOW_SCHEMES):
        return load_registered_artifact(text)
    return DecisionArtifact.load(uri_or_path)
