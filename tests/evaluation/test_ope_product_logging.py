"""Off-policy estimates on a history the product itself logged (issue 13, item 3): the
decider's per-row propensities reach the contract's history end to end, the product's
schedule given a first retry is the one its exploration returns, and the estimand's
truth keeps the rest of the dunning as the product (not the team) did it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from training.config.params import EvaluateParams, Params
from training.core.localtime import HOUR_NS, to_ns
from training.core.randomness import process_rng, seeded_process_rng
from training.evaluation.ope_first_retry import (
    learn_support,
    read_first_retries,
    target_distribution,
)
from training.evaluation.ope_product_logging import (
    ProductRest,
    exploring_decider,
    planned_rows,
    product_logged_history,
)
from training.evaluation.ope_timing_eval import (
    learned_first_retry_hours,
    timing_estimates_by_weighting,
    timing_truth,
)
from training.evaluation.run import held_out_events
from training.policy.exploration import DAY_MOVED, SEARCHED, SHIFTED

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def product(small_world: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """300 held-out failures dunned by the small world's decider exploring often
    (shifts 0.2, first retry's day 0.5), realized and read back through the contract."""
    held = held_out_events(small_world.history, small_world.artifact, Params())
    events = held.sample(300, random_state=3).reset_index(drop=True)
    target = small_world.artifact.decider()
    target.config = target.config.model_copy(update={"exploration_rate": 0.2})
    logger = exploring_decider(target, 0.5)
    folder = tmp_path_factory.mktemp("product") / "history"
    logged = product_logged_history(
        logger, small_world.history, events, small_world.truth, 4, folder
    )
    with seeded_process_rng(4):
        retries, _ = planned_rows(events, logger)
    return {"events": events, "logger": logger, "logged": logged, "planned": retries}


def test_the_product_logged_period_carries_the_deciders_propensities(small_world, product):
    logged, planned, events = product["logged"], product["planned"], product["events"]
    assert set(logged.invoices["invoice_id"]) == set(events["invoice_id"])
    retries = logged.attempts[
        (logged.attempts["initiated_by"] == "merchant") & logged.attempts["propensity"].notna()
    ]
    # every executed retry is one the decider planned, with that row's own propensity
    merged = retries.merge(
        planned.rename(columns={"t": "attempted_at"}), on=["invoice_id", "attempted_at"]
    )
    assert len(merged) == len(retries) > 100
    np.testing.assert_allclose(merged["propensity_x"], merged["propensity_y"])
    # explored first retries are rare ones; the searched ones keep the searched mass
    first = read_first_retries(logged, 14)
    seen = ~np.isnan(first.propensity)
    assert (first.propensity[seen] < 0.1).sum() > 20
    assert (first.propensity[seen] > 0.3).sum() > 20
    # replayable: the same seed, the same draws; the process's generator is given back
    kept = process_rng()
    with seeded_process_rng(4):
        again, _ = planned_rows(events, product["logger"])
    assert process_rng() is kept
    pd.testing.assert_frame_equal(again, planned)


def test_the_rest_given_a_first_retry_is_the_schedule_the_exploration_returns(product):
    events, logger = product["events"], product["logger"]
    with seeded_process_rng(9):
        plan = logger.plan(events, None)
    explored = plan.explored
    assert explored is not None
    kinds = set(explored.kind.tolist())
    assert {SEARCHED, SHIFTED, DAY_MOVED} <= kinds
    got = plan.retries.frame()
    first = got.groupby("event_id")["at"].min()
    failed = events.set_index("event_id")["failed_at"]
    offsets = np.round((first - failed.loc[first.index]).dt.total_seconds() / 3600).to_numpy()
    ids = events.set_index("event_id").loc[first.index, "invoice_id"].to_numpy()
    rest = ProductRest(logger, events)
    assert rest.produced(ids, offsets).all()
    retries, _ = rest(ids, offsets, first.index.to_numpy())
    ours = retries.rename(columns={"invoice_id": "event_id", "t": "at"})
    pd.testing.assert_frame_equal(
        ours.reset_index(drop=True), got[["event_id", "at"]].reset_index(drop=True)
    )


def _brute_force(small_world, logger, events, ids, offsets, target) -> float:
    """The estimand's truth, one schedule at a time: the searched schedule, its first
    retry put at the offset (its minute kept), each later retry kept when the spacing
    after the one before allows, else pushed to it, dropped past the window; every retry
    moved alike when the move is one of the exploration's shifts and the moved schedule
    stays within the window."""
    truth = small_world.truth
    plan = logger.plan(events, None, explore=False)
    retries, messages = plan.retries.frame(), plan.messages.frame()
    spacing = pd.Timedelta(hours=logger.rules.limits.min_spacing_hours)
    shifts = set(logger.config.exploration_shifts_hours) - {0}
    end = events.set_index("invoice_id")["failed_at"] + pd.Timedelta(days=14)
    value = 0.0
    for i, invoice in enumerate(ids):
        own = sorted(retries.loc[retries["event_id"] == invoice, "at"])
        due = events.set_index("invoice_id").loc[invoice, "failed_at"]
        whole = round((own[0] - due).total_seconds() / 3600)
        for j, offset in enumerate(offsets):
            if target[i, j] == 0:
                continue
            move = pd.Timedelta(hours=offset - whole)
            times = [own[0] + move]
            for t in own[1:]:
                times.append(max(t, times[-1] + spacing))
            if offset - whole in shifts and own[0] + move >= due + spacing:
                if own[-1] + move < end.loc[invoice]:
                    times = [t + move for t in own]
            times = [t for t in times if t < end.loc[invoice]]
            mine = messages[messages["event_id"] == invoice]
            p = truth.recovery_probability(
                pd.DataFrame({"key": ["k"], "invoice_id": [invoice]}),
                pd.DataFrame({"key": "k", "invoice_id": invoice, "at": times}),
                pd.DataFrame(
                    {
                        "key": "k",
                        "invoice_id": invoice,
                        "send_at": mine["send_at"].to_numpy(),
                        "channel": mine["channel"].to_numpy(),
                        "template": mine["template"].to_numpy(),
                    }
                ),
            ).iloc[0]
            value += target[i, j] * p
    return value / len(ids)


def test_the_truth_keeps_the_products_rest_of_the_dunning(small_world, product):
    """A tiny case against a brute-force valuation of the product's own schedules (the
    team's, drawn from its menu, would value them otherwise)."""
    events, logger, logged = product["events"], product["logger"], product["logged"]
    log_all = read_first_retries(logged, 14)
    support = learn_support(log_all, 3, 4)
    hours = learned_first_retry_hours(logger, logged, events)
    rows = np.flatnonzero(~np.isnan(hours))[:6]
    # day-moved offsets of the searched first retries: the later retries get pushed
    offsets = np.unique(np.concatenate([np.round(hours[rows]), np.round(hours[rows]) + 24]))
    support = type(support)(offsets, np.full(len(offsets), 0.1), 4)
    target = target_distribution(hours[rows], support, 0.3)
    position = pd.Series(np.arange(len(log_all.invoice_id)), index=log_all.invoice_id)
    log = log_all.take(position.loc[events["invoice_id"].to_numpy()[rows]].to_numpy())
    rest = ProductRest(logger, events)
    exact = timing_truth(small_world.truth, log, support, target, 14, 0, rest)
    ids = events["invoice_id"].to_numpy()[rows]
    brute = _brute_force(small_world, logger, events, ids, support.offsets, target)
    assert exact == pytest.approx(brute, abs=1e-9)


def test_timing_estimates_on_the_product_logged_period(small_world, product):
    """The whole estimate reads the product's logs and sets its intervals against the
    product's truth (the truth is the same for both weightings)."""
    events, logger, logged = product["events"], product["logger"], product["logged"]
    target = small_world.artifact.decider()
    rest = ProductRest(logger, events)
    out = timing_estimates_by_weighting(
        target,
        logged,
        events,
        14,
        EvaluateParams(bootstrap=100, timing_min_offset_support=2),
        ("logged", "estimated"),
        small_world.truth,
        rest,
    )
    assert out["logged"]["support_offsets"] >= 4, out["logged"]
    assert out["logged"]["truth"] == out["estimated"]["truth"]
    assert 0 < out["estimated"]["truth"] < 1
    for block in out.values():
        for name in ("ips", "snips"):
            assert ("value" in block[name]) or ("cannot_estimate" in block[name])


def test_shifted_offsets_move_every_retry(product):
    events, logger = product["events"], product["logger"]
    rest = ProductRest(logger, events)
    ids = events["invoice_id"].to_numpy()
    hours = learned_first_retry_hours(logger, product["logged"], events)
    planned = ~np.isnan(hours)
    moved = np.round(hours[planned]) + 6
    shifted = rest._moves(ids[planned], moved)[2]
    keys = np.arange(planned.sum()).astype(str)
    got, _ = rest(ids[planned][shifted], moved[shifted], keys[shifted])
    base, _ = rest(ids[planned][shifted], np.round(hours[planned])[shifted], keys[shifted])
    assert len(got) == len(base) > 0
    gap = to_ns(got["t"]) - to_ns(base["t"])
    assert (gap == 6 * HOUR_NS).all()


def test_the_cli_runs_product_logging(tmp_path: Path, monkeypatch):
    from typer.testing import CliRunner

    from training.cli.main import app
    from training.evaluation import ope_coverage

    calls: list[tuple] = []

    def fake(name, invoices, seed, params, out, weightings, day_rates):
        calls.append((name, seed, tuple(weightings), tuple(day_rates)))
        return []

    monkeypatch.setattr(ope_coverage, "product_world_checks", fake)
    result = CliRunner().invoke(
        app,
        [
            "ope-coverage",
            "--logging",
            "product",
            "--worlds",
            "default",
            "--seeds",
            "7,8",
            "--day-rates",
            "0.05,0.2",
            "--timing-propensity",
            "estimated",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert calls == [
        ("default", 7, ("estimated",), (0.05, 0.2)),
        ("default", 8, ("estimated",), (0.05, 0.2)),
    ]
    bad = CliRunner().invoke(app, ["ope-coverage", "--logging", "nobody", "--out", str(tmp_path)])
    assert bad.exit_code != 0


def test_the_products_first_retry_masses_are_its_logged_propensities(product):
    """The logger's structure (:class:`ProductRest`) gives each logged first retry the
    very propensity its row carries, and its atoms sum to 1 (what the censored units of
    the day estimand read)."""
    logged, events = product["logged"], product["events"]
    rest = ProductRest(product["logger"], events)
    att = logged.attempts.sort_values(["invoice_id", "attempted_at"], kind="stable")
    merchant = att[att["initiated_by"] == "merchant"]
    first = merchant[merchant["invoice_id"].duplicated()].drop_duplicates("invoice_id")
    ids = first["invoice_id"].to_numpy()
    mass = rest.first_retry_mass(ids, to_ns(first["attempted_at"]))
    np.testing.assert_allclose(mass, first["propensity"].to_numpy(), rtol=1e-12)
    assert (first["propensity"] < 0.1).sum() > 20
    np.testing.assert_allclose(rest.later_mass(ids, np.zeros(len(ids), dtype=np.int64)), 1.0)
    searched = rest.searched_first(ids)
    later = rest.later_mass(ids, searched)  # what comes after the searched time
    assert ((later > 0) & (later < 0.6)).all()


def test_the_first_retry_day_moves_only_the_day(product):
    events, logger = product["events"], product["logger"]
    rest = ProductRest(logger, events)
    ids = events["invoice_id"].to_numpy()[rest.count > 0][:40]
    keys = np.arange(len(ids)).astype(str)
    base, _ = rest.at_days(ids, np.zeros(len(ids)), keys)
    moved, _ = rest.at_days(ids, np.ones(len(ids)), keys)
    first = base.groupby("invoice_id")["t"].min()
    later = moved.groupby("invoice_id")["t"].min()
    gap = to_ns(later.loc[first.index]) - to_ns(first)
    assert (gap == 24 * HOUR_NS).all()


def test_first_retry_day_estimates_on_the_product_logged_period(small_world, product):
    """Weights averaging 1 on the product's own logs (the support checks pass), and the
    greedy target's truth is the searched schedules' own value."""
    from training.evaluation.ope_day_eval import day_estimates
    from training.evaluation.ope_timing_eval import schedule_values

    events, logger, logged = product["events"], product["logger"], product["logged"]
    target = small_world.artifact.decider()
    rest = ProductRest(logger, events)
    settings = EvaluateParams(bootstrap=100)
    greedy = day_estimates(target, logged, events, 14, settings, rest, 0.0, small_world.truth)
    smooth = day_estimates(target, logged, events, 14, settings, rest, 0.3, small_world.truth)
    for block in (greedy, smooth):
        assert block["target_off_searched_day"] == 0.0
        assert block["unsupported_units"] == 0 and block["off_grid"] > 0
        for name in ("ips", "snips"):
            # reported: the support checks passed, the weights' mean among them
            assert "value" in block[name], block[name]
            assert block[name]["mean_weight"] == pytest.approx(1.0, abs=0.25)
    plan = logger.plan(events, None, explore=False)
    retries, messages = plan.retries.frame(), plan.messages.frame()
    invoice = events.set_index("event_id")["invoice_id"]
    ids = events["invoice_id"].to_numpy()[rest.count > 0]
    retries = retries[retries["event_id"].map(invoice).isin(ids)]
    messages = messages[messages["event_id"].map(invoice).isin(ids)]
    values = schedule_values(
        small_world.truth,
        pd.DataFrame({"key": ids, "invoice_id": ids}),
        pd.DataFrame({"invoice_id": retries["event_id"].map(invoice), "t": retries["at"]}),
        pd.DataFrame(
            {
                "invoice_id": messages["event_id"].map(invoice),
                "t": messages["send_at"],
                "channel": messages["channel"],
                "template": messages["template"],
            }
        ),
    )
    assert greedy["units"] == len(ids)
    assert greedy["truth"] == pytest.approx(float(values.mean()), abs=1e-12)
    assert smooth["truth"] != greedy["truth"]
