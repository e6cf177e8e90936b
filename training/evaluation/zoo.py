"""`smartretry zoo`: the current product settings evaluated on every world of the zoo.

For each world: simulate a history, write it and read it back through the data contract
(validation included), train the models with the product's settings, and evaluate the
learned policy against the fixed schedule and the oracle with the same code as
`smartretry evaluate`. One set of settings for all worlds: nothing here is tuned per
world. The result is one row per world: the captured share of the oracle's uplift with
its 95% interval, rule violations, calibration by decile, and recovery by decline
family (learned, fixed schedule, oracle).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from training.artifact.calendar_contrast import measure_calendar_contrast
from training.artifact.chosen_level import level_events, measure_chosen_level
from training.artifact.decision_artifact import DecisionArtifact
from training.artifact.gain_shrinkage import fit_gain_shrinkage
from training.config.params import Params
from training.contract.history import History
from training.contract.io import load_history, write_history
from training.declines.table import DECLINE_FAMILIES, family_of, load_decline_table
from training.evaluation.attribution import HYBRIDS
from training.evaluation.ope_checks import coverage, off_policy_checks
from training.evaluation.run import run_evaluation
from training.models.fit import train_models
from training.simulator.run import simulate_history
from training.simulator.truth import GroundTruth
from training.simulator.zoo import WORLDS, zoo_world

log = logging.getLogger(__name__)

POLICIES = ("learned", "fixed", "oracle")


@dataclass
class ZooRow:
    world: str
    description: str
    invoices: int
    evaluated: int
    captured: dict[str, float]
    recovery: dict[str, float]
    violations: int
    calibration_mae: float
    calibration_bins: list[tuple[float, float]]
    families: dict[str, dict[str, float]]
    off_policy: list[dict[str, Any]]
    seconds: float
    # by decline family: learned, oracle and their hybrids (``--attribute``)
    attribution: dict[str, dict[str, float]] | None = None

    def below_fixed(self, tolerance: float = 0.0) -> list[str]:
        """Decline families where the learned policy recovers less than the fixed schedule."""
        return [name for name, f in self.families.items() if f["learned"] < f["fixed"] - tolerance]


def family_recovery(categories: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Recovery per decline family from the per-category breakdown (invoice-weighted)."""
    table = categories.copy()
    table["family"] = family_of(table.index.to_series()).to_numpy()
    out: dict[str, dict[str, float]] = {}
    for family, group in table.groupby("family", sort=False):
        weight = group["invoices"].to_numpy(dtype=float)
        out[str(family)] = {
            **{p: float((group[p] * weight).sum() / weight.sum()) for p in POLICIES},
            "invoices": int(weight.sum()),
        }
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["invoices"]))


@dataclass
class TrainedWorld:
    history: History
    artifact: DecisionArtifact
    truth: GroundTruth


def simulate_and_train(
    name: str, invoices: int, seed: int, params: Params, out: Path
) -> TrainedWorld:
    """Simulate one world, write it and read it back through the contract, train on it."""
    chosen = zoo_world(name)
    settings = params.simulate.model_copy(update={"invoices": invoices, "seed": seed})
    log.info("[%s] simulating %s invoices (seed %d)", name, f"{invoices:,}", seed)
    simulated = simulate_history(settings, chosen.world, chosen.policy)
    folder = out / name / "history"
    write_history(simulated.history, folder, fmt="parquet")
    history, _ = load_history(folder, params.validate_)
    log.info("[%s] training", name)
    table = load_decline_table()
    trained = train_models(
        history, params.train, table, params.retry_rules.update_requests, progress=False
    )
    templates = sorted(history.messages["template"].dropna().unique())
    shrinkage = fit_gain_shrinkage(history, trained.data.log, templates, params, table)
    contrast = measure_calendar_contrast(history, trained.models, trained.data.log, params, table)
    artifact = DecisionArtifact.with_table(
        trained.models,
        trained.data.log,
        history.customers,
        templates,
        params.policy,
        params.retry_rules,
        table,
        {
            "model_version": f"zoo/{name}",
            "training_data": trained.split.describe(),
            "gain_shrinkage": shrinkage.as_metadata(),
            "calendar_contrast": contrast.as_metadata(),
        },
    )
    events = level_events(history, params)
    level = measure_chosen_level(artifact, history, events, params)
    artifact.metadata["chosen_level"] = level.as_metadata()
    return TrainedWorld(history, artifact, simulated.truth)


def evaluate_world(
    name: str, invoices: int, seed: int, params: Params, out: Path, attribute: bool = False
) -> ZooRow:
    """Simulate, read through the contract, train and evaluate one world (``attribute``:
    with the hybrids of the learned and oracle schedules)."""
    started = time.perf_counter()
    chosen = zoo_world(name)
    trained_world = simulate_and_train(name, invoices, seed, params, out)
    history, artifact = trained_world.history, trained_world.artifact
    log.info("[%s] evaluating", name)
    # every category in the breakdown, so that families add up
    evaluate = params.evaluate.model_copy(update={"min_group": 1})
    result = run_evaluation(
        history,
        artifact,
        params.model_copy(update={"evaluate": evaluate}),
        trained_world.truth,
        progress=False,
        attribute=attribute,
    )
    m = result.metrics
    truth = m["truth"]
    calibration = m["expected_recovery_calibration"]
    row = ZooRow(
        world=name,
        description=chosen.description,
        invoices=invoices,
        evaluated=len(result.values),
        captured=truth["captured_share"],
        recovery={p: truth[f"{p}_recovery_rate"]["value"] for p in POLICIES},
        violations=int(m["rule_violations_by_policy"]["learned"]),
        calibration_mae=float(calibration["binned_mae"]),
        calibration_bins=[(float(a), float(b)) for a, b in calibration["bins"]],
        families=family_recovery(result.breakdowns["decline category"]),
        off_policy=off_policy_checks(m),
        seconds=round(time.perf_counter() - started, 1),
        attribution=None
        if result.attribution is None
        else {
            str(k): {c: float(v) for c, v in r.items()} for k, r in result.attribution.iterrows()
        },
    )
    log.info(
        "[%s] captured %.1f%% [%.1f, %.1f], violations %d, calibration MAE %.3f (%.0f s)",
        name,
        100 * row.captured["value"],
        100 * row.captured["lower"],
        100 * row.captured["upper"],
        row.violations,
        row.calibration_mae,
        row.seconds,
    )
    return row


def run_zoo(
    worlds: list[str] | None,
    invoices: int,
    seed: int,
    params: Params,
    out: Path,
    attribute: bool = False,
) -> list[ZooRow]:
    """Every world of ``worlds`` (default: the whole zoo); writes zoo.json and zoo.md."""
    names = worlds or list(WORLDS)
    for name in names:
        zoo_world(name)  # fail before any work on an unknown name
    out.mkdir(parents=True, exist_ok=True)
    rows = [evaluate_world(name, invoices, seed, params, out, attribute) for name in names]
    (out / "zoo.json").write_text(
        json.dumps([row.__dict__ for row in rows], indent=2, default=float) + "\n"
    )
    (out / "zoo.md").write_text(zoo_markdown(rows) + "\n")
    return rows


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def zoo_markdown(rows: list[ZooRow]) -> str:
    """The zoo as two Markdown tables: headline figures, then recovery by decline family."""
    lines = [
        "| world | captured share of the oracle's uplift [95% CI] | learned / fixed / oracle "
        "recovery | rule violations | calibration MAE by decile | families below fixed |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r.captured
        below = ", ".join(r.below_fixed()) or "none"
        lines.append(
            f"| {r.world} | {_pct(c['value'])}% [{_pct(c['lower'])}, {_pct(c['upper'])}] | "
            f"{_pct(r.recovery['learned'])} / {_pct(r.recovery['fixed'])} / "
            f"{_pct(r.recovery['oracle'])}% | {r.violations} | {r.calibration_mae:.3f} | "
            f"{below} |"
        )
    families = list(DECLINE_FAMILIES)
    lines += [
        "",
        "Recovery by decline family, learned / fixed / oracle (%):",
        "",
        "| world | " + " | ".join(families) + " |",
        "|---|" + "---|" * len(families),
    ]
    for r in rows:
        cells = [
            "/".join(_pct(r.families[f][p]) for p in POLICIES) if f in r.families else "-"
            for f in families
        ]
        lines.append(f"| {r.world} | " + " | ".join(cells) + " |")
    lines += ["", "Calibration by decile, mean estimate vs mean truth:", ""]
    for r in rows:
        bins = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in r.calibration_bins)
        lines.append(f"- {r.world}: {bins}")
    lines += ["", "Off-policy intervals against the truth of their estimand:", ""]
    for r in rows:
        cells = [_check_text(check) for check in r.off_policy]
        lines.append(f"- {r.world}: " + "; ".join(cells))
    if any(r.attribution for r in rows):
        lines += ["", *attribution_markdown(rows)]
    return "\n".join(lines)


def attribution_markdown(rows: list[ZooRow]) -> list[str]:
    """Learned, hybrids and oracle recovery (%) by decline family, with the mean retries
    and messages per failure of the learned and the oracle schedule."""
    hybrids = list(HYBRIDS)
    lines = [
        "Where the learned policy loses: exact recovery (%) of hybrid schedules by decline "
        "family (retries / messages per failure, learned vs oracle):",
        "",
        "| world | family | invoices | learned | "
        + " | ".join(HYBRIDS.values())
        + " | oracle | retries | messages |",
        "|---|---|---|---|" + "---|" * len(hybrids) + "---|---|---|",
    ]
    for r in rows:
        for family, a in (r.attribution or {}).items():
            cells = [_pct(a[h]) for h in hybrids]
            lines.append(
                f"| {r.world} | {family} | {a['invoices']:.0f} | {_pct(a['learned'])} | "
                + " | ".join(cells)
                + f" | {_pct(a['oracle'])} | {a['retries_learned']:.2f} / "
                f"{a['retries_oracle']:.2f} | {a['messages_learned']:.2f} / "
                f"{a['messages_oracle']:.2f} |"
            )
    return lines


def _check_text(check: dict[str, Any]) -> str:
    if "estimator" not in check:
        return f"{check['estimand']}: {check['note']}"
    head = f"{check['estimand']} {check['estimator'].upper()}"
    if "covers" not in check:
        return f"{head} cannot estimate ({check['cannot_estimate']})"
    verdict = "covers" if check["covers"] else "MISSES"
    return (
        f"{head} {_pct(check['value'])} [{_pct(check['lower'])}, {_pct(check['upper'])}] "
        f"{verdict} {_pct(check['truth'])}"
    )


def zoo_summary(rows: list[ZooRow]) -> dict[str, Any]:
    """Headline across worlds: the smallest captured share and every failed bar."""
    return {
        "worlds": len(rows),
        "min_captured_share": min(r.captured["value"] for r in rows),
        "violations": sum(r.violations for r in rows),
        "max_calibration_mae": max(r.calibration_mae for r in rows),
        "families_below_fixed": {r.world: r.below_fixed() for r in rows if r.below_fixed()},
        "off_policy_coverage": coverage([c for r in rows for c in r.off_policy]),
    }
