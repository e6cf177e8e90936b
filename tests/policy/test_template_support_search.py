"""The message search leaves out a template at hours outside its logged range
(``train.model.template_time_support``, training/models/template_support.py)."""

from __future__ import annotations

import numpy as np

from training.core.localtime import HOUR_NS, to_ns
from training.features.invoice import events_from_history
from training.models.template_support import TemplateSupport
from training.policy.message_search import _support_bounds, _template_labels
from training.policy.scorer import past_rows


def _plan_hours(small_world, monkeypatch, support: TemplateSupport | None):
    decider = small_world.artifact.decider(compiled=False)
    decider.config = decider.config.model_copy(update={"exploration_rate": 0.0})
    monkeypatch.setattr(decider.scorer.models.message, "template_support", support)
    events = events_from_history(small_world.history).tail(60).reset_index(drop=True)
    plan = decider.plan(events, None, explore=False, past=past_rows(events, None))
    failed = dict(zip(events["event_id"], to_ns(events["failed_at"]), strict=True))
    messages = plan.messages
    start = np.array([failed[e] for e in messages.event_id])
    return messages.template, (messages.send_at - start) / HOUR_NS


def test_planned_messages_stay_within_their_templates_logged_hours(small_world, monkeypatch):
    templates = np.array(small_world.artifact.templates, dtype=object)
    # every template allowed only from 60 to 150 hours after the failure
    narrow = TemplateSupport(
        tuple(templates), np.full(len(templates), 60.0), np.full(len(templates), 150.0)
    )
    template, hours = _plan_hours(small_world, monkeypatch, None)
    assert ((hours < 60.0) | (hours > 150.0)).any()  # without the support, some lie outside
    template, hours = _plan_hours(small_world, monkeypatch, narrow)
    assert len(hours) > 0
    assert ((hours >= 60.0) & (hours <= 150.0)).all()


def test_the_lower_side_alone_keeps_later_hours(small_world, monkeypatch):
    templates = np.array(small_world.artifact.templates, dtype=object)
    # train.model.template_time_support_sides: lower -- no upper bound
    lower_only = TemplateSupport(
        tuple(templates), np.full(len(templates), 60.0), np.full(len(templates), np.inf)
    )
    template, hours = _plan_hours(small_world, monkeypatch, lower_only)
    assert len(hours) > 0
    assert (hours >= 60.0).all()
    assert (hours > 150.0).any()  # later than the two-sided test's bound stays open


def test_template_bounds_are_kept_per_support_and_templates():
    """The search's bounds per template are the support's, worked out once per support
    and read-only templates array (the decider's labels), again for any other."""
    support = TemplateSupport(("a", "b"), np.array([1.0, 2.0]), np.array([5.0, np.inf]))
    labels = _template_labels(("b", "c", "a"))
    first = _support_bounds(support, labels)
    for got, want in zip(first, support.bounds(labels), strict=True):
        assert got.tolist() == want.tolist() and not got.flags.writeable
    assert _support_bounds(support, labels) is first
    other = TemplateSupport(("c",), np.array([0.0]), np.array([1.0]))
    assert _support_bounds(other, labels)[0].tolist() == [-np.inf, 0.0, -np.inf]
    writable = np.array(["a"], dtype=object)
    assert _support_bounds(support, writable) is not _support_bounds(support, writable)
