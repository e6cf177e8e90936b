"""Every pipeline knob, typed, in one place.

``params.yaml`` at the project root holds one section per DVC stage; the defaults below
are the embedded defaults used when a key (or the whole file) is absent, so every
``smartretry`` command also works outside the repository. ``tests/test_params.py``
keeps ``params.yaml`` and these defaults in step.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from training.config.policy import PolicyConfig
from training.config.retry_limits import RetryLimits

DEFAULT_PARAMS_PATH = Path("params.yaml")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SimulateParams(Section):
    invoices: int = Field(100_000, gt=0, description="invoices (dunning cycles) to simulate")
    seed: int = 7
    format: str = Field("parquet", pattern="^(parquet|csv)$")
    start: str = Field("2024-01-01", description="first invoice due date (UTC)")
    months: int = Field(24, gt=0, description="span of invoice due dates")
    window_days: int = Field(14, gt=0, description="dunning window the world resolves in")
    world: str = Field(
        "default", description="which world of the zoo to simulate (docs/simulator.md)"
    )


class ValidateParams(Section):
    max_reject_share: float = Field(
        0.05, ge=0, le=1, description="fail when more than this share of rows is rejected"
    )


class ModelParams(Section):
    """LightGBM and calibration knobs, shared by the retry, message and self-cure models."""

    num_leaves: int = Field(7, ge=2)
    learning_rate: float = Field(0.05, gt=0)
    min_data_in_leaf: int = Field(100, ge=1)
    feature_fraction: float = Field(0.9, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    bagging_freq: int = Field(1, ge=0)
    lambda_l2: float = Field(10.0, ge=0)
    cat_smooth: float = Field(10.0, ge=0)
    num_boost_round: int = Field(400, ge=1, description="upper bound; early stopping picks")
    early_stopping_rounds: int = Field(30, ge=1)
    max_positive_weight: float = Field(
        2.0,
        ge=1,
        description="class imbalance: positives weighted by min(neg/pos, this); calibration "
        "undoes the shift (heavier weights overfit: docs/training.md)",
    )
    calibration: str = Field("sigmoid", pattern="^(sigmoid|isotonic)$")
    calibration_folds: int = Field(
        3,
        ge=0,
        description="calibrate on the validation period plus the training rows' scores "
        "from this many out-of-fold boosters (0 or 1: the validation period alone)",
    )
    calibration_group_strength: float = Field(
        1.0,
        ge=0,
        description="inverse L2 penalty of the calibration offsets per decline category and "
        "template (sklearn's C; 0: one map for all rows)",
    )
    calibration_dunning_steps: int = Field(
        3,
        ge=0,
        description="calibration offsets by dunning state: retries (retry model) or messages "
        "(message model) before the row, bucketed 0, 1, ..., this minus one or more "
        "(0 or 1: none)",
    )
    clip_to_rank_support: bool = Field(
        True,
        description="clip the time inputs of retry and message rows to the range the "
        "training rows of the same rank cover (support.py): no extrapolation of one "
        "rank's offsets through splits learned on later ranks",
    )
    template_time_support: float | None = Field(
        24.0,
        ge=0,
        description="the message search leaves out a template at hours after the failure "
        "more than this many hours outside the range its training rows cover "
        "(template_support.py; None: off): the models' value there is extrapolation "
        "(night_owls at seed 8: final notices days before any logged one, valued 0.18 "
        "where they recover 0.11)",
    )
    template_time_support_sides: Literal["both", "lower"] = Field(
        "lower",
        description="which bounds of template_time_support apply: both, or only the "
        "lower one (a template never searched more than the margin before its first "
        "logged hour; later than its last left open). Measured at 24 h alone, not kept: "
        "other_team/7 74.9 -> 70.3 with both, 73.2 with lower, other_team/8 72.5 -> 70.4 "
        "with lower (its update requests are logged only from 48 h), night_owls/8 "
        "71.9 -> 75.9 with lower",
    )
    template_time_support_width_fraction: float = Field(
        0.75,
        ge=0,
        description="template_time_support's margin per template: the larger of the "
        "margin in hours and this fraction of the width of the template's logged band "
        "(0: the margin alone). At 24 h, lower side, 0.75: other_team's update requests "
        "(logged 48-129 h) open from the failure, night_owls' final notices (121-250 h) "
        "from 24 h; night_owls/8 71.9 -> 72.7 (calibration 0.033 -> 0.023), other_team "
        "unchanged (h96)",
    )
    excluded_inputs: tuple[str, ...] = Field(
        (),
        description="inputs left out of every model that has them (measured, not kept: "
        "cust_observed_days, which grows with calendar time and carried the training "
        "period's trend onto strict_logging's held-out period; calibration by decile "
        "0.034 -> 0.025 there, the captured share 1.3-2.7 points lower; docs/evaluation.md)",
    )
    observed_share_input: bool = Field(
        True,
        description="the models read cust_observed_share (the share of the tenure the "
        "export observes, in [0, 1]) in place of cust_observed_days (days since signup or "
        "the export's start, which grows with calendar time); both stay among the features. "
        "Through the zoo calibration by decile 0.034/0.012/0.031 -> 0.024/0.011/0.030, "
        "captured -1.0/+0.1/-0.8 (docs/evaluation.md, h79)",
    )
    propensity_weight_clip: float = Field(
        1.0,
        ge=1,
        description="retry and message rows weighted in the boosting by min(1 / logged "
        "propensity, this), rescaled to mean 1 (a row without one: propensity 1), so the "
        "explored rows count more; the calibration map stays unweighted "
        "(propensity_weights.py; 1: no weighting)",
    )
    monotone_increasing: list[str] = Field(
        ["hour_click_rate", "channel_click_rate"],
        description="inputs whose estimate may only rise with them, in every model that has "
        "them (LightGBM's monotone constraints): a direction that holds for people in general, "
        "never one read off a world",
    )
    additive_groups: list[list[str]] = Field(
        [],
        description="groups of inputs that never share a tree branch with another group's "
        "inputs (LightGBM's interaction constraints; the inputs in no group may meet any): "
        "each group's effect is learned from all rows as a separate additive term in logit "
        "space, e.g. the time since the failure apart from the retry rank",
    )
    count_effects: dict[str, str] = Field(
        {"retry": "messages_before", "message": "active_hour_closeness"},
        description="model -> a numeric input whose effect gets a log-odds slope fitted "
        "with the rank, the time since the failure and the decline category held fixed, "
        "a fixed offset under the trees (count_effect.py): what one more message does to "
        "a later retry, which the trees credit to the time inputs; how much closer to the "
        "customer's active hour a message is sent, which the trees under-fit",
    )
    count_effect_held_fixed: dict[str, list[str]] = Field(
        {"retry": ["update_requests_before"]},
        description="model -> numeric inputs held fixed as well in count_effects' "
        "regression (one indicator per value, capped at 3), for the dunning state the "
        "count is confounded with: the logged plans that send more messages early send "
        "more update requests, which fix cards (docs/evaluation.md, h82: fatigue's "
        "first-stage slope -0.110 -> -0.130 per message; zoo +0.55 captured on average)",
    )
    click_rate_prior: tuple[str, ...] = Field(
        (),
        description="models whose inputs cust_email_click_rate, cust_sms_click_rate and "
        "channel_click_rate are shrunk towards a beta prior per channel fitted on the "
        "training rows by the method of moments (empirical Bayes; the posterior mean "
        "(clicks + m p) / (sends + m), click_prior.py), e.g. [message]. Measured, not "
        "kept: zoo at 20,000 invoices seed 7 average 71.50 -> 71.65, fatigue 60.5 -> 63.0, "
        "night_owls 77.6 -> 76.0, both reversed at seed 8 (docs/evaluation.md, h98)",
    )
    count_effect_fixed_slope: tuple[str, ...] = Field(
        (),
        description="models whose calibration map serves their count effect's first-stage "
        "slope (timing held fixed, shrunk by count_effect_prior) as a fixed term, without "
        "a slope of its own refitted beside the trees' scores (group_calibration.py). "
        "Measured, not kept: with the two below, fatigue's served slope -0.092 -> -0.130, "
        "zoo fatigue 63.2 -> 63.5 but strict_logging 62.2 -> 33.0 (docs/evaluation.md, h85)",
    )
    count_effect_map_prior: tuple[str, ...] = Field(
        (),
        description="models whose calibration map refits its count slope with the first "
        "stage's estimate as a Gaussian prior (mean: the estimate, unshrunk; variance: its "
        "squared standard error times count_effect_map_prior_scale) beside the map's L2 "
        "penalty: the first stage weighs as far as the logging varies the count at a "
        "given timing (group_calibration.py; ignored for a model in "
        "count_effect_fixed_slope, whose slope is fixed). Measured, not kept: fatigue's "
        "served slope -0.084 -> -0.096, zoo fatigue 64.0 -> 64.3 but strict_logging "
        "62.2 -> 60.2 (docs/evaluation.md, h89)",
    )
    count_effect_map_prior_scale: float = Field(
        1.0,
        gt=0,
        description="the prior's variance is the first stage's squared standard error "
        "times this: above 1 trusts the first stage less (its bias towards zero under "
        "confounded plans is not in its standard error)",
    )
    count_effect_excluded_inputs: dict[str, list[str]] = Field(
        {},
        description="model -> inputs left out of its trees when it has a count effect: the "
        "time since the last message, through which the retry trees can carry the count "
        "of messages the offset is meant to hold (docs/evaluation.md, h85)",
    )
    count_effect_prior: float = Field(
        1.0,
        ge=0,
        description="the count effect's slope is its estimate times z^2 / (this + z^2), z "
        "the estimate over its standard error: 1 halves a slope one standard error from "
        "zero, 0 serves the estimate unshrunk (count_effect.py)",
    )
    calendar_effects: dict[str, list[str]] = Field(
        {"retry": ["local_weekday"]},
        description="model -> integer-valued calendar inputs (the local weekday) whose every "
        "value gets a log-odds offset, pooled and per decline family or category "
        "(calendar_effect_groups), fitted with the "
        "rank, the time since the failure and the decline category held fixed and shrunk "
        "(calendar_effect.py): an offset under the trees, which under-fit a weekday's "
        "effect on retries (docs/evaluation.md)",
    )
    calendar_effect_groups: Literal["family", "category"] = Field(
        "family",
        description="what the calendar offsets are fitted per beside the pooled ones: each "
        "decline family (the categories of a family share one, shrunk toward the pool) or "
        "each decline category (most too rare for their own: noisy)",
    )
    calendar_effect_penalty: float | None = Field(
        10.0,
        gt=0,
        description="the L2 penalty on every calendar offset, or null: one per block (an "
        "input's pooled offsets, each group's) chosen from the training rows by the "
        "evidence, i.e. how far the values' offsets differ beyond their standard errors "
        "(calendar_effect.py; through the zoo, h71: better calibrated, a little less "
        "recovered: measured, not kept)",
    )
    calendar_effect_input_penalty: dict[str, float | None] = Field(
        {},
        description="calendar input -> its own calendar_effect_penalty (a number, or null: "
        "chosen by the evidence), e.g. the weekday's fixed and the day of the month's chosen",
    )
    calendar_effect_pooled_only: list[str] = Field(
        [],
        description="calendar inputs whose offsets are pooled only, none per decline family "
        "or category (31 days of the month x 7 families are many coefficients)",
    )
    calendar_effect_shared_penalty: bool = Field(
        False,
        description="with a penalty chosen by the evidence: one for all groups' offsets of an "
        "input (their deviations from the pooled ones judged together), not one per group "
        "(h77, with local_day_of_month beside the weekday: through the zoo flat on average, "
        "strict_logging lower: measured, not kept)",
    )
    num_threads: int = Field(2, ge=1)
    seed: int = 7
    ensemble_size: int = Field(
        3,
        ge=1,
        description="boosters per model, fitted with the seeds seed, seed + 1, ... (bagging "
        "and feature sampling drawn differently), each early-stopped on the validation "
        "period, averaged in log-odds as one booster (training/models/ensemble.py); 1: one "
        "booster. 3 against 1, zoo at 20,000 invoices: mean captured 71.6 -> 72.3 at seed 7 "
        "(fatigue 60.5 -> 65.5; docs/evaluation.md). The in-process fit only: the cluster "
        "fit refuses more than 1",
    )


class GainShrinkageParams(Section):
    """Cross-fitted shrinkage of the searched schedules' gains (training/artifact/gain_shrinkage.py)."""

    events: int = Field(
        1000,
        ge=0,
        description="validation-period events the two customer halves' policies choose for "
        "(0: no shrinkage, the reported probability is the models' own)",
    )
    from_quantile: float = Field(
        0.75,
        ge=0,
        lt=1,
        description="shrink only the part of a searched gain above this quantile of the gains "
        "the halves' policies promised (0: every gain, in proportion)",
    )


class CalendarContrastParams(Section):
    """The calendar's steepness in the reported probability (training/artifact/calendar_contrast.py)."""

    shift_days: tuple[int, ...] = Field(
        (3, 7),
        description="a retry's calendar contrast: its log-odds against the mean with its date "
        "moved by each of these days either way (empty: not fitted, no correction at all)",
    )
    retry_shift_hours: tuple[float, ...] = Field(
        (8.0,),
        description="a retry's contrast also moves its time by each of these hours either way "
        "(its local hour: declines that clear within hours, the search's hourly choice)",
    )
    message_shift_hours: tuple[float, ...] = Field(
        (4.0,),
        description="a message's contrast: its log-odds against the mean with its send time "
        "moved by each of these hours either way (empty: messages not corrected)",
    )
    events: int = Field(
        10000,
        ge=0,
        description="validation-period events whose logged attempts the steepness is fitted on",
    )
    min_family_rows: int = Field(
        200,
        ge=0,
        description="a decline family's rows of a kind needed to fit its own steepness "
        "(shrunk to the pooled one by a standard error; 0: one steepness per kind)",
    )
    raise_retry_families: bool = Field(
        True,
        description="a decline family's retry slope may also rise above the pooled one, by "
        "its excess beyond a standard error, where the pooled slope is applied (else lowered "
        "only)",
    )
    pooled_gate: bool = Field(
        False,
        description="apply a kind's slopes only where its pooled fit lies more than one "
        "standard error above 0 (else each part's fit floored at 0 is applied)",
    )
    raise_retry_at_most: float | None = Field(
        3.0,
        ge=1.0,
        description="a decline family's raised retry slope is at most this multiple of the "
        "pooled slope of its part (null: unbounded)",
    )


class ChosenLevelParams(Section):
    """The models' level where the search chooses, per decline family, in the reported
    probability (training/artifact/chosen_level.py)."""

    enabled: bool = Field(
        True, description="fit and apply a log-odds level per kind and decline family"
    )
    kinds: tuple[Literal["retry", "message"], ...] = Field(
        ("retry",),
        description="the kinds of rows a level is fitted for (messages: on strict_logging "
        "a soft-issuer message level raised an over-valued family, offline)",
    )
    retry_window_hours: float = Field(
        24.0,
        ge=0,
        description="a logged retry coincides with a planned one of its rank within this "
        "(a day: the plan's date, about four times the rows of 6 h; on paydays at 20,000 "
        "invoices insufficient funds 0.14 +- 0.22 on 180 rows at 6 h, 0.32 +- 0.11 on 710)",
    )
    message_window_hours: float = Field(
        3.0,
        ge=0,
        description="a logged message coincides with a planned one of its rank and template "
        "within this",
    )
    min_rows: int = Field(
        50, ge=1, description="coinciding rows a (kind, decline family) needs for a level"
    )
    lower: bool = Field(
        False,
        description="apply a level below 0 too (off: the gain shrinkage already takes the "
        "search's optimism off its gains; on the default world at 20,000 invoices a soft "
        "issuer level of -0.28 took calibration by decile 0.023 -> 0.028)",
    )
    threshold_se: float = Field(
        0.0,
        ge=0,
        description="a fitted level is moved towards 0 by this many of its standard errors "
        "(1 until h86: a fit within its noise was dropped, and along the chosen schedules "
        "the models are low far more often than high; 0: the fit, where above 0)",
    )


class ActiveHourParams(Section):
    """How the customer's active hour (``cust_active_hour``) weighs its activity events."""

    weighting: Literal["equal", "learned"] = Field(
        "learned",
        description="equal: every activity event (customer payments, opens, clicks) counts "
        "once in the circular mean; learned: each event weighs by how well the hours of "
        "its kind of event, that many hours after a send, predict later clicks in the "
        "history (training/features/active_hour.py). Learned, zoo at 20,000 invoices seed "
        "7: average captured 69.7 -> 71.5 over the eight worlds, none lower beyond the "
        "noise (docs/evaluation.md, h95); with h96's template bounds, night_owls seed 8 "
        "72.7 -> 75.1, other_team seed 7 75.1 -> 77.2",
    )
    weight_power: float = Field(
        2.0,
        gt=0,
        description="learned: a cell's weight is its slope over the largest, to this power "
        "(on the default world at 20,000 invoices the estimate's mean error at the test "
        "period's failures: equal 1.92 h, power 1 1.47 h, power 2 1.34 h)",
    )


class FeatureParams(Section):
    active_hour: ActiveHourParams = ActiveHourParams()


class TrainParams(Section):
    window_days: int = Field(14, gt=0, description="dunning window the history resolves in")
    valid_share: float = Field(
        0.15, gt=0, lt=0.5, description="time share for early stopping + calibration"
    )
    test_share: float = Field(
        0.2, gt=0, lt=0.5, description="latest time share held out for evaluation"
    )
    embargo_days: int = Field(
        14, ge=0, description="drop training invoices whose window runs into the next period"
    )
    response_hours: float = Field(
        2.0, gt=0, description="a payment this soon after a click is the message's"
    )
    attribution_hours: float = Field(
        48.0, gt=0, description="without click tracking: last touch within"
    )
    features: FeatureParams = FeatureParams()
    model: ModelParams = ModelParams()
    gain_shrinkage: GainShrinkageParams = GainShrinkageParams()
    calendar_contrast: CalendarContrastParams = CalendarContrastParams()
    chosen_level: ChosenLevelParams = ChosenLevelParams()
    registered_model: str = "smart-retry"
    experiment: str = "smartretry"


class EvaluateParams(Section):
    max_invoices: int = Field(
        3000, gt=0, description="held-out invoices sampled for the simulator-truth comparison"
    )
    max_ope_invoices: int = Field(
        10000, gt=0, description="held-out invoices used for the off-policy estimates"
    )
    bootstrap: int = Field(1000, ge=100, description="bootstrap replicates for the intervals")
    oracle_grid_hours: int = Field(
        2, ge=1, description="the oracle's retry grid (finer than the policy's)"
    )
    min_plan_support: int = Field(
        20, ge=1, description="complete logs a plan needs to enter the menu"
    )
    min_group: int = Field(30, ge=1, description="smallest group shown in a breakdown")
    timing_parts_per_day: int = Field(
        4, ge=1, le=24, description="time buckets per day of the first-retry off-policy estimate"
    )
    timing_smoothing: float = Field(
        0.3, ge=0, lt=1, description="share the first-retry target spreads to neighbour buckets"
    )
    timing_day_smoothing: float = Field(
        0.3,
        ge=0,
        lt=1,
        description="share the first-retry day target spreads to the neighbouring days (the"
        " product-logged estimate; reported beside the unsmoothed one)",
    )
    timing_min_offset_support: int = Field(
        5, ge=1, description="logged first retries an offset needs to enter the support"
    )
    timing_propensity: Literal["logged", "estimated"] = Field(
        "estimated",
        description="first-retry weights from the logged propensities or from the first-retry"
        " distribution the log shows among units sharing a target",
    )
    seed: int = 7


class Params(Section):
    simulate: SimulateParams = SimulateParams()
    validate_: ValidateParams = Field(ValidateParams(), alias="validate")
    retry_rules: RetryLimits = RetryLimits()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    policy: PolicyConfig = PolicyConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def as_flat_dict(self) -> dict[str, Any]:
        """Dotted keys for MLflow ``log_params``."""
        flat: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for key, inner in value.items():
                    walk(f"{prefix}.{key}" if prefix else key, inner)
            else:
                flat[prefix] = value

        walk("", self.model_dump(by_alias=True, mode="json"))
        return flat


def load_params(path: Path | str | None = None) -> Params:
    """Read ``params.yaml`` (default: the one in the working directory, if any)."""
    path = Path(path) if path is not None else DEFAULT_PARAMS_PATH
    if not path.exists():
        return Params()
    raw = yaml.safe_load(path.read_text()) or {}
    return Params.model_validate(raw)


@lru_cache(maxsize=1)
def default_params() -> Params:
    return load_params()
