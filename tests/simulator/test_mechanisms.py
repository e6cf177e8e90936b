"""Each mechanism of the simulated world, visible in the history it writes."""

import numpy as np
import pandas as pd

from training.simulator.localtime import hour_of_day, to_local
from training.simulator.logging_policy import LoggingPolicy
from training.simulator.paycycles import days_since_payday
from training.simulator.vocabulary import EMISSIONS
from training.simulator.world import CATEGORY_BEHAVIOUR

HARD = [r for r, (_, mode) in CATEGORY_BEHAVIOUR.items() if mode == "never"]


def _retries(world) -> pd.DataFrame:
    att = world.history.attempts
    retries = att[(att["initiated_by"] == "merchant") & att["propensity"].notna()]
    return retries.merge(world.truth.invoices, on="invoice_id", suffixes=("", "_truth"))


def test_customers_live_in_many_real_time_zones(world):
    customers = world.history.customers
    assert customers["country"].nunique() >= 6
    import zoneinfo

    assert set(customers["timezone"]) <= zoneinfo.available_timezones()
    assert customers["timezone"].nunique() >= 8


def test_insufficient_funds_recoveries_cluster_after_paydays(world):
    retries = _retries(world)
    funds = retries[
        (retries["reason"] == "insufficient_funds") & (retries["pay_cycle"] != "irregular")
    ]
    local = to_local(funds["attempted_at"], funds["timezone"])
    since = days_since_payday(local, funds["pay_cycle"].to_numpy(), funds["pay_phase"].to_numpy())
    won = funds["outcome"].to_numpy() == "succeeded"
    assert won.sum() > 50
    # successful retries land much closer after a payday than failed ones
    assert np.median(since[won]) < 0.6 * np.median(since[~won])
    assert (since[won] < 3).mean() > 2 * (since[~won] < 3).mean()


def test_local_hour_of_retry_matters(world):
    retries = _retries(world)
    soft = retries[retries["reason"].isin(["insufficient_funds", "do_not_honor"])]
    hour = hour_of_day(to_local(soft["attempted_at"], soft["timezone"]))
    won = soft["outcome"].to_numpy() == "succeeded"
    morning = (hour >= 6) & (hour < 11)
    night = hour < 5
    assert won[morning].mean() > 1.3 * won[night].mean()


def test_hard_declines_never_recover_by_retry(world):
    retries = _retries(world)
    hard = retries[
        retries["reason"].isin(HARD) | retries["merchant_advice_code_truth"].isin(["03", "21"])
    ]
    assert len(hard) > 100
    assert (hard["outcome"] == "failed").all()


def test_expired_cards_recover_by_retry_only_once_updated(world):
    truth = world.truth
    inv = truth.invoices[truth.invoices["reason"] == "expired_card"].head(50)
    at = inv["due_at"] + pd.Timedelta(hours=30)
    keys = pd.DataFrame({"key": inv["invoice_id"], "invoice_id": inv["invoice_id"]})
    frame = truth.schedule_frame(
        keys.assign(at=at.to_numpy()), keys.iloc[:0].assign(send_at=[], channel=[], template=[])
    )
    assert (frame["p_retry_not_updated"] == 0).all()
    assert (frame["p_retry_updated"] > 0.5).mean() > 0.8


def test_decline_codes_are_in_each_processors_vocabulary(world):
    att = world.history.attempts.merge(
        world.history.invoices[["invoice_id", "processor"]], on="invoice_id"
    )
    failed = att[att["outcome"] == "failed"]
    for processor, group in failed.groupby("processor"):
        vocabulary = {
            item.rsplit(":", 1)[0].strip().lower()
            for cell in EMISSIONS[processor].values()
            for item in _items(cell)
        }
        codes = group["decline_code"].str.strip().str.lower()
        assert codes.isin(vocabulary).all(), processor
    assert failed.groupby("processor").size().index.nunique() == 6


def _items(cell):
    from training.simulator.vocabulary import _split

    return _split(cell)


def test_merchant_advice_codes_only_on_mastercard(world):
    att = world.history.attempts.merge(
        world.history.invoices[["invoice_id", "card_brand"]], on="invoice_id"
    )
    with_mac = att[att["merchant_advice_code"].notna()]
    assert len(with_mac) > 20
    assert (with_mac["card_brand"] == "mastercard").all()
    assert (
        with_mac["merchant_advice_code"]
        .isin(["01", "02", "03", "21", "24", "25", "26", "27", "28", "29", "30"])
        .all()
    )


def test_sms_only_with_opt_in(world):
    msgs = world.history.messages.merge(
        world.history.invoices[["invoice_id", "customer_id"]], on="invoice_id"
    )
    msgs = msgs.merge(
        world.history.customers[["customer_id", "sms_opt_in", "timezone"]], on="customer_id"
    )
    sms = msgs[msgs["channel"] == "sms"]
    assert len(sms) > 50
    assert sms["sms_opt_in"].all()
    # the team's system holds SMS back during local quiet hours
    hour = hour_of_day(to_local(sms["sent_at"], sms["timezone"]))
    assert ((hour >= 8) & (hour < 21)).all()


def test_template_fit_to_decline_reason(world):
    msgs = world.history.messages.merge(
        world.truth.invoices[["invoice_id", "reason"]], on="invoice_id"
    )
    clicked = msgs["clicked_at"].notna()
    card = msgs["reason"] == "expired_card"
    update = msgs["template"] == "update_payment_method"
    reminder = msgs["template"] == "friendly_reminder"
    assert clicked[card & update].mean() > 1.5 * clicked[card & reminder].mean()


def test_customers_who_respond_pay_through_the_link_or_update_the_card(world):
    att = world.history.attempts
    paid_by_customer = att[(att["initiated_by"] == "customer") & (att["outcome"] == "succeeded")]
    clicks = world.history.messages.dropna(subset=["clicked_at"])
    assert len(paid_by_customer) > 100
    # a customer payment follows a click within minutes for most message recoveries
    joined = paid_by_customer.merge(clicks[["invoice_id", "clicked_at"]], on="invoice_id")
    gap = (joined["attempted_at"] - joined["clicked_at"]).dt.total_seconds()
    assert ((gap >= 0) & (gap < 120)).sum() > 0.5 * len(clicks)


def test_fatigue_quiet_hours_and_history_change_responses(world):
    truth = world.truth
    inv = truth.invoices.head(400)
    base = inv["due_at"] + pd.Timedelta(hours=12)

    def response(send_at, template="payment_link", channel="email", extra=0):
        keys = pd.DataFrame({"key": inv["invoice_id"], "invoice_id": inv["invoice_id"]})
        msgs = [keys.assign(send_at=send_at.to_numpy(), channel=channel, template=template)]
        for i in range(extra):
            msgs.insert(
                0,
                keys.assign(
                    send_at=(send_at - pd.Timedelta(hours=2 + i)).to_numpy(),
                    channel=channel,
                    template=template,
                ),
            )
        frame = truth.schedule_frame(keys.iloc[:0].assign(at=[]), pd.concat(msgs))
        frame = frame.groupby("key").tail(1)
        return frame.set_index("key")["p_response"].loc[inv["invoice_id"]].to_numpy()

    fresh = response(base)
    tired = response(base, extra=3)
    assert (tired < fresh).all()
    local = hour_of_day(to_local(base, inv["timezone"]))
    quiet = (local >= 21) | (local < 8)
    assert fresh[quiet].mean() < fresh[~quiet].mean()
    loyal = (inv["prior_failures_12m"] == 0) & (inv["tenure_years"] >= 3)
    repeat = inv["prior_failures_12m"] >= 2
    assert fresh[loyal.to_numpy()].mean() > fresh[repeat.to_numpy()].mean()


def test_retry_decay_and_spacing(world):
    truth = world.truth
    inv = truth.invoices[truth.invoices["reason"] == "do_not_honor"].head(200)
    keys = pd.DataFrame({"key": inv["invoice_id"], "invoice_id": inv["invoice_id"]})
    no_msgs = keys.iloc[:0].assign(send_at=[], channel=[], template=[])

    def last_retry_p(offsets):
        retries = pd.concat(
            [keys.assign(at=(inv["due_at"] + pd.Timedelta(hours=h)).to_numpy()) for h in offsets]
        )
        frame = truth.schedule_frame(retries, no_msgs)
        last = frame.groupby("key").tail(1).set_index("key")["p_retry_not_updated"]
        return last.loc[inv["invoice_id"]].to_numpy()

    alone = last_retry_p([96])
    after_failures = last_retry_p([24, 48, 72, 96])
    crowded = last_retry_p([95, 96])
    spaced = last_retry_p([48, 96])
    assert (after_failures < alone).all()
    assert (crowded < spaced).all()


def test_logging_policy_records_propensities(world):
    policy = LoggingPolicy()
    retries = world.history.attempts.dropna(subset=["propensity"])
    expected_retry = set(
        np.round(
            list(policy.plan_probability(policy.retry_plans, policy.legacy_retry_plan).values()), 9
        )
    )
    assert set(np.round(retries["propensity"].unique(), 9)) <= expected_retry
    assert (
        world.history.attempts.loc[
            world.history.attempts["initiated_by"] == "customer", "propensity"
        ].isna()
    ).all()
    legacy = policy.plan_probability(policy.retry_plans, policy.legacy_retry_plan)[
        policy.legacy_retry_plan
    ]
    first = retries.sort_values("attempted_at").groupby("invoice_id").head(1)
    share = np.isclose(first["propensity"], legacy).mean()
    assert abs(share - legacy) < 0.05
    msgs = world.history.messages
    assert msgs["propensity"].between(0, 1, inclusive="right").all()


def test_customers_read_messages_at_their_active_hours(world):
    msgs = world.history.messages
    read = msgs[msgs["opened_at"].notna() & msgs["clicked_at"].isna()]
    read = read.merge(
        world.truth.invoices[["invoice_id", "timezone", "active_peak_hour"]], on="invoice_id"
    )
    hour = hour_of_day(to_local(read["opened_at"], read["timezone"]))
    distance = np.abs((hour - read["active_peak_hour"].to_numpy() + 12) % 24 - 12)
    assert len(read) > 200
    assert (distance < 4).mean() > 0.9
