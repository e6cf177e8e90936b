"""The decision artifact as one MLflow model (``mlflow.pyfunc``).

``predict`` takes failure events (the columns of
:data:`training.core.frames.EVENT_COLUMNS`) and returns one row per event: the
decision's summary columns plus its retries, messages and reasons as JSON text, so the
output is a flat table any MLflow client can read (``mlflow models serve``, Spark UDFs,
``pyfunc.load_model``). Python callers who want the frames themselves load the
artifact with :func:`training.tracking.mlflow_runs.load_registered_artifact` instead.

Timestamps (``failed_at``, ``signup_at``) are ISO 8601 strings in the signature, as in
the API contract (``2025-03-01T09:00:00Z``; without an offset they are read as UTC):
MLflow's own datetime type only takes timezone-naive values. Use
:func:`example_events` to turn an events frame into this form.

This module imports MLflow at the top (a ``PythonModel`` must subclass it); import it
through :mod:`training.tracking.mlflow_runs`, which sets MLflow's environment defaults first.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from mlflow.models.signature import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import ColSpec, Schema

from training.core.frames import EVENT_COLUMNS
from training.policy.decisions import Decisions

ARTIFACT_KEY = "decision"

_OPTIONAL = {"card_brand", "merchant_advice_code", "country", "signup_at"}
_TYPES = {
    "amount_minor": "long",
    "max_retries": "long",
    "window_days": "long",
    "max_messages": "long",
    "sms_opt_in": "boolean",
    "allow_email": "boolean",
    "allow_sms": "boolean",
}
OUTPUT_COLUMNS = {
    "event_id": "string",
    "model_version": "string",
    "decision_id": "string",
    "decline_category": "string",
    "retryable": "string",
    "expected_recovery_probability": "double",
    "baseline_recovery_probability": "double",
    "propensity": "double",
    "fallback": "boolean",
    "reasons": "string",
    "retries": "string",
    "messages": "string",
}


def decision_signature() -> ModelSignature:
    """Input: failure events; output: one decision per event (JSON for the lists)."""
    inputs = Schema(
        [
            ColSpec(_TYPES.get(name, "string"), name, required=name not in _OPTIONAL)
            for name in EVENT_COLUMNS
        ]
    )
    outputs = Schema([ColSpec(kind, name) for name, kind in OUTPUT_COLUMNS.items()])
    return ModelSignature(inputs=inputs, outputs=outputs)


def example_events(events: pd.DataFrame) -> pd.DataFrame:
    """``events`` with timestamps as ISO 8601 UTC strings (the model's input form)."""
    out = events.reindex(columns=list(EVENT_COLUMNS)).reset_index(drop=True).copy()
    for name in ("failed_at", "signup_at"):
        stamps = pd.to_datetime(out[name], utc=True)
        text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        out[name] = text.astype(object).where(stamps.notna(), None)
    return out


def prepare_events(frame: pd.DataFrame) -> pd.DataFrame:
    """Types the decider expects, whatever the caller (or MLflow's schema check) sent."""
    missing = [c for c in EVENT_COLUMNS if c not in frame.columns and c not in _OPTIONAL]
    if missing:
        raise ValueError(f"events are missing column(s): {', '.join(missing)}")
    events = frame.reindex(columns=list(EVENT_COLUMNS)).reset_index(drop=True)
    events = events.astype(object).where(events.notna(), None)
    for name in ("failed_at", "signup_at"):
        events[name] = pd.to_datetime(events[name], utc=True, format="ISO8601")
    for name, kind in _TYPES.items():
        if kind == "long":
            events[name] = events[name].astype("int64")
        elif kind == "boolean":
            events[name] = events[name].astype(bool)
    return events


def _json_lists(frame: pd.DataFrame, event_ids: pd.Series) -> pd.Series:
    """Per event, its rows of ``frame`` (without event_id) as a JSON array."""
    if frame.empty:
        return pd.Series("[]", index=event_ids.index)
    columns = [c for c in frame.columns if c != "event_id"]
    texts = frame.groupby("event_id", sort=False)[columns].apply(
        lambda rows: rows.to_json(orient="records", date_format="iso", date_unit="s")
    )
    return event_ids.map(texts).fillna("[]")


def decisions_frame(decisions: Decisions, model_version: str) -> pd.DataFrame:
    """One row per event, retries/messages/reasons as JSON text (see module docs)."""
    events = decisions.events.reset_index(drop=True)
    out = pd.DataFrame({"event_id": events["event_id"].astype(str), "model_version": model_version})
    for name, kind in OUTPUT_COLUMNS.items():
        if name in out.columns or name not in events.columns:
            continue
        out[name] = events[name].astype(float if kind == "double" else object)
    out["decision_id"] = out["decision_id"].astype(str)
    out["fallback"] = events["fallback"].astype(bool)
    out["reasons"] = events["reasons"].map(lambda reasons: json.dumps(list(reasons)))
    out["retries"] = _json_lists(decisions.retries, out["event_id"])
    out["messages"] = _json_lists(decisions.messages, out["event_id"])
    return out[list(OUTPUT_COLUMNS)]


class DecisionModel(PythonModel):
    """Loads the decision artifact once; ``predict`` decides a frame of failure events.

    ``model_config["label"]`` is reported as ``model_version`` while the artifact
    itself says ``local`` (the registry version is only known after logging).
    """

    def load_context(self, context: Any) -> None:
        from training.artifact.decision_artifact import DecisionArtifact

        self.artifact = DecisionArtifact.load(context.artifacts[ARTIFACT_KEY])
        self.decider = self.artifact.decider()
        version = self.artifact.model_version
        config = context.model_config or {}
        self.version = str(config.get("label", version)) if version == "local" else version

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        events = prepare_events(pd.DataFrame(model_input))
        decisions = self.decider.decide(events, None)
        return decisions_frame(decisions, self.version)
