"""``smartretry recommend``: batch scoring through the API's code path, line by line."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from serving.app import create_app
from serving.artifact_decider import load_artifact_decider
from serving.settings import Settings
from training.api.batch import read_batches, score_stream
from training.api.from_history import history_requests
from training.cli.main import app

KEY = "cli-test-key-0123456789"


@pytest.fixture(scope="module")
def model_dir(small_world: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_world.artifact.save(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def requests(small_world: Any) -> list[dict[str, Any]]:
    return history_requests(small_world.history, small_world.split.test_start, limit=12)


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _strip(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "decision_id"}


def test_recommend_writes_one_answer_per_line(model_dir, requests, tmp_path):
    known = {k: v for k, v in requests[2].items() if k != "customer"}  # from the artifact
    lines = [
        json.dumps(requests[0]),
        "{not json",
        json.dumps(known),
        json.dumps({**requests[3], "currency": "EURO"}),
        "",
        json.dumps({**requests[4], "customer": {"note": "4242 4242 4242 4242"}}),
        json.dumps(requests[5]),
    ]
    source = _write_lines(tmp_path / "requests.jsonl", lines)
    output = tmp_path / "out" / "responses.jsonl"
    result = _recommend(
        str(model_dir), str(source), str(output), "--batch-size", "3", "--no-progress"
    )
    assert result.exit_code == 0, result.output
    assert "7 items, 4 errors" in result.output and "items/s" in result.output
    out = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(out) == len(lines)
    assert out[1] == {
        "invoice_id": None,
        "error": {
            "code": "invalid_json",
            "message": "line 2: not valid JSON (Expecting property name enclosed in double "
            "quotes at column 2)",
            "field": None,
        },
    }
    assert out[3]["invoice_id"] == requests[3]["invoice_id"]
    assert out[3]["error"]["field"] == "currency"
    assert out[4]["error"]["code"] == "invalid_json" and "empty line" in out[4]["error"]["message"]
    assert out[5]["error"] == {
        "code": "card_number_refused",
        "message": "customer.note: a card number is never accepted by smartretry; remove it "
        "from the request (it was neither stored nor logged)",
        "field": "customer.note",
    }
    for position in (0, 2, 6):
        assert out[position]["fallback"] is False
        assert out[position]["model_version"] == "smart-retry/test"
        assert out[position]["expected_recovery_probability"] is not None


def test_recommend_answers_as_the_api_does(model_dir, requests, tmp_path):
    """Same items, same artifact: the batch endpoint and the command agree (exploration off)."""
    items = [*requests[:6], {"invoice_id": "in_bad", "amount_minor": 1}]
    source = _write_lines(tmp_path / "requests.jsonl", [json.dumps(i) for i in items])
    output = tmp_path / "responses.jsonl"
    result = _recommend(str(model_dir), str(source), str(output), "--no-progress")
    assert result.exit_code == 0, result.output
    cli = [json.loads(line) for line in output.read_text().splitlines()]
    settings = Settings(
        api_keys=[KEY], database_url=f"sqlite:///{tmp_path / 'store.sqlite'}", model=str(model_dir)
    )
    with TestClient(create_app(settings)) as client:
        answer = client.post(
            "/v1/recommendations/batch",
            json={"items": items},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    api = answer.json()["items"]
    assert [_strip(r) for r in cli[:6]] == [_strip(r) for r in api[:6]]
    # the error is the batch endpoint's, without the items[i] prefix (a line stands alone)
    assert cli[6]["error"]["code"] == api[6]["error"]["code"] == "missing_field"
    assert api[6]["error"]["field"] == "items[6]." + cli[6]["error"]["field"]


def test_batch_size_does_not_change_answers(model_dir, requests):
    decider = load_artifact_decider(str(model_dir))
    lines = [json.dumps(r) for r in requests]
    answers = []
    for size in (5, 100):
        sink = io.StringIO()
        summary = score_stream(decider, lines, sink, batch_size=size)
        assert (summary.items, summary.errors) == (len(lines), 0)
        answers.append([_strip(json.loads(line)) for line in sink.getvalue().splitlines()])
    assert answers[0] == answers[1]


def test_input_is_streamed_not_read_whole():
    endless = (json.dumps({"n": i}) for i in itertools.count())
    first = next(read_batches(endless, 4))
    assert first == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]


def _recommend(model, source, output, *extra: str):
    """Run `smartretry recommend` in-process."""
    args = ["recommend", "--model", str(model), "--input", str(source), "--output", str(output)]
    return CliRunner().invoke(app, [*args, *extra])


def test_unloadable_model_is_a_clear_error(tmp_path):
    source = _write_lines(tmp_path / "requests.jsonl", ["{}"])
    result = _recommend(str(tmp_path / "missing"), str(source), str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2
    assert "cannot load model" in result.output and "FileNotFoundError" in result.output
