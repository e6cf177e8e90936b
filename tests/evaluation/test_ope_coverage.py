"""`smartretry ope-coverage`: both first-retry weightings from one run, rows kept apart
by weighting, tables rewritten after every pair."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from training.cli.main import app
from training.config.params import EvaluateParams, ModelParams, Params, TrainParams
from training.evaluation import ope_coverage
from training.evaluation.ope_checks import coverage, off_policy_checks, timing_checks


def _timing(weighting: str, lower: float, upper: float) -> dict[str, Any]:
    entry = {"value": (lower + upper) / 2, "lower": lower, "upper": upper}
    return {"propensity": weighting, "truth": 0.5, "ips": entry, "snips": entry}


def test_coverage_keeps_the_weightings_apart_with_their_widths():
    rows = [
        *timing_checks(_timing("logged", 0.40, 0.60)),
        *timing_checks(_timing("estimated", 0.52, 0.56)),
        *timing_checks(_timing("estimated", 0.45, 0.55)),
    ]
    assert {r["weighting"] for r in rows} == {"logged", "estimated"}
    summary = coverage(rows)
    logged = summary["first-retry timing / ips / logged"]
    estimated = summary["first-retry timing / ips / estimated"]
    assert (logged["intervals"], logged["covered"]) == (1, 1)
    assert (estimated["intervals"], estimated["covered"]) == (2, 1)
    assert estimated["share"] == pytest.approx(0.5)
    assert logged["mean_width"] == pytest.approx(0.20)
    assert estimated["mean_width"] == pytest.approx((0.04 + 0.10) / 2)


def test_a_menu_row_has_no_weighting_and_a_timing_row_defaults_to_logged():
    entry = {"value": 0.5, "lower": 0.4, "upper": 0.6}
    block = {"truth": 0.55, "ips": entry, "snips": entry, "dr": entry}
    rows = off_policy_checks(
        {"off_policy": block, "off_policy_timing": {"truth": 0.7, "ips": entry, "snips": entry}}
    )
    assert [r.get("weighting") for r in rows] == [None] * 3 + ["logged"] * 2
    assert list(coverage(rows)) == [
        "menu / ips",
        "menu / snips",
        "menu / dr",
        "first-retry timing / ips / logged",
        "first-retry timing / snips / logged",
    ]


def test_the_tables_are_written_after_every_pair(tmp_path, monkeypatch):
    seen: list[int | None] = []

    def fake_checks(name, invoices, seed, params, out, weightings):
        table = out / "ope_coverage.json"
        seen.append(json.loads(table.read_text())["pairs_done"] if table.exists() else None)
        rows = [r for w in weightings for r in timing_checks(_timing(w, 0.4, 0.6 - seed / 10))]
        return [{"world": name, "seed": seed, **r} for r in rows]

    monkeypatch.setattr(ope_coverage, "world_checks", fake_checks)
    rows, summary = ope_coverage.run_ope_coverage(
        ["default"], [0, 1, 2], 100, Params(), tmp_path, ("logged", "estimated")
    )
    assert seen == [None, 1, 2]  # a partial run leaves readable tables
    assert len(rows) == 3 * 2 * 2
    assert summary["first-retry timing / snips / estimated"]["covered"] == 2  # seed 2 misses
    saved = json.loads((tmp_path / "ope_coverage.json").read_text())
    assert (saved["pairs_done"], saved["pairs"]) == (3, 3)
    table = (tmp_path / "ope_coverage.md").read_text()
    assert "Pairs done" not in table
    assert "| first-retry timing / ips / estimated | 3 | 2 | 66.7% | 10.0 | 0 |" in table
    assert (
        "| default | 1 | first-retry timing | ips | logged | 45.0 [40.0, 50.0] | 50.0 | yes |"
        in table
    )
    assert (
        "| default | 2 | first-retry timing | ips | logged | 40.0 [40.0, 40.0] | 50.0 | **no** |"
        in table
    )


def test_the_cli_refuses_an_unknown_weighting(tmp_path: Path):
    result = CliRunner().invoke(
        app, ["ope-coverage", "--timing-propensity", "logged,guessed", "--out", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert "logged, estimated" in result.output


@pytest.mark.parametrize(
    ("option", "value", "kind"), [("--seeds", "7,x", "int"), ("--day-rates", "0.05,a", "float")]
)
def test_the_cli_names_the_option_whose_numbers_do_not_parse(
    tmp_path: Path, option: str, value: str, kind: str
):
    result = CliRunner().invoke(app, ["ope-coverage", option, value, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert option in result.output and f"expected {kind} values" in result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.slow  # simulates and trains one small world (~1-2 min under load)
def test_one_pair_reports_each_weighting_from_the_same_model(tmp_path):
    params = Params(
        train=TrainParams(
            model=ModelParams(num_boost_round=60, learning_rate=0.1, early_stopping_rounds=10)
        ),
        evaluate=EvaluateParams(max_ope_invoices=800, bootstrap=100),
    )
    rows, _ = ope_coverage.run_ope_coverage(
        ["default"], [3], 2500, params, tmp_path, ("logged", "estimated")
    )
    timing = [r for r in rows if r["estimand"] == "first-retry timing"]
    assert {(r["estimator"], r["weighting"]) for r in timing} == {
        (e, w) for e in ("ips", "snips") for w in ("logged", "estimated")
    }
    assert len({r["truth"] for r in timing}) == 1  # one estimand, one truth
    menu = [r for r in rows if r["estimand"] == "menu"]
    assert menu and not any("weighting" in r for r in menu)
    assert json.loads((tmp_path / "ope_coverage.json").read_text())["pairs_done"] == 1
