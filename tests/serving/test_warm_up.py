"""The warm-up at load (serving/warm_up.py): it fills the decision memos, moves no
decision and no draw of the process's generator, and can be turned off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from api_helpers import make_settings, post_json
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.artifact_decider import ArtifactDecider, load_artifact_decider
from serving.warm_up import code_events
from training.api.from_history import history_requests
from training.api.service import recommend
from training.core.randomness import process_rng, seeded_process_rng
from training.declines.rules import RetryRules


@pytest.fixture(scope="module")
def artifact_dir(small_world: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_world.artifact.save(tmp_path_factory.mktemp("warm") / "model")


@pytest.fixture(scope="module")
def held_out(small_world: Any) -> list[dict[str, Any]]:
    return history_requests(small_world.history, small_world.split.test_start, limit=30)


def _load(folder: Path, warm_up: bool) -> ArtifactDecider:
    decider = load_artifact_decider(str(folder), warm_up=warm_up)
    inner = decider.decider
    inner.config = inner.config.model_copy(update={"exploration_rate": 0.0})  # type: ignore[attr-defined]
    return decider


def _answers(decider: ArtifactDecider, requests: list[dict[str, Any]], size: int) -> str:
    out = []
    for i in range(0, len(requests), size):
        for result in recommend(decider, requests[i : i + size]):
            answer = result.model_dump(mode="json")
            answer.pop("decision_id")
            out.append(answer)
    return json.dumps(out, sort_keys=True)


def test_the_warm_up_fills_the_rules_memos_a_lone_request_meets(artifact_dir, held_out):
    cold, warm = _load(artifact_dir, False), _load(artifact_dir, True)
    assert not cold.decider.rules._decision_memo  # type: ignore[attr-defined]
    rules = warm.decider.rules  # type: ignore[attr-defined]
    assert isinstance(rules, RetryRules)
    entries = sum(len(memo) for memo in rules._decision_memo.values())
    assert entries >= len(code_events(rules))
    # a held-out first failure with a code of the table and no advice code: no miss left
    known = set(zip(rules.table.rows["processor"], rules.table.rows["code"], strict=True))
    lone = [
        r
        for r in held_out
        if (r["processor"], r["decline_code"]) in known
        and r.get("merchant_advice_code") is None
        and not r.get("previous_attempts")
    ]
    assert lone
    misses = []
    decide_arrays = rules._decide_arrays
    rules._decide_arrays = lambda *a: misses.append(1) or decide_arrays(*a)  # type: ignore[method-assign]
    for request in lone:
        recommend(warm, [request])
    assert misses == []


def test_decisions_after_the_warm_up_equal_those_without_it(artifact_dir, held_out):
    cold, warm = _load(artifact_dir, False), _load(artifact_dir, True)
    for size in (1, 10):
        assert _answers(warm, held_out, size) == _answers(cold, held_out, size)


def test_the_warm_up_leaves_the_process_generator_as_it_was(artifact_dir):
    with seeded_process_rng(11):
        load_artifact_decider(str(artifact_dir))
        drawn = process_rng().random(3)
    assert np.array_equal(drawn, np.random.default_rng(11).random(3))


def test_a_server_with_the_warm_up_off_loads_and_answers(artifact_dir, held_out, tmp_path):
    settings = make_settings(tmp_path, model=str(artifact_dir), model_warm_up=False)
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").json()["model_loaded"] is True
        assert post_json(client, "/v1/recommendations", held_out[0]).status_code == 200


def test_a_failed_warm_up_leaves_the_model_loaded(artifact_dir, held_out, monkeypatch):
    import serving.warm_up

    def broken(*args: Any) -> None:
        raise RuntimeError("broken warm-up")

    monkeypatch.setattr(serving.warm_up, "warm_up", broken)
    decider = load_artifact_decider(str(artifact_dir))
    assert not decider.decider.rules._decision_memo  # type: ignore[attr-defined]
    assert recommend(decider, held_out[:1])[0].fallback is False  # type: ignore[union-attr]


def test_the_setting_reads_the_environment(monkeypatch):
    from serving.settings import Settings

    assert Settings().model_warm_up is True
    monkeypatch.setenv("SMARTRETRY_MODEL_WARM_UP", "false")
    assert Settings().model_warm_up is False
