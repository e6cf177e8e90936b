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
plus the searched schedule's gain over it, shrunk by ``factor`` above ``threshold``
(``ModelDecider.reported_recovery``). Decisions are unchanged: the map from gain to
reported gain is increasing and the same for every candidate.

The threshold: the optimism is not spread over every gain. On the zoo (young_merchant at
10,000 and 20,000 invoices, paydays at 10,000; 3,000 held-out events each, by decile of
the served models' estimated gain), the true gain matched the estimate within 0.02-0.04
on the lower eight deciles, some under-estimated, and fell short only on the one or two
largest (0.57 estimated, 0.50 true; 0.62 / 0.52), where the search found a rare message
worth much. Scaling every gain lowered the small ones, already right or low, further and
pulled the lower deciles of the reported probability 0.04-0.12 below the truth. So only
the part of a gain above the ``from_quantile`` quantile of the gains the halves'
policies promised (measured with the factor, from the same events) is shrunk: the upper
quartile (0.75) by default, where the optimism was measured (the largest one or two
deciles); the median before, which shrank gains of the middle deciles that the models
already value low (``benchmarks/calibration_by_policy.py``, docs/training.md).
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
    threshold: float = 0.0  # only the part of a gain above this is shrunk

    def as_metadata(self) -> dict[str, float | int | str]:
        return asdict(self)


NO_SHRINKAGE = GainShrinkage(1.0, float("nan"), float("nan"), 0, "not fitted")
NO_MESSAGES = GainShrinkage(
    1.0, float("nan"), float("nan"), 0, "no messages: the fixed schedule cannot be valued"
)


def customer_half(customer_ids: np.ndarray | pd.Series, seed: int) -> np.ndarray:
    """Half (0 or 1) of each customer, drawn at random from ``seed`` over the customers in
    the order given: the history's customers table (the cluster path gathers its parts'
    customers in part order, the order the whole history is read in, so the same
    customers fall in each half)."""
    return np.random.default_rng(seed).permutation(len(customer_ids)) % 2


def history_of(history: History, keep: set | np.ndarray) -> History:
    """The rows of ``history`` that belong to the customers in ``keep``."""
    invoices = history.invoices[history.invoices["customer_id"].isin(keep)]
    ids = invoices["invoice_id"]
    return History(
        history.customers[history.customers["customer_id"].isin(keep)],
        invoices,
        history.attempts[history.attempts["invoice_id"].isin(ids)],
        history.messages[history.messages["invoice_id"].isin(ids)],
    )


def customer_halves(history: History, seed: int) -> tuple[History, History]:
    """The history split into two disjoint halves of its customers, drawn at random."""
    customers = history.customers["customer_id"].to_numpy()
    half = customer_half(customers, seed)
    return history_of(history, customers[half == 0]), history_of(history, customers[half == 1])


def shrinkage_factor(promised: float, cross: float) -> float:
    """``1 - (1 - r) / 2`` with ``r = cross / promised``, clipped to [0, 1] (1 when the
    search promised no gain: nothing to shrink)."""
    if not np.isfinite(promised) or promised <= 0:
        return 1.0
    return float(np.clip(1.0 - (1.0 - cross / promised) / 2.0, 0.0, 1.0))


def gain_threshold(promised: np.ndarray, quantile: float) -> float:
    """The gain above which the shrinkage applies: the ``quantile`` of the ``promised``
    gains, never below 0 (0 when ``quantile`` is 0: every gain is shrunk)."""
    if quantile <= 0 or len(promised) == 0:
        return 0.0
    return max(float(np.quantile(promised, quantile)), 0.0)


def in_validation_period(events: pd.DataFrame, split: TimeSplit) -> pd.DataFrame:
    """The failure events of the validation period (never the test period)."""
    at = events["failed_at"]
    return events[(at >= split.valid_start) & (at < split.test_start)]


def sample_positions(total: int, count: int, seed: int) -> np.ndarray:
    """Positions of the at most ``count`` events drawn from ``total`` (those
    ``DataFrame.sample(random_state=seed)`` draws: they depend on the length alone, so
    the cluster path draws the same events from its parts' counts)."""
    return pd.RangeIndex(total).to_series().sample(min(count, total), random_state=seed).to_numpy()


def sorted_events(chosen: pd.DataFrame) -> pd.DataFrame:
    return chosen.sort_values("failed_at", kind="stable").reset_index(drop=True)


def validation_events(history: History, split: TimeSplit, count: int, seed: int) -> pd.DataFrame:
    """At most ``count`` failure events of the validation period (never the test period)."""
    chosen = in_validation_period(events_from_history(history), split)
    return sorted_events(chosen.iloc[sample_positions(len(chosen), count, seed)])


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
        return NO_MESSAGES
    halves = customer_halves(history, params.train.model.seed)
    try:
        models = [
            train_models(
                h, params.train, table, params.retry_rules.update_requests, progress=False
            ).models
            for h in halves
        ]
    except ValueError as error:
        return halves_too_small(error)
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)
    events = validation_events(history, split, settings.events, params.train.model.seed)
    return cross_fitted_shrinkage(models, events, log_, templates, params, table)


def halves_too_small(error: ValueError) -> GainShrinkage:
    return GainShrinkage(1.0, float("nan"), float("nan"), 0, f"halves too small: {error}")


def cross_fitted_shrinkage(
    models: list[TrainedModels],
    events: pd.DataFrame,
    log_: pd.DataFrame,
    templates: list[str],
    params: Params,
    table: DeclineTable,
) -> GainShrinkage:
    """The factor and threshold from the two halves' ``models``: each half's policy
    searches ``events`` (validation-period failures), both halves value the schedules."""
    if any(m.message is None for m in models):
        return GainShrinkage(1.0, float("nan"), float("nan"), 0, "a half has no messages")
    if events.empty:
        return GainShrinkage(1.0, float("nan"), float("nan"), 0, "no validation-period events")
    deciders = [_decider(m, log_, params, table, templates) for m in models]
    promised, cross = [], []
    for k in (0, 1):
        own, other = _gains(deciders[k], [deciders[k], deciders[1 - k]], events)
        promised.append(own)
        cross.append(other)
    own_gains = np.concatenate(promised)
    mean_promised, mean_cross = float(own_gains.mean()), float(np.concatenate(cross).mean())
    result = GainShrinkage(
        shrinkage_factor(mean_promised, mean_cross),
        mean_promised,
        mean_cross,
        len(events),
        threshold=gain_threshold(own_gains, params.train.gain_shrinkage.from_quantile),
    )
    log.info(
        "searched gains: promised %.3f, cross-valued %.3f, factor %.2f above %.3f",
        result.promised_gain,
        result.cross_gain,
        result.factor,
        result.threshold,
    )
    return result
