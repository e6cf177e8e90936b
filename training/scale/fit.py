"""Fit one calibrated model on a cluster: ``lightgbm.dask`` boosting, then the in-process
pieces (calibration map, pair rates, scoring) on the local booster.

The steps mirror ``training.models.calibrated.fit_calibrated``: pair rates out of fold on
the training rows (``PairRate``, the same code, on the gathered pair columns), the
training categories, positives up-weighted, the count effect (``count_effect.py``: its
regression fitted on the cells each worker counts in its parts, a few hundred lines,
its offsets the boosting's ``init_score``), the calendar offsets (``calendar_effect.py``:
likewise from the workers' cells; with them the boosting starts from the weighted
average as in process, and the offsets are added to the trees' scores), boosting with
LightGBM's data-parallel learner (``DaskLGBMClassifier``), the best iteration chosen by the early-stopping rule
on the whole validation period's log loss, the in-process calibrator (Platt's map plus
the offsets per group, ``fit_group_calibrator``) fitted on that period (no out-of-fold
scores: docs/scale.md), and the test period scored by ``CalibratedModel.predict``.
``lightgbm.dask`` does not stop early, so every round is boosted and the validation
curve is computed afterwards, on the workers, from each tree's contribution; the booster
is then cut to the best iteration.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.config.params import ModelParams
from training.models.calendar_effect import (
    CalendarEffect,
    CalendarSpec,
    calendar_cells,
    fit_calendar_cells,
    frame_offsets,
)
from training.models.calibrated import (
    CalibratedModel,
    Calibrator,
    booster_constraints,
    calibration_columns,
    check_count_effect_map,
    encode,
    encode_matrix,
    fit_group_calibrator,
    served_slopes,
    shifted,
    slope_priors,
)
from training.models.count_effect import CountEffect, add_cells, count_cells, fit_cells
from training.models.datasets import Dataset
from training.models.ensemble import merged_booster
from training.models.fit import check_monotone_inputs, count_effect_held
from training.models.metrics import binary_metrics
from training.models.pair_rates import FittedPairRate, PairRate
from training.models.support import RankSupport
from training.models.template_support import TemplateSupport
from training.scale.parts import DUE_AT, INVOICE, LABEL, ROW_COLUMNS

log = logging.getLogger(__name__)


@dataclass
class ClusterFit:
    model: CalibratedModel
    metrics: dict[str, float]
    test: tuple[np.ndarray, np.ndarray]  # labels and calibrated predictions
    test_rows: Dataset | None  # gathered when asked (the champion check scores them)


def early_stopping_iteration(curve: np.ndarray, patience: int) -> int:
    """1-based best iteration under LightGBM's early-stopping rule: stop once the
    validation loss has not improved for ``patience`` rounds, keep the best round."""
    best, best_at = np.inf, 0
    for i, value in enumerate(np.asarray(curve, dtype=float)):  # one value per round
        if value < best:
            best, best_at = value, i
        elif i - best_at >= patience:
            break
    return best_at + 1


def booster_options(params: ModelParams, features: list[str]) -> dict[str, Any]:
    """The in-process booster's settings in the scikit-learn names ``DaskLGBMClassifier``
    takes (``fit_calibrated`` passes the same knobs to ``lgb.train``) for the inputs
    ``features``; the threads are each worker's own (``lightgbm.dask`` ignores ``n_jobs``)."""
    return {
        "objective": "binary",
        "n_estimators": params.num_boost_round,
        "num_leaves": params.num_leaves,
        "learning_rate": params.learning_rate,
        "min_child_samples": params.min_data_in_leaf,
        "colsample_bytree": params.feature_fraction,
        "subsample": params.bagging_fraction,
        "subsample_freq": params.bagging_freq,
        "reg_lambda": params.lambda_l2,
        "random_state": params.seed,
        "cat_smooth": params.cat_smooth,
        **booster_constraints(features, params),
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
    }


# --- functions run on the workers, one part at a time --------------------------------


def _columns(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    return frame[names]


def _with_column(frame: pd.DataFrame, name: str, values: np.ndarray) -> pd.DataFrame:
    return frame.assign(**{name: values})


def _with_rate(frame: pd.DataFrame, fitted: FittedPairRate) -> pd.DataFrame:
    left = frame[fitted.spec.left].to_numpy(dtype=object)
    right = frame[fitted.spec.right].to_numpy(dtype=object)
    return frame.assign(**{fitted.name: fitted.lookup(left, right)})


def _labels(frame: pd.DataFrame) -> tuple[int, int]:
    return int(frame[LABEL].sum()), len(frame)


def _seen(frame: pd.DataFrame, column: str) -> set[str]:
    return set(pd.Series(frame[column]).dropna().astype(str).unique())


def _encoded(
    frame: pd.DataFrame,
    features: list[str],
    categories: dict[str, list[str]],
    hidden: str | None = None,
) -> pd.DataFrame:
    """The rows encoded for boosting; ``hidden``: a count acting through its offset only,
    missing everywhere (as ``fit_calibrated`` hides it from the trees)."""
    encoded = encode(frame, features, categories)
    if hidden is not None:
        encoded[hidden] = np.nan
    return encoded


def _cells(frame: pd.DataFrame, column: str, rank: str, held: tuple[str, ...] = ()) -> pd.DataFrame:
    return count_cells(frame, frame[LABEL].to_numpy(), column, rank, held=held)


def _offsets(frame: pd.DataFrame, effect: CountEffect | None) -> np.ndarray:
    """The count effect's log-odds offset per row (0 without one)."""
    if effect is None:
        return np.zeros(len(frame))
    return effect.offsets(frame[effect.column].to_numpy(dtype=float))


@dataclass(frozen=True)
class CalendarStart:
    """The calendar offsets of a cluster fit and the boosting's start under them (the
    weighted average's log-odds, as ``fit_calibrated`` starts)."""

    effects: tuple[CalendarEffect, ...]
    categories: list[str]  # the decline categories in the model's training order
    average: float

    def offsets(self, frame: pd.DataFrame) -> np.ndarray:
        """The calendar offsets of these rows (the trees' scores get them added)."""
        return frame_offsets(self.effects, frame, self.categories)


def _start(
    frame: pd.DataFrame, effect: CountEffect | None, calendar: CalendarStart | None
) -> np.ndarray:
    """The boosting's ``init_score`` per row: the count effect's offsets, and with
    calendar offsets those and the weighted average as well."""
    start = _offsets(frame, effect)
    if calendar is not None:
        start = start + calendar.offsets(frame) + calendar.average
    return start


def _init_score(
    frame: pd.DataFrame, effect: CountEffect | None, calendar: CalendarStart | None = None
) -> pd.Series:
    return pd.Series(_start(frame, effect, calendar))


def _calendar_cells(frame: pd.DataFrame, columns: list[str], rank: str) -> pd.DataFrame:
    return calendar_cells(frame, frame[LABEL].to_numpy(), columns, rank)


def _label(frame: pd.DataFrame) -> pd.Series:
    return frame[LABEL].astype(int)


def _weight(frame: pd.DataFrame, positive_weight: float) -> pd.Series:
    return pd.Series(np.where(frame[LABEL].to_numpy() == 1, positive_weight, 1.0))


def leaf_value_table(booster: lgb.Booster) -> np.ndarray:
    """Each tree's leaf values, one row per tree (padded with 0): a row's raw score after
    round k is the sum of its leaves' values over trees 0..k. Walks the trees' nodes."""
    trees = booster.dump_model()["tree_info"]
    table = np.zeros((len(trees), max(t["num_leaves"] for t in trees) if trees else 1))
    for i, tree in enumerate(trees):
        stack = [tree["tree_structure"]]
        while stack:  # nodes of one tree (a few dozen), not data rows
            node = stack.pop()
            if "leaf_index" in node:
                table[i, node["leaf_index"]] = node["leaf_value"]
            elif "leaf_value" in node:  # a tree that is a single leaf
                table[i, 0] = node["leaf_value"]
            else:
                stack += [node["left_child"], node["right_child"]]
    return table


CURVE_CHUNK_ROWS = 20_000  # rows x rounds of raw scores held at once


def _loss_curve(
    frame: pd.DataFrame,
    booster: lgb.Booster,
    leaf_values: np.ndarray,
    features: list[str],
    categories: dict[str, list[str]],
    effect: CountEffect | None = None,
    calendar: CalendarStart | None = None,
) -> np.ndarray:
    """Sum of the binary log loss after each round (one value per round) on these rows:
    the leaf each row falls in, per tree (one ``pred_leaf`` call), then running sums (on
    top of the count effect's and the calendar's offsets, as LightGBM's ``init_score``)."""
    matrix = encode_matrix(frame, features, categories)
    label = frame[LABEL].to_numpy(dtype=float)
    offsets = _start(frame, effect, calendar)
    sums = np.zeros(len(leaf_values))
    rounds = np.arange(len(leaf_values))
    for start in range(0, len(frame), CURVE_CHUNK_ROWS):
        rows = slice(start, start + CURVE_CHUNK_ROWS)
        leaves = np.asarray(booster.predict(matrix[rows], pred_leaf=True)).reshape(-1, len(rounds))
        raw = np.cumsum(leaf_values[rounds, leaves], axis=1) + offsets[rows, None]
        p = np.clip(1.0 / (1.0 + np.exp(-raw)), 1e-15, 1 - 1e-15)
        y = label[rows, None]
        sums += -(y * np.log(p) + (1 - y) * np.log(1 - p)).sum(axis=0)
    return sums


def _raw_scores(
    frame: pd.DataFrame,
    booster: lgb.Booster,
    features: list[str],
    categories: dict[str, list[str]],
    best: int,
    grouped: list[str],
    hidden: str | None = None,
    calendar: CalendarStart | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labels, raw scores (the trees' with the ``calendar`` offsets added), the
    calibration group columns' codes and the ``hidden`` count's own values (the count
    effect's; empty without) of these rows."""
    matrix = encode_matrix(frame, features, categories)
    counts = np.zeros(0)
    if hidden is not None:  # as fit_calibrated: the trees' and the groups' column missing
        counts = frame[hidden].to_numpy(dtype=float)
        matrix[:, features.index(hidden)] = np.nan
    scores = np.asarray(booster.predict(matrix, num_iteration=best))
    if calendar is not None:
        scores = shifted(scores, calendar.offsets(frame))
    codes = matrix[:, [features.index(c) for c in grouped]]
    return frame[LABEL].to_numpy(dtype=int), scores, codes, counts


def _predict(frame: pd.DataFrame, model: CalibratedModel) -> tuple[np.ndarray, np.ndarray]:
    return frame[LABEL].to_numpy(dtype=int), model.predict(frame.drop(columns=list(ROW_COLUMNS)))


# --- the fit ---------------------------------------------------------------------------


def _early_stopped(
    client: Any,
    booster: lgb.Booster,
    valid: list[Any],
    valid_n: int,
    features: list[str],
    categories: dict[str, list[str]],
    effect: CountEffect | None,
    calendar: CalendarStart | None,
    patience: int,
) -> tuple[lgb.Booster, int, np.ndarray]:
    """A booster boosted for every round, the round early stopping would have stopped it
    at, and the validation rows' loss per round (summed over the workers' parts)."""
    curves = client.gather(
        client.map(
            _loss_curve,
            valid,
            booster=booster,
            leaf_values=leaf_value_table(booster),
            features=features,
            categories=categories,
            effect=effect,
            calendar=calendar,
        )
    )
    curve = np.sum(curves, axis=0) / valid_n
    return booster, early_stopping_iteration(curve, patience), curve


def fit_on_cluster(
    client: Any,
    name: str,
    train: list[Any],
    valid: list[Any],
    test: list[Any],
    features: list[str],
    categorical: list[str],
    params: ModelParams,
    pairs: tuple[PairRate, ...] = (),
    gather_test: bool = False,
    calibration_groups: tuple[str, ...] = (),
    rank_support: tuple[str, tuple[str, ...]] | None = None,
    count_effect: tuple[str, str] | None = None,
    calendar_effects: CalendarSpec | None = None,
) -> ClusterFit:
    """Fit model ``name`` from the parts' rows of each period (lists of futures);
    ``calibration_groups`` as in ``fit_calibrated`` (offsets per group in the map);
    ``rank_support``: (rank column, time columns) clipped to the training rows' range
    per rank, as ``train_models`` does with ``clip_to_rank_support``; ``count_effect``:
    (count input, its rank column) as in ``fit_calibrated``, its regression fitted on
    the cells the workers count (``count_cells``), not on gathered rows;
    ``calendar_effects``: (calendar inputs, rank column, groups, penalty) as in ``fit_calibrated``,
    fitted on the workers' ``calendar_cells``."""
    if name in params.click_rate_prior:
        raise ValueError(
            f"train.model.click_rate_prior: the {name} model's click-rate prior is fitted "
            "in process only (training/models/click_prior.py; measured, not kept: h98)"
        )
    from dask import dataframe as dd
    from lightgbm.dask import DaskLGBMClassifier

    check_monotone_inputs(params)

    fitted_rates = []
    for pair in pairs:
        columns = [pair.left, pair.right, LABEL, INVOICE]
        gathered = client.gather(client.map(_columns, train, names=columns))
        whole = pd.concat(gathered, ignore_index=True)
        left, right = (whole[c].to_numpy(dtype=object) for c in (pair.left, pair.right))
        label, groups = whole[LABEL].to_numpy(dtype=int), whole[INVOICE].to_numpy()
        out_of_fold = pair.out_of_fold(left, right, label, groups)
        bounds = np.cumsum([0, *(len(g) for g in gathered)])
        train = [
            client.submit(_with_column, part, pair.name, out_of_fold[a:b])
            for part, a, b in zip(train, bounds[:-1], bounds[1:], strict=True)
        ]
        fitted = pair.fit(left, right, label)
        valid = client.map(_with_rate, valid, fitted=fitted)
        fitted_rates.append(fitted)

    (train_pos, train_n), (valid_pos, valid_n) = (
        np.sum(client.gather(client.map(_labels, rows)), axis=0) if rows else (0, 0)
        for rows in (train, valid)
    )
    if not (0 < train_pos < train_n) or not (0 < valid_pos < valid_n):
        raise ValueError(
            f"{name} model: the training and validation periods need both outcomes "
            f"(train positives {int(train_pos)}/{int(train_n)}, "
            f"validation positives {int(valid_pos)}/{int(valid_n)})"
        )
    categories = {
        c: sorted(set().union(*client.gather(client.map(_seen, train, column=c))))
        for c in categorical
        if c in features
    }
    positive_weight = max(
        min((train_n - train_pos) / max(train_pos, 1), params.max_positive_weight), 1.0
    )
    grouped = calibration_columns(features, categories, calibration_groups, params)
    effect = None
    if count_effect is not None:
        column, rank = count_effect
        held = tuple(c for c in count_effect_held(name, params) if c in features)
        cells = client.gather(client.map(_cells, train, column=column, rank=rank, held=held))
        effect = fit_cells(
            add_cells(cells), column, features, rank, held=held, prior=params.count_effect_prior
        )
        check_count_effect_map(name, grouped)
    calendar = None
    if calendar_effects is not None and calendar_effects[0]:
        spec = CalendarSpec(*calendar_effects)
        columns, rank = spec.columns, spec.rank
        cells = client.gather(client.map(_calendar_cells, train, columns=columns, rank=rank))
        known = categories.get("inv_decline_category", [])
        effects = fit_calendar_cells(
            add_cells(cells), columns, features, known, rank, spec.groups, spec.penalty,
            spec.pooled_only, spec.shared_penalty, spec.input_penalty,
        )  # fmt: skip
        # the weighted average's log-odds (positives weigh positive_weight)
        average = float(np.log(train_pos * positive_weight / (train_n - train_pos)))
        calendar = CalendarStart(effects, known, average)
    hidden = None if effect is None else effect.column
    sizes = client.gather(client.map(_labels, train))
    kept = [part for part, (_, n) in zip(train, sizes, strict=True) if n > 0]
    meta_x = _encoded(client.submit(_head, kept[0]).result(), features, categories, hidden)
    x = dd.from_delayed(
        client.map(_encoded, kept, features=features, categories=categories, hidden=hidden),
        meta=meta_x,
        verify_meta=False,
    )
    init_score = None
    if effect is not None or calendar is not None:
        init_score = dd.from_delayed(
            client.map(_init_score, kept, effect=effect, calendar=calendar),
            meta=pd.Series(dtype=float),
            verify_meta=False,
        )
    y = dd.from_delayed(client.map(_label, kept), meta=pd.Series(dtype=int), verify_meta=False)
    w = dd.from_delayed(
        client.map(_weight, kept, positive_weight=positive_weight),
        meta=pd.Series(dtype=float),
        verify_meta=False,
    )
    # LightGBM's machines are the workers holding the training rows
    workers = {w for held_by in client.who_has(kept).values() for w in held_by}
    started = time.perf_counter()
    members = []
    for member in range(params.ensemble_size):  # seeds seed, seed + 1, ... as in process
        options = booster_options(params, features)
        options["random_state"] = params.seed + member
        estimator = DaskLGBMClassifier(client=client, **options)
        with warnings.catch_warnings():  # the wrapper always passes n_jobs; Dask sets threads
            warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
            estimator.fit(
                x, y, sample_weight=w, init_score=init_score, categorical_feature=list(categories)
            )
        members.append(
            _early_stopped(
                client, estimator.to_local().booster_, valid, valid_n, features, categories,
                effect, calendar, params.early_stopping_rounds,
            )
        )  # fmt: skip
    fit_seconds = time.perf_counter() - started
    log.info(
        "%s model: %d x %d rounds boosted on %d workers in %.1fs",
        name,
        params.ensemble_size,
        params.num_boost_round,
        len(workers),
        fit_seconds,
    )
    booster = merged_booster([(member, rounds) for member, rounds, _ in members])
    best = booster.num_trees()
    curve = members[0][2]  # the first member's, as the in-process fit records its own
    scored = client.gather(
        client.map(
            _raw_scores,
            valid,
            booster=booster,
            features=features,
            categories=categories,
            best=best,
            grouped=grouped,
            hidden=hidden,
            calendar=calendar,
        )
    )
    scores = np.concatenate([s for _, s, _, _ in scored])
    labels = np.concatenate([y for y, _, _, _ in scored])
    calibrator = Calibrator.fit(params.calibration, scores, labels)
    group_calibrator = fit_group_calibrator(
        scores,
        labels,
        np.concatenate([c for _, _, c, _ in scored]),
        grouped,
        features,
        categories,
        params,
        [] if hidden is None else [hidden],
        None if hidden is None else np.concatenate([v for _, _, _, v in scored])[:, None],
        served_slopes(name, effect, params),
        slope_priors(name, effect, params),
    )
    model = CalibratedModel(
        name=name,
        features=list(features),
        categories=categories,
        booster=booster,
        calibrator=calibrator,
        base_rate=float(train_pos / train_n),
        best_iteration=int(best),
        fit_seconds=fit_seconds,
        history={"valid": {"binary_logloss": curve.tolist()}},
        rates=tuple(fitted_rates),
        group_calibrator=group_calibrator,
        count_effect=effect,
        calendar_effects=() if calendar is None else calendar.effects,
    )
    if rank_support is not None:
        rank, clipped = rank_support
        frames = client.gather(client.map(_columns, train, names=[rank, *clipped]))
        model.support = RankSupport.fit(
            pd.concat(frames, ignore_index=True), model.features, rank, clipped
        )
    if name == "message" and params.template_time_support is not None:
        frames = client.gather(
            client.map(_columns, train, names=["template", "hours_since_failure"])
        )
        model.template_support = TemplateSupport.fit(
            pd.concat(frames, ignore_index=True),
            params.template_time_support,
            params.template_time_support_sides,
            params.template_time_support_width_fraction,
        )
    predicted = client.gather(client.map(_predict, test, model=model))
    y_test = np.concatenate([y for y, _ in predicted]) if predicted else np.zeros(0, int)
    p_test = np.concatenate([p for _, p in predicted]) if predicted else np.zeros(0)
    metrics = binary_metrics(y_test, p_test, model.base_rate)
    metrics["train_rows"] = float(train_n)
    metrics["best_iteration"] = float(best)
    metrics["workers"] = float(len(workers))
    test_rows = None
    if gather_test:
        frames = client.gather(test)
        whole = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        test_rows = Dataset(
            features=whole.drop(columns=list(ROW_COLUMNS)),
            label=whole[LABEL].to_numpy(dtype=int),
            due_at=whole[DUE_AT].reset_index(drop=True),
            invoice_id=whole[INVOICE].to_numpy(),
        )
    return ClusterFit(model, metrics, (y_test, p_test), test_rows)


def _head(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.head(0)
