"""Compiled trees score as LightGBM does, are cached, never pickled, and fall back to
LightGBM when compiling is impossible."""

from __future__ import annotations

import logging
import pickle
import sys

import numpy as np
import pandas as pd
import pytest

from training.config.params import ModelParams
from training.models.calibrated import CalibratedModel, encode_matrix, fit_calibrated
from training.models.compiled import CACHE_ENV, compile_booster


def _frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "hour": rng.uniform(0, 24, n),
            "amount": rng.lognormal(3, 1, n),
            "channel": rng.choice(["email", "sms", "push"], n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "amount"] = np.nan  # missing values take the default path
    logit = np.sin(frame["hour"] / 4) + (frame["channel"] == "sms") - 1.5
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame, label.to_numpy()


@pytest.fixture(scope="module")
def model() -> CalibratedModel:
    train, valid = _frame(3000, 1), _frame(1000, 2)
    params = ModelParams(num_boost_round=40, learning_rate=0.1, early_stopping_rounds=10)
    return fit_calibrated("toy", train, valid, ["hour", "amount", "channel"], ["channel"], params)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "compiled"))
    return tmp_path / "compiled"


def _matrix(model: CalibratedModel, n: int = 500) -> np.ndarray:
    frame, _ = _frame(n, 3)
    frame.loc[::7, "channel"] = "fax"  # a category never seen in training: missing
    return encode_matrix(frame, model.features, model.categories)


def test_compiled_scores_equal_lightgbm(model, cache):
    matrix = _matrix(model)
    expected = model.booster.predict(matrix, num_iteration=model.best_iteration)
    compiled = compile_booster(model.booster, model.best_iteration)
    assert compiled is not None
    for threads in (1, 2):
        np.testing.assert_allclose(compiled.predict(matrix, threads), expected, rtol=0, atol=1e-12)
    assert len(list(cache.glob("*.o"))) == 1  # kept for the next process


def test_direct_call_equals_lleaves_predict(model):
    """One thread: the compiled function is called directly, with lleaves' figures."""
    compiled = compile_booster(model.booster, model.best_iteration)
    assert compiled is not None and compiled._entry is not None  # the pinned lleaves has it
    for n in (0, 1, 37, 500):
        matrix = _matrix(model, max(n, 1))[:n]
        expected = compiled.model.predict(matrix, n_jobs=1)
        np.testing.assert_array_equal(compiled.predict(matrix), expected, strict=True)
        strided = np.asfortranarray(matrix)  # not C-ordered: copied first
        np.testing.assert_array_equal(compiled.predict(strided), expected, strict=True)
        frozen = matrix.copy()
        frozen.flags.writeable = False  # read-only: its address read another way
        np.testing.assert_array_equal(compiled.predict(frozen), expected, strict=True)
    with pytest.raises(ValueError, match="dimension"):
        compiled.predict(_matrix(model, 5)[:, :2])


def test_cached_binary_is_reused(model, cache):
    first = compile_booster(model.booster, model.best_iteration)
    [binary] = cache.glob("*.o")
    written = binary.stat().st_mtime_ns
    again = compile_booster(model.booster, model.best_iteration)
    assert first is not None and again is not None
    assert binary.stat().st_mtime_ns == written and len(list(cache.glob("*.o"))) == 1
    matrix = _matrix(model, 50)
    np.testing.assert_array_equal(again.predict(matrix), first.predict(matrix))
    # another tree count is another model: its own binary
    assert compile_booster(model.booster, model.best_iteration - 1) is not None
    assert len(list(cache.glob("*.o"))) == 2


def test_calibrated_model_compiles_and_is_pickled_without_machine_code(model):
    matrix = _matrix(model)
    before = model.predict_matrix(matrix)
    clone = pickle.loads(pickle.dumps(model))
    assert clone.compile_trees() and clone.compiled
    np.testing.assert_allclose(clone.predict_matrix(matrix), before, rtol=0, atol=1e-12)
    restored = pickle.loads(pickle.dumps(clone))
    assert not restored.compiled
    np.testing.assert_array_equal(restored.predict_matrix(matrix), before)


def test_without_the_compiler_lightgbm_scores(model, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "lleaves", None)  # import fails as if not installed
    clone = pickle.loads(pickle.dumps(model))
    with caplog.at_level(logging.WARNING, logger="training.models.compiled"):
        assert clone.compile_trees() is False
    assert "scoring with LightGBM" in caplog.text
    assert not clone.compiled
    matrix = _matrix(model)
    np.testing.assert_array_equal(clone.predict_matrix(matrix), model.predict_matrix(matrix))


def test_unwritable_cache_falls_back(model, tmp_path, monkeypatch, caplog):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocked / "cache"))
    with caplog.at_level(logging.WARNING, logger="training.models.compiled"):
        assert compile_booster(model.booster, model.best_iteration) is None
    assert "could not compile" in caplog.text
