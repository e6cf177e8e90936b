"""A history without dunning messages (a billing system's export) trains the retry and
self-cure models and no message model; the champion check then compares what both
runs have."""

from __future__ import annotations

from training.config.params import ModelParams, TrainParams, default_params
from training.contract.history import History
from training.declines.table import load_decline_table
from training.models.fit import TrainResult, train_models
from training.tracking.champion import compare_with_champion


def fit(history: History) -> TrainResult:
    params = TrainParams(
        model=ModelParams(
            num_boost_round=30, min_data_in_leaf=20, early_stopping_rounds=10, num_threads=1
        )
    )
    update = default_params().retry_rules.update_requests
    return train_models(history, params, load_decline_table(), update, progress=False)


def test_no_message_model_without_messages(small_history: History) -> None:
    silent = History(
        small_history.customers,
        small_history.invoices,
        small_history.attempts,
        small_history.messages.iloc[0:0],
    )
    without = fit(silent)
    assert without.models.message is None
    assert [name for name, _ in without.models.items()] == ["retry", "self_cure"]
    assert set(without.metrics) == set(without.test_predictions) == {"retry", "self_cure"}
    assert without.metrics["retry"]["log_loss"] < without.metrics["retry"]["constant_log_loss"]

    with_messages = fit(small_history)
    assert with_messages.models.message is not None
    # one of the two has no message model: only the retry models are compared, both ways
    comparison = compare_with_champion(without, "2", with_messages.models, "1")
    assert set(comparison.new) == set(comparison.champion) == {"retry"}
    back = compare_with_champion(with_messages, "3", without.models, "2")
    assert set(back.new) == set(back.champion) == {"retry"}
    assert set(compare_with_champion(with_messages, "4", with_messages.models, "3").new) == {
        "retry",
        "message",
    }
