"""The click rates' empirical-Bayes prior (``train.model.click_rate_prior``, h98): the method
of moments finds a beta prior's mean and strength, the shrunk rate orders customers by
evidence, and a model fitted with it scores frames and matrices alike, every scoring
path through the prior."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from training.config.params import ModelParams
from training.models.calibrated import encode_matrix, fit_calibrated
from training.models.click_prior import moment_prior

FEATURES = [
    "cust_email_sent",
    "cust_email_click_rate",
    "cust_sms_sent",
    "cust_sms_click_rate",
    "channel",
    "channel_click_rate",
]


def _beta_binomial(rng: np.random.Generator, n: int, mean: float, strength: float):
    latent = rng.beta(mean * strength, (1 - mean) * strength, n)
    sent = rng.integers(1, 8, n).astype(float)
    return latent, sent, rng.binomial(sent.astype(int), latent) / sent


def test_the_moments_find_the_beta_prior():
    rng = np.random.default_rng(3)
    _, sent, rate = _beta_binomial(rng, 40_000, 0.12, 6.0)
    p, m = moment_prior(rate, sent)
    assert p == pytest.approx(0.12, abs=0.005)
    assert m == pytest.approx(6.0, rel=0.15)


def test_rates_that_vary_no_more_than_the_noise_are_shrunk_all_the_way():
    rng = np.random.default_rng(4)
    sent = rng.integers(1, 8, 40_000).astype(float)
    rate = rng.binomial(sent.astype(int), 0.1) / sent  # one rate for every row
    p, m = moment_prior(rate, sent)
    assert p == pytest.approx(0.1, abs=0.005)
    assert m > 200  # prior strength far beyond any row's few sends
    # rows without a send (NaN rate) are left out
    assert moment_prior(np.r_[rate, np.nan], np.r_[sent, 0.0]) == (p, m)


def _rows(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Customers with a latent click rate, a few past sends per channel, and a label drawn
    from the latent rate of the candidate's channel."""
    email, email_sent, email_rate = _beta_binomial(rng, n, 0.08, 4.0)
    sms, sms_sent, sms_rate = _beta_binomial(rng, n, 0.15, 4.0)
    sms_sent[rng.random(n) < 0.3] = 0.0  # no SMS sent to them yet: no rate
    sms_rate = np.where(sms_sent > 0, sms_rate, np.nan)
    channel = np.where(rng.random(n) < 0.4, "sms", "email")
    is_sms = channel == "sms"
    frame = pd.DataFrame(
        {
            "cust_email_sent": email_sent,
            "cust_email_click_rate": email_rate,
            "cust_sms_sent": sms_sent,
            "cust_sms_click_rate": sms_rate,
            "channel": channel,
            "channel_click_rate": np.where(is_sms, sms_rate, email_rate),
        }
    )
    frame["y"] = (rng.random(n) < np.where(is_sms, sms, email)).astype(int)
    return frame


def _fit(prior: tuple[str, ...]):
    rng = np.random.default_rng(11)
    train, valid, test = _rows(rng, 12_000), _rows(rng, 4_000), _rows(rng, 8_000)
    params = ModelParams(
        num_boost_round=60, min_data_in_leaf=100, calibration_folds=0, click_rate_prior=prior
    )
    model = fit_calibrated(
        "message",
        (train[FEATURES], train["y"].to_numpy()),
        (valid[FEATURES], valid["y"].to_numpy()),
        FEATURES,
        ["channel"],
        params,
    )
    return model, test


def test_a_model_with_the_prior_scores_frames_and_matrices_alike():
    model, test = _fit(("message",))
    prior = model.click_prior
    assert prior is not None
    assert prior.rate["email"] == pytest.approx(0.08, abs=0.01)
    assert prior.rate["sms"] == pytest.approx(0.15, abs=0.015)
    assert 2.0 < prior.sends["email"] < 8.0
    matrix = encode_matrix(test[FEATURES], model.features, model.categories)
    kept = matrix.copy()
    by_frame = model.predict(test[FEATURES])
    assert np.array_equal(model.predict_matrix(matrix), by_frame)
    assert np.array_equal(matrix, kept, equal_nan=True)  # not the caller's: unchanged
    assert np.array_equal(model.predict_matrix(matrix.copy(), owned=True), by_frame)
    # the shrunk inputs: one click of one send reads below three of three, no send stays NaN
    shrunk = prior.apply(
        encode_matrix(
            pd.DataFrame(
                {
                    "cust_email_sent": [1.0, 3.0, 0.0],
                    "cust_email_click_rate": [1.0, 1.0, np.nan],
                    "cust_sms_sent": [0.0, 0.0, 0.0],
                    "cust_sms_click_rate": [np.nan] * 3,
                    "channel": ["email", "email", "sms"],
                    "channel_click_rate": [1.0, 1.0, np.nan],
                }
            ),
            model.features,
            model.categories,
        )
    )
    rate = shrunk[:, model.features.index("channel_click_rate")]
    assert prior.rate["email"] < rate[0] < rate[1] < 1.0
    assert np.isnan(rate[2])


def test_the_prior_lowers_the_held_out_loss_where_rates_rest_on_few_sends():
    without, test = _fit(())
    with_prior, _ = _fit(("message",))
    assert without.click_prior is None
    y = test["y"].to_numpy()
    before = log_loss(y, without.predict(test[FEATURES]))
    after = log_loss(y, with_prior.predict(test[FEATURES]))
    assert after < before


def test_the_cluster_fit_refuses_the_prior():
    from training.scale.fit import fit_on_cluster

    params = ModelParams(click_rate_prior=("message",))
    with pytest.raises(ValueError, match="click_rate_prior"):
        fit_on_cluster(None, "message", [], [], [], FEATURES, ["channel"], params)
