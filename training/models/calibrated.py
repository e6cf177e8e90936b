"""A LightGBM classifier whose probabilities mean what they say.

Class imbalance is handled by up-weighting positives during boosting (which distorts
raw scores), then a calibration map fitted on the validation period turns scores back
into probabilities. Early stopping watches the validation period's log loss.

The default map is Platt's sigmoid on the score's log-odds: up-weighting positives
shifts log-odds by about the log of the weight, which a sigmoid undoes exactly, and a
strictly increasing map keeps the ranking of candidate times that the schedule search
relies on (isotonic regression, also available, pools scores into flat steps and so
makes many candidate hours tie).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from training.config.params import ModelParams
from training.core.probability import logit
from training.models.calendar_effect import (
    CalendarEffect,
    CalendarSpec,
    fit_calendar_effects,
    total_offsets,
)
from training.models.click_prior import ClickPrior, fit_click_prior
from training.models.compiled import CompiledTrees, compile_booster
from training.models.count_effect import CountEffect, fit_count_effect
from training.models.cross_fit import out_of_fold_scores
from training.models.ensemble import merged_booster
from training.models.group_calibration import GroupCalibrator
from training.models.pair_rates import FittedPairRate, PairRate
from training.models.support import RankSupport
from training.models.template_support import TemplateSupport


def encode(
    frame: pd.DataFrame, features: list[str], categories: dict[str, list[str]]
) -> pd.DataFrame:
    """Select ``features`` and give categorical columns the training categories.

    A value never seen in training becomes missing, which LightGBM handles.
    """
    out = frame.reindex(columns=features).copy()
    for name, values in categories.items():
        out[name] = pd.Categorical(
            out[name].astype(object).where(out[name].notna(), None), categories=values
        )
    numeric = [c for c in features if c not in categories]
    out[numeric] = out[numeric].astype(float)
    return out


@dataclass
class Calibrator:
    """Monotone map from raw booster scores to probabilities."""

    method: str
    model: LogisticRegression | IsotonicRegression

    @classmethod
    def fit(cls, method: str, scores: np.ndarray, label: np.ndarray) -> Calibrator:
        if method == "isotonic":
            model = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            model.fit(scores, label)
        elif method == "sigmoid":
            model = LogisticRegression(C=1e6)
            model.fit(logit(scores)[:, None], label)
        else:
            raise ValueError(f"calibration must be sigmoid or isotonic, not {method!r}")
        return cls(method, model)

    def predict(self, scores: np.ndarray) -> np.ndarray:
        if self.method == "isotonic":
            return self.model.predict(scores)
        # Platt's map written out: sklearn's predict_proba costs ~0.1 ms of input checks
        # per call, and the policy calls it in every round of its search
        slope, intercept = float(self.model.coef_[0, 0]), float(self.model.intercept_[0])
        return 1.0 / (1.0 + np.exp(-(slope * logit(scores) + intercept)))


@lru_cache(maxsize=256)
def _sorted_labels(categories: tuple) -> tuple[np.ndarray, np.ndarray]:
    labels = np.array([str(c) for c in categories], dtype=str)
    order = np.argsort(labels, kind="stable")
    return labels[order], order


@lru_cache(maxsize=256)
def _label_codes(categories: tuple) -> dict[str, int]:
    """The code of each label (the first of equal ones, as the binary search finds it)."""
    codes: dict[str, int] = {}
    for code, category in enumerate(categories):
        codes.setdefault(str(category), code)
    return codes


def category_codes(values: np.ndarray | pd.Series, categories: Sequence) -> np.ndarray:
    """Code of each value in the training ``categories`` (NaN when missing or unseen).

    A binary search over the sorted labels: ``pd.Index.get_indexer`` costs ~0.2 ms per
    call even on a handful of values, and the policy encodes columns in every round."""
    values = np.asarray(values, dtype=object)
    if len(categories) == 0 or len(values) == 0:
        return np.full(len(values), np.nan)
    key = tuple(categories)
    if len(values) == 1 and isinstance(values[0], str):  # one event's label (a lone request)
        code = _label_codes(key).get(values[0])
        return np.array([np.nan if code is None else float(code)])
    labels, order = _sorted_labels(key)
    text = values.astype(str)
    at = np.minimum(np.searchsorted(labels, text), len(labels) - 1)
    found = (labels[at] == text) & ~pd.isna(values)
    return np.where(found, order[at], np.nan)


def encode_matrix(
    frame: pd.DataFrame, features: list[str], categories: dict[str, list[str]]
) -> np.ndarray:
    """The same encoding as :func:`encode` as a float matrix (category codes in the
    training order, NaN when missing or unseen): scoring skips LightGBM's pandas path,
    which costs milliseconds per call on the policy's many small batches."""
    matrix = np.empty((len(frame), len(features)), dtype=np.float64)
    for j, name in enumerate(features):  # one pass per column, not per row
        column = frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index)
        if name in categories:
            matrix[:, j] = category_codes(column.to_numpy(dtype=object), categories[name])
        else:
            matrix[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    return matrix


def _dense_predict(booster: lgb.Booster, data: Any, **kwargs: Any) -> np.ndarray:
    """``booster.predict`` on dense data, which returns an array: LightGBM annotates the
    return for every mode, including the sparse matrices of ``pred_contrib`` on sparse
    input, which these calls never ask for."""
    return cast(np.ndarray, booster.predict(data, **kwargs))


@dataclass
class CalibratedModel:
    """Fitted booster + isotonic calibrator + the columns they expect."""

    name: str
    features: list[str]
    categories: dict[str, list[str]]
    booster: lgb.Booster
    calibrator: Calibrator
    base_rate: float
    best_iteration: int
    fit_seconds: float = 0.0
    history: dict = field(default_factory=dict)
    rates: tuple[FittedPairRate, ...] = ()  # derived inputs (pair_rates.py)
    group_calibrator: GroupCalibrator | None = None  # offsets per group (group_calibration.py)
    support: RankSupport | None = None  # time inputs clipped per rank (support.py)
    # the hours after the failure each message template was sent at (template_support.py)
    template_support: TemplateSupport | None = None
    count_effect: CountEffect | None = None  # a count's learned slope (count_effect.py)
    # log-odds offsets per value of calendar inputs (calendar_effect.py)
    calendar_effects: tuple[CalendarEffect, ...] = ()
    # the click rates' beta prior, applied to every matrix scored (click_prior.py)
    click_prior: ClickPrior | None = None

    def rate_columns(self, column: Callable[[str], np.ndarray]) -> dict[str, np.ndarray]:
        """The derived pair-rate inputs from the rows' columns (``column(name)``)."""
        rates = getattr(self, "rates", ())  # artifacts saved before rates existed
        return {r.name: r.lookup(column(r.spec.left), column(r.spec.right)) for r in rates}

    def compile_trees(self) -> bool:
        """Score with the booster compiled to machine code from now on (compiled.py);
        False when that is impossible (LightGBM keeps scoring)."""
        if getattr(self, "_compiled", None) is None:
            self._compiled = compile_booster(self.booster, self.best_iteration)
        return self._compiled is not None

    @property
    def compiled(self) -> bool:
        return getattr(self, "_compiled", None) is not None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the machine code (it belongs to this process and CPU)."""
        state = dict(self.__dict__)
        state.pop("_compiled", None)
        state.pop("_clips_apart_kept", None)
        return state

    def _booster_scores(
        self, matrix: np.ndarray, threads: int = 1, owned: bool = False
    ) -> np.ndarray:
        prior = getattr(self, "click_prior", None)  # artifacts saved before it
        if prior is not None:
            matrix = prior.apply(matrix if owned else matrix.copy())
            owned = True
        support = getattr(self, "support", None)  # artifacts saved before it
        if support is not None:
            matrix = support.clip(matrix, in_place=owned and self._clips_apart())
        effects = getattr(self, "calendar_effects", ())  # artifacts saved before them
        offsets = total_offsets(effects, matrix) if effects else None
        compiled: CompiledTrees | None = getattr(self, "_compiled", None)
        if compiled is not None:
            scores = compiled.predict(matrix, threads)
        else:
            scores = _dense_predict(
                self.booster, matrix, num_iteration=self.best_iteration, num_threads=threads
            )
        return scores if offsets is None else shifted(scores, offsets)

    def encoded(self, frame: pd.DataFrame) -> np.ndarray:
        """The rows of ``frame`` as the booster's matrix (derived inputs included)."""
        derived = self.rate_columns(lambda name: frame[name].to_numpy(dtype=object))
        if derived:
            frame = frame.assign(**derived)
        return encode_matrix(frame, self.features, self.categories)

    def raw_scores(self, frame: pd.DataFrame) -> np.ndarray:
        return self._booster_scores(self.encoded(frame))

    def calibrate(self, scores: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        """Probabilities of raw ``scores`` of the rows of the encoded ``matrix``."""
        grouped = getattr(self, "group_calibrator", None)  # artifacts saved before it
        if grouped is not None:
            return grouped.predict(scores, matrix)
        return self.calibrator.predict(scores)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated probability per row."""
        if len(frame) == 0:
            return np.zeros(0)
        matrix = self.encoded(frame)
        return self.calibrate(self._booster_scores(matrix), matrix)

    def predict_matrix(
        self, matrix: np.ndarray, threads: int = 1, owned: bool = False
    ) -> np.ndarray:
        """Calibrated probability per row of an already encoded matrix (columns in
        ``features`` order, as :func:`encode_matrix` builds it); ``owned``: the matrix is
        the caller's to change (its time inputs may be clipped where they stand)."""
        if len(matrix) == 0:
            return np.zeros(0)
        return self.calibrate(self._booster_scores(matrix, threads, owned), matrix)

    def _clips_apart(self) -> bool:
        """The support's clipped columns are none the calibration map reads (the matrix
        may then be clipped in place before the map sees it); worked out once, kept."""
        apart = self.__dict__.get("_clips_apart_kept")
        if apart is None:
            support = getattr(self, "support", None)
            grouped = getattr(self, "group_calibrator", None)
            read = set() if grouped is None else {*grouped.columns, *getattr(grouped, "slopes", ())}
            apart = support is None or not read & set(support.positions)
            self.__dict__["_clips_apart_kept"] = apart
        return apart


def shifted(p: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Probabilities ``p`` moved by log-odds ``offsets``."""
    return 1.0 / (1.0 + np.exp(-(logit(p) + offsets)))


def _weights(label: np.ndarray, max_weight: float) -> np.ndarray:
    positives = max(int(label.sum()), 1)
    ratio = min((len(label) - positives) / positives, max_weight)
    return np.where(label == 1, max(ratio, 1.0), 1.0)


def monotone_constraints(features: list[str], params: ModelParams) -> list[int]:
    """LightGBM's constraint per input: 1 (the estimate never falls as it rises) for the
    ``params.monotone_increasing`` inputs, 0 (free) for the others."""
    rising = set(params.monotone_increasing)
    return [1 if name in rising else 0 for name in features]


def monotone_options(features: list[str], params: ModelParams) -> dict[str, list[int]]:
    """The booster option, only when some input is constrained: an all-zero list still
    moves LightGBM's trees a little, so an unconstrained model trains as without it."""
    constraints = monotone_constraints(features, params)
    return {"monotone_constraints": constraints} if any(constraints) else {}


def interaction_constraints(features: list[str], params: ModelParams) -> list[list[int]]:
    """LightGBM's allowed sets of input positions for ``params.additive_groups``: per group
    of inputs this model has, that group with every input in no group (a branch may mix
    one group with the free inputs, never two groups); empty when fewer than two groups
    are present (nothing to keep apart)."""
    grouped = [[f for f in features if f in set(g)] for g in params.additive_groups]
    present = [g for g in grouped if g]
    if len(present) < 2:
        return []
    taken = {f for g in present for f in g}
    free = [f for f in features if f not in taken]
    position = {f: i for i, f in enumerate(features)}
    return [sorted(position[f] for f in [*g, *free]) for g in present]


def booster_constraints(features: list[str], params: ModelParams) -> dict[str, Any]:
    """The monotone and interaction constraint options the booster gets, each only when
    it constrains something (an all-zero or empty list still moves LightGBM's trees)."""
    constraints = interaction_constraints(features, params)
    options: dict[str, Any] = dict(monotone_options(features, params))
    if constraints:
        options["interaction_constraints"] = constraints
    return options


def ensemble_params(booster_params: dict[str, Any], params: ModelParams) -> list[dict[str, Any]]:
    """The settings of each booster of the ensemble (``params.ensemble_size``): the first
    exactly ``booster_params``, the others with the seeds that follow."""
    return [
        booster_params if i == 0 else {**booster_params, "seed": params.seed + i}
        for i in range(params.ensemble_size)
    ]


def _boost(
    booster_params: dict[str, Any],
    train_data: lgb.Dataset,
    valid_data: lgb.Dataset,
    params: ModelParams,
    evals: dict,
) -> tuple[lgb.Booster, int]:
    """One booster early-stopped on the validation rows, with its number of rounds."""
    booster = lgb.train(
        booster_params,
        train_data,
        num_boost_round=params.num_boost_round,
        valid_sets=[valid_data],
        valid_names=["valid"],
        callbacks=[
            lgb.early_stopping(params.early_stopping_rounds, verbose=False),
            lgb.record_evaluation(evals),
        ],
    )
    return booster, int(booster.best_iteration or params.num_boost_round)


def _merged(members: list[tuple[lgb.Booster, int]]) -> tuple[lgb.Booster, int]:
    booster = merged_booster(members)
    return booster, booster.num_trees()


def fit_calibrated(
    name: str,
    train: tuple[pd.DataFrame, np.ndarray],
    valid: tuple[pd.DataFrame, np.ndarray],
    features: list[str],
    categorical: list[str],
    params: ModelParams,
    pairs: tuple[PairRate, ...] = (),
    groups: np.ndarray | None = None,
    calibration_groups: tuple[str, ...] = (),
    count_effect: tuple[str, str] | None = None,
    row_weight: np.ndarray | None = None,
    calendar_effects: CalendarSpec | None = None,
) -> CalibratedModel:
    """Boost on ``train`` with early stopping on ``valid``, calibrate on ``valid`` and
    (with ``params.calibration_folds`` and ``groups``) the training rows' out-of-fold
    scores (cross_fit.py); ``calibration_groups``: categorical features whose values get
    their own shrunk offset in the map, and count features (the dunning state) whose
    buckets 0 .. ``params.calibration_dunning_steps - 1`` (and more) get one
    (group_calibration.py).

    ``pairs``: pair-rate inputs derived from the label (out of fold on ``train``, by
    ``groups``, one per training row; from all of ``train`` on ``valid`` and later).
    ``count_effect``: (count input, its rank column): the count is no input of the
    trees; its log-odds slope, fitted with the dunning timing held fixed, is the offset
    the trees are fitted on top of, and the calibration map fits it again beside the
    out-of-fold scores (count_effect.py). ``row_weight``: a weight per training row
    (propensity_weights.py) multiplied into the boosting's weights, of the out-of-fold
    boosters as well; the calibration map, the pair rates and the count effect stay
    unweighted, so the probabilities are calibrated on the rows as logged.
    ``calendar_effects``: (calendar inputs, the rank column, their groups, the L2
    penalty or None: chosen by the evidence): log-odds
    offsets per value of each input, fitted with the dunning timing held fixed, under
    the trees and added to their scores (calendar_effect.py)."""
    import time

    x_train, y_train = train
    x_valid, y_valid = valid
    fitted_rates = []
    for pair in pairs:
        left, right = (x_train[c].to_numpy(dtype=object) for c in (pair.left, pair.right))
        if groups is None:
            raise ValueError(f"{name} model: pair rates need the training rows' groups")
        x_train = x_train.assign(**{pair.name: pair.out_of_fold(left, right, y_train, groups)})
        fitted = pair.fit(left, right, y_train)
        x_valid = x_valid.assign(
            **{
                pair.name: fitted.lookup(
                    x_valid[pair.left].to_numpy(dtype=object),
                    x_valid[pair.right].to_numpy(dtype=object),
                )
            }
        )
        fitted_rates.append(fitted)
    if len(np.unique(y_train)) < 2 or len(np.unique(y_valid)) < 2:
        raise ValueError(
            f"{name} model: the training and validation periods need both outcomes "
            f"(train positives {int(y_train.sum())}/{len(y_train)}, "
            f"validation positives {int(y_valid.sum())}/{len(y_valid)})"
        )
    categories = {
        c: sorted(pd.Series(x_train[c]).dropna().astype(str).unique().tolist())
        for c in categorical
        if c in features
    }
    click_prior = None
    if name in params.click_rate_prior:
        click_prior = fit_click_prior(x_train, list(features), categories)
    if click_prior is not None:
        x_train, x_valid = click_prior.apply_frame(x_train), click_prior.apply_frame(x_valid)
    x_encoded = encode(x_train, features, categories)
    valid_encoded = encode(x_valid, features, categories)
    weight = _weights(y_train, params.max_positive_weight)
    if row_weight is not None:
        weight = weight * row_weight
    effect = None
    train_offsets = valid_offsets = None
    if count_effect is not None:
        # checked by fit.py against the model's inputs; a caller's own feature list may
        # lack them (then there is nothing to hold)
        held = tuple(c for c in params.count_effect_held_fixed.get(name, ()) if c in features)
        effect = fit_count_effect(
            x_train,
            y_train,
            count_effect[0],
            features,
            count_effect[1],
            held=held,
            prior=params.count_effect_prior,
        )
        train_offsets = effect.offsets(x_train[effect.column].to_numpy(dtype=float))
        valid_offsets = effect.offsets(x_valid[effect.column].to_numpy(dtype=float))
        # the count acts through its offset only: left to the trees as well, they undo
        # the offset through the time inputs it is confounded with (a missing column
        # everywhere is one LightGBM never splits on)
        x_encoded[effect.column] = np.nan
        valid_encoded[effect.column] = np.nan
        check_count_effect_map(
            name, calibration_columns(features, categories, calibration_groups, params)
        )
    calendar: tuple[CalendarEffect, ...] = ()
    train_calendar = valid_calendar = None
    if calendar_effects is not None and calendar_effects[0]:
        spec = CalendarSpec(*calendar_effects)
        calendar = fit_calendar_effects(
            x_train,
            y_train,
            list(spec.columns),
            features,
            categories.get("inv_decline_category", []),
            spec.rank,
            spec.groups,
            ridge=spec.penalty,
            pooled_only=spec.pooled_only,
            shared_penalty=spec.shared_penalty,
            input_ridge=spec.input_penalty,
        )
        train_calendar = _calendar_offsets(calendar, x_train, categories)
        valid_calendar = _calendar_offsets(calendar, x_valid, categories)
        # boosting from the weighted average as without offsets (LightGBM skips it when
        # given an init_score): the trees' scores leave the constant out, the map takes it
        average = float(logit(np.array([np.average(y_train, weights=weight)]))[0])
        train_offsets = train_calendar + average + (0.0 if train_offsets is None else train_offsets)
        valid_offsets = valid_calendar + average + (0.0 if valid_offsets is None else valid_offsets)
    train_data = lgb.Dataset(
        x_encoded,
        y_train,
        weight=weight,
        init_score=train_offsets,
        categorical_feature=list(categories),
        free_raw_data=True,
    )
    valid_data = lgb.Dataset(
        valid_encoded,
        y_valid,
        init_score=valid_offsets,
        reference=train_data,
    )
    booster_params = {
        "objective": "binary",
        "metric": "binary_logloss",
        "verbosity": -1,
        "seed": params.seed,
        "num_threads": params.num_threads,
        "num_leaves": params.num_leaves,
        "learning_rate": params.learning_rate,
        "min_data_in_leaf": params.min_data_in_leaf,
        "feature_fraction": params.feature_fraction,
        "bagging_fraction": params.bagging_fraction,
        "bagging_freq": params.bagging_freq,
        "lambda_l2": params.lambda_l2,
        "cat_smooth": params.cat_smooth,
        **booster_constraints(features, params),
        "deterministic": True,
        "force_row_wise": True,
    }
    evals: dict = {}
    started = time.perf_counter()
    members = [
        _boost(member_params, train_data, valid_data, params, evals if i == 0 else {})
        for i, member_params in enumerate(ensemble_params(booster_params, params))
    ]
    fit_seconds = time.perf_counter() - started
    booster, best = members[0] if len(members) == 1 else _merged(members)
    raw_valid = _dense_predict(booster, valid_encoded, num_iteration=best)
    if valid_calendar is not None:
        raw_valid = shifted(raw_valid, valid_calendar)
    scores, labels, rows = raw_valid, y_valid, [valid_encoded]
    slope_rows = [x_valid]  # the rows' own counts (the encoded ones hide the effect's)
    if params.calibration_folds > 1 and groups is not None:
        # an ensemble's out-of-fold score: the mean of its members', each with its own
        # settings and rounds, as the merged booster averages them
        out_of_fold = np.mean(
            [
                out_of_fold_scores(
                    member_params,
                    x_encoded,
                    y_train,
                    weight,
                    list(categories),
                    groups,
                    params.calibration_folds,
                    rounds,
                    train_offsets,
                )
                for member_params, (_, rounds) in zip(
                    ensemble_params(booster_params, params), members, strict=True
                )
            ],
            axis=0,
        )
        if train_calendar is not None:
            out_of_fold = shifted(out_of_fold, train_calendar)
        known = ~np.isnan(out_of_fold)
        scores = np.concatenate([out_of_fold[known], raw_valid])
        labels = np.concatenate([y_train[known], y_valid])
        rows = [x_encoded[known], valid_encoded]
        slope_rows = [x_train[known], x_valid]
    calibrator = Calibrator.fit(params.calibration, scores, labels)
    grouped = calibration_columns(features, categories, calibration_groups, params)

    def values(part: pd.DataFrame, column: str) -> np.ndarray:
        if column in categories:
            codes = part[column].cat.codes.to_numpy(dtype=float)
            return np.where(codes < 0, np.nan, codes)
        return part[column].to_numpy(dtype=float)

    codes = [np.column_stack([values(p, c) for c in grouped]) for p in rows] if grouped else []
    group_calibrator = fit_group_calibrator(
        scores,
        labels,
        np.concatenate(codes) if codes else np.empty((len(scores), 0)),
        grouped,
        features,
        categories,
        params,
        [] if effect is None else [effect.column],
        None
        if effect is None
        else np.concatenate([p[effect.column].to_numpy(dtype=float) for p in slope_rows])[:, None],
        served_slopes(name, effect, params),
        slope_priors(name, effect, params),
    )
    return CalibratedModel(
        name=name,
        features=list(features),
        categories=categories,
        booster=booster,
        calibrator=calibrator,
        base_rate=float(np.mean(y_train)),
        best_iteration=int(best),
        fit_seconds=fit_seconds,
        history=evals,
        rates=tuple(fitted_rates),
        group_calibrator=group_calibrator,
        count_effect=effect,
        calendar_effects=calendar,
        click_prior=click_prior,
    )


def _calendar_offsets(
    effects: tuple[CalendarEffect, ...], rows: pd.DataFrame, categories: dict[str, list[str]]
) -> np.ndarray:
    """The summed calendar offsets of training or validation ``rows`` (a frame)."""
    codes = category_codes(
        rows["inv_decline_category"].to_numpy(dtype=object),
        categories.get("inv_decline_category", []),
    )
    out = np.zeros(len(rows))
    for e in effects:
        out += e.offsets(rows[e.column].to_numpy(dtype=float), codes)
    return out


def served_slopes(
    name: str, effect: CountEffect | None, params: ModelParams
) -> tuple[float, ...] | None:
    """The count effect's first-stage slope as the map's fixed slope when
    ``params.count_effect_fixed_slope`` names ``name`` (None: the map fits its own)."""
    if effect is None or name not in params.count_effect_fixed_slope:
        return None
    return (effect.per_unit,)


def slope_priors(
    name: str, effect: CountEffect | None, params: ModelParams
) -> tuple[tuple[float, float], ...] | None:
    """The count effect's first-stage estimate and its variance (the squared standard
    error times ``params.count_effect_map_prior_scale``) as the prior of the map's own
    slope when ``params.count_effect_map_prior`` names ``name`` (None: the map's L2
    penalty alone; a slope fixed by :func:`served_slopes` is not refitted at all)."""
    if effect is None or name not in params.count_effect_map_prior:
        return None
    variance = effect.standard_error**2 * params.count_effect_map_prior_scale
    return ((effect.estimate, variance),)


def check_count_effect_map(name: str, grouped: list[str]) -> None:
    """Refuse a count effect without the map's group offsets (``grouped``: the
    :func:`calibration_columns`), which fit its slope again beside the scores."""
    if not grouped:
        raise ValueError(
            f"{name} model: a count effect needs the calibration map with group offsets "
            "(calibration: sigmoid, calibration_group_strength > 0)"
        )


def calibration_columns(
    features: list[str],
    categories: dict[str, list[str]],
    calibration_groups: tuple[str, ...],
    params: ModelParams,
) -> list[str]:
    """The group columns the map gets offsets for: the categorical ones, then the counts
    (the dunning state) when bucketed at all; none unless the map is the sigmoid with a
    positive ``calibration_group_strength``."""
    if params.calibration != "sigmoid" or params.calibration_group_strength <= 0:
        return []
    steps = params.calibration_dunning_steps
    return [c for c in calibration_groups if c in categories] + [
        c for c in calibration_groups if c in features and c not in categories and steps > 1
    ]


def fit_group_calibrator(
    scores: np.ndarray,
    labels: np.ndarray,
    codes: np.ndarray,
    grouped: list[str],
    features: list[str],
    categories: dict[str, list[str]],
    params: ModelParams,
    slopes: list[str] | None = None,
    slope_inputs: np.ndarray | None = None,
    fixed_slopes: tuple[float, ...] | None = None,
    priors: tuple[tuple[float, float], ...] | None = None,
) -> GroupCalibrator | None:
    """The map with offsets per value of the ``grouped`` columns (from
    :func:`calibration_columns`; None when there are none); ``codes``: the rows' values in
    them (n x len(grouped): category codes in the training order, NaN when missing or
    unseen, or counts), as :func:`encode_matrix` gives them; ``slopes``: count inputs
    with one log-odds slope each in the map, ``slope_inputs`` their values (n x
    len(slopes)), ``fixed_slopes`` their slopes when given rather than fitted (the count
    effect's first stage, ``params.count_effect_fixed_slope``), ``priors`` else their
    Gaussian priors (mean, variance; :func:`slope_priors`). One code path for the
    in-process and the cluster fit."""
    if not grouped:
        return None
    steps = params.calibration_dunning_steps
    return GroupCalibrator.fit(
        scores,
        labels,
        codes,
        tuple(features.index(c) for c in grouped),
        tuple(len(categories[c]) if c in categories else steps for c in grouped),
        params.calibration_group_strength,
        tuple(c not in categories for c in grouped),
        tuple(features.index(c) for c in slopes or ()),
        slope_inputs,
        fixed_slopes,
        priors,
    )
