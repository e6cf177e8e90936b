"""How much of the searched schedules' expected gain over the fixed schedule to believe.

The policy searches many candidate schedules and keeps the one its models value most, so
the kept one is, on average, one whose value the models over-estimate (the winner's
curse): on the world zoo the fixed schedule is valued within 0.02 of the truth while the
searched schedules' gain over it was over-estimated by up to two times (strict_logging:
0.137 promised, 0.069 delivered).

The size of that optimism is measured from the data alone by cross-fitting: the models
are trained again on two disjoint halves of the customers; each half's policy chooses
schedules for events of the validation period, and both halves value them against the
fixed schedule. The other half's models share none of the chooser's estimation noise,
so the ratio ``r`` of the gain they see to the gain the chooser promised measures the
half-size models' optimism ``1 - r``. The models served are trained on twice the data,
whose estimation noise has half the variance, and the optimism of a maximum grows with
that variance: the served models' gains are shrunk by half the halves' optimism,

    factor = 1 - (1 - r) / 2   (clipped to [0, 1]),

and the probability the product reports for a decision is the fixed schedule's value
plus ``factor`` times the searched schedule's gain over it (``ModelDecider``). Decisions
are unchanged: the factor scales every event's gain alike.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from training.config.params import Params
from training.contract.history import History
from training.declines.rules import RetryRules
from training.declines.table import DeclineTable
from training.features.invoice import events_from_history
from training.models.fit import TrainedModels, train_models
from training.models.split import TimeSplit
from training.policy.baselines import fixed_schedule
from training.policy.decider import ModelDecider
from training.policy.scorer import ModelScorer, past_rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GainShrinkage:
    """The fitted factor and what it was measured from (kept in the artifact's metadata)."""

    factor: float
    promised_gain: float  # mean gain over the fixed schedule, valued by the chooser
    cross_gain: float  # the same schedules' gain, valued by the other half's models
    events: int
    note: str = ""

    def as_metadata(self) -> dict[str, float | int | str]:
        return asdict(self)


NO_SHRINKAGE = GainShrinkage(1.0, float("nan"), float("nan"), 0, "not fitted")


def customer_halves(history: History, seed: int) -> tuple[History, History]:
    """The history split into two disjoint halves of its customers, drawn at random."""
    customers = history.customers["customer_id"].to_numpy()
    half = np.random.default_rng(seed).permutation(len(customers)) % 2
    parts = []
    for k in (0, 1):
        keep = set(customers[half == k])
        invoices = history.invoices[history.invoices["customer_id"].isin(keep)]
        ids = invoices["invoice_id"]
        parts.append(
            History(
                history.customers[history.customers["customer_id"].isin(keep)],
                invoices,
                history.attempts[history.attempts["invoice_id"].isin(ids)],
                history.messages[history.messages["invoice_id"].isin(ids)],
            )
        )
    return parts[0], parts[1]


def shrinkage_factor(promised: float, cross: float) -> float:
    """``1 - (1 - r) / 2`` with ``r = cross / promised``, clipped to [0, 1] (1 when the
    search promised no gain: nothing to shrink)."""
    if not np.isfinite(promised) or promised <= 0:
        return 1.0
    return float(np.clip(1.0 - (1.0 - cross / promised) / 2.0, 0.0, 1.0))


def validation_events(history: History, split: TimeSplit, count: int, seed: int) -> pd.DataFrame:
    """At most ``count`` failure events of the validation period (never the test period)."""
    events = events_from_history(history)
    chosen = events[
        (events["failed_at"] >= split.valid_start) & (events["failed_at"] < split.test_start)
    ]
    chosen = chosen.sample(min(count, len(chosen)), random_state=seed)
    return chosen.sort_values("failed_at", kind="stable").reset_index(drop=True)


def _decider(
    models: TrainedModels,
    log_: pd.DataFrame,
    params: Params,
    table: DeclineTable,
    templates: list[str],
) -> ModelDecider:
    scorer = ModelScorer(models, log_, table, params.retry_rules.update_requests)
    config = params.policy.model_copy(update={"exploration_rate": 0.0})
    return ModelDecider(scorer, RetryRules(params.retry_rules, table), config, templates, "half")


def _gains(
    chooser: ModelDecider, valuers: list[ModelDecider], events: pd.DataFrame
) -> list[np.ndarray]:
    """Per valuer: each event's value of ``chooser``'s schedule minus the fixed schedule's."""
    past = past_rows(events, None)
    decisions = chooser.rules.decide_many(events, None).reset_index(drop=True)
    plan = chooser.plan(events, None, explore=False, past=past, decisions=decisions)
    config = chooser.config
    fixed = fixed_schedule(
        events, None, chooser.rules, config.baseline, decisions, quiet_hours=config.quiet_hours
    )
    gains = []
    for valuer in valuers:
        features = valuer.scorer.event_features(events, None)
        scored = valuer.score_schedules(
            events, features, past, [(plan.retries, plan.messages), (fixed.retries, fixed.messages)]
        )
        gains.append(scored[0][0] - scored[1][0])
    return gains


def fit_gain_shrinkage(
    history: History,
    log_: pd.DataFrame,
    templates: list[str],
    params: Params,
    table: DeclineTable,
) -> GainShrinkage:
    """The shrinkage factor of the searched gains, by cross-fitting on customer halves."""
    settings = params.train.gain_shrinkage
    if settings.events == 0:
        return NO_SHRINKAGE
    if len(history.messages) == 0:
        return GainShrinkage(
            1.0, float("nan"), float("nan"), 0, "no messages: the fixed schedule cannot be valued"
        )
    halves = customer_halves(history, params.train.model.seed)
    try:
        models = [
            train_models(
                h, params.train, table, params.retry_rules.update_requests, progress=False
            ).models
            for h in halves
        ]
    except ValueError as error:
        return GainShrinkage(1.0, float("nan"), float("nan"), 0, f"halves too small: {error}")
    if any(m.message is None for m in models):
        return GainShrinkage(1.0, float("nan"), float("nan"), 0, "a half has no messages")
    deciders = [_decider(m, log_, params, table, templates) for m in models]
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)
    events = validation_events(history, split, settings.events, params.train.model.seed)
    if events.empty:
        return GainShrinkage(1.0, float("nan"), float("nan"), 0, "no validation-period events")
    promised, cross = 0.0, 0.0
    for k in (0, 1):
        own, other = _gains(deciders[k], [deciders[k], deciders[1 - k]], events)
        promised += float(own.sum())
        cross += float(other.sum())
    n = 2 * len(events)
    result = GainShrinkage(
        shrinkage_factor(promised, cross), promised / max(n, 1), cross / max(n, 1), len(events)
    )
    log.info(
        "searched gains: promised %.3f, cross-valued %.3f, factor %.2f",
        result.promised_gain,
        result.cross_gain,
        result.factor,
    )
    return result
