"""`smartretry ope-coverage`: how often the off-policy intervals hold the truth, over
worlds of the zoo and seeds.

Per (world, seed): simulate, read through the contract, train with the product's
settings, then run exactly the off-policy estimates of `smartretry evaluate` (the menu
estimate and the first-retry timing estimate) and set each interval against the
estimand's exact value. Skips the oracle and the policy comparison, which coverage does
not need.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from training.config.params import Params
from training.evaluation.ope_checks import coverage, off_policy_checks
from training.evaluation.ope_timing_eval import timing_estimates
from training.evaluation.run import held_out_events, off_policy_metrics, off_policy_sample
from training.evaluation.zoo import simulate_and_train

log = logging.getLogger(__name__)


def world_checks(name: str, invoices: int, seed: int, params: Params, out: Path) -> list[dict]:
    """The off-policy checks of one (world, seed)."""
    world = simulate_and_train(name, invoices, seed, params, out / f"{name}-{seed}")
    decider = world.artifact.decider()
    held = held_out_events(world.history, world.artifact, params)
    events = off_policy_sample(held, params.evaluate)
    log.info("[%s/%d] off-policy estimates on %d held-out invoices", name, seed, len(events))
    menu, _ = off_policy_metrics(decider, world.history, events, params, world.truth)
    timing = timing_estimates(
        decider, world.history, events, params.train.window_days, params.evaluate, world.truth
    )
    rows = off_policy_checks({"off_policy": menu, "off_policy_timing": timing})
    return [{"world": name, "seed": seed, **row} for row in rows]


def run_ope_coverage(
    worlds: list[str], seeds: list[int], invoices: int, params: Params, out: Path
) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    """Every (world, seed); writes ope_coverage.json and ope_coverage.md to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [
        row
        for name in worlds
        for seed in seeds
        for row in world_checks(name, invoices, seed, params, out)
    ]
    summary = coverage(rows)
    (out / "ope_coverage.json").write_text(
        json.dumps({"rows": rows, "coverage": summary}, indent=2, default=float) + "\n"
    )
    (out / "ope_coverage.md").write_text(coverage_markdown(rows, summary) + "\n")
    return rows, summary


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def coverage_markdown(rows: list[dict[str, Any]], summary: dict[str, dict[str, float]]) -> str:
    """Coverage per estimator, then every interval."""
    lines = [
        "| estimand / estimator | intervals | cover the truth | share | logs could not support |",
        "|---|---|---|---|---|",
    ]
    for key, cell in summary.items():
        share = "-" if cell["intervals"] == 0 else _pct(cell["share"]) + "%"
        lines.append(
            f"| {key} | {cell['intervals']} | {cell['covered']} | {share} | {cell['declined']} |"
        )
    lines += [
        "",
        "| world | seed | estimand | estimator | estimate [95% CI] | truth | covers |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "estimator" not in r:
            lines.append(
                f"| {r['world']} | {r['seed']} | {r['estimand']} | - | {r['note']} | - | - |"
            )
        elif "covers" in r:
            lines.append(
                f"| {r['world']} | {r['seed']} | {r['estimand']} | {r['estimator']} | "
                f"{_pct(r['value'])} [{_pct(r['lower'])}, {_pct(r['upper'])}] | "
                f"{_pct(r['truth'])} | {'yes' if r['covers'] else '**no**'} |"
            )
        else:
            lines.append(
                f"| {r['world']} | {r['seed']} | {r['estimand']} | {r['estimator']} | "
                f"cannot estimate: {r['cannot_estimate']} | {_pct(r['truth'])} | - |"
            )
    return "\n".join(lines)
