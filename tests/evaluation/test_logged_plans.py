"""The logging policy's menu and probabilities are read back from a history alone."""

import numpy as np

from training.evaluation.logged_plans import (
    consistent_message_plans,
    consistent_retry_plans,
    learn_menu,
    read_logged,
)
from training.simulator.logging_policy import LoggingPolicy


def test_menu_and_probabilities_are_recovered_from_the_logs(small_world):
    logged = read_logged(small_world.history, window_days=14)
    menu = learn_menu(logged, min_support=5)
    policy = LoggingPolicy()
    retry_p = policy.plan_probability(policy.retry_plans, policy.legacy_retry_plan)
    expected = {
        tuple(float(o) for o in offsets): retry_p[name]
        for name, offsets in policy.retry_plans.items()
    }
    found = {
        tuple(o for o in row if not np.isnan(o)): p
        for row, p in zip(menu.retry_offsets, menu.retry_probability, strict=True)
    }
    assert found.keys() == expected.keys()
    for plan, p in expected.items():
        assert np.isclose(found[plan], p)
    message_templates = {
        tuple(t for (t,) in [(m[1],) for m in plan]) for plan in policy.message_plans.values()
    }
    assert {tuple(t for t in row if t) for row in menu.message_templates} == message_templates


def test_every_invoice_is_consistent_with_its_own_plan_and_few_others(small_world):
    logged = read_logged(small_world.history, window_days=14)
    menu = learn_menu(logged, min_support=5)
    c_r = consistent_retry_plans(logged, menu)
    c_m = consistent_message_plans(logged, menu)
    complete = logged.complete
    # a complete log matches exactly one plan of each kind; an early recovery may match several
    assert (c_r[complete].sum(axis=1) == 1).mean() > 0.97
    assert (c_m[complete].sum(axis=1) == 1).mean() > 0.97
    assert (c_r.sum(axis=1) >= 1).mean() > 0.97 and (c_m.sum(axis=1) >= 1).mean() > 0.97
    assert c_r[~complete].sum(axis=1).mean() > 1
