"""How much steeper the calendar's effect on an attempt is than the models say.

The boosters are small and regularised, and their calendar inputs (day of month, weekday,
distance to the customer's payday, local hour) act through a few shallow splits: the
estimated probability of an attempt moves with its time less than the outcome does. On
the logged rows that average out (the models are calibrated on them), but the policy
*chooses* the dates its models rate best, so along the chosen schedule the probabilities
sit below the outcome (issue 13: the reported probability 0.03-0.07 below the truth,
the retries of insufficient-funds declines carrying most of it,
``benchmarks/calibration_decomposition.py``).

The steepness is measured on the team's own logged rows of the validation period. Each
row's *contrast* is its estimated log-odds minus the mean log-odds of the same row moved
in time, its dunning state (hours since the failure, the attempts and messages before
it) unchanged so that only its calendar inputs move: a retry by each of ``shift_days``
days either way (its date) and by each of ``retry_shift_hours`` either way (its local
hour: where declines clear within hours, the hour is what the search weighs), a message
by each of ``message_shift_hours`` either way (its local hour) -- the choices each search weighs (training/policy/calendar.py). A
row's contrast has two parts: against its whole-day moves (its date) and against its hour
moves (training/policy/calendar.py, ``contrast_parts``); a message has the hour part
only. Then, per model (retry, message),

    logit P(outcome) = a + logit p + c_date * contrast_date + c_hour * contrast_hour

is fitted by maximum likelihood (``logit p`` a fixed offset; a part that does not vary,
such as a message's date part, is left out). The parts' slopes (floored at 0) are applied
(with ``train.calendar_contrast.pooled_gate`` only where one slope of the contrast
against all the moves lies more than one standard error above 0, :func:`fit_kind`; off
by default since h80): the pooled fit says whether the calendar is steeper than the
models, the parts how that splits between the date and the hour (on paydays the date
carries it, 2.1 ± 0.9 against 0.15 ± 0.31 for the hour, and one slope for both moves
was diluted to 1.3; on fast_clearing the hour, offline at 10,000 invoices,
docs/evaluation.md), then once more per decline
family (its own ``a``) where the family has ``min_family_rows`` rows: a family whose
fit lies below the pooled ``c`` by more than one standard error gets the pooled ``c``
minus that excess (soft thresholding), floored at 0; the others keep the pooled ``c``.
Lowering only: the decomposition showed the pooled ``c`` over-valuing the chosen rows of
some families (messages after soft issuer declines on paydays and fast_clearing), and a
family raised above the pool over-valued its rows on strict_logging (hard declines'
messages), offline at 10,000 invoices. ``c = 0`` when the models
get the calendar's effect right; ``c > 0`` when the outcome moves more with the time
than they say. The times the logs hold vary from customer to customer (a fixed day-3
retry falls on a payday for some and not for others; a message at the failure's hour is
near the active hour of some) and by the team's exploration, so the contrast varies
without the customer choosing it.

It corrects the *reported* probability of a decision only: each row of the chosen and
of the fixed schedule gets ``sigmoid(logit p + c * contrast)`` before their values are
combined (``ModelDecider.reported_recovery``); the search and its decisions use the
models' own probabilities.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from training.artifact.gain_shrinkage import validation_events
from training.config.params import Params
from training.contract.history import History
from training.core.localtime import to_ns
from training.core.probability import logit
from training.declines.table import DeclineTable, family_of
from training.features.dunning_state import state_of_rows
from training.models.datasets import history_timeline
from training.models.fit import TrainedModels
from training.models.matrix import EventMatrix, as_event_matrix
from training.models.split import TimeSplit
from training.policy.calendar import date_moves, kind_shifts, row_contrasts
from training.policy.scorer import ModelScorer

log = logging.getLogger(__name__)
KINDS = ("retry", "message")


@dataclass(frozen=True)
class CalendarContrast:
    """The steepness per model (``retry``, ``message``: the ``c`` applied, see
    :func:`applied`), the fits and their standard errors, and the shift in days (artifact
    metadata)."""

    retry: float = 0.0
    message: float = 0.0
    shift_days: tuple[int, ...] = ()
    message_shift_hours: tuple[float, ...] = ()
    rows: int = 0
    retry_fit: float = 0.0
    retry_se: float = float("nan")
    message_fit: float = 0.0
    message_se: float = float("nan")
    note: str = ""
    retry_shift_hours: tuple[float, ...] = ()
    retry_by_family: dict[str, float] = field(default_factory=dict)
    message_by_family: dict[str, float] = field(default_factory=dict)
    # a retry's slope of its hour moves (``retry``: of its date moves); an artifact
    # without the key has one slope for both (training/artifact/decision_artifact.py)
    retry_hour: float = 0.0
    retry_date_fit: float = 0.0
    retry_date_se: float = float("nan")
    retry_hour_fit: float = 0.0
    retry_hour_se: float = float("nan")
    retry_hour_by_family: dict[str, float] = field(default_factory=dict)

    def slopes(self) -> dict[str, float | tuple[float, float]]:
        """Per kind, the (date, hour) slopes or one slope for both parts."""
        return {"retry": (self.retry, self.retry_hour), "message": self.message}

    def family_slopes(self) -> dict[str, dict[str, float | tuple[float, float]]]:
        retry: dict[str, float | tuple[float, float]] = {
            name: (c, self.retry_hour_by_family.get(name, self.retry_hour))
            for name, c in self.retry_by_family.items()
        }
        return {"retry": retry, "message": dict(self.message_by_family)}

    def as_metadata(self) -> dict[str, float | int | str]:
        return asdict(self)


NO_CONTRAST = CalendarContrast(note="not fitted")


def fit_slope(label: np.ndarray, offset: np.ndarray, contrast: np.ndarray) -> tuple[float, float]:
    """``c`` of ``logit P(label) = a + offset + c * contrast`` by Newton's method, and its
    standard error (a tiny ridge keeps both finite when the contrast does not vary)."""
    fit, se = fit_slopes(label, offset, np.asarray(contrast, dtype=float)[:, None])
    return float(fit[0]), float(se[0])


def fit_slopes(
    label: np.ndarray, offset: np.ndarray, contrast: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The ``c`` of each column of ``contrast`` (rows x parts) in one fit of
    ``logit P(label) = a + offset + sum_j c_j * contrast_j`` by Newton's method, and their
    standard errors (a tiny ridge keeps both finite when a contrast does not vary)."""
    design = np.column_stack([np.ones(len(label)), contrast])
    size = design.shape[1]
    beta = np.zeros(size)
    hessian = np.eye(size)
    for _ in range(50):
        mu = 1.0 / (1.0 + np.exp(-(offset + design @ beta)))
        hessian = design.T @ (design * (mu * (1 - mu))[:, None]) + 1e-6 * np.eye(size)
        step = np.linalg.solve(hessian, design.T @ (label - mu))
        beta += step
        if np.abs(step).max() < 1e-8:
            break
    return beta[1:], np.sqrt(np.diag(np.linalg.inv(hessian))[1:])


def fit_parts(
    label: np.ndarray, offset: np.ndarray, contrast: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fit_slopes` of the parts of ``contrast`` (rows x 2) that vary; a part that
    does not (a message's date part) gets fit 0 and standard error NaN (never applied)."""
    fit, se = np.zeros(contrast.shape[1]), np.full(contrast.shape[1], np.nan)
    varies = np.flatnonzero((contrast != 0).any(axis=0))
    if len(varies):
        fit[varies], se[varies] = fit_slopes(label, offset, contrast[:, varies])
    return fit, se


def applied(fit: float, se: float) -> float:
    """The ``c`` applied: the fit where it lies more than one standard error above 0,
    else 0 (a calendar the models over-state, or one the logs cannot tell, is left as
    the models have it)."""
    return fit if np.isfinite(se) and fit > se else 0.0


def part_shares(shift: np.ndarray) -> np.ndarray:
    """The shares of whole-day and of other moves among a kind's ``shift``: the weights
    that make the two parts of a contrast its contrast against all the moves."""
    by_day = date_moves(shift)
    return np.array([by_day.mean(), (~by_day).mean()]) if len(shift) else np.zeros(2)


@dataclass(frozen=True)
class KindFit:
    """One model's fit: the slope of its contrast against all its moves (whether the
    calendar is steeper than the models say at all), the parts' own fits, and the
    slopes applied per part."""

    pooled_fit: float = 0.0
    pooled_se: float = float("nan")
    fit: np.ndarray = field(default_factory=lambda: np.zeros(2))
    se: np.ndarray = field(default_factory=lambda: np.full(2, np.nan))
    slopes: np.ndarray = field(default_factory=lambda: np.zeros(2))


def fit_kind(
    label: np.ndarray,
    offset: np.ndarray,
    contrast: np.ndarray,
    shares: np.ndarray,
    gate: bool = True,
) -> KindFit:
    """The parts' slopes applied: each part's fit (floored at 0) where the contrast
    against all the moves (the parts weighted by ``shares``) has a fit more than one
    standard error above 0 (:func:`applied`), else none. The pooled fit decides whether
    the logs show a calendar steeper than the models; the parts' fit how it splits
    between the date and the hour (gating each part on its own noise lost the date part
    of fast_clearing, 0.66 ± 0.76, offline). Without ``gate`` each part's fit floored at
    0 is applied whatever the pooled fit (h80: the gate set every slope to 0 whenever the
    validation period's pooled fit fell within its noise, and along the chosen schedules
    the models are low far more often than high, so the reported probability went with
    it: other_team at seed 8, 0.038 by decile, against 0.029 without it)."""
    pooled_fit, pooled_se = fit_slope(label, offset, contrast @ shares)
    fit, se = fit_parts(label, offset, contrast)
    apply = applied(pooled_fit, pooled_se) > 0 or not gate
    slopes = np.where(np.isfinite(se) & apply, np.maximum(fit, 0.0), 0.0)
    return KindFit(pooled_fit, pooled_se, fit, se, slopes)


def family_slopes(
    label: np.ndarray,
    offset: np.ndarray,
    contrast: np.ndarray,
    family: np.ndarray,
    pooled: float,
    min_rows: int,
) -> dict[str, float]:
    """Per decline family with ``min_rows`` rows and both outcomes: ``pooled`` lowered by
    the part of the family's fitted shortfall below it beyond one standard error (soft
    thresholding, floored at 0); never raised. The families left out keep ``pooled``."""
    parts = family_part_slopes(
        label,
        offset,
        np.asarray(contrast, dtype=float)[:, None],
        family,
        np.array([pooled]),
        min_rows,
    )
    return {name: float(c[0]) for name, c in parts.items()}


def family_part_slopes(
    label: np.ndarray,
    offset: np.ndarray,
    contrast: np.ndarray,
    family: np.ndarray,
    pooled: np.ndarray,
    min_rows: int,
    raise_: bool = False,
    raise_at_most: float | None = None,
) -> dict[str, np.ndarray]:
    """:func:`family_slopes` of each part of ``contrast`` (rows x parts; ``pooled``: the
    slope applied per part), the parts fitted together per family. ``raise_``: a part
    whose pooled slope is applied (> 0) also rises by the family's excess above it beyond
    one standard error (a part the pooled fit leaves at 0 is never raised), to at most
    ``raise_at_most`` times the pooled slope (None: unbounded): a family of few rows whose
    fit runs away (h77: 20.3 on fatigue) cannot take its rows' log-odds with it."""
    slopes: dict[str, np.ndarray] = {}
    for name in np.unique(family):
        rows = family == name
        if rows.sum() < min_rows or not 0 < label[rows].sum() < rows.sum():
            continue
        fit, se = fit_parts(label[rows], offset[rows], contrast[rows])
        known = np.isfinite(se)
        shortfall = np.where(known, np.maximum(pooled - fit - se, 0.0), 0.0)
        slopes[str(name)] = np.maximum(pooled - shortfall, 0.0)
        if raise_:
            excess = np.where(known & (pooled > 0), np.maximum(fit - se - pooled, 0.0), 0.0)
            if raise_at_most is not None:
                excess = np.minimum(excess, max(raise_at_most - 1.0, 0.0) * pooled)
            slopes[str(name)] = slopes[str(name)] + excess
    return slopes


def measure_calendar_contrast(
    history: History, models: TrainedModels, log_: pd.DataFrame, params: Params, table: DeclineTable
) -> CalendarContrast:
    """:func:`fit_calendar_contrast` of the served ``models`` on the logged attempts of
    ``train.calendar_contrast.events`` validation-period failures."""
    settings = params.train.calendar_contrast
    if not settings.shift_days or settings.events == 0:
        return NO_CONTRAST
    scorer = ModelScorer(models, log_, table, params.retry_rules.update_requests)
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)
    events = validation_events(history, split, settings.events, params.train.model.seed)
    return fit_calendar_contrast(scorer, history, events, params)


def fit_calendar_contrast(
    scorer: ModelScorer, history: History, events: pd.DataFrame, params: Params
) -> CalendarContrast:
    """The steepness per model from the logged attempts of ``events`` (validation-period
    failures, :func:`~training.artifact.gain_shrinkage.validation_events`)."""
    days = tuple(params.train.calendar_contrast.shift_days)
    hours = tuple(params.train.calendar_contrast.message_shift_hours)
    retry_hours = tuple(params.train.calendar_contrast.retry_shift_hours)
    if not days or events.empty:
        return NO_CONTRAST
    timeline = events_timeline(history, events, with_messages=scorer.models.message is not None)
    ns = to_ns(timeline["t"])
    kind = timeline["kind"].to_numpy()
    wanted, state = state_of_rows(
        timeline["key"].to_numpy(),
        ns,
        kind,
        timeline["template"].to_numpy(dtype=object),
        timeline["candidate"].to_numpy(dtype=bool),
        params.retry_rules.update_requests,
    )
    rows = (
        scorer.event_features(events, None),
        timeline["event_id"].to_numpy()[wanted],
        ns[wanted],
        kind[wanted],
        timeline["template"].to_numpy(dtype=object)[wanted],
        timeline["channel"].to_numpy(dtype=object)[wanted],
        state,
    )
    p = scorer.row_probabilities(*rows)
    contrast = row_contrasts(scorer, *rows, kind_shifts(days, hours, retry_hours), p)
    label = timeline["label"].to_numpy(dtype=float)[wanted]
    family = row_families(rows[0], rows[1])
    min_rows = params.train.calendar_contrast.min_family_rows
    moves = kind_shifts(days, hours, retry_hours)
    fits: dict[str, KindFit] = {}
    by_family: dict[str, dict[str, np.ndarray]] = {}
    for name in KINDS:
        rows = kind[wanted] == name
        varied = 0 < label[rows].sum() < rows.sum()
        fits[name] = (
            fit_kind(
                label[rows],
                logit(p[rows]),
                contrast[rows],
                part_shares(moves[name]),
                params.train.calendar_contrast.pooled_gate,
            )
            if varied
            else KindFit()
        )
        by_family[name] = (
            family_part_slopes(
                label[rows],
                logit(p[rows]),
                contrast[rows],
                family[rows],
                fits[name].slopes,
                min_rows,
                raise_=name == "retry" and params.train.calendar_contrast.raise_retry_families,
                raise_at_most=params.train.calendar_contrast.raise_retry_at_most,
            )
            if varied and min_rows > 0
            else {}
        )
    retry, message = fits["retry"], fits["message"]
    result = CalendarContrast(
        float(retry.slopes[0]),
        float(message.slopes[1]),
        days,
        hours,
        int(len(wanted)),
        retry.pooled_fit,
        retry.pooled_se,
        message.pooled_fit,
        message.pooled_se,
        retry_shift_hours=retry_hours,
        retry_by_family={f: float(c[0]) for f, c in by_family["retry"].items()},
        message_by_family={f: float(c[1]) for f, c in by_family["message"].items()},
        retry_hour=float(retry.slopes[1]),
        retry_date_fit=float(retry.fit[0]),
        retry_date_se=float(retry.se[0]),
        retry_hour_fit=float(retry.fit[1]),
        retry_hour_se=float(retry.se[1]),
        retry_hour_by_family={f: float(c[1]) for f, c in by_family["retry"].items()},
    )
    log.info(
        "calendar contrast: retry %.2f %s, retry hour %.2f %s, message %.2f %s",
        result.retry,
        result.retry_by_family,
        result.retry_hour,
        result.retry_hour_by_family,
        result.message,
        result.message_by_family,
    )
    return result


def events_timeline(history: History, events: pd.DataFrame, with_messages: bool) -> pd.DataFrame:
    """The logged attempts (and messages, when a message model scores them) of
    ``events``' invoices, in the history's timeline order."""
    timeline = history_timeline(history)
    timeline = timeline[timeline["key"].isin(set(events["event_id"]))].reset_index(drop=True)
    if not with_messages:
        timeline = timeline[timeline["kind"] != "message"].reset_index(drop=True)
    return timeline


def row_families(features: pd.DataFrame | EventMatrix, event_ids: np.ndarray) -> np.ndarray:
    """The decline family of each row's event (``event_ids``: the rows' events)."""
    matrix = as_event_matrix(features)
    categories = matrix.column("inv_decline_category")[matrix.positions(event_ids)]
    return family_of(pd.Series(categories)).to_numpy(dtype=object)
