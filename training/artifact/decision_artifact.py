"""The decision artifact: everything a decision needs, saved and loaded as one.

What is evaluated is what is served: the fitted feature state (the customer event log
and the known customers), the three calibrated models, the retry-rules limits and the
policy's search configuration travel together. The evaluation, ``smartretry recommend``
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
from training.models.fit import TrainedModels

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
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def model_version(self) -> str:
        return str(self.metadata.get("model_version", "local"))

    def decider(self, threads: int = 1):  # -> ModelDecider (import cycle kept out of module level)
        """The learned policy; ``threads``: LightGBM threads for big scoring calls."""
        from training.declines.rules import RetryRules
        from training.declines.table import load_decline_table
        from training.policy.decider import ModelDecider
        from training.policy.scorer import ModelScorer

        table = load_decline_table()
        scorer = ModelScorer(self.models, self.log, table, threads=threads)
        return ModelDecider(
            scorer,
            RetryRules(self.retry_limits, table),
            self.policy,
            self.templates,
            self.model_version,
            description=self.metadata,
        )

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
