"""Reasons of a learned schedule, read per event by position."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from training.config.policy import PolicyConfig
from training.policy import reasons
from training.policy.reasons import model_reasons

IDS = ["b", "a", "c"]


def _inputs() -> dict:
    events = pd.DataFrame(
        {"event_id": IDS, "allow_sms": [True, True, False], "sms_opt_in": [False, True, False]},
        index=[10, 11, 12],
    )
    decisions = pd.DataFrame(
        {
            "category": ["insufficient_funds", "expired_card", "do_not_honor"],
            "retryable": ["yes", "after_update", "no"],
            "needs_update_first": [False, True, False],
            "rule": ["soft", "after_update", "stop_after_mac_03"],
        }
    )
    features = pd.DataFrame({"cust_pay_day_of_month": [np.nan, 27.4, 15.0]}, index=["c", "a", "b"])
    retries = pd.DataFrame({"event_id": ["b", "zz", "b"]})  # zz: not one of these events
    messages = pd.DataFrame(
        {
            "event_id": ["a", "b", "a", "a"],
            "template": [None, "payment_link", "update_payment_method", "friendly_reminder"],
        }
    )
    return {
        "events": events,
        "decisions": decisions,
        "features": features,
        "retries": retries,
        "messages": messages,
        "expected": np.array([0.404, 0.2, 0.0]),
        "baseline": np.array([0.3, 0.1, np.nan]),
        "config": PolicyConfig(),
    }


def test_reasons_per_event_in_event_order():
    b, a, c = model_reasons(**_inputs())
    quiet = "messages outside quiet hours (21:00-08:00 local)"
    assert b == [
        "insufficient funds: retries placed after the customer's usual payday "
        "(around day 15 of the month)",
        "first message: payment link",
        quiet,
        "no SMS: the customer has not opted in",
        "expected recovery 40% vs 30% for the fixed schedule",
    ]
    assert a == [  # the first message with a template (nulls skipped), no retry for "a"
        "expired card: asks the customer to update the payment method; no retry fits "
        "before the window ends",
        "first message: update payment method",
        quiet,
        "expected recovery 20% vs 10% for the fixed schedule",
    ]
    assert c == [  # no baseline figure: no comparison sentence
        "do not honor: never retried (stop after mac 03)",
        "no message expected to help",
        quiet,
    ]


def test_an_event_without_features_is_an_error():
    inputs = _inputs()
    inputs["features"] = inputs["features"].drop(index="a")
    with pytest.raises(KeyError, match="'a'"):
        model_reasons(**inputs)


def test_each_event_alone_gets_its_reasons_among_others():
    """A lone request (one category's words, one sentence built) reads what it reads
    among other events."""
    inputs = _inputs()
    together = model_reasons(**inputs)
    for i, event_id in enumerate(IDS):
        alone = dict(inputs)
        alone["events"] = inputs["events"].iloc[[i]]
        alone["decisions"] = inputs["decisions"].iloc[[i]].reset_index(drop=True)
        alone["expected"], alone["baseline"] = inputs["expected"][[i]], inputs["baseline"][[i]]
        assert model_reasons(**alone) == [together[i]], event_id


def _random_event(rng: np.random.Generator, event_id: str) -> dict:
    """One event's inputs of :func:`model_reasons`, drawn to reach every sentence."""
    templates = ["payment_link", "update_payment_method", None, np.nan, ""]
    n_messages, n_retries = int(rng.integers(0, 4)), int(rng.integers(0, 3))
    pick = rng.integers(len(templates), size=n_messages)
    return {
        "events": {
            "event_id": event_id,
            "allow_sms": bool(rng.random() < 0.5),
            "sms_opt_in": bool(rng.random() < 0.5),
        },
        "decisions": {
            "category": ["insufficient_funds", "limit_exceeded", "expired_card", "do_not_honor"][
                rng.integers(4)
            ],
            "retryable": ["yes", "after_update", "no", None][rng.integers(4)],
            "needs_update_first": bool(rng.random() < 0.3),
            "rule": ["soft", "stop_after_mac_03"][rng.integers(2)],
        },
        "payday": [np.nan, 1.0, 14.5, 15.5, 27.4][rng.integers(5)],
        "retries": [event_id, "zz"][: 1 + int(rng.integers(2))] * n_retries,
        "messages": [(["zz", event_id][rng.integers(2)], templates[k]) for k in pick],
        "expected": float(rng.choice([0.0, 0.005, 0.125, 0.404, 0.995, 1.0])),
        "baseline": float(rng.choice([np.nan, 0.0, 0.015, 0.3, 0.875])),
    }


def _reasons_of(drawn: list[dict]) -> list[list[str]]:
    ids = [d["events"]["event_id"] for d in drawn]
    messages = [m for d in drawn for m in d["messages"]]
    return model_reasons(
        pd.DataFrame([d["events"] for d in drawn]),
        pd.DataFrame([d["decisions"] for d in drawn]),
        pd.DataFrame({"cust_pay_day_of_month": [d["payday"] for d in drawn]}, index=ids),
        pd.DataFrame({"event_id": [r for d in drawn for r in d["retries"]]}, dtype=object),
        pd.DataFrame(
            {"event_id": [m[0] for m in messages], "template": [m[1] for m in messages]},
            dtype=object,
        ),
        np.array([d["expected"] for d in drawn]),
        np.array([d["baseline"] for d in drawn]),
        PolicyConfig(),
    )


def test_a_lone_request_reads_what_the_general_path_writes(monkeypatch):
    """The lone path (Python values) against the general one on 300 random events: the
    event beside another (``zz``, the general path), and alone with the lone path off."""
    rng = np.random.default_rng(4)
    drawn = [_random_event(rng, f"e{k}") for k in range(300)]
    lone = [_reasons_of([d]) for d in drawn]
    other = _random_event(rng, "zz")
    beside = [_reasons_of([d, other])[:1] for d in drawn]
    monkeypatch.setattr(reasons, "_lone_reasons", lambda *args: None)
    general = [_reasons_of([d]) for d in drawn]
    assert lone == beside == general
    firsts = {r[0][0].split(": ", 1)[1][:20] for r in lone}
    assert len(firsts) == 6  # every timing sentence met
    assert {len(r[0]) for r in lone} == {3, 4, 5}


def test_figures_the_lone_path_cannot_write_are_left_to_the_general_path():
    rng = np.random.default_rng(5)
    drawn = _random_event(rng, "e")
    for change in ({"expected": np.nan, "baseline": 0.3}, {"baseline": np.inf}, {"payday": np.inf}):
        assert (
            reasons._lone_reasons(  # the inputs _reasons_of builds, one event
                pd.DataFrame([drawn["events"]]),
                pd.DataFrame([drawn["decisions"]]),
                pd.DataFrame({"cust_pay_day_of_month": [change.get("payday", 1.0)]}, index=["e"]),
                pd.DataFrame({"event_id": ["e"]}),
                pd.DataFrame({"event_id": ["e"], "template": ["payment_link"]}),
                np.array([change.get("expected", 0.5)]),
                np.array([change.get("baseline", 0.5)]),
            )
            is None
        ), change
