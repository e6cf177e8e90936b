"""Off-policy estimators on a synthetic contextual bandit whose true policy value is
known exactly, plus exact identities and a table of bad input."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from training.evaluation import ope
from training.evaluation.ope import (
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    LoggedFeedback,
    SelfNormalizedIPW,
    bootstrap_ratio,
    default_estimators,
    summarize,
)

WEIGHTED = ("ips", "snips", "dr")
SEEDS = 100


@dataclass(frozen=True)
class Bandit:
    """Discrete contexts, K actions, known reward probabilities, a stochastic logging
    policy and a deterministic target policy."""

    context_probability: np.ndarray  # (n_contexts,)
    reward_probability: np.ndarray  # (n_contexts, n_actions)
    logging_policy: np.ndarray  # (n_contexts, n_actions), rows sum to 1
    target_action: np.ndarray  # (n_contexts,)

    @classmethod
    def build(cls, n_contexts: int = 12, n_actions: int = 4, seed: int = 0) -> Bandit:
        rng = np.random.default_rng(seed)
        context = rng.dirichlet(np.full(n_contexts, 5.0))
        reward = rng.uniform(0.05, 0.9, size=(n_contexts, n_actions))
        logits = rng.normal(size=(n_contexts, n_actions))
        softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        logging = 0.7 * softmax + 0.3 / n_actions  # every action at least 7.5%
        # a decent but imperfect target: best action by a noisy view of the rewards
        target = (reward + rng.normal(scale=0.15, size=reward.shape)).argmax(axis=1)
        return cls(context, reward, logging, target)

    def true_value(self) -> float:
        rows = np.arange(self.context_probability.size)
        return float(self.context_probability @ self.reward_probability[rows, self.target_action])

    def log(
        self, n: int, seed: int, model_error: float = 0.02, model_bias: float = 0.0
    ) -> LoggedFeedback:
        """``n`` logged units; the reward model is the truth plus noise and bias."""
        rng = np.random.default_rng(seed)
        n_contexts, n_actions = self.reward_probability.shape
        context = rng.choice(n_contexts, size=n, p=self.context_probability)
        cumulative = self.logging_policy.cumsum(axis=1)[context]
        action = np.minimum((rng.random(n)[:, None] > cumulative).sum(axis=1), n_actions - 1)
        reward = rng.random(n) < self.reward_probability[context, action]
        model = np.clip(
            self.reward_probability
            + model_bias
            + rng.normal(scale=model_error, size=self.reward_probability.shape),
            0.0,
            1.0,
        )
        target = self.target_action[context]
        return LoggedFeedback(
            reward=reward,
            match=action == target,
            logging_probability=self.logging_policy[context, action],
            target_value=model[context, target],
            logged_value=model[context, action],
        )


@pytest.fixture(scope="module")
def bandit() -> Bandit:
    return Bandit.build()


@pytest.fixture(scope="module")
def repeated(bandit: Bandit) -> dict[str, np.ndarray]:
    """SEEDS independent logs of 2,000 units: estimates and 95% intervals per estimator.

    Arrays of shape (SEEDS,) for ``{name}_value``, ``{name}_lower``, ``{name}_upper``.
    """
    rows = []
    for seed in range(SEEDS):
        summary = summarize(
            default_estimators(), bandit.log(2000, seed), n_bootstrap=200, random_state=seed
        )
        rows.append(summary)
    return {
        f"{name}_{key}": np.array([row[name][key] for row in rows])
        for name in ("ips", "snips", "dr", "dm")
        for key in ("value", "lower", "upper")
    }


def test_bandit_truth_is_a_probability_and_not_trivial(bandit: Bandit) -> None:
    value = bandit.true_value()
    best = float(bandit.context_probability @ bandit.reward_probability.max(axis=1))
    logging = float(
        bandit.context_probability @ (bandit.logging_policy * bandit.reward_probability).sum(1)
    )
    assert 0 < value <= best < 1
    assert abs(value - logging) > 0.02  # the logged average alone would be wrong


@pytest.mark.parametrize("name", WEIGHTED)
def test_estimate_within_a_few_standard_errors(bandit: Bandit, name: str) -> None:
    feedback = bandit.log(5000, seed=123)
    estimator = {e.estimator_name: e for e in default_estimators()}[name]
    interval = estimator.estimate_interval(feedback, n_bootstrap=500, random_state=1)
    standard_error = (interval["upper"] - interval["lower"]) / (2 * 1.96)
    assert 0.002 < standard_error < 0.05
    assert abs(estimator.estimate_policy_value(feedback) - bandit.true_value()) < 3 * standard_error


@pytest.mark.parametrize("name", WEIGHTED)
def test_intervals_cover_the_truth_in_repeated_simulations(
    bandit: Bandit, repeated: dict[str, np.ndarray], name: str
) -> None:
    truth = bandit.true_value()
    covered = (repeated[f"{name}_lower"] <= truth) & (truth <= repeated[f"{name}_upper"])
    assert covered.sum() >= 85, f"{name}: {covered.sum()} of {SEEDS} intervals hold the truth"


@pytest.mark.parametrize("name", WEIGHTED)
def test_estimators_are_unbiased_on_average(
    bandit: Bandit, repeated: dict[str, np.ndarray], name: str
) -> None:
    values = repeated[f"{name}_value"]
    standard_error = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - bandit.true_value()) < 4 * standard_error


def test_doubly_robust_with_a_good_model_beats_ips(
    bandit: Bandit, repeated: dict[str, np.ndarray]
) -> None:
    truth = bandit.true_value()
    squared_ips = (repeated["ips_value"] - truth) ** 2
    squared_dr = (repeated["dr_value"] - truth) ** 2
    # paired one-sided test across seeds (as OBP tests estimators against a naive one)
    assert stats.wilcoxon(squared_ips, squared_dr, alternative="greater").pvalue < 0.01
    assert repeated["dr_value"].var() < 0.7 * repeated["ips_value"].var()
    width = lambda name: (repeated[f"{name}_upper"] - repeated[f"{name}_lower"]).mean()  # noqa: E731
    assert width("dr") < width("ips")


def test_doubly_robust_survives_a_biased_model_where_direct_method_does_not(
    bandit: Bandit,
) -> None:
    truth = bandit.true_value()
    dr, dm = [], []
    for seed in range(30):
        feedback = bandit.log(3000, seed, model_bias=0.1)
        dr.append(DoublyRobust().estimate_policy_value(feedback))
        dm.append(DirectMethod().estimate_policy_value(feedback))
    assert abs(np.mean(dm) - truth) > 0.05
    assert abs(np.mean(dr) - truth) < 4 * np.std(dr, ddof=1) / np.sqrt(len(dr))


def test_snips_equals_ips_when_the_mean_weight_is_one() -> None:
    rng = np.random.default_rng(4)
    n = 1000
    feedback = LoggedFeedback(
        reward=rng.random(n),
        match=np.arange(n) % 2 == 0,  # half matched with propensity 1/2: mean weight 1
        logging_probability=np.full(n, 0.5),
    )
    assert feedback.weight.mean() == pytest.approx(1.0)
    ips = InverseProbabilityWeighting().estimate_policy_value(feedback)
    assert SelfNormalizedIPW().estimate_policy_value(feedback) == pytest.approx(ips, rel=1e-12)
    skewed = LoggedFeedback(feedback.reward, feedback.match, np.full(n, 0.4))
    assert SelfNormalizedIPW().estimate_policy_value(skewed) == pytest.approx(ips, rel=1e-12)
    assert InverseProbabilityWeighting().estimate_policy_value(skewed) == pytest.approx(1.25 * ips)


def test_doubly_robust_equals_direct_method_when_no_unit_matches() -> None:
    rng = np.random.default_rng(5)
    n = 500
    feedback = LoggedFeedback(
        reward=rng.integers(0, 2, n),
        match=np.zeros(n),
        logging_probability=rng.uniform(0.1, 1.0, n),
        target_value=rng.random(n),
        logged_value=rng.random(n),
    )
    dr, dm = DoublyRobust(), DirectMethod()
    assert dr.estimate_policy_value(feedback) == pytest.approx(dm.estimate_policy_value(feedback))
    assert dr.estimate_interval(feedback, random_state=3) == pytest.approx(
        dm.estimate_interval(feedback, random_state=3)
    )
    assert InverseProbabilityWeighting().estimate_policy_value(feedback) == 0.0
    assert dr.effective_sample_size(feedback) == 0.0


@pytest.mark.parametrize("estimator", default_estimators(), ids=lambda e: e.estimator_name)
def test_interval_width_shrinks_with_more_data(bandit: Bandit, estimator) -> None:
    def width(n: int) -> float:
        interval = estimator.estimate_interval(
            bandit.log(n, seed=n), n_bootstrap=300, random_state=0
        )
        assert interval["lower"] <= interval["mean"] <= interval["upper"]
        return interval["upper"] - interval["lower"]

    assert width(8000) < width(500) / 2.5  # ~1/sqrt(16) expected


def test_stochastic_target_probability_scales_the_weight() -> None:
    feedback = LoggedFeedback(
        reward=[1.0, 0.0, 1.0, 1.0],
        match=[1, 1, 0, 1],
        logging_probability=[0.5, 0.25, 0.5, 1.0],
        target_probability=[0.5, 1.0, 1.0, 0.2],
    )
    np.testing.assert_allclose(feedback.weight, [1.0, 4.0, 0.0, 0.2])
    assert InverseProbabilityWeighting().estimate_policy_value(feedback) == pytest.approx(1.2 / 4)
    assert SelfNormalizedIPW().estimate_policy_value(feedback) == pytest.approx(1.2 / 5.2)
    assert InverseProbabilityWeighting().effective_sample_size(feedback) == pytest.approx(
        5.2**2 / (1 + 16 + 0.04)
    )
    assert feedback.n_matched == 3


def test_summarize_is_json_ready_and_shares_resamples(bandit: Bandit) -> None:
    feedback = bandit.log(1000, seed=9)
    summary = summarize(default_estimators(), feedback, n_bootstrap=200, random_state=11)
    assert list(summary) == ["ips", "snips", "dr", "dm"]
    json.dumps(summary)
    for name, row in summary.items():
        assert set(row) == {"value", "lower", "upper", "matched", "ess"}
        assert row["lower"] <= row["value"] <= row["upper"], name
        assert row["matched"] == int(np.count_nonzero(feedback.match))
    assert 0 < summary["ips"]["ess"] < summary["ips"]["matched"]
    assert summary["dm"]["ess"] == 1000
    again = summarize(default_estimators(), feedback, n_bootstrap=200, random_state=11)
    assert again == summary


def test_bootstrap_ratio_resamples_units_and_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    numerator = rng.random(300)
    replicates = bootstrap_ratio(numerator, None, 50, random_state=2)
    index = np.random.default_rng(2).integers(0, 300, size=(50, 300))
    np.testing.assert_allclose(replicates, numerator[index].mean(axis=1))

    monkeypatch.setattr(ope, "_BOOTSTRAP_CHUNK_CELLS", 7 * 300)  # 7 replicates per chunk
    chunked = bootstrap_ratio(numerator, np.ones(300), 1000, random_state=3)
    assert chunked.shape == (1000,)
    assert len(np.unique(chunked)) > 990
    assert chunked.std() == pytest.approx(numerator.std() / np.sqrt(300), rel=0.15)


def test_bootstrap_replicates_without_a_match_are_dropped_for_snips() -> None:
    feedback = LoggedFeedback(
        reward=np.r_[1.0, np.zeros(19)],
        match=np.r_[1, np.zeros(19)],
        logging_probability=np.ones(20),
    )
    samples = bootstrap_ratio(*SelfNormalizedIPW().terms(feedback), 500, random_state=0)
    assert np.isnan(samples).any()
    assert SelfNormalizedIPW().estimate_interval(feedback, n_bootstrap=500, random_state=0) == {
        "mean": 1.0,
        "lower": 1.0,
        "upper": 1.0,
    }


GOOD = {
    "reward": [0.0, 1.0, 1.0, 0.0],
    "match": [1, 0, 1, 1],
    "logging_probability": [0.5, 0.2, 1.0, 0.25],
    "target_value": [0.1, 0.4, 0.8, 0.3],
    "logged_value": [0.1, 0.5, 0.8, 0.3],
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"reward": [[0.0, 1.0], [1.0, 0.0]]}, r"reward must be a 1-D array .* shape \(2, 2\)"),
        ({"reward": [], "match": [], "logging_probability": []}, "reward is empty"),
        ({"reward": [0.0, float("nan"), 1.0, 0.0]}, "reward is NaN at unit 1 \\(1 NaN in total\\)"),
        ({"reward": [0.0, 1.0, 1.5, 0.0]}, r"reward must be in \[0, 1\]; unit 2 has 1.5"),
        ({"reward": ["a", "b", "c", "d"]}, "reward must be numeric"),
        ({"match": [1, 0, 1]}, "match has 3 units but reward has 4"),
        ({"match": [1, 0.5, 1, 1]}, "match must be 0 or 1"),
        (
            {"logging_probability": [0.5, 0.2, 0.0, 0.25]},
            r"logging_probability must be in \(0, 1\]; unit 2",
        ),
        (
            {"logging_probability": [0.5, 1.2, 1.0, 0.25]},
            r"logging_probability must be in \(0, 1\]; unit 1",
        ),
        (
            {"logging_probability": [0.5, 0.2, 1.0]},
            "logging_probability has 3 units but reward has 4",
        ),
        (
            {"logging_probability": [0.5, 0.2, float("nan"), 1.0]},
            "logging_probability is NaN at unit 2",
        ),
        ({"target_probability": -0.1}, r"target_probability must be in \[0, 1\]; unit 0"),
        ({"target_probability": [1.0, 1.0]}, "target_probability has 2 units but reward has 4"),
        ({"target_value": [0.1, float("nan"), 0.8, 0.3]}, "target_value is NaN at unit 1"),
        ({"target_value": [0.1, 0.4, 0.8, -0.3]}, r"target_value must be in \[0, 1\]; unit 3"),
        ({"logged_value": [0.1, 0.5]}, "logged_value has 2 units but reward has 4"),
    ],
)
def test_bad_feedback_is_rejected_naming_the_argument(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LoggedFeedback(**{**GOOD, **changes})


@pytest.mark.parametrize(
    ("estimator", "changes", "call", "message"),
    [
        (
            SelfNormalizedIPW(),
            {"match": [0, 0, 0, 0]},
            "value",
            "needs at least one unit whose logged action matches",
        ),
        (SelfNormalizedIPW(), {"match": [0, 0, 0, 0]}, "interval", r"matched units: 0 of 4"),
        (SelfNormalizedIPW(), {"target_probability": 0.0}, "value", "positive target_probability"),
        (DoublyRobust(), {"target_value": None}, "value", "DoublyRobust needs target_value"),
        (DoublyRobust(), {"logged_value": None}, "interval", "DoublyRobust needs logged_value"),
        (DirectMethod(), {"target_value": None}, "value", "DirectMethod needs target_value"),
        (InverseProbabilityWeighting(), {}, "alpha", r"alpha must be in \(0, 1\), got 1.5"),
        (
            InverseProbabilityWeighting(),
            {},
            "n_bootstrap",
            "n_bootstrap must be a positive integer, got 0",
        ),
    ],
)
def test_estimators_reject_what_they_cannot_use(
    estimator, changes: dict, call: str, message: str
) -> None:
    feedback = LoggedFeedback(**{**GOOD, **changes})
    with pytest.raises(ValueError, match=message):
        if call == "value":
            estimator.estimate_policy_value(feedback)
        elif call == "interval":
            estimator.estimate_interval(feedback, n_bootstrap=10)
        elif call == "alpha":
            estimator.estimate_interval(feedback, alpha=1.5)
        else:
            estimator.estimate_interval(feedback, n_bootstrap=0)


def test_summarize_rejects_repeated_names() -> None:
    feedback = LoggedFeedback(**GOOD)
    with pytest.raises(ValueError, match=r"distinct estimator_name; repeated: \['ips'\]"):
        summarize([InverseProbabilityWeighting(), InverseProbabilityWeighting()], feedback)


def test_refit_interval_rebuilds_the_feedback_on_every_resample() -> None:
    rng = np.random.default_rng(4)
    reward = (rng.random(400) < 0.4).astype(float)
    logged = rng.random(400) < 0.3  # the matched units, whose share is estimated

    def refit(rows: np.ndarray) -> LoggedFeedback:
        share = logged[rows].mean()  # the logging probability, estimated from the resample
        return LoggedFeedback(reward[rows], logged[rows], np.full(rows.size, share))

    calls: list[int] = []

    def counted(rows: np.ndarray) -> LoggedFeedback:
        calls.append(rows.size)
        return refit(rows)

    ips = ope.InverseProbabilityWeighting()
    interval = ope.refit_interval(ips, counted, 400, n_bootstrap=300, random_state=1)
    assert calls == [400] * 300
    # with the share re-estimated per resample the estimator is the matched units' mean
    matched_mean = reward[logged].mean()
    assert interval["lower"] < matched_mean < interval["upper"]
    fixed = ips.estimate_interval(refit(np.arange(400)), n_bootstrap=300, random_state=1)
    assert interval["upper"] - interval["lower"] < fixed["upper"] - fixed["lower"]
    with pytest.raises(ValueError, match="n_bootstrap"):
        ope.refit_interval(ips, refit, 400, n_bootstrap=0)
