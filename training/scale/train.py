"""`smartretry train --cluster`: the train stage with validation, features and boosting
on a Dask cluster, and the same artifact, metrics and MLflow run at the end.

1. every part of the partitioned history is read and validated on a worker
   (``validate_part``); the client adds up the rows and rejects (numbered as if the
   history were read whole) and applies ``validate.max_reject_share`` to the total;
2. the time split and the history's start come from the parts' due dates;
3. each worker builds its parts' training rows with ``build_training_data`` (one code
   path with the in-process stage); the rows stay on the workers;
4. each model is fitted with ``lightgbm.dask`` and calibrated (``training/scale/fit.py``);
5. the gain shrinkage is measured as in process, its two customer halves trained on the
   cluster the same way (``training/scale/shrinkage.py``);
6. the calendar contrast is fitted on the client, with the in-process code, on the
   validation-period events' rows gathered after the split (``training/scale/contrast.py``),
   and the level where the search chooses on the same rows, by ``finish_train``
   (``training/artifact/chosen_level.py``);
7. the local booster, calibration map, customer log and customers go into the same
   decision artifact, written and tracked by the pipeline's ``finish_train``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from training.artifact.calendar_contrast import CalendarContrast
from training.artifact.gain_shrinkage import GainShrinkage
from training.config.params import Params
from training.contract.errors import ContractError
from training.contract.history import History
from training.contract.partitioned import is_partitioned, list_parts
from training.declines.table import load_decline_table
from training.models.datasets import Dataset, TrainingData
from training.models.fit import TrainResult
from training.models.split import TimeSplit
from training.pipeline.train_stage import TrainInputError, TrainOutcome, finish_train
from training.scale.cluster import cluster_client
from training.scale.contrast import contrast_on_client, contrast_rows_on_cluster
from training.scale.models import (
    fit_models_on_cluster,
    model_names,
    release,
    rows_on_cluster,
    trained_models,
    wait,
)
from training.scale.parts import (
    DUE_AT,
    INVOICE,
    LABEL,
    PartRows,
    PartSummary,
    combined_fingerprint,
    combined_report,
    summarize,
    validate_part,
)
from training.scale.shrinkage import gain_shrinkage_on_cluster

log = logging.getLogger(__name__)


def _empty_dataset(rows: pd.DataFrame) -> Dataset:
    return Dataset(
        features=rows.head(0),
        label=rows[LABEL].head(0).to_numpy(dtype=int),
        due_at=rows[DUE_AT].head(0),
        invoice_id=rows[INVOICE].head(0).to_numpy(),
    )


def _example_events(part: PartRows) -> pd.DataFrame:
    return part.example_events


def _log(part: PartRows) -> pd.DataFrame:
    return part.log


def _rows_head(part: PartRows, name: str) -> pd.DataFrame:
    return part.rows[name].head(0)


def validate_on_cluster(
    client: Any, data: Path, params: Params
) -> tuple[list[Any], list[PartSummary]]:
    """Validated parts (futures, on the workers) and their summaries; raises
    :class:`TrainInputError` like the in-process reader."""
    try:
        if not data.is_dir():
            raise ContractError(f"history folder {data} does not exist")
        if not is_partitioned(data):
            raise ContractError(
                "--cluster needs the partitioned layout (one folder per table of "
                "part-NNNNN files, docs/scale.md); write one with "
                "`smartretry simulate --partitions K` or write_partitioned"
            )
        parts = list_parts(data)
        validated = client.map(validate_part, [str(data)] * len(parts), parts)
        summaries: list[PartSummary] = client.gather(client.map(summarize, validated))
    except ContractError as error:
        raise TrainInputError(f"cannot train on {data}: {error}") from error
    report = combined_report(summaries, params.validate_)
    if not report.ok:
        raise TrainInputError(f"cannot train on {data}: {data}: {report.limit_message()}")
    if sum(s.valid_rows["invoices"] for s in summaries) == 0:
        raise TrainInputError(f"cannot train on {data}: the history has no (valid) invoices")
    if sum(s.valid_rows["attempts"] for s in summaries) == 0:
        raise TrainInputError(f"cannot train on {data}: the history has no payment attempts")
    return validated, summaries


def train_on_client(
    client: Any, data: Path, params: Params, gather_test: bool
) -> tuple[
    TrainResult,
    pd.DataFrame,
    list[str],
    dict[str, Any],
    GainShrinkage,
    CalendarContrast,
    tuple[History, pd.DataFrame] | None,
]:
    """Fit the models on the cluster behind ``client``; returns the train result, the
    customers, the templates, the data fingerprint, the gain shrinkage, the calendar
    contrast and the gathered validation-period rows the chosen level is fitted on (what
    ``finish_train`` needs; None when the contrast's rows are not gathered or the level
    is off)."""
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    validated, summaries = validate_on_cluster(client, data, params)
    seconds["validate"] = time.perf_counter() - started
    due = pd.concat([s.due_at for s in summaries], ignore_index=True)
    try:
        split = TimeSplit.from_due_dates(due, params.train)
    except ValueError as error:
        raise TrainInputError(f"cannot train on {data}: {error}") from error
    fingerprint = combined_fingerprint(summaries)
    mark = time.perf_counter()
    contrast_rows = contrast_rows_on_cluster(client, validated, split, params)
    seconds["calendar_contrast"] = time.perf_counter() - mark
    log.info(
        "history: %s parts, %s invoices, %s attempts, %s messages on %s workers",
        len(summaries),
        f"{fingerprint['rows']['invoices']:,}",
        f"{fingerprint['rows']['attempts']:,}",
        f"{fingerprint['rows']['messages']:,}",
        len(client.scheduler_info()["workers"]),
    )

    mark = time.perf_counter()
    table = load_decline_table()
    names = model_names(fingerprint["rows"]["messages"] > 0)
    rows, by_model = rows_on_cluster(client, validated, params, table, split, due.min(), names)
    logs = client.map(_log, rows)
    example = client.submit(_example_events, rows[0])
    empty = {name: client.submit(_rows_head, rows[0], name) for name in names}
    wait([f for periods in by_model.values() for group in periods.values() for f in group])
    # the parts' full results are released here; the validated parts stay for the gain
    # shrinkage's halves and events when it is measured
    shrinkage_measured = params.train.gain_shrinkage.events > 0
    release(rows)
    if not shrinkage_measured:
        release(validated)
    seconds["features"] = time.perf_counter() - mark
    log.info("features built on the workers in %.1fs", seconds["features"])

    try:
        fits = fit_models_on_cluster(client, by_model, params, gather_test, seconds)
    except ValueError as error:
        raise TrainInputError(f"cannot train on {data}: {error}") from error

    customer_log = (
        pd.concat(client.gather(logs), ignore_index=True)
        .sort_values(["customer_id", "at"], kind="stable")
        .reset_index(drop=True)
    )
    example_events = example.result()
    empty_rows = {name: future.result() for name, future in empty.items()}
    data_rows: dict[str, Dataset] = {}
    for name in ("retry", "message", "self_cure"):
        gathered = fits[name].test_rows if name in fits else None
        data_rows[name] = gathered or _empty_dataset(empty_rows.get(name, empty_rows["retry"]))
    seconds["total"] = time.perf_counter() - started
    result = TrainResult(
        models=trained_models(fits),
        split=split,
        data=TrainingData(
            data_rows["retry"],
            data_rows["message"],
            data_rows["self_cure"],
            example_events,
            pd.DataFrame(),
            customer_log,
        ),
        metrics={name: fit.metrics for name, fit in fits.items()},
        test_predictions={name: fit.test for name, fit in fits.items()},
        seconds=seconds,
    )
    customers = pd.concat([s.customers for s in summaries], ignore_index=True)
    templates = sorted(set().union(*(s.templates for s in summaries)))
    mark = time.perf_counter()
    shrinkage = gain_shrinkage_on_cluster(
        client, validated, summaries, split, customer_log, templates, params, table
    )
    if shrinkage_measured:
        release(validated)
        seconds["gain_shrinkage"] = time.perf_counter() - mark
    mark = time.perf_counter()
    contrast = contrast_on_client(contrast_rows, result.models, customer_log, params, table)
    seconds["calendar_contrast"] += time.perf_counter() - mark
    level_rows = (
        (contrast_rows.history, contrast_rows.events)
        if contrast_rows is not None and params.train.chosen_level.enabled
        else None
    )
    return result, customers, templates, fingerprint, shrinkage, contrast, level_rows


def run_train_on_cluster(
    data: Path,
    model_dir: Path,
    metrics_path: Path,
    plots_dir: Path,
    params: Params,
    cluster: str,
    register: bool = True,
) -> TrainOutcome:
    """Train on the partitioned history in ``data`` on ``cluster`` (``local``,
    ``local:N`` or a scheduler address); write and track like ``run_train``."""
    started = time.perf_counter()
    with cluster_client(cluster) as client:
        log.info("Dask cluster %s: %s", cluster, client.scheduler_info()["address"])
        result, customers, templates, fingerprint, shrinkage, contrast, level_rows = (
            train_on_client(client, Path(data), params, gather_test=register)
        )
    own = ("gain_shrinkage", "calendar_contrast")  # the in-process stage's names for them
    seconds = {f"train_{k}": v for k, v in result.seconds.items() if k not in own}
    seconds.update({k: v for k, v in result.seconds.items() if k in own})
    return finish_train(
        result,
        customers,
        templates,
        fingerprint,
        Path(data),
        load_decline_table(),
        model_dir,
        metrics_path,
        plots_dir,
        params,
        register,
        seconds,
        started,
        shrinkage,
        contrast,
        level_rows,
    )
