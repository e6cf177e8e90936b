"""The decision artifact: everything a decision needs, saved and loaded as one.

What is evaluated is what is served: the fitted feature state (the customer event log
and the known customers), the three calibrated models, the retry-rules limits, the
decline-code table the features and rules read (rows and version, so upgrading the
package never changes what an old model sees) and the policy's search configuration
travel together. The evaluation, ``smartretry recommend``
and the API all load this one object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import pandas as pd

from training.config.policy import PolicyConfig
from training.config.retry_limits import RetryLimits
from training.declines.rules import RetryRules
from training.declines.table import DeclineTable
from training.models.fit import TrainedModels
from training.policy.calendar import category_levels, kind_shifts, measured_slopes
from training.policy.decider import ModelDecider
from training.policy.scorer import ModelScorer

ARTIFACT_FILE = "artifact.joblib"
METADATA_FILE = "metadata.json"


@dataclass
class DecisionArtifact:
    models: TrainedModels
    log: pd.DataFrame
    customers: pd.DataFrame
    templates: list[str]
    policy: PolicyConfig
    retry_limits: RetryLimits
    decline_table_version: str
    decline_rows: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def with_table(
        cls,
        models: TrainedModels,
        log: pd.DataFrame,
        customers: pd.DataFrame,
        templates: list[str],
        policy: PolicyConfig,
        retry_limits: RetryLimits,
        table: DeclineTable,
        metadata: dict[str, Any] | None = None,
    ) -> DecisionArtifact:
        """An artifact that keeps a copy of ``table`` (the one the models were trained with)."""
        return cls(
            models,
            log,
            customers,
            templates,
            policy,
            retry_limits,
            table.version,
            table.rows.copy(),
            dict(metadata or {}),
        )

    @property
    def decline_table(self) -> DeclineTable:
        """The decline table the models were trained with (indexes rebuilt on load)."""
        return DeclineTable(self.decline_table_version, self.decline_rows)

    @property
    def model_version(self) -> str:
        return str(self.metadata.get("model_version", "local"))

    def decider(self, threads: int = 1, compiled: bool = True) -> ModelDecider:
        """The learned policy; ``threads``: threads for big scoring calls; ``compiled``:
        score with the boosters compiled to machine code (training/models/compiled.py;
        LightGBM itself where compiling is impossible)."""
        if compiled:
            self.compile_models()
        table = self.decline_table
        contrast = self.metadata.get("calendar_contrast", {})  # artifacts saved before it
        scorer = ModelScorer(
            self.models, self.log, table, self.retry_limits.update_requests, threads=threads
        )
        moves = kind_shifts(
            contrast.get("shift_days", 0),
            contrast.get("message_shift_hours", ()),
            contrast.get("retry_shift_hours", ()),
        )
        slopes, by_category = measured_slopes(contrast, moves)
        level = self.metadata.get("chosen_level", {})  # artifacts saved before it
        levels = {k: category_levels(level.get(f"{k}_by_family", {})) for k in ("retry", "message")}
        return ModelDecider(
            scorer,
            RetryRules(self.retry_limits, table),
            self.policy,
            self.templates,
            self.model_version,
            description=self.metadata,
            gain_shrinkage=float(self.metadata.get("gain_shrinkage", {}).get("factor", 1.0)),
            gain_threshold=float(self.metadata.get("gain_shrinkage", {}).get("threshold", 0.0)),
            calendar_slopes=slopes,
            calendar_moves=moves,
            calendar_category_slopes=by_category,
            chosen_levels=levels,
        )

    def compile_models(self) -> bool:
        """Compile every model's trees (cached on disk); False if any keeps LightGBM."""
        models = (self.models.retry, self.models.message, self.models.self_cure)
        return all([model.compile_trees() for model in models if model is not None])

    def save(self, folder: Path | str) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, folder / ARTIFACT_FILE, compress=3)
        (folder / METADATA_FILE).write_text(json.dumps(self.metadata, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, path: Path | str) -> DecisionArtifact:
        path = Path(path)
        file = path / ARTIFACT_FILE if path.is_dir() else path
        if not file.exists():
            raise FileNotFoundError(f"no decision artifact at {file}")
        artifact = joblib.load(file)
        if not isinstance(artifact, cls):
            raise TypeError(f"{file} does not hold a smartretry decision artifact")
        return artifact
