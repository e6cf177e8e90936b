"""The evaluation of the learned policy as tables (notebook 02).

The numbers come from ``smartretry evaluate``: its metrics JSON (``--metrics``) and its
report folder (``--report-dir``), read from disk or from the evaluation files logged into
the model's MLflow run; or, when neither exists, from :func:`evaluate_sample`, which runs
the same :func:`~training.evaluation.run.run_evaluation` on a small sample.

Per-segment breakdowns are not part of the metrics JSON: they are read from the
``### By ...`` tables of the report's ``report.md`` (values rounded to 0.1 points there)
unless a ``breakdowns`` entry is present, or taken from the evaluation run itself.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.artifact.decision_artifact import DecisionArtifact
from training.config.params import Params
from training.contract.history import History
from training.evaluation.report import LABELS

POLICIES = tuple(LABELS)
ESTIMATORS = ("ips", "snips", "dr", "dm")
REPORT_FILE = "report.md"


@dataclass
class Evaluation:
    """An evaluation's metrics, its per-segment tables, and where they came from."""

    metrics: dict[str, Any]
    breakdowns: dict[str, pd.DataFrame] = field(default_factory=dict)
    source: str = ""


def read_evaluation(metrics_path: str | Path, report_dir: str | Path | None = None) -> Evaluation:
    """The metrics JSON and (when ``report_dir`` holds ``report.md``) its breakdowns."""
    metrics_path = Path(metrics_path)
    try:
        metrics = json.loads(metrics_path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{metrics_path} is not valid JSON: {error}") from error
    if not isinstance(metrics, dict) or "evaluated_invoices" not in metrics:
        raise ValueError(f"{metrics_path} is not the metrics JSON of `smartretry evaluate`")
    breakdowns = _breakdowns_in(metrics)
    report = Path(report_dir) / REPORT_FILE if report_dir is not None else None
    if not breakdowns and report is not None and report.is_file():
        breakdowns = breakdowns_from_report(report.read_text())
    return Evaluation(metrics, breakdowns, str(metrics_path))


def _breakdowns_in(metrics: dict[str, Any]) -> dict[str, pd.DataFrame]:
    raw = metrics.get("breakdowns") or {}
    return {name: pd.DataFrame(rows).set_index("group") for name, rows in raw.items()}


def evaluation_from_run(run_id: str) -> Evaluation | None:
    """The evaluation files ``smartretry evaluate`` logged into an MLflow run
    (``evaluation/``), or None when the run has none."""
    from training.tracking.mlflow_runs import mlflow_module

    mlflow = mlflow_module()
    with tempfile.TemporaryDirectory(prefix="smartretry-eval-") as folder:
        try:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path="evaluation", dst_path=folder
                )
            )
        except Exception:
            return None
        for candidate in sorted(local.glob("*.json")):
            try:
                found = read_evaluation(candidate, local)
            except ValueError:
                continue
            found.source = f"MLflow run {run_id}, evaluation/{candidate.name}"
            return found
    return None


def find_evaluation(
    metrics_path: str | Path | None,
    report_dir: str | Path | None,
    run_id: str | None = None,
) -> Evaluation | None:
    """The evaluation on disk (``metrics_path``), else the one logged into the model's
    MLflow run, else None."""
    if metrics_path is not None and Path(metrics_path).is_file():
        return read_evaluation(metrics_path, report_dir)
    if run_id is None:
        return None
    from training.tracking.mlflow_runs import local_database, tracking_uri

    database = local_database(tracking_uri())
    if database is not None and not database.exists():
        return None  # no local store: nothing to ask (and none to create)
    return evaluation_from_run(run_id)


def run_id_of(model: str, artifact: DecisionArtifact) -> str | None:
    """The MLflow run behind a model: the artifact's metadata, a ``runs:/`` URI, or the
    registry version a ``models:/`` URI names."""
    if artifact.metadata.get("run_id"):
        return str(artifact.metadata["run_id"])
    if model.startswith("runs:/"):
        return model.removeprefix("runs:/").split("/", 1)[0]
    if not model.startswith("models:/"):
        return None
    from training.tracking.mlflow_runs import mlflow_module

    client = mlflow_module().MlflowClient()
    name, _, rest = model.removeprefix("models:/").partition("/")
    if "@" in name:
        name, alias = name.split("@", 1)
        return client.get_model_version_by_alias(name, alias).run_id
    return client.get_model_version(name, rest.strip("/")).run_id


def evaluate_sample(
    history: History,
    artifact: DecisionArtifact,
    params: Params,
    truth=None,
    max_invoices: int = 300,
    bootstrap: int = 200,
    max_ope_invoices: int | None = None,
) -> Evaluation:
    """``run_evaluation`` on ``max_invoices`` held-out invoices (the same sample size
    for the off-policy part unless ``max_ope_invoices`` says otherwise)."""
    from training.evaluation.run import run_evaluation

    settings = params.evaluate.model_copy(
        update={
            "max_invoices": max_invoices,
            "bootstrap": bootstrap,
            "max_ope_invoices": max_ope_invoices or max_invoices,
        }
    )
    result = run_evaluation(
        history, artifact, params.model_copy(update={"evaluate": settings}), truth, progress=False
    )
    return Evaluation(result.metrics, result.breakdowns, f"computed on {max_invoices} invoices")


def breakdowns_from_report(text: str) -> dict[str, pd.DataFrame]:
    """The ``### By <segment>`` tables of an evaluation ``report.md`` as frames (rates in
    0-1, one column per policy, ``invoices``, ``captured_share``)."""
    names = {label: name for name, label in LABELS.items()}
    tables: dict[str, pd.DataFrame] = {}
    for match in re.finditer(r"^### By (.+)\n\n((?:\|.*\|\n?)+)", text, flags=re.MULTILINE):
        lines = [line.strip().strip("|") for line in match.group(2).strip().splitlines()]
        header = [cell.strip() for cell in lines[0].split("|")]
        rows = [[cell.strip() for cell in line.split("|")] for line in lines[2:]]
        frame = pd.DataFrame(rows, columns=header).set_index("group")
        frame.columns = [names.get(c, c.replace(" ", "_")) for c in frame.columns]
        for column in frame.columns:
            values = frame[column].str.rstrip("%")
            numbers = pd.to_numeric(values, errors="coerce")
            frame[column] = numbers.astype(int) if column == "invoices" else numbers / 100
        tables[match.group(1).strip()] = frame
    return tables


def policy_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per policy: the exact recovery rate with its 95% bootstrap interval, the
    recovered revenue share, and the model's own estimate. Without simulator truth (a
    real history) only the model estimates are known."""
    truth = metrics.get("truth", {})
    estimates = metrics.get("model_estimate", {})
    rows = []
    for name in POLICIES:
        rate = truth.get(f"{name}_recovery_rate")
        revenue = truth.get(f"{name}_recovered_revenue_share")
        if rate is None and name not in estimates:
            continue
        rows.append(
            {
                "policy": LABELS[name],
                "recovery_rate": rate["value"] if rate else np.nan,
                "ci_low": rate["lower"] if rate else np.nan,
                "ci_high": rate["upper"] if rate else np.nan,
                "recovered_revenue_share": revenue["value"] if revenue else np.nan,
                "revenue_ci_low": revenue["lower"] if revenue else np.nan,
                "revenue_ci_high": revenue["upper"] if revenue else np.nan,
                "model_estimate_rate": estimates.get(name, np.nan),
            }
        )
    return pd.DataFrame(rows).set_index("policy")


def headline(metrics: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The learned policy's uplift over the fixed schedule and the share of the oracle's
    uplift it captures (95% intervals), plus rule violations and sample sizes."""
    truth = metrics.get("truth", {})
    rows = []
    for key, label in (
        ("uplift_over_fixed", "uplift over fixed (points)"),
        ("captured_share", "oracle uplift captured"),
    ):
        if key in truth:
            e = truth[key]
            rows.append(
                {
                    "measure": label,
                    "value_rate": e["value"],
                    "ci_low": e["lower"],
                    "ci_high": e["upper"],
                }
            )
    table = pd.DataFrame(rows, columns=["measure", "value_rate", "ci_low", "ci_high"])
    counts = pd.DataFrame(
        {
            "measure": [
                "held-out invoices (closed window)",
                "invoices evaluated",
                "rule violations of the learned policy",
            ],
            "count": [
                metrics.get("held_out_invoices"),
                metrics.get("evaluated_invoices"),
                metrics.get("rule_violations"),
            ],
        }
    )
    return table.set_index("measure"), counts.set_index("measure")


def off_policy_table(metrics: dict[str, Any], key: str = "off_policy") -> pd.DataFrame:
    """IPS, SNIPS, DR and DM estimates with 95% intervals (or why the logs cannot support
    one), matched invoices, effective sample size, and the simulator truth of the same
    policy when known. ``key="off_policy_timing"``: the first-retry timing estimate."""
    ope = metrics.get(key, {})
    rows = [
        {
            "estimator": name.upper(),
            "estimate_rate": ope[name].get("value", np.nan),
            "ci_low": ope[name].get("lower", np.nan),
            "ci_high": ope[name].get("upper", np.nan),
            "cannot_estimate": ope[name].get("cannot_estimate", ""),
            "matched": int(ope[name]["matched"]),
            "effective_sample_size": float(
                ope[name].get("ess", ope[name].get("effective_sample_size", np.nan))
            ),
            "truth_rate": ope.get("truth", np.nan),
            "truth_inside_interval": ope.get("truth_inside_interval", {}).get(name),
        }
        for name in ESTIMATORS
        if name in ope
    ]
    table = pd.DataFrame(rows)
    return table.set_index("estimator") if len(table) else table


def uplift_by_segment(breakdowns: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per segment: recovery of the learned policy and the fixed schedule, the uplift
    (learned - fixed, points), the oracle's uplift (its ceiling) and the share captured."""
    parts = []
    for dimension, table in breakdowns.items():
        if not {"learned", "fixed"} <= set(table.columns):
            continue
        part = pd.DataFrame(
            {
                "dimension": dimension,
                "segment": table.index.astype(str),
                "invoices": table["invoices"].astype(int).to_numpy(),
                "learned_rate": table["learned"].to_numpy(),
                "fixed_rate": table["fixed"].to_numpy(),
                "uplift_rate": (table["learned"] - table["fixed"]).to_numpy(),
                "oracle_uplift_rate": (table["oracle"] - table["fixed"]).to_numpy()
                if "oracle" in table
                else np.nan,
                "captured_share": table["captured_share"].to_numpy()
                if "captured_share" in table
                else np.nan,
            }
        )
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["dimension", "segment", "invoices", "uplift_rate"])
    return pd.concat(parts, ignore_index=True)
