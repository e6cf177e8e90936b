"""`smartretry train --cluster`: the train stage with validation, features and boosting
on a Dask cluster, and the same artifact, metrics and MLflow run at the end.

1. every part of the partitioned history is read and validated on a worker
   (``validate_part``); the client adds up the rows and rejects (numbered as if the
   history were read whole) and applies ``validate.max_reject_share`` to the total;
2. the time split and the history's start come from the parts' due dates;
3. each worker builds its parts' training rows with ``build_training_data`` (one code
   path with the in-process stage); the rows stay on the workers;
4. each model is fitted with ``lightgbm.dask`` and calibrated (``training/scale/fit.py``);
5. the local booster, calibration map, customer log and customers go into the same
   decision artifact, written and tracked by the pipeline's ``finish_train``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from training.artifact.gain_shrinkage import NO_SHRINKAGE, GainShrinkage
from training.config.params import Params
from training.contract.errors import ContractError
from training.contract.partitioned import is_partitioned, list_parts
from training.declines.table import load_decline_table
from training.features.frames import CATEGORICAL
from training.models.datasets import Dataset, TrainingData
from training.models.fit import (
    CALIBRATION_GROUPS,
    MODEL_FEATURES,
    PAIR_RATES,
    TrainedModels,
    TrainResult,
)
from training.models.split import TimeSplit
from training.pipeline.train_stage import TrainInputError, TrainOutcome, finish_train
from training.scale.cluster import cluster_client
from training.scale.fit import ClusterFit, fit_on_cluster
from training.scale.parts import (
    DUE_AT,
    INVOICE,
    LABEL,
    PartRows,
    PartSummary,
    combined_fingerprint,
    combined_report,
    model_rows,
    summarize,
    training_rows,
    validate_part,
)

log = logging.getLogger(__name__)
CHAMPION_MODELS = ("retry", "message")  # the champion check scores their test rows
# the gain shrinkage needs two half trainings and the searches on the whole history's
# validation events; the cluster path does not measure it yet (docs/scale.md)
NOT_MEASURED_ON_CLUSTER = GainShrinkage(
    1.0, float("nan"), float("nan"), 0, "not measured on the cluster path (docs/scale.md)"
)


def wait(futures: list[Any]) -> None:
    from dask.distributed import wait as wait_for

    wait_for(futures)


def _release(*futures: Any) -> None:
    for group in futures:
        for future in group:
            future.release()


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
) -> tuple[TrainResult, pd.DataFrame, list[str], dict[str, Any]]:
    """Fit the models on the cluster behind ``client``; returns the train result, the
    customers, the templates and the data fingerprint (what ``finish_train`` needs)."""
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
    rows = client.map(
        training_rows,
        validated,
        params=params.train,
        table=table,
        update=params.retry_rules.update_requests,
        history_start=due.min(),
        split=split,
    )
    has_messages = fingerprint["rows"]["messages"] > 0
    names = ("retry", "message", "self_cure") if has_messages else ("retry", "self_cure")
    # each model's rows of each period, apart, so a model's rows leave the workers'
    # memory once it is fitted; the parts' full results are released here
    by_model = {
        name: {
            period: client.map(model_rows, rows, name=name, period=period)
            for period in ("train", "valid", "test")
        }
        for name in names
    }
    logs = client.map(_log, rows)
    example = client.submit(_example_events, rows[0])
    empty = {name: client.submit(_rows_head, rows[0], name) for name in names}
    wait([f for periods in by_model.values() for group in periods.values() for f in group])
    _release(validated, rows)
    seconds["features"] = time.perf_counter() - mark
    log.info("features built on the workers in %.1fs", seconds["features"])

    fits: dict[str, ClusterFit] = {}
    try:
        for name in names:
            mark = time.perf_counter()
            periods = by_model.pop(name)
            features = list(MODEL_FEATURES[name])
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
            )
            _release(*periods.values())
            seconds[f"fit_{name}"] = time.perf_counter() - mark
            log.info("%s model fitted on the cluster in %.1fs", name, seconds[f"fit_{name}"])
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
        models=TrainedModels(
            fits["retry"].model,
            fits["message"].model if "message" in fits else None,
            fits["self_cure"].model,
        ),
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
    return result, customers, templates, fingerprint


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
        result, customers, templates, fingerprint = train_on_client(
            client, Path(data), params, gather_test=register
        )
    seconds = {f"train_{k}": v for k, v in result.seconds.items()}
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
        NO_SHRINKAGE if params.train.gain_shrinkage.events == 0 else NOT_MEASURED_ON_CLUSTER,
    )
