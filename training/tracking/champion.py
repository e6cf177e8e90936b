"""The champion rule: a new model takes the ``champion`` alias only if it is not worse.

Both the new models and the current champion's are scored on the *new* run's test
period (the latest invoices of the history just trained on): the score is the mean test
log loss of the retry and message models (those both have: a model trained
without messages has no message model), lower is better. Ties go to the new model,
which has seen the more recent data. The first model ever registered becomes champion.

Caveat, documented in docs/training.md: if the champion was trained on a history that
reaches into the new test period, its score there is optimistic, so it is harder to
replace (the safe direction).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from training.models.fit import TrainedModels, TrainResult
from training.models.metrics import binary_metrics

COMPARED_MODELS: tuple[str, ...] = ("retry", "message")


def test_log_losses(
    models: TrainedModels, result: TrainResult, names: tuple[str, ...] = COMPARED_MODELS
) -> dict[str, float]:
    """Log loss of ``models`` on ``result``'s test rows, per model of ``names`` both the
    new run and ``models`` have (no message model when a history logs no messages)."""
    losses: dict[str, float] = {}
    for name in names:
        dataset = getattr(result.data, name)
        test = result.split.assign(dataset.due_at) == "test"
        model = getattr(models, name)
        if model is None or getattr(result.models, name) is None:
            continue
        p = model.predict(dataset.features[test])
        losses[name] = binary_metrics(dataset.label[test], p, model.base_rate)["log_loss"]
    return losses


@dataclass
class ChampionComparison:
    new_version: str
    champion_version: str | None
    new: dict[str, float]
    champion: dict[str, float] = field(default_factory=dict)

    @property
    def new_score(self) -> float:
        return float(np.mean(list(self.new.values())))

    @property
    def champion_score(self) -> float | None:
        return float(np.mean(list(self.champion.values()))) if self.champion else None

    @property
    def promote(self) -> bool:
        return self.champion_score is None or self.new_score <= self.champion_score

    def summary(self) -> str:
        if self.champion_version is None:
            return f"no champion yet: version {self.new_version} becomes champion"
        verdict = "becomes champion" if self.promote else "does not beat it; champion stays"
        return (
            f"champion check on the new test period (mean log loss of retry and message, "
            f"lower wins): new version {self.new_version} {self.new_score:.5f} vs champion "
            f"version {self.champion_version} {self.champion_score:.5f}: new version {verdict}"
        )

    def metrics(self) -> dict[str, float]:
        out = {f"champion_check.new.{k}": v for k, v in self.new.items()}
        out["champion_check.new_score"] = self.new_score
        out.update({f"champion_check.champion.{k}": v for k, v in self.champion.items()})
        if self.champion_score is not None:
            out["champion_check.champion_score"] = self.champion_score
        return out

    def tags(self) -> dict[str, str]:
        return {
            "champion_check.previous_version": self.champion_version or "none",
            "champion_check.promoted": str(self.promote).lower(),
            "champion_check.summary": self.summary(),
        }


def compare_with_champion(
    result: TrainResult,
    new_version: str,
    champion: TrainedModels | None,
    champion_version: str | None,
) -> ChampionComparison:
    """Score the new models and (if any) the champion's on the new test period, over the
    models both have (a model trained without messages has no message model)."""
    names = tuple(
        name for name in COMPARED_MODELS if champion is None or getattr(champion, name) is not None
    )
    comparison = ChampionComparison(
        new_version, champion_version, test_log_losses(result.models, result, names)
    )
    if champion is not None:
        comparison.champion = test_log_losses(champion, result, names)
    return comparison
