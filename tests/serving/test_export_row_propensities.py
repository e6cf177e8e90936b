"""The product's own logging, end to end (issue 13, item 3): a simulated world's model
serves held-out failures with exploration on, the billing system executes the answers
and reports what happened, ``export-outcomes`` writes a history, the contract validates
it and the off-policy estimators read it. Each retry and message carries its own
propensity (``training.policy.exploration``), not the whole schedule's copied."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from api_helpers import flush_decisions, make_settings, post_json
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from serving.app import create_app
from serving.store.db import make_engine
from serving.store.models import Decision
from training.api.from_history import history_requests
from training.cli.main import app as cli
from training.contract.history import History
from training.contract.io import load_history
from training.evaluation.ope_eval import MAX_PER_DECISION_SHARE, per_decision_share
from training.evaluation.ope_first_retry import (
    learn_support,
    read_first_retries,
    target_distribution,
    timing_feedback,
)

pytestmark = pytest.mark.slow

WINDOW_DAYS = 14


@pytest.fixture(scope="module")
def served(small_world: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """60 held-out failures answered by a model exploring often (0.3 shifts, 0.6 first
    retry days), executed and reported; the store's URL and the answers."""
    root = tmp_path_factory.mktemp("row_propensities")
    policy = small_world.artifact.policy.model_copy(
        update={"exploration_rate": 0.3, "exploration_first_retry_day_rate": 0.6}
    )
    artifact = dataclasses.replace(
        small_world.artifact,
        policy=policy,
        metadata={"name": "smart-retry", "model_version": "smart-retry/exploring"},
    )
    settings = make_settings(root, model=str(artifact.save(root / "model")))
    requests = history_requests(small_world.history, small_world.split.test_start, limit=60)
    with TestClient(create_app(settings)) as client:
        answer = post_json(client, "/v1/recommendations/batch", {"items": requests})
        assert answer.status_code == 200, answer.text
        answers = answer.json()["items"]
        events, moved = _executed(requests, answers)
        for start in range(0, len(events), 500):
            body = {"events": events[start : start + 500]}
            assert post_json(client, "/v1/outcomes", body).status_code == 200
        flush_decisions(client)
    yield {"url": settings.database_url, "answers": answers, "moved": moved}


def _executed(
    requests: list[dict[str, Any]], answers: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], str]:
    """What a billing system reports when it executes each answer (a retry succeeds with
    the model's probability; nothing after a success), plus one retry it made itself
    between two recommended ones; returns the events and that retry's event id."""
    rng = np.random.default_rng(11)
    events: list[dict[str, Any]] = []
    moved = ""
    for request, answer in zip(requests, answers, strict=True):
        invoice, decision = answer["invoice_id"], answer["decision_id"]
        paid_at = pd.Timestamp.max.tz_localize("UTC")
        for k, retry in enumerate(answer["retries"]):
            at = pd.Timestamp(retry["at"]) + pd.Timedelta(seconds=4)
            won = bool(rng.random() < retry["success_probability"])
            events.append(_attempt(f"{invoice}_r{k}", invoice, at, decision, won))
            if not moved and k == 1 and not won:  # between the first two recommended
                made = pd.Timestamp(answer["retries"][0]["at"]) + pd.Timedelta(hours=5)
                moved = f"{invoice}_own"
                events.append(_attempt(moved, invoice, made, decision, False))
            if won:
                paid_at = at
                break
        for k, message in enumerate(answer["messages"]):
            if pd.Timestamp(message["send_at"]) < paid_at:
                events.append(
                    {
                        "event_id": f"{invoice}_m{k}",
                        "type": "message_sent",
                        "invoice_id": invoice,
                        "occurred_at": message["send_at"],
                        "message_id": f"{invoice}_m{k}",
                        "channel": message["channel"],
                        "template": message["template"],
                        "decision_id": decision,
                    }
                )
        assert request["invoice_id"] == invoice
    assert moved, "no answer with two retries to put a billing system's own retry between"
    return events, moved


def _attempt(
    event_id: str, invoice: str, at: pd.Timestamp, decision: str, won: bool
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "attempt_id": event_id,
        "type": "attempt",
        "invoice_id": invoice,
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "initiated_by": "merchant",
        "outcome": "succeeded" if won else "failed",
        **({} if won else {"decline_code": "insufficient_funds"}),
        "decision_id": decision,
    }


@pytest.fixture(scope="module")
def exported(served: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> History:
    out = tmp_path_factory.mktemp("export") / "history"
    result = CliRunner().invoke(
        cli, ["export-outcomes", "--out", str(out), "--database-url", served["url"]]
    )
    assert result.exit_code == 0, result.output
    history, report = load_history(out)
    assert sum(report.rejected_rows.values()) == 0
    return history


def _stored(url: str) -> dict[str, dict[str, list[float]]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Decision.decision_id, Decision.row_propensities)).all()
    finally:
        engine.dispose()
    return {decision: own for decision, own in rows}


def _retries(history: History, served: dict[str, Any]) -> pd.DataFrame:
    """The exported attempts that execute a recommended retry, with the answer's rank
    and schedule propensity."""
    rows = [
        {"attempt_id": f"{a['invoice_id']}_r{k}", "rank": k, "schedule": a["propensity"]}
        for a in served["answers"]
        for k in range(len(a["retries"]))
    ]
    return history.attempts.merge(pd.DataFrame(rows), on="attempt_id")


def test_each_attempt_and_message_carries_its_own_stored_propensity(served, exported):
    stored = _stored(served["url"])
    answers = {a["invoice_id"]: a for a in served["answers"]}
    retries = _retries(exported, served)
    assert len(retries) > 60
    own = [
        stored[answers[i]["decision_id"]]["retries"][k]
        for i, k in zip(retries["invoice_id"], retries["rank"], strict=True)
    ]
    np.testing.assert_allclose(retries["propensity"], own)
    messages = exported.messages
    assert len(messages) > 30
    rank = messages["message_id"].str.rsplit("_m", n=1).str[1].astype(int)
    own = [
        stored[answers[i]["decision_id"]]["messages"][k]
        for i, k in zip(messages["invoice_id"], rank, strict=True)
    ]
    np.testing.assert_allclose(messages["propensity"], own)


def test_the_rows_propensities_are_the_explorations_not_the_schedules(served, exported):
    """The first retry's own probability is the schedule's; a later retry's is at least
    that, and higher wherever the exploration could have left it in place; a message's is
    1 (no arm moves messages). Copying the schedule's propensity fails all but the first."""
    retries = _retries(exported, served)
    first = retries[retries["rank"] == 0]
    np.testing.assert_allclose(first["propensity"], first["schedule"])
    later = retries[retries["rank"] > 0]
    assert (later["propensity"] >= later["schedule"] - 1e-12).all()
    # left in place by a first-retry-day move, or searched ones another day would keep;
    # a shifted schedule's later retries are the shift's alone (the schedule's, 0.06)
    assert (later["propensity"] > later["schedule"] + 0.01).sum() >= 10
    explored = [a for a in served["answers"] if a["propensity"] < 0.5]
    assert len(explored) > 20  # the exploration ran: most schedules' propensity is small
    assert (exported.messages["propensity"] == 1.0).all()


def test_a_retry_the_billing_system_made_itself_carries_none(served, exported):
    attempts = exported.attempts.set_index("attempt_id")
    assert np.isnan(attempts.loc[served["moved"], "propensity"])
    # the failed charges the requests carried were not chosen by the exploration either
    original = exported.attempts.merge(
        exported.invoices[["invoice_id", "due_at"]], on="invoice_id"
    ).query("attempted_at == due_at")
    assert len(original) == 60 and original["propensity"].isna().all()


def test_the_estimators_read_the_first_retries_exploration_probability(served, exported):
    """The first-retry timing estimate weighs each unit by the logged first retry's
    propensity: the exploration's own. The menu estimate sees per-decision propensities
    (the retries of one invoice differ) and refuses, as it must for per-customer
    schedules."""
    log = read_first_retries(exported, WINDOW_DAYS)
    answers = pd.DataFrame(served["answers"]).set_index("invoice_id")
    retried = ~np.isnan(log.first_retry_hours)
    assert retried.sum() > 40
    np.testing.assert_allclose(
        log.propensity[retried], answers.loc[log.invoice_id[retried], "propensity"]
    )
    support = learn_support(log, min_count=1)
    target = target_distribution(log.first_retry_hours[retried], support)
    timing = timing_feedback(
        log.take(np.flatnonzero(retried)), support, target, log.first_retry_hours[retried], "logged"
    )
    mu = timing.feedback.logging_probability
    assert ((mu > 0) & (mu <= 1)).all()
    np.testing.assert_allclose(mu, log.propensity[retried])
    # the menu estimate's own test: above it, it refuses (about half the invoices here)
    assert per_decision_share(exported) > MAX_PER_DECISION_SHARE
