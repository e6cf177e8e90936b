"""The gain shrinkage (``training/artifact/gain_shrinkage.py``) measured on the cluster.

The same measurement as in process, with the in-process pieces:

1. the customers are split into the same two halves (``customer_half`` over the parts'
   customers in part order, the order the whole history is read in); each worker keeps
   its parts' rows of one half, and each half's three models are trained on the cluster
   like the whole history's (``training/scale/models.py``: its own time split and start,
   as ``train_models`` gives a half in process);
2. the ``train.gain_shrinkage.events`` validation-period failure events are drawn as in
   process (``sample_positions`` on the parts' event counts, the rows then taken from
   their parts) and gathered to the client, a small sample;
3. the client runs the halves' searches and valuations (``cross_fitted_shrinkage``).

The halves' models are calibrated on their validation period alone, as every cluster
model is (docs/scale.md), so the factor is close to the in-process one, not equal.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from training.artifact.gain_shrinkage import (
    NO_MESSAGES,
    NO_SHRINKAGE,
    GainShrinkage,
    cross_fitted_shrinkage,
    customer_half,
    halves_too_small,
    history_of,
    in_validation_period,
    sample_positions,
    sorted_events,
)
from training.config.params import Params
from training.core.frames import EVENT_COLUMNS
from training.declines.table import DeclineTable
from training.features.invoice import events_from_history
from training.models.fit import TrainedModels
from training.models.split import TimeSplit
from training.scale.models import (
    fit_models_on_cluster,
    model_names,
    release,
    rows_on_cluster,
    trained_models,
    wait,
)
from training.scale.parts import PartSummary, ValidatedPart

log = logging.getLogger(__name__)


# --- functions run on the workers, one part at a time --------------------------------


def _half(part: ValidatedPart, half: np.ndarray, k: int) -> ValidatedPart:
    """The part's rows of the customers in half ``k`` (``half``: one value per customer,
    in the part's customers order)."""
    customers = part.history.customers["customer_id"].to_numpy()
    return ValidatedPart(
        part.name, history_of(part.history, customers[half == k]), part.rows, part.rejects
    )


def _due_and_messages(part: ValidatedPart) -> tuple[pd.Series, int]:
    return part.history.invoices["due_at"], len(part.history.messages)


def _validation_events(part: ValidatedPart, split: TimeSplit) -> pd.DataFrame:
    return in_validation_period(events_from_history(part.history), split)


def _size(frame: pd.DataFrame) -> int:
    return len(frame)


def _take(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    return frame.iloc[positions]


# --- on the client ---------------------------------------------------------------------


def validation_events_on_cluster(
    client: Any, validated: list[Any], split: TimeSplit, count: int, seed: int
) -> pd.DataFrame:
    """The events ``validation_events`` draws from the whole history, drawn from the
    parts: the same positions over the parts' validation-period events in part order."""
    per_part = client.map(_validation_events, validated, split=split)
    sizes = client.gather(client.map(_size, per_part))
    positions = sample_positions(int(sum(sizes)), count, seed)
    bounds = np.cumsum([0, *sizes])
    ordered = np.sort(positions)
    part_of = np.searchsorted(bounds, ordered, side="right") - 1
    taken = [
        client.submit(_take, per_part[i], ordered[part_of == i] - bounds[i])
        for i in np.unique(part_of)
    ]
    frames = client.gather(taken)
    release(per_part, taken)
    if not frames:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    chosen = pd.concat(frames, ignore_index=True)  # rows in the order of ``ordered``
    return sorted_events(chosen.iloc[np.searchsorted(ordered, positions)])


def half_parts(
    client: Any, validated: list[Any], summaries: list[PartSummary], seed: int, k: int
) -> list[Any]:
    """The validated parts (futures) cut to the customers of half ``k``: the halves of
    ``customer_halves`` over the parts' customers in part order."""
    ids = np.concatenate([s.customers["customer_id"].to_numpy() for s in summaries])
    half = customer_half(ids, seed)
    bounds = np.cumsum([0, *(len(s.customers) for s in summaries)])
    return [
        client.submit(_half, part, half[a:b], k)
        for part, a, b in zip(validated, bounds[:-1], bounds[1:], strict=True)
    ]


def _train_half(
    client: Any, parts: list[Any], params: Params, table: DeclineTable, k: int
) -> TrainedModels:
    """One half's three models, as ``train_models`` fits them on the half in process:
    its own time split and start. Raises ``ValueError`` when the half cannot be trained."""
    summaries = client.gather(client.map(_due_and_messages, parts))
    due = pd.concat([due for due, _ in summaries], ignore_index=True)
    if due.empty:
        raise ValueError("the history has no invoices: nothing to train on")
    split = TimeSplit.from_due_dates(due, params.train)
    names = model_names(sum(messages for _, messages in summaries) > 0)
    table_rows, by_model = rows_on_cluster(client, parts, params, table, split, due.min(), names)
    wait([f for periods in by_model.values() for group in periods.values() for f in group])
    release(parts, table_rows)
    fits = fit_models_on_cluster(client, by_model, params, False, {}, label=f"half {k}: ")
    return trained_models(fits)


def gain_shrinkage_on_cluster(
    client: Any,
    validated: list[Any],
    summaries: list[PartSummary],
    split: TimeSplit,
    customer_log: pd.DataFrame,
    templates: list[str],
    params: Params,
    table: DeclineTable,
) -> GainShrinkage:
    """``fit_gain_shrinkage`` of the history in the ``validated`` parts (futures, in part
    order, summarized by ``summaries``); ``split``: the whole history's time split."""
    settings = params.train.gain_shrinkage
    if settings.events == 0:
        return NO_SHRINKAGE
    if sum(s.valid_rows["messages"] for s in summaries) == 0:
        return NO_MESSAGES
    started = time.perf_counter()
    seed = params.train.model.seed
    models = []
    try:
        for k in (0, 1):
            parts = half_parts(client, validated, summaries, seed, k)
            models.append(_train_half(client, parts, params, table, k))
    except ValueError as error:
        return halves_too_small(error)
    log.info(
        "the two customer halves trained on the cluster in %.1fs", time.perf_counter() - started
    )
    events = validation_events_on_cluster(client, validated, split, settings.events, seed)
    return cross_fitted_shrinkage(models, events, customer_log, templates, params, table)
