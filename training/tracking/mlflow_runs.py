"""MLflow tracking and registry for training runs.

Where runs go: ``MLFLOW_TRACKING_URI`` when set (a team's tracking server), else the
embedded default, a SQLite file ``mlflow.db`` in the working directory. For a local
SQLite store the run artifacts (plots, the logged model) go to an ``mlartifacts``
folder beside the database file; a server stores them where it is configured to.

MLflow is imported inside the functions, after :func:`mlflow_module` has set its
environment defaults (usage telemetry off unless ``MLFLOW_DISABLE_TELEMETRY`` says
otherwise: smartretry is self-hosted and ``dvc repro`` must work offline).
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from training.contract.tables import TABLES

if TYPE_CHECKING:
    from training.artifact.decision_artifact import DecisionArtifact
    from training.contract.history import History

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
CHAMPION_ALIAS = "champion"
MODEL_NAME = "model"  # the logged model's name inside a run: runs:/<run_id>/model


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else the embedded SQLite default."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def mlflow_module() -> ModuleType:
    """MLflow, pointed at :func:`tracking_uri` (imported on first use, not at import)."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    return mlflow


def local_database(uri: str) -> Path | None:
    """The file of a local SQLite store (``sqlite:///mlflow.db``); None for any other."""
    if urlparse(uri).scheme != "sqlite" or not uri.startswith("sqlite:///"):
        return None
    database = Path(uri.removeprefix("sqlite:///"))
    return None if str(database) in ("", ".", ":memory:") else database


def local_artifact_root(uri: str) -> Path | None:
    """``mlartifacts`` beside a local SQLite database file; None for any other store."""
    database = local_database(uri)
    return None if database is None else database.resolve().parent / "mlartifacts"


def use_experiment(name: str) -> str:
    """Make ``name`` the active experiment (created on first use); return its id."""
    mlflow = mlflow_module()
    found = mlflow.get_experiment_by_name(name)
    if found is None:
        root = local_artifact_root(tracking_uri())
        location = (root / name).as_uri() if root is not None else None
        experiment_id = mlflow.create_experiment(name, artifact_location=location)
    else:
        experiment_id = found.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def data_fingerprint(history: History) -> dict[str, Any]:
    """sha256 over the four validated tables' content, plus their row counts.

    Canonical order: tables in contract order, rows sorted by the table's key, columns
    in contract order; values hashed by ``pandas.util.hash_pandas_object``, floats as
    text at 12 significant digits (a CSV copy keeps fewer digits than Parquet). The same
    history gives the same fingerprint whether it was stored as CSV or Parquet.
    """
    digest = hashlib.sha256()
    rows: dict[str, int] = {}
    for name, frame in history.tables().items():
        table = TABLES[name]
        columns = [c for c in table.column_names if c in frame.columns]
        canonical = frame[columns].sort_values(table.key, kind="stable").copy()
        for column in canonical.select_dtypes("floating").columns:
            canonical[column] = np.char.mod("%.12g", canonical[column].to_numpy())
        digest.update(f"{name}:{','.join(columns)}:{len(canonical)}\n".encode())
        digest.update(pd.util.hash_pandas_object(canonical, index=False).to_numpy().tobytes())
        rows[name] = len(frame)
    return {"sha256": digest.hexdigest(), "rows": rows}


def finite_metrics(values: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Flatten nested numbers to dotted MLflow metric names, dropping NaN/None."""
    flat: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(finite_metrics(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            if math.isfinite(float(value)):
                flat[name] = float(value)
    return flat


def log_decision_model(artifact_dir: Path, events: pd.DataFrame, label: str) -> str:
    """Log the saved artifact folder as one pyfunc model in the active run; its URI.

    ``events``: a few failure events, stored as the model's input example. ``label``:
    the ``model_version`` the pyfunc reports while the artifact itself says ``local``
    (the registry version is only known after logging).
    """
    mlflow = mlflow_module()
    from training.tracking.pyfunc import ARTIFACT_KEY, decision_signature, example_events

    info = mlflow.pyfunc.log_model(
        name=MODEL_NAME,
        python_model=str(Path(__file__).with_name("pyfunc_entry.py")),
        model_config={"label": label},
        artifacts={ARTIFACT_KEY: str(artifact_dir)},
        signature=decision_signature(),
        input_example=example_events(events),
        pip_requirements=_requirements(),
    )
    return info.model_uri


def _requirements() -> list[str]:
    """The libraries the artifact unpickles with, at the versions it was trained with.

    The ``smartretry`` package itself must be installed where the model is loaded (it
    holds the feature and policy code); it is recorded in the run's tags.
    """
    from importlib.metadata import version

    packages = (
        "mlflow",
        "lightgbm",
        "scikit-learn",
        "pandas",
        "numpy",
        "pyarrow",
        "pydantic",
        "joblib",
    )
    return [f"{name}=={version(name)}" for name in packages]


def register(model_uri: str, name: str, run_id: str) -> str:
    """Register ``model_uri`` under ``name``; return the new version number."""
    mlflow = mlflow_module()
    version = mlflow.register_model(model_uri, name, tags={"run_id": run_id})
    return str(version.version)


def champion_version(name: str) -> str | None:
    """The version number behind the ``champion`` alias, or None when there is none."""
    mlflow = mlflow_module()
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION_ALIAS).version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def set_champion(name: str, version: str) -> None:
    mlflow_module().MlflowClient().set_registered_model_alias(name, CHAMPION_ALIAS, version)


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    client = mlflow_module().MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def _registry_version(uri: str) -> str | None:
    """``<name>/<version>`` for a registry URI or a run whose model is registered."""
    client = mlflow_module().MlflowClient()
    if uri.startswith("models:/"):
        reference = uri.removeprefix("models:/").rstrip("/")
        if "@" in reference:
            name, alias = reference.split("@", 1)
            return f"{name}/{client.get_model_version_by_alias(name, alias).version}"
        name, _, version = reference.partition("/")
        if version.isdigit():
            return f"{name}/{version}"
        return None
    if uri.startswith("runs:/"):
        run_id = uri.removeprefix("runs:/").split("/", 1)[0]
        found = client.search_model_versions(f"run_id = '{run_id}'")
        if found:
            latest = max(found, key=lambda v: int(v.version))
            return f"{latest.name}/{latest.version}"
    return None


def load_registered_artifact(uri: str) -> DecisionArtifact:
    """The decision artifact behind an MLflow URI (``models:/smart-retry@champion``,
    ``models:/smart-retry/3``, ``runs:/<run_id>/model``).

    The artifact is read from the logged model's files (no model code is run); its
    ``model_version`` is set to the registry version (``smart-retry/3``) when the URI
    names one.
    """
    database = local_database(tracking_uri())
    if database is not None and not database.exists():
        raise FileNotFoundError(
            f"cannot load {uri}: no MLflow store at {database} (run `smartretry train` "
            "first, or set MLFLOW_TRACKING_URI to the store holding the model)"
        )
    mlflow = mlflow_module()
    from training.artifact.decision_artifact import DecisionArtifact
    from training.tracking.pyfunc import ARTIFACT_KEY

    with tempfile.TemporaryDirectory(prefix="smartretry-model-") as folder:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder))
        candidates = sorted(local.glob(f"**/{ARTIFACT_KEY}/**/artifact.joblib"))
        if not candidates:
            raise FileNotFoundError(f"{uri} holds no smartretry decision artifact")
        artifact = DecisionArtifact.load(candidates[0])
    version = _registry_version(uri)
    if version is not None:
        artifact.metadata["model_version"] = version
    return artifact
