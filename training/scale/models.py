"""The three models of a set of validated parts, on the cluster: each part's training rows
(``training_rows``, on its worker), then one ``lightgbm.dask`` fit per model
(``fit_on_cluster``). Used for the whole history and for the gain shrinkage's two
customer halves (``training/scale/shrinkage.py``)."""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd

from training.config.params import Params
from training.declines.table import DeclineTable
from training.features.frames import CATEGORICAL
from training.models.fit import (
    CALIBRATION_GROUPS,
    PAIR_RATES,
    RANK_SUPPORT,
    TrainedModels,
    _calendar_effects,
    _count_effect,
    model_inputs,
)
from training.models.split import TimeSplit
from training.scale.active_hour import cell_weights_on_cluster
from training.scale.fit import ClusterFit, fit_on_cluster
from training.scale.parts import model_rows, training_rows

log = logging.getLogger(__name__)
CHAMPION_MODELS = ("retry", "message")  # the champion check scores their test rows
PERIODS = ("train", "valid", "test")


def wait(futures: list[Any]) -> None:
    from dask.distributed import wait as wait_for

    wait_for(futures)


def release(*futures: Any) -> None:
    for group in futures:
        for future in group:
            future.release()


def model_names(has_messages: bool) -> tuple[str, ...]:
    return ("retry", "message", "self_cure") if has_messages else ("retry", "self_cure")


def rows_on_cluster(
    client: Any,
    validated: list[Any],
    params: Params,
    table: DeclineTable,
    split: TimeSplit,
    history_start: pd.Timestamp,
    names: tuple[str, ...],
) -> tuple[list[Any], dict[str, dict[str, list[Any]]]]:
    """Each part's training rows (futures) and, apart, each model's rows of each period,
    so a model's rows leave the workers' memory once it is fitted. With learned
    active-hour weighting, the cells' weights are learned over all of ``validated`` first
    (as in process over the history they make up)."""
    weights = cell_weights_on_cluster(client, validated, params.train.features.active_hour)
    rows = client.map(
        training_rows,
        validated,
        params=params.train,
        table=table,
        update=params.retry_rules.update_requests,
        history_start=history_start,
        split=split,
        cell_weights=weights,
    )
    by_model = {
        name: {period: client.map(model_rows, rows, name=name, period=period) for period in PERIODS}
        for name in names
    }
    return rows, by_model


def fit_models_on_cluster(
    client: Any,
    by_model: dict[str, dict[str, list[Any]]],
    params: Params,
    gather_test: bool,
    seconds: dict[str, float],
    label: str = "",
) -> dict[str, ClusterFit]:
    """Fit every model of ``by_model`` (releasing its rows once fitted); ``seconds`` gets
    ``fit_<name>``. Raises ``ValueError`` like ``train_models`` when a period lacks an
    outcome."""
    fits: dict[str, ClusterFit] = {}
    for name in list(by_model):
        mark = time.perf_counter()
        periods = by_model.pop(name)
        features = model_inputs(name, params.train.model)
        fits[name] = fit_on_cluster(
            client,
            name,
            periods["train"],
            periods["valid"],
            periods["test"],
            features,
            [c for c in CATEGORICAL if c in features],
            params.train.model,
            PAIR_RATES.get(name, ()),
            gather_test=gather_test and name in CHAMPION_MODELS,
            calibration_groups=CALIBRATION_GROUPS[name],
            rank_support=RANK_SUPPORT.get(name)
            if params.train.model.clip_to_rank_support
            else None,
            count_effect=_count_effect(name, params.train.model),
            calendar_effects=_calendar_effects(name, params.train.model),
        )
        release(*periods.values())
        seconds[f"fit_{name}"] = time.perf_counter() - mark
        log.info("%s%s model fitted on the cluster in %.1fs", label, name, seconds[f"fit_{name}"])
    return fits


def trained_models(fits: dict[str, ClusterFit]) -> TrainedModels:
    return TrainedModels(
        fits["retry"].model,
        fits["message"].model if "message" in fits else None,
        fits["self_cure"].model,
    )
