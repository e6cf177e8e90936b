"""Every off-policy interval of an evaluation, set against the simulator's truth."""

from __future__ import annotations

from typing import Any

MENU_ESTIMATORS = ("ips", "snips", "dr")
TIMING_ESTIMATORS = ("ips", "snips")


def off_policy_checks(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (estimand, estimator) of ``metrics`` (from ``run_evaluation`` with a
    truth): the interval, the truth and whether it covers it; or why no estimate."""
    rows: list[dict[str, Any]] = []
    sources = (
        ("menu", metrics.get("off_policy", {}), MENU_ESTIMATORS),
        ("first-retry timing", metrics.get("off_policy_timing", {}), TIMING_ESTIMATORS),
    )
    for estimand, block, estimators in sources:
        if "truth" not in block:
            rows.append({"estimand": estimand, "note": block.get("note", "no truth")})
            continue
        for name in estimators:
            entry = block[name]
            row: dict[str, Any] = {"estimand": estimand, "estimator": name, "truth": block["truth"]}
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


def coverage(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per (estimand, estimator): intervals reported, how many covered the truth, and
    how many times the logs could not support an estimate."""
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        if "estimator" not in row:
            continue
        key = f"{row['estimand']} / {row['estimator']}"
        cell = out.setdefault(key, {"intervals": 0, "covered": 0, "declined": 0})
        if "covers" in row:
            cell["intervals"] += 1
            cell["covered"] += int(row["covers"])
        else:
            cell["declined"] += 1
    for cell in out.values():
        cell["share"] = cell["covered"] / cell["intervals"] if cell["intervals"] else float("nan")
    return out
