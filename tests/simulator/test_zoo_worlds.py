"""The world zoo: each world's mechanism shows, and the default world is unchanged."""

import numpy as np
import pandas as pd
import pytest

from training.config.params import SimulateParams
from training.simulator.run import simulate_history
from training.simulator.world import WorldConfig
from training.simulator.zoo import WORLDS, zoo_world


def _simulate(name, invoices=2000, seed=5):
    chosen = zoo_world(name)
    return simulate_history(
        SimulateParams(invoices=invoices, seed=seed), chosen.world, chosen.policy
    )


def _single_schedule(truth, inv, retries_h=(), messages=()):
    """One schedule per invoice: retries and messages at offsets (hours) from the failure."""
    keys = pd.DataFrame({"key": inv["invoice_id"], "invoice_id": inv["invoice_id"]})
    due = inv["due_at"].reset_index(drop=True)
    r = pd.concat(
        [keys.assign(at=(due + pd.Timedelta(hours=h)).to_numpy()) for h in retries_h]
        or [keys.iloc[:0].assign(at=[])],
        ignore_index=True,
    )
    m = pd.concat(
        [
            keys.assign(
                send_at=(due + pd.Timedelta(hours=h)).to_numpy(), channel="email", template=t
            )
            for h, t in messages
        ]
        or [keys.iloc[:0].assign(send_at=[], channel=[], template=[])],
        ignore_index=True,
    )
    return truth.recovery_probability(keys, r, m).to_numpy()


def test_every_world_is_named_and_described():
    assert len(WORLDS) >= 6 and "default" in WORLDS
    for name, world in WORLDS.items():
        assert world.name == name and world.world.name == name and world.description
    with pytest.raises(KeyError, match="unknown world 'nope'; expected one of default"):
        zoo_world("nope")


def test_default_world_is_the_reference_world():
    a = _simulate("default", invoices=500).history
    b = simulate_history(SimulateParams(invoices=500, seed=5)).history
    for name in ("customers", "invoices", "attempts", "messages"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert zoo_world("default").world == WorldConfig()


def test_paydays_world_is_paid_semi_monthly_and_biweekly():
    cycles = _simulate("paydays").truth.invoices["pay_cycle"]
    default = _simulate("default").truth.invoices["pay_cycle"]
    share = cycles.isin(["semi_monthly", "biweekly_friday"]).mean()
    assert share > 0.8 > default.isin(["semi_monthly", "biweekly_friday"]).mean()


def _first_retry_value(name, hours, reasons=("issuer_unavailable", "processing_error")):
    result = _simulate(name, invoices=3000)
    truth, inv = result.truth, result.history.invoices
    reason = truth.invoices.set_index("invoice_id").loc[inv["invoice_id"], "reason"]
    pick = reason.isin(reasons).to_numpy()
    values = _single_schedule(truth, inv, retries_h=(hours,))
    return values[pick].mean()


def test_fast_clearing_declines_are_best_retried_within_hours():
    fast_4h, fast_24h = (_first_retry_value("fast_clearing", h) for h in (4, 24))
    default_4h, default_24h = (_first_retry_value("default", h) for h in (4, 24))
    assert fast_4h > fast_24h + 0.1  # the decline has cleared: waiting a day loses
    assert default_4h < default_24h  # the reference world punishes a quick retry
    assert fast_4h > default_4h + 0.2


def test_night_owls_read_messages_at_other_hours_by_country():
    def peaks(name):
        result = _simulate(name)
        traits = result.truth.invoices.drop_duplicates("customer_id")
        return traits.groupby("country")["active_peak_hour"].apply(
            lambda h: np.angle(np.exp(2j * np.pi * h / 24).mean()) * 24 / (2 * np.pi) % 24
        )

    shift = (peaks("night_owls") - peaks("default") + 12) % 24 - 12
    wanted = pd.Series(zoo_world("night_owls").world.message.active_hour_shift_by_country)
    assert np.allclose(shift.reindex(wanted.index), wanted, atol=1.5)


def test_fatigue_world_recovers_more_with_fewer_messages():
    def gain(name):
        result = _simulate(name, invoices=1500)
        truth, inv = result.truth, result.history.invoices
        one = _single_schedule(truth, inv, (72,), [(2, "payment_link")])
        five = _single_schedule(
            truth,
            inv,
            (72,),
            [
                (2, "payment_link"),
                (26, "friendly_reminder"),
                (50, "payment_link"),
                (98, "friendly_reminder"),
                (122, "final_notice"),
            ],
        )
        return five.mean() - one.mean()

    assert gain("fatigue") < 0 < gain("default")


def _assert_random_hours_propensities(history, policy, low: float, high: float) -> None:
    """Every logged retry and message carries the probability of its own time, per
    decision: on time or delayed by one of the hours; a share in (low, high) delayed."""
    uniform = policy.explore_rate / (policy.explore_max_delay_hours + 1)
    for frame in (history.attempts, history.messages):
        logged = frame["propensity"].dropna()
        assert set(np.round(logged.unique(), 9)) <= {
            round(1 - policy.explore_rate + uniform, 9),
            round(uniform, 9),
        }
        assert low < np.isclose(logged, uniform).mean() < high


def test_strict_logging_explores_random_hours_with_per_decision_propensities():
    history = _simulate("strict_logging", invoices=3000).history
    # about 10% delayed, less the draws of a zero delay
    _assert_random_hours_propensities(history, zoo_world("strict_logging").policy, 0.05, 0.15)
    retries = history.attempts[history.attempts["initiated_by"] == "merchant"]
    offsets = (
        retries["attempted_at"]
        - retries["invoice_id"].map(history.invoices.set_index("invoice_id")["due_at"])
    ) / pd.Timedelta(hours=1)
    planned = offsets[offsets > 0].round().astype(int)
    assert planned.isin([72, 120, 168]).mean() > 0.85  # the legacy plan, mostly on time
    assert (~planned.isin([72, 120, 168])).sum() > 20  # and delayed by random hours


def test_young_merchant_has_little_history_per_customer():
    young = _simulate("young_merchant")
    default = _simulate("default")
    start = pd.Timestamp(SimulateParams().start, tz="UTC")

    def tenure_at_start(result):
        return (start - result.history.customers["signup_at"]) / pd.Timedelta(days=365.25)

    assert tenure_at_start(young).max() <= 2.0 + 1e-6
    assert tenure_at_start(young).mean() < tenure_at_start(default).mean() / 2

    def per_customer(result):
        return len(result.history.invoices) / len(result.history.customers)

    assert per_customer(young) < 0.8 * per_customer(default)


def test_other_team_logs_its_own_schedule_with_per_decision_propensities():
    """Another team's fixed schedule (days 1, 4, 9), 30% of its times delayed by up to
    71 hours: its logs hold first retries on days 1 to 3, none on our legacy days."""
    history = _simulate("other_team", invoices=3000).history
    _assert_random_hours_propensities(history, zoo_world("other_team").policy, 0.2, 0.4)
    retries = history.attempts[history.attempts["initiated_by"] == "merchant"]
    due = retries["invoice_id"].map(history.invoices.set_index("invoice_id")["due_at"])
    offsets = ((retries["attempted_at"] - due) / pd.Timedelta(hours=1)).round().astype(int)
    first = offsets[offsets > 0].groupby(retries["invoice_id"]).min()
    assert first.between(24, 95).all()  # day 1, delayed by at most 71 hours
    assert first.eq(24).mean() > 0.6 and first.gt(24).sum() > 50
    planned = offsets[offsets > 0]
    assert planned.isin([24, 96, 216]).mean() > 0.6  # its own plan, mostly on time
    templates = history.messages.sort_values("sent_at").groupby("invoice_id")["template"].first()
    assert templates.eq("payment_link").mean() > 0.6  # its first message, not a reminder
