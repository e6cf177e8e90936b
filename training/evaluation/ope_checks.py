"""Every off-policy interval of an evaluation, set against the simulator's truth."""

from __future__ import annotations

from typing import Any

MENU_ESTIMATORS = ("ips", "snips", "dr")
TIMING_ESTIMATORS = ("ips", "snips")
OFF_LOGGER_KEYS = ("off_logger_share", "off_logger_effective_units")
"""The overlap of the target's off-logger part (:mod:`~training.evaluation.ope_off_logger`),
copied onto each row when the block has it."""


def off_policy_checks(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (estimand, estimator) of ``metrics`` (from ``run_evaluation`` with a
    truth): the interval, the truth and whether it covers it; or why no estimate. Rows of
    the first-retry timing estimand also say how its first retries were weighted."""
    return [
        *block_checks("menu", metrics.get("off_policy", {}), MENU_ESTIMATORS),
        *timing_checks(metrics.get("off_policy_timing", {})),
    ]


def timing_checks(block: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of one first-retry timing block, each with its ``weighting``."""
    weighting = block.get("propensity", "logged")
    return [
        {**row, "weighting": weighting}
        for row in block_checks("first-retry timing", block, TIMING_ESTIMATORS)
    ]


def block_checks(
    estimand: str, block: dict[str, Any], estimators: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The rows of one estimand's block (see :func:`off_policy_checks`)."""
    if "truth" not in block:
        return [{"estimand": estimand, "note": block.get("note", "no truth")}]
    rows: list[dict[str, Any]] = []
    for name in estimators:
        entry = block[name]
        row: dict[str, Any] = {"estimand": estimand, "estimator": name, "truth": block["truth"]}
        row.update({k: entry[k] for k in OFF_LOGGER_KEYS if k in entry})
        if "cannot_estimate" in entry:
            row["cannot_estimate"] = entry["cannot_estimate"]
        else:
            row.update(
                value=entry["value"],
                lower=entry["lower"],
                upper=entry["upper"],
                covers=bool(entry["lower"] <= block["truth"] <= entry["upper"]),
            )
        rows.append(row)
    return rows


def check_key(row: dict[str, Any]) -> str:
    """``estimand / estimator`` (``/ weighting``, ``/ logging`` when the row has them)."""
    parts = [row["estimand"], row["estimator"]]
    if "weighting" in row:
        parts.append(row["weighting"])
    if "logging" in row:
        parts.append(row["logging"])
    return " / ".join(parts)


def coverage(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per (estimand, estimator, weighting): intervals reported, how many covered the
    truth, their mean width, and how many times the logs could not support an estimate."""
    out: dict[str, dict[str, float]] = {}
    widths: dict[str, float] = {}
    for row in rows:
        if "estimator" not in row:
            continue
        key = check_key(row)
        cell = out.setdefault(key, {"intervals": 0, "covered": 0, "declined": 0})
        if "covers" in row:
            cell["intervals"] += 1
            cell["covered"] += int(row["covers"])
            widths[key] = widths.get(key, 0.0) + row["upper"] - row["lower"]
        else:
            cell["declined"] += 1
    for key, cell in out.items():
        n = cell["intervals"]
        cell["share"] = cell["covered"] / n if n else float("nan")
        cell["mean_width"] = widths[key] / n if n else float("nan")
    return out
