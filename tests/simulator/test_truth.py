"""The ground truth scores any schedule exactly: it agrees with replaying the world."""

import numpy as np
import pandas as pd
import pytest

from training.config.params import SimulateParams
from training.simulator.logging_policy import (
    LoggingPolicy,
    draw_plans,
    planned_messages,
    planned_retries,
)
from training.simulator.run import simulate_history
from training.simulator.sampling import realize
from training.simulator.zoo import zoo_world


@pytest.mark.slow  # replays the world many times (~10 s each)
@pytest.mark.parametrize("world", ["default", "fatigue", "fast_clearing"])
def test_exact_score_matches_monte_carlo(world):
    chosen = zoo_world(world)
    result = simulate_history(SimulateParams(invoices=200, seed=3), chosen.world)
    truth, inv = result.truth, result.history.invoices
    policy = LoggingPolicy()
    retry_plan, message_plan = draw_plans(len(inv), policy, np.random.default_rng(5))
    traits = truth.invoices.set_index("invoice_id").loc[inv["invoice_id"]]
    retries = planned_retries(inv, retry_plan, policy, truth.window_hours)
    messages = planned_messages(
        inv,
        traits["timezone"],
        traits["sms_opt_in"],
        message_plan,
        policy,
        truth.window_hours,
        (21, 8),
    )
    keys = pd.DataFrame({"key": inv["invoice_id"], "invoice_id": inv["invoice_id"]})
    exact = truth.recovery_probability(
        keys,
        retries.assign(key=retries["invoice_id"]).rename(columns={"t": "at"}),
        messages.assign(key=messages["invoice_id"]).rename(columns={"t": "send_at"}),
    ).to_numpy()
    runs = 150
    hits = np.zeros(len(inv))
    for i in range(runs):
        attempts = realize(truth, inv, retries, messages, np.random.default_rng(100 + i)).attempts
        recovered = attempts.loc[attempts["outcome"] == "succeeded", "invoice_id"].unique()
        hits += inv["invoice_id"].isin(recovered).to_numpy()
    observed = hits / runs
    # whole-population agreement within sampling error, and no invoice far off
    se_mean = np.sqrt((exact * (1 - exact)).sum() / runs) / len(inv)
    assert abs(observed.mean() - exact.mean()) < 4 * se_mean
    z = (observed - exact) / np.sqrt(exact * (1 - exact) / runs + 1e-12)
    assert np.abs(z).max() < 5


def test_more_retries_never_lower_recovery_and_empty_schedule_is_no_action():
    result = simulate_history(SimulateParams(invoices=300, seed=4))
    truth, inv = result.truth, result.history.invoices
    keys = pd.DataFrame({"key": inv["invoice_id"], "invoice_id": inv["invoice_id"]})
    empty_r = keys.iloc[:0].assign(at=[])
    empty_m = keys.iloc[:0].assign(send_at=[], channel=[], template=[])
    none = truth.recovery_probability(keys, empty_r, empty_m)
    self_pay = (
        truth.invoices.set_index("invoice_id").loc[inv["invoice_id"], "p_self_pay"].to_numpy()
    )
    assert np.allclose(none.to_numpy(), self_pay)
    one = truth.recovery_probability(
        keys, keys.assign(at=(inv["due_at"] + pd.Timedelta(days=3)).to_numpy()), empty_m
    )
    assert (one.to_numpy() >= none.to_numpy() - 1e-12).all()
    assert (one.to_numpy() > none.to_numpy()).mean() > 0.3


def test_same_seed_same_history():
    a = simulate_history(SimulateParams(invoices=500, seed=9)).history
    b = simulate_history(SimulateParams(invoices=500, seed=9)).history
    for name, frame in a.tables().items():
        pd.testing.assert_frame_equal(frame, b.tables()[name])
    c = simulate_history(SimulateParams(invoices=500, seed=10)).history
    assert not c.attempts["attempted_at"].equals(a.attempts["attempted_at"])
