"""``message_state`` (the message search's candidates, from running counts) against
``state_of_rows`` on each candidate's own timeline: its event's attempts, the messages
chosen so far and the candidate, with ties in time and several templates."""

from __future__ import annotations

import numpy as np
import pytest

from training.config.retry_limits import RetryLimits
from training.core.localtime import HOUR_NS
from training.features.dunning_state import PastAttempts, message_state, state_of_rows

UPDATE = RetryLimits().update_requests
TEMPLATES = np.array([UPDATE.templates[0], "friendly", "firm", "final", "offer"], dtype=object)
COUNTS = ("retries_before", "messages_before", "update_requests_before", "same_template_before")


def _sorted(event: np.ndarray, ns: np.ndarray) -> np.ndarray:
    return np.lexsort((ns, event))


def _case(seed: int, messages: int, after_attempts: bool = False):
    """Candidates anywhere around the attempts, or (``after_attempts``: the search's
    case) at or after every attempt of their event (ties with the latest)."""
    rng = np.random.default_rng(seed)
    n_events, n = 6, 80
    base = 1_700_000_000 * 10**9
    start = base + rng.integers(0, 48, n_events) * HOUR_NS
    # attempts: the original charge, then up to three retries a whole number of hours later
    retries = rng.integers(0, 4, n_events)
    att_event = np.concatenate([np.arange(n_events), np.repeat(np.arange(n_events), retries)])
    att_ns = start[att_event] + np.concatenate(
        [np.zeros(n_events, dtype=np.int64), rng.integers(1, 60, retries.sum()) * HOUR_NS]
    )
    att_retry = np.arange(len(att_event)) >= n_events
    order = _sorted(att_event, att_ns)
    att_event, att_ns, att_retry = att_event[order], att_ns[order], att_retry[order]
    msg_event = rng.integers(0, n_events, messages)
    msg_ns = start[msg_event] + rng.integers(0, 120, messages) * HOUR_NS
    msg_template = rng.integers(0, len(TEMPLATES), messages)
    msg_template[::4] = 0  # an update request among every four messages
    order = _sorted(msg_event, msg_ns)
    msg_event, msg_ns, msg_template = msg_event[order], msg_ns[order], msg_template[order]
    event = rng.integers(0, n_events, n)
    ns = start[event] + rng.integers(0, 120, n) * HOUR_NS  # ties with attempts and messages
    if after_attempts:
        latest = np.zeros(n_events, dtype=np.int64)
        np.maximum.at(latest, att_event, att_ns)
        ns = np.maximum(ns, latest[event])
    template = rng.integers(0, len(TEMPLATES), n)
    return (
        start,
        (att_event, att_ns, att_retry),
        (msg_event, msg_ns, msg_template),
        event,
        ns,
        template,
    )


def _reference(start, attempts, messages, event, ns, template) -> dict[str, np.ndarray]:
    """Each candidate's timeline (key: the candidate), its own row first among equal times."""
    att_event, att_ns, att_retry = attempts
    msg_event, msg_ns, msg_template = messages
    n = len(event)
    cand_a, att = np.nonzero(event[:, None] == att_event[None, :])
    cand_m, msg = np.nonzero(event[:, None] == msg_event[None, :])
    key = np.concatenate([np.arange(n), cand_a, cand_m])
    t = np.concatenate([ns, att_ns[att], msg_ns[msg]])
    kind = np.concatenate(
        [
            np.full(n, "message", dtype=object),
            np.where(att_retry[att], "retry", "original").astype(object),
            np.full(len(msg), "message", dtype=object),
        ]
    )
    names = np.concatenate(
        [TEMPLATES[template], np.full(len(att), None), TEMPLATES[msg_template[msg]]]
    )
    candidate = np.arange(len(key)) < n
    wanted, state = state_of_rows(key, t, kind, names, candidate, UPDATE)
    back = np.empty(n, dtype=np.int64)
    back[key[wanted]] = np.arange(n)
    return {name: values[back] for name, values in state.items()}


@pytest.mark.parametrize("after_attempts", [False, True])
@pytest.mark.parametrize("messages", [0, 1, 3, 12])
@pytest.mark.parametrize("seed", range(4))
def test_message_state_equals_each_candidates_timeline(seed, messages, after_attempts):
    start, attempts, chosen, event, ns, template = _case(seed, messages, after_attempts)
    att_event, att_ns, att_retry = attempts
    msg_event, msg_ns, msg_template = chosen
    past = PastAttempts.of(att_event, att_ns / HOUR_NS, att_retry, len(start))
    # the candidates' attempt columns gathered per event, or searched
    assert (ns / HOUR_NS < past.latest[event]).any() != after_attempts
    got = message_state(
        event, ns / HOUR_NS, template, start / HOUR_NS,
        past,
        msg_event, msg_ns / HOUR_NS, msg_template,
        np.isin(TEMPLATES[msg_template], UPDATE.templates), UPDATE.plausible_after_hours,
    )  # fmt: skip
    want = _reference(start, attempts, chosen, event, ns, template)
    assert set(got) == set(want)
    for name in want:
        if name in COUNTS or name == "card_update_likely":
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)
        else:  # hours since: the same instants, differenced in hours or in nanoseconds
            np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-6, err_msg=name)
    if messages == 12:  # the counts are exercised, not all zero
        assert (got["same_template_before"] > 0).any() and (got["update_requests_before"] > 0).any()
