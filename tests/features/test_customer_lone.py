"""One decision's customer features on Python floats (a lone request's) against the
general path's arrays, to the bit and to the dtype."""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from training.core.localtime import NAT
from training.features import customer
from training.features.customer import CustomerIndex, customer_columns
from training.features.history_log import customer_event_log

DAY_S = 86_400


@pytest.fixture(scope="module")
def index(history) -> CustomerIndex:
    return CustomerIndex.build(customer_event_log(history))


def _assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for name in want:
        g, w = got[name], want[name]
        assert g.dtype == w.dtype == np.float64 and g.shape == w.shape == (1,), name
        assert g.tobytes() == w.tobytes(), (name, g, w)


def _decision(rng: np.random.Generator, index: CustomerIndex, met: Counter[str]):
    """A random decision: a known customer (at, between or around their log rows, before
    their first) or an unknown one, signup missing, before or after the decision."""
    seconds = index.log_keys % customer.SPAN
    if rng.random() < 0.1:
        customer_id = "nobody"
        as_of = int(rng.choice(seconds))
        met["unknown"] += 1
    else:
        code = int(rng.integers(0, len(index.customers)))
        customer_id = index.customers[code]
        own = seconds[index.log_codes == code]
        pick = rng.random()
        if pick < 0.2:
            as_of, case = int(own[0]) - int(rng.integers(0, 400)) * DAY_S, "before its log"
        elif pick < 0.4:
            as_of, case = int(rng.choice(own)), "at a log row"
        elif pick < 0.6:
            as_of, case = int(own[-1]) + int(rng.integers(1, 800)) * DAY_S, "after its log"
        else:
            as_of, case = int(rng.integers(own[0], own[-1] + 1)), "within its log"
        met[case] += 1
    as_of_ns = as_of * 10**9 + int(rng.integers(0, 10**9))
    pick = rng.random()
    if pick < 0.2:
        signup_ns, case = NAT, "no signup"
    elif pick < 0.3:
        signup_ns, case = as_of_ns + int(rng.integers(0, 50)) * DAY_S * 10**9, "signup after"
    elif pick < 0.4:
        signup_ns, case = as_of_ns, "signup at the decision"
    else:
        signup_ns = as_of_ns - int(rng.integers(0, 2000)) * DAY_S * 10**9
        case = "signup before"
    met[case] += 1
    return (
        np.array([customer_id], dtype=object),
        np.array([as_of_ns], dtype=np.int64),
        np.array([signup_ns], dtype=np.int64),
    )


def test_one_decision_equals_the_general_path_to_the_bit(index):
    rng = np.random.default_rng(105)
    met: Counter[str] = Counter()
    # the history's own start, one within it (decisions before it: a share below 0,
    # clipped), and none (the decision time stands for it)
    within = float(np.median(index.log_keys % customer.SPAN))
    for history_start in (index.history_start, within, np.nan):
        start_index = dataclasses.replace(index, history_start=history_start)
        for _ in range(300):
            args = (*_decision(rng, start_index, met), start_index)
            lone = customer._lone_customer_columns(*args)
            assert lone is not None
            _assert_same(lone, customer._general_customer_columns(*args))
            _assert_same(customer_columns(*args), lone)
            met["payments" if lone["cust_payments"][0] > 0 else "no payments"] += 1
            share = lone["cust_observed_share"][0]
            met["share 1" if share == 1 else "share nan" if np.isnan(share) else "share"] += 1
            met["share 0" if share == 0 else "share above 0"] += 1
    assert len(met) == 16 and min(met.values()) >= 10, met


def test_a_missing_decision_time_and_an_empty_log_take_the_general_path(index):
    rng = np.random.default_rng(106)
    ids, as_of, signup = _decision(rng, index, Counter())
    as_of[0] = NAT
    assert customer._lone_customer_columns(ids, as_of, signup, index) is None
    ids, as_of, signup = _decision(rng, index, Counter())
    no_log = dataclasses.replace(
        index,
        log_keys=index.log_keys[:0],
        log_codes=index.log_codes[:0],
        sums=index.sums[:, :0],
    )
    args = (ids, as_of, signup, no_log)
    lone = customer._lone_customer_columns(*args)
    assert lone is not None
    _assert_same(lone, customer._general_customer_columns(*args))


def test_one_decisions_circular_means_equal_the_arrays_on_random_sums():
    """Angles in every quadrant and on the axes, zero and negative counts, tiny and
    huge sums: :func:`_lone_circular_means` against :func:`_circular_mean` of the
    (3, 1) arrays the general path passes, to the bit."""
    rng = np.random.default_rng(107)
    edges = [0.0, -0.0, 1.0, -1.0, 1e-300, -1e-300, 1e300, 3.5]
    for _ in range(3000):
        sums = rng.normal(0.0, 10.0 ** rng.integers(-3, 6), 9)
        sums[:3] = rng.choice([0.0, 1.0, 2.0, 17.0, -1.0, 0.5], 3)
        mask = rng.random(9) < 0.15
        sums[mask] = rng.choice(edges, int(mask.sum()))
        counts, cos, sin = sums.reshape(3, 3, 1)
        with np.errstate(over="ignore"):  # (1e300 squared: inf either way)
            values, strengths = customer._circular_mean(cos, sin, counts, customer.CIRCLE_PERIODS)
        got = customer._lone_circular_means(sums.tolist())
        assert np.array(got[0]).tobytes() == values.ravel().tobytes()
        assert np.array(got[1]).tobytes() == strengths.ravel().tobytes()
