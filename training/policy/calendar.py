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
fixed schedule as ``sigmoid(logit p + c * contrast)``. The search never sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd

from training.config.retry_limits import UpdateRequests
from training.core.columnar import column_array
from training.core.localtime import HOUR_NS, from_ns, to_ns
from training.features.dunning_state import timeline_state_arrays
from training.models.matrix import EventMatrix, as_event_matrix
from training.policy.scorer import ModelScorer, build_timeline

DAY_NS = 24 * HOUR_NS
Rows: TypeAlias = pd.DataFrame | dict[str, np.ndarray]
"""A schedule's retries or messages: a frame, or its columns (times as int64 ns)."""


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


def _column(rows: Rows, name: str) -> np.ndarray:
    """A column of a schedule's rows given as a frame or as columns."""
    return np.asarray(rows[name]) if isinstance(rows, dict) else rows[name].to_numpy()


def _times(rows: Rows, name: str) -> np.ndarray:
    """A time column of a schedule's rows as int64 ns."""
    return np.asarray(rows[name], dtype=np.int64) if isinstance(rows, dict) else to_ns(rows[name])


def _stacked(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The parts' columns one after another."""
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def steepened_values(
    scorer: ModelScorer,
    update: UpdateRequests,
    events: pd.DataFrame,
    features: pd.DataFrame | EventMatrix,
    past: pd.DataFrame,
    schedules: Sequence[tuple[Rows, Rows]],
    slopes: Mapping[str, float],
    moves: Mapping[str, np.ndarray],
    p_self: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Per schedule (retries, messages), its expected recovery per event (the events'
    order) with every row's probability steepened by its calendar contrast."""
    ids = column_array(events, "event_id")
    n, count = len(ids), len(schedules)
    if p_self is None:
        window = column_array(events, "window_days")
        p_self = scorer.self_cure_probabilities(as_event_matrix(features), window)
    index = pd.Index(ids)

    def keyed(rows: Rows, s: int) -> dict[str, np.ndarray]:
        return {"key": s * n + index.get_indexer(_column(rows, "event_id"))}

    retries = pd.DataFrame(
        _stacked([{**keyed(r, s), "at": _times(r, "at")} for s, (r, _) in enumerate(schedules)])
    )
    messages = pd.DataFrame(
        _stacked(
            [
                {
                    **keyed(m, s),
                    "send_at": _times(m, "send_at"),
                    "template": _column(m, "template").astype(object),
                    "channel": _column(m, "channel").astype(object),
                }
                for s, (_, m) in enumerate(schedules)
            ]
        )
    )
    retries["at"] = from_ns(retries["at"].to_numpy(dtype=np.int64))
    messages["send_at"] = from_ns(messages["send_at"].to_numpy(dtype=np.int64))
    keys = pd.DataFrame({"key": np.arange(n * count), "event_id": np.tile(ids, count)})
    timeline = build_timeline(keys, past, retries, messages)
    wanted, state = timeline_state_arrays(timeline, update)
    kind = timeline["kind"].to_numpy()[wanted]
    p, contrast = row_contrasts(
        scorer,
        features,
        timeline["event_id"].to_numpy()[wanted],
        to_ns(timeline["t"])[wanted],
        kind,
        timeline["template"].to_numpy(dtype=object)[wanted],
        timeline["channel"].to_numpy(dtype=object)[wanted],
        state,
        moves,
    )
    q = steepened(p, contrast, kind, slopes)
    owner = timeline["key"].to_numpy()[wanted].astype(np.int64)
    survival = np.bincount(owner, weights=np.log1p(-np.clip(q, 0, 1 - 1e-9)), minlength=n * count)
    values = 1.0 - (1.0 - np.tile(p_self, count)) * np.exp(survival)
    return [values[s * n : (s + 1) * n] for s in range(count)]
