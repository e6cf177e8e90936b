"""The calendar contrast of a schedule's rows, and schedule values with it steepened.

A row's *calendar contrast* is the models' log-odds of it minus the mean log-odds of the
same row moved in time, its dunning state (hours since the failure, the attempts and
messages before it) unchanged, so that only its calendar inputs move: a retry by 1 to
``days`` days either way (its date: day of month, weekday, distance to the customer's
payday), a message by a few hours either way (its local hour). It says how much better
than its neighbouring times the models rate the time the search chose. The train stage
measures on the team's logged rows how much more steeply the outcome moves with that
contrast than the models say (training/artifact/calendar_contrast.py, ``c`` per model);
the reported probability of a decision then scores each row of the chosen and of the
fixed schedule as ``sigmoid(logit p + c * contrast)`` (``ModelDecider.steepened_values``).
The search never sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from training.core.localtime import HOUR_NS
from training.models.matrix import EventMatrix
from training.policy.scorer import ModelScorer

DAY_NS = 24 * HOUR_NS


def shifts(days: int) -> np.ndarray:
    """Calendar shifts (ns) of whole days: -days..-1 and 1..days."""
    whole = np.arange(-days, days + 1)
    return whole[whole != 0].astype(np.int64) * DAY_NS


def hour_shifts(hours: Sequence[float]) -> np.ndarray:
    """Shifts (ns) of the given hours, each both ways."""
    ns = np.round(np.asarray(hours, dtype=float) * HOUR_NS).astype(np.int64)
    return np.concatenate([-ns[::-1], ns])


def kind_shifts(days: int, message_hours: Sequence[float]) -> dict[str, np.ndarray]:
    """The shifts a row's contrast averages over, by kind: a retry's date (the day the
    retry search weighs it against), a message's hour (the message search's choice)."""
    return {"retry": shifts(days), "message": hour_shifts(message_hours)}


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def row_contrasts(
    scorer: ModelScorer,
    features: pd.DataFrame | EventMatrix,
    event_ids: np.ndarray,
    ns: np.ndarray,
    kind: np.ndarray,
    template: np.ndarray,
    channel: np.ndarray,
    state: dict[str, np.ndarray],
    moves: Mapping[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """The rows' probabilities and contrasts: log-odds minus the mean log-odds of the row
    moved by each of its kind's ``moves`` (ns; a kind without moves has contrast 0). The
    moved copies of one kind are scored in one call of its model."""
    p = scorer.row_probabilities(features, event_ids, ns, kind, template, channel, state)
    contrast = np.zeros(len(ns))
    for name, shift in moves.items():
        rows = np.flatnonzero(kind == name)
        n, k = len(rows), len(shift)
        if n == 0 or k == 0:
            continue
        moved = scorer.row_probabilities(
            features,
            np.tile(event_ids[rows], k),
            (ns[rows][None, :] + shift[:, None]).ravel(),
            np.tile(kind[rows], k),
            np.tile(template[rows], k),
            np.tile(channel[rows], k),
            {column: np.tile(values[rows], k) for column, values in state.items()},
        )
        contrast[rows] = logit(p[rows]) - logit(moved).reshape(k, n).mean(axis=0)
    return p, contrast


def steepened(
    p: np.ndarray, contrast: np.ndarray, kind: np.ndarray, slopes: Mapping[str, float]
) -> np.ndarray:
    """``sigmoid(logit p + c * contrast)`` with each row's kind's ``c`` (0 when absent)."""
    slope = np.zeros(len(p))
    for name, c in slopes.items():
        slope[kind == name] = c
    return 1.0 / (1.0 + np.exp(-(logit(p) + slope * contrast)))
