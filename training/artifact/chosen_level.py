"""How far off the models are where the search chooses, per decline family (issue 13).

The search keeps, for each event, the retries and messages its models rate best, so the
rows it chooses are those the models over-rate (a rare template the models value high)
or, where the models rate a time's effect too flat, under-rate (paydays' insufficient
funds, whose chosen retries sit below the outcome even after the calendar contrast,
training/artifact/calendar_contrast.py). On the logged rows as a whole the models are
calibrated; on the rows the search would choose they need not be.

The team's logs hold rows the search would choose: on the validation period, the served
policy plans each event again, and a logged row *coincides* with the plan where it has the
same kind, the same rank among its kind (and, for a message, the same template) and lies
within ``window_hours`` of a planned row of the same event. Those logged rows carry the
models' error at the chosen places, and their outcomes are the logging policy's, drawn
without regard to the models. Per model and decline family,

    logit P(outcome) = a + logit q

is fitted on the coinciding rows by maximum likelihood (``q``: the row's probability with
its calendar contrast, as the reported probability values it), ``a`` is soft thresholded
by ``threshold_se`` standard errors (``sign(a) max(|a| - k se, 0)``; k = 0 by default
since h86: along the chosen schedules the models are low far more often than high, and
one standard error off set most fits to 0 on every world), and applied where it is above
0 (``lower``: below as well; off by default, since the gain shrinkage,
training/artifact/gain_shrinkage.py, already takes the search's optimism off the searched
gains, and a negative level on the default world took its calibration 0.023 -> 0.028
through the zoo). The reported probability then adds ``a`` to the log-odds of each row
of the *searched* schedule (``ModelDecider.steepened_values``); the fixed schedule is the
logs' own and stays as it is, and the search and its decisions never see it. Retries
only by default (``kinds``: a message level over-valued strict_logging's soft-issuer
messages offline).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from training.artifact.calendar_contrast import events_timeline, row_families
from training.artifact.decision_artifact import DecisionArtifact
from training.artifact.gain_shrinkage import validation_events
from training.config.params import Params
from training.contract.history import History
from training.core.localtime import HOUR_NS, to_ns
from training.core.probability import logit
from training.features.dunning_state import state_of_rows
from training.models.split import TimeSplit
from training.policy.decider import ModelDecider
from training.policy.schedule_rows import MessageRows, RetryRows
from training.policy.scorer import past_rows

log = logging.getLogger(__name__)
KINDS = ("retry", "message")


@dataclass(frozen=True)
class ChosenLevel:
    """The log-odds level applied per kind and decline family, the fits and their
    standard errors and row counts (artifact metadata)."""

    retry_by_family: dict[str, float] = field(default_factory=dict)
    message_by_family: dict[str, float] = field(default_factory=dict)
    fits: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    events: int = 0
    note: str = ""

    def by_family(self) -> dict[str, dict[str, float]]:
        return {"retry": dict(self.retry_by_family), "message": dict(self.message_by_family)}

    def as_metadata(self) -> dict:
        return asdict(self)


NO_LEVEL = ChosenLevel(note="not fitted")


def kind_ranks(event: np.ndarray, ns: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Each row's rank (1, 2, ...) among its event's rows of its kind, in time order."""
    frame = pd.DataFrame({"event": event, "ns": ns, "kind": kind})
    order = frame.sort_values(["event", "kind", "ns"], kind="stable").index
    ranks = np.empty(len(frame), dtype=np.int64)
    ranks[order] = frame.loc[order].groupby(["event", "kind"]).cumcount().to_numpy() + 1
    return ranks


def coinciding(
    logged: pd.DataFrame, chosen: pd.DataFrame, window_hours: dict[str, float]
) -> np.ndarray:
    """Which rows of ``logged`` coincide with a row of ``chosen`` (both: ``event``,
    ``kind``, ``rank``, ``template`` (None for a retry), ``ns``): the same event, kind,
    rank among the kind and template, within the kind's ``window_hours``."""
    keys = ["event", "kind", "rank", "template"]
    left = logged[[*keys, "ns"]].assign(row=np.arange(len(logged)))
    left["template"] = left["template"].fillna("")
    right = chosen[[*keys, "ns"]].rename(columns={"ns": "chosen_ns"})
    right["template"] = right["template"].fillna("")
    pairs = left.merge(right, on=keys, how="inner")
    window = pairs["kind"].map(window_hours).fillna(0.0).to_numpy() * HOUR_NS
    near = np.abs(pairs["ns"].to_numpy() - pairs["chosen_ns"].to_numpy()) <= window
    out = np.zeros(len(logged), dtype=bool)
    out[pairs["row"].to_numpy()[near]] = True
    return out


def fit_level(label: np.ndarray, offset: np.ndarray) -> tuple[float, float]:
    """``a`` of ``logit P(label) = a + offset`` by Newton's method, and its standard error."""
    a, information = 0.0, 1.0
    for _ in range(50):
        mu = 1.0 / (1.0 + np.exp(-(offset + a)))
        information = float((mu * (1 - mu)).sum()) + 1e-9
        step = float((label - mu).sum()) / information
        a += step
        if abs(step) < 1e-9:
            break
    return a, float(np.sqrt(1.0 / information))


def soft_threshold(a: float, se: float) -> float:
    """``a`` moved towards 0 by its standard error, 0 if it crosses."""
    return float(np.sign(a) * max(abs(a) - se, 0.0)) if np.isfinite(se) else 0.0


def family_levels(
    label: np.ndarray,
    q: np.ndarray,
    kind: np.ndarray,
    family: np.ndarray,
    matched: np.ndarray,
    min_rows: int,
    kinds: tuple[str, ...] = KINDS,
    lower: bool = True,
    threshold_se: float = 1.0,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, list[float]]]]:
    """Per kind of ``kinds`` and decline family with ``min_rows`` coinciding rows and both
    outcomes: the level soft-thresholded by ``threshold_se`` standard errors (applied; one
    below 0 only with ``lower``) and the fit (level, standard error, rows)."""
    applied: dict[str, dict[str, float]] = {name: {} for name in KINDS}
    fits: dict[str, dict[str, list[float]]] = {name: {} for name in KINDS}
    offset = logit(q)
    for name in kinds:
        for fam in np.unique(family[(kind == name) & matched]):
            rows = (kind == name) & matched & (family == fam)
            if rows.sum() < min_rows or not 0 < label[rows].sum() < rows.sum():
                continue
            a, se = fit_level(label[rows], offset[rows])
            fits[name][str(fam)] = [a, se, float(rows.sum())]
            level = soft_threshold(a, threshold_se * se)
            if level > 0.0 or (level < 0.0 and lower):
                applied[name][str(fam)] = level
    return applied, fits


def chosen_frame(retries: RetryRows, messages: MessageRows) -> pd.DataFrame:
    """A plan's retries and messages as rows (``event``, ``ns``, ``kind``, ``template``)
    with their rank among their kind."""
    frame = pd.concat(
        [
            pd.DataFrame({"event": retries.event_id, "ns": retries.at, "kind": "retry"}).assign(
                template=None
            ),
            pd.DataFrame(
                {
                    "event": messages.event_id,
                    "ns": messages.send_at,
                    "kind": "message",
                    "template": messages.template,
                }
            ),
        ],
        ignore_index=True,
    )
    frame["rank"] = kind_ranks(
        frame["event"].to_numpy(), frame["ns"].to_numpy(), frame["kind"].to_numpy()
    )
    return frame


def level_events(history: History, params: Params) -> pd.DataFrame:
    """The validation-period failures the level is fitted on: the calendar contrast's
    (``train.calendar_contrast.events`` of them); none when the level is off."""
    if not params.train.chosen_level.enabled:
        return pd.DataFrame()
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params.train)
    count = params.train.calendar_contrast.events
    return validation_events(history, split, count, params.train.model.seed)


def measure_chosen_level(
    artifact: DecisionArtifact, history: History, events: pd.DataFrame, params: Params
) -> ChosenLevel:
    """:func:`fit_chosen_level` of ``artifact``'s policy (its calendar contrast included)
    on ``events`` (:func:`level_events`) and their logged rows in ``history``."""
    if not params.train.chosen_level.enabled:
        return NO_LEVEL
    if events.empty:
        return ChosenLevel(note="no validation-period events")
    return fit_chosen_level(artifact.decider(compiled=False), history, events, params)


def fit_chosen_level(
    decider: ModelDecider, history: History, events: pd.DataFrame, params: Params
) -> ChosenLevel:
    """The levels per kind and decline family from the logged rows of ``events`` that
    coincide with the plan ``decider`` makes for them (module docs)."""
    settings = params.train.chosen_level
    scorer = decider.scorer
    timeline = events_timeline(history, events, with_messages=scorer.models.message is not None)
    ns = to_ns(timeline["t"])
    kind = timeline["kind"].to_numpy()
    template = timeline["template"].to_numpy(dtype=object)
    wanted, state = state_of_rows(
        timeline["key"].to_numpy(),
        ns,
        kind,
        template,
        timeline["candidate"].to_numpy(dtype=bool),
        params.retry_rules.update_requests,
    )
    features = scorer.event_features(events, None)
    event = timeline["event_id"].to_numpy()[wanted]
    rows = (
        features,
        event,
        ns[wanted],
        kind[wanted],
        template[wanted],
        timeline["channel"].to_numpy(dtype=object)[wanted],
        state,
    )
    p = scorer.row_probabilities(*rows)
    q = decider.steepened_rows(*rows, p)
    past = past_rows(events, None)
    decisions = decider.rules.decide_many(events, None).reset_index(drop=True)
    plan = decider.plan(events, None, explore=False, past=past, decisions=decisions)
    chosen = chosen_frame(plan.retries, plan.messages)
    logged = pd.DataFrame(
        {"event": event, "ns": ns[wanted], "kind": kind[wanted], "template": template[wanted]}
    )
    logged.loc[logged["kind"] == "retry", "template"] = None
    logged["rank"] = kind_ranks(event, ns[wanted], kind[wanted])
    windows = {"retry": settings.retry_window_hours, "message": settings.message_window_hours}
    matched = coinciding(logged, chosen, windows)
    label = timeline["label"].to_numpy(dtype=float)[wanted]
    family = row_families(features, event)
    applied, fits = family_levels(
        label,
        q,
        kind[wanted],
        family,
        matched,
        settings.min_rows,
        tuple(settings.kinds),
        settings.lower,
        settings.threshold_se,
    )
    result = ChosenLevel(applied["retry"], applied["message"], fits, len(events))
    log.info("level where the search chooses: %s (fits %s)", applied, fits)
    return result
