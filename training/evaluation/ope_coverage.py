"""`smartretry ope-coverage`: how often the off-policy intervals hold the truth, over
worlds of the zoo and seeds.

Per (world, seed): simulate, read through the contract, train with the product's
settings, then run exactly the off-policy estimates of `smartretry evaluate` (the menu
estimate and the first-retry timing estimate, the latter once per weighting of the first
retries asked for, all from the same history and model) and set each interval against
the estimand's exact value. Skips the oracle and the policy comparison, which coverage
does not need. The tables are rewritten after every pair, so a partial run is readable.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from training.config.params import Params
from training.evaluation.ope_checks import MENU_ESTIMATORS, block_checks, coverage, timing_checks
from training.evaluation.ope_first_retry import Propensity
from training.evaluation.ope_timing_eval import timing_estimates_by_weighting
from training.evaluation.run import held_out_events, off_policy_metrics, off_policy_sample
from training.evaluation.zoo import simulate_and_train

log = logging.getLogger(__name__)


def world_checks(
    name: str,
    invoices: int,
    seed: int,
    params: Params,
    out: Path,
    weightings: Sequence[Propensity] = ("logged",),
) -> list[dict]:
    """The off-policy checks of one (world, seed): the menu's, then the first-retry
    timing's once per weighting."""
    world = simulate_and_train(name, invoices, seed, params, out / f"{name}-{seed}")
    decider = world.artifact.decider()
    held = held_out_events(world.history, world.artifact, params)
    events = off_policy_sample(held, params.evaluate)
    log.info("[%s/%d] off-policy estimates on %d held-out invoices", name, seed, len(events))
    menu, _ = off_policy_metrics(decider, world.history, events, params, world.truth)
    timing = timing_estimates_by_weighting(
        decider,
        world.history,
        events,
        params.train.window_days,
        params.evaluate,
        weightings,
        world.truth,
    )
    rows = block_checks("menu", menu, MENU_ESTIMATORS)
    for weighting in weightings:
        rows += timing_checks(timing[weighting])
    return [{"world": name, "seed": seed, **row} for row in rows]


def run_ope_coverage(
    worlds: list[str],
    seeds: list[int],
    invoices: int,
    params: Params,
    out: Path,
    weightings: Sequence[Propensity] = ("logged",),
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """Every (world, seed); writes ope_coverage.json and ope_coverage.md to ``out``
    after every pair (``pairs_done`` of ``pairs`` in the json)."""
    out.mkdir(parents=True, exist_ok=True)
    pairs = [(name, seed) for name in worlds for seed in seeds]
    rows: list[dict[str, Any]] = []
    summary: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for done, (name, seed) in enumerate(pairs, start=1):
        pair_started = time.perf_counter()
        rows += world_checks(name, invoices, seed, params, out, weightings)
        summary = coverage(rows)
        write_tables(out, rows, summary, done, len(pairs))
        log.info(
            "pair %d/%d (%s, seed %d) done in %.0f s (%.0f s in all); covered so far: %s",
            done,
            len(pairs),
            name,
            seed,
            time.perf_counter() - pair_started,
            time.perf_counter() - started,
            "; ".join(f"{k} {c['covered']}/{c['intervals']}" for k, c in summary.items()),
        )
    return rows, summary


def write_tables(
    out: Path,
    rows: list[dict[str, Any]],
    summary: dict[str, dict[str, float]],
    done: int,
    pairs: int,
) -> None:
    """ope_coverage.json and ope_coverage.md as they stand after ``done`` pairs."""
    (out / "ope_coverage.json").write_text(
        json.dumps(
            {"pairs_done": done, "pairs": pairs, "rows": rows, "coverage": summary},
            indent=2,
            default=float,
        )
        + "\n"
    )
    head = f"Pairs done: {done} of {pairs}.\n\n" if done < pairs else ""
    (out / "ope_coverage.md").write_text(head + coverage_markdown(rows, summary) + "\n")


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def coverage_markdown(rows: list[dict[str, Any]], summary: dict[str, dict[str, float]]) -> str:
    """Coverage per estimand, estimator and weighting, then every interval."""
    lines = [
        "| estimand / estimator / weighting | intervals | cover the truth | share "
        "| mean width (pts) | logs could not support |",
        "|---|---|---|---|---|---|",
    ]
    for key, cell in summary.items():
        empty = cell["intervals"] == 0
        share = "-" if empty else _pct(cell["share"]) + "%"
        width = "-" if empty else _pct(cell["mean_width"])
        lines.append(
            f"| {key} | {cell['intervals']} | {cell['covered']} | {share} | {width} "
            f"| {cell['declined']} |"
        )
    lines += [
        "",
        "| world | seed | estimand | estimator | weighting | estimate [95% CI] | truth | covers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        head = f"| {r['world']} | {r['seed']} | {r['estimand']}"
        weighting = r.get("weighting", "-")
        if "estimator" not in r:
            lines.append(f"{head} | - | {weighting} | {r['note']} | - | - |")
        elif "covers" in r:
            lines.append(
                f"{head} | {r['estimator']} | {weighting} | "
                f"{_pct(r['value'])} [{_pct(r['lower'])}, {_pct(r['upper'])}] | "
                f"{_pct(r['truth'])} | {'yes' if r['covers'] else '**no**'} |"
            )
        else:
            lines.append(
                f"{head} | {r['estimator']} | {weighting} | "
                f"cannot estimate: {r['cannot_estimate']} | {_pct(r['truth'])} | - |"
            )
    return "\n".join(lines)
