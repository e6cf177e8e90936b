"""Fit the three models on a history: time split, boosting, calibration, test metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from tqdm import tqdm

from training.config.params import ModelParams, TrainParams
from training.config.retry_limits import UpdateRequests
from training.contract.history import History
from training.declines.table import DeclineTable
from training.features.frames import (
    CATEGORICAL,
    MESSAGE_FEATURES,
    RETRY_FEATURES,
    SELF_CURE_FEATURES,
)
from training.models.calendar_effect import CalendarSpec
from training.models.calibrated import CalibratedModel, fit_calibrated
from training.models.datasets import Dataset, TrainingData, build_training_data
from training.models.metrics import binary_metrics
from training.models.pair_rates import PairRate
from training.models.propensity_weights import propensity_weights
from training.models.split import TimeSplit
from training.models.support import RankSupport
from training.models.template_support import TemplateSupport

RANK_BINS = (0.5, 1.5, 2.5)  # counts of earlier events: none, one, two, three or more
PAIR_RATES = {
    "retry": (
        PairRate(
            "category_retry_rank_rate",
            "inv_decline_category",
            "retries_before",
            right_bins=RANK_BINS,
        ),
    ),
    "message": (
        PairRate("template_category_rate", "template", "inv_decline_category"),
        PairRate(
            "category_message_rank_rate",
            "inv_decline_category",
            "messages_before",
            right_bins=RANK_BINS,
        ),
    ),
}
# categorical inputs whose values get their own offset in the calibration map
CALIBRATION_GROUPS = {  # and counts of the dunning state, bucketed
    "retry": ("inv_decline_category", "retries_before"),
    "message": ("template", "inv_decline_category", "messages_before"),
    "self_cure": ("inv_decline_category",),
}
# per model: the rank column and the time inputs clipped to its range per rank (support.py)
_SINCE = (
    "hours_since_failure",
    "hours_since_last_attempt",
    "hours_since_last_message",
    "hours_since_update_request",
)
RANK_SUPPORT = {"retry": ("retries_before", _SINCE), "message": ("messages_before", _SINCE)}
MODEL_FEATURES = {
    "retry": RETRY_FEATURES + tuple(p.name for p in PAIR_RATES["retry"]),
    "message": MESSAGE_FEATURES + tuple(p.name for p in PAIR_RATES["message"]),
    "self_cure": SELF_CURE_FEATURES,
}


def _count_effect(name: str, params: ModelParams) -> tuple[str, str] | None:
    """(numeric input, rank column) of ``name``'s learned slope, if it has one: a count
    of the dunning state (the messages before a retry) or another numeric input (the
    closeness of a message's hour to the customer's active hour)."""
    column = params.count_effects.get(name)
    if column is None:
        return None
    if column not in MODEL_FEATURES[name] or column in CATEGORICAL or name not in RANK_SUPPORT:
        raise ValueError(f"train.model.count_effects: {column!r} is no count input of {name}")
    rank = RANK_SUPPORT[name][0]
    if column == rank:  # the timing cells are per rank: the slope would be theirs
        raise ValueError(
            f"train.model.count_effects: {column!r} is {name}'s rank, which the slope "
            "holds fixed (count_effect.py): it has no slope of its own"
        )
    return column, rank


def count_effect_held(name: str, params: ModelParams) -> tuple[str, ...]:
    """The inputs ``name``'s count slope is fitted with held fixed besides the timing
    (``train.model.count_effect_held_fixed``): numeric inputs of the model, neither its
    count nor its rank."""
    effect = _count_effect(name, params)
    if effect is None:  # nothing to hold fixed (count_effects turned off)
        return ()
    held = tuple(params.count_effect_held_fixed.get(name, ()))
    for column in held:
        if column not in MODEL_FEATURES[name] or column in CATEGORICAL:
            raise ValueError(
                f"train.model.count_effect_held_fixed: {column!r} is no numeric input of {name}"
            )
        if column in effect:
            raise ValueError(
                f"train.model.count_effect_held_fixed: {column!r} is {name}'s count or rank"
            )
    return held


def _calendar_effects(name: str, params: ModelParams) -> CalendarSpec | None:
    """(calendar inputs, rank column, groups, penalty) of ``name``'s offsets per value,
    if any."""
    columns = list(params.calendar_effects.get(name, []))
    if not columns:
        return None
    for column in columns:
        if column not in MODEL_FEATURES[name] or column in CATEGORICAL or name not in RANK_SUPPORT:
            raise ValueError(f"train.model.calendar_effects: {column!r} is no input of {name}")
    for column in [*params.calendar_effect_input_penalty, *params.calendar_effect_pooled_only]:
        if column not in MODEL_FEATURES[name]:
            raise ValueError(f"train.model.calendar_effect_*: {column!r} is no input of {name}")
    return CalendarSpec(
        columns,
        RANK_SUPPORT[name][0],
        params.calendar_effect_groups,
        params.calendar_effect_penalty,
        tuple(c for c in params.calendar_effect_pooled_only if c in columns),
        params.calendar_effect_shared_penalty,
        {c: v for c, v in params.calendar_effect_input_penalty.items() if c in columns},
    )


def model_inputs(name: str, params: ModelParams) -> list[str]:
    """``name``'s inputs: :data:`MODEL_FEATURES` without ``params.excluded_inputs`` (and
    without ``params.count_effect_excluded_inputs[name]`` when ``name`` has a count
    effect) and with one of the observed span's two forms, days or share of the tenure
    (``params.observed_share_input``)."""
    swapped_out = "cust_observed_days" if params.observed_share_input else "cust_observed_share"
    excluded = {*params.excluded_inputs, swapped_out}
    if name in params.count_effects:  # the inputs that carry the count past its offset
        excluded |= set(params.count_effect_excluded_inputs.get(name, ()))
    return [column for column in MODEL_FEATURES[name] if column not in excluded]


def check_monotone_inputs(params: ModelParams) -> None:
    """Refuse ``monotone_increasing``, ``additive_groups`` and ``excluded_inputs`` names
    that are no model's input (a typo would otherwise change nothing, silently)."""
    known = {name for features in MODEL_FEATURES.values() for name in features}
    named = {
        "monotone_increasing": set(params.monotone_increasing),
        "additive_groups": {name for group in params.additive_groups for name in group},
        "excluded_inputs": set(params.excluded_inputs),
        "count_effect_excluded_inputs": {
            name for names in params.count_effect_excluded_inputs.values() for name in names
        },
    }
    for key, names in named.items():
        unknown = sorted(names - known)
        if unknown:
            raise ValueError(
                f"train.model.{key}: {', '.join(unknown)} is not an input of any "
                "model (docs/training.md lists them)"
            )


@dataclass
class TrainedModels:
    """``message`` is None when the history logs no dunning messages (billing-system
    exports carry none): nothing to learn from, and the policy then plans no messages."""

    retry: CalibratedModel
    message: CalibratedModel | None
    self_cure: CalibratedModel

    def items(self) -> list[tuple[str, CalibratedModel]]:
        """The models that were trained, by name."""
        named = [("retry", self.retry), ("message", self.message), ("self_cure", self.self_cure)]
        return [(name, model) for name, model in named if model is not None]


@dataclass
class TrainResult:
    models: TrainedModels
    split: TimeSplit
    data: TrainingData
    metrics: dict[str, dict[str, float]]
    test_predictions: dict[str, tuple[np.ndarray, np.ndarray]]
    seconds: dict[str, float] = field(default_factory=dict)


def _part(dataset: Dataset, mask: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    return dataset.features[mask], dataset.label[mask]


def fit_models(
    data: TrainingData,
    split: TimeSplit,
    params: TrainParams,
    names: tuple[str, ...],
    done: Callable[[], object] = lambda: None,
) -> tuple[
    dict[str, CalibratedModel],
    dict[str, dict[str, float]],
    dict[str, tuple[np.ndarray, np.ndarray]],
]:
    """Fit and calibrate the ``names`` models on built training rows and score the test
    period (``done`` is called after each model): the step of :func:`train_models` after
    the features, apart so that settings can be compared on the same rows
    (benchmarks/screen_model_params.py)."""
    check_monotone_inputs(params.model)
    fitted: dict[str, CalibratedModel] = {}
    metrics: dict[str, dict[str, float]] = {}
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in names:
        dataset: Dataset = getattr(data, name)
        part = split.assign(dataset.due_at)
        features = model_inputs(name, params.model)
        categorical = [c for c in CATEGORICAL if c in features]
        train_propensity = (
            None if dataset.propensity is None else dataset.propensity[part == "train"]
        )
        count_effect_held(name, params.model)  # refuses inputs the model has not
        model = fit_calibrated(
            name,
            _part(dataset, part == "train"),
            _part(dataset, part == "valid"),
            features,
            categorical,
            params.model,
            PAIR_RATES.get(name, ()),
            dataset.invoice_id[part == "train"],
            CALIBRATION_GROUPS[name],
            _count_effect(name, params.model),
            propensity_weights(train_propensity, params.model.propensity_weight_clip),
            _calendar_effects(name, params.model),
        )
        if params.model.clip_to_rank_support and name in RANK_SUPPORT:
            rank, columns = RANK_SUPPORT[name]
            x_train = _part(dataset, part == "train")[0]
            model.support = RankSupport.fit(x_train, model.features, rank, columns)
        margin = params.model.template_time_support
        if margin is not None and name == "message":
            rows = _part(dataset, part == "train")[0]
            model.template_support = TemplateSupport.fit(
                rows,
                margin,
                params.model.template_time_support_sides,
                params.model.template_time_support_width_fraction,
            )
        fitted[name] = model
        x_test, y_test = _part(dataset, part == "test")
        p_test = model.predict(x_test)
        predictions[name] = (y_test, p_test)
        metrics[name] = binary_metrics(y_test, p_test, model.base_rate)
        metrics[name]["train_rows"] = float((part == "train").sum())
        metrics[name]["best_iteration"] = float(model.best_iteration)
        done()
    return fitted, metrics, predictions


def train_models(
    history: History,
    params: TrainParams,
    table: DeclineTable,
    update: UpdateRequests,
    progress: bool = True,
) -> TrainResult:
    """Build features, split by time, fit and calibrate, score the test period.
    ``update``: what counts as an update request (the retry limits the artifact carries)."""
    if len(history.invoices) == 0:
        raise ValueError("the history has no invoices: nothing to train on")
    seconds: dict[str, float] = {}
    names = ("retry", "message", "self_cure") if len(history.messages) else ("retry", "self_cure")
    steps = tqdm(total=1 + len(names), desc="train", unit="step", disable=not progress)
    started = time.perf_counter()
    steps.set_postfix_str("features")
    data = build_training_data(
        history, table, params.window_days, update, active_hour=params.features.active_hour
    )
    seconds["features"] = time.perf_counter() - started
    steps.update()
    split = TimeSplit.from_due_dates(history.invoices["due_at"], params)
    fitted, metrics, predictions = fit_models(data, split, params, names, steps.update)
    steps.close()
    seconds.update({f"fit_{name}": model.fit_seconds for name, model in fitted.items()})
    seconds["total"] = time.perf_counter() - started
    return TrainResult(
        TrainedModels(fitted["retry"], fitted.get("message"), fitted["self_cure"]),
        split,
        data,
        metrics,
        predictions,
        seconds,
    )
