"""The evaluation as a Markdown report with plots a person would rather see than read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from training.artifact.decision_artifact import DecisionArtifact

LABELS = {
    "learned": "learned policy",
    "fixed": "fixed schedule",
    "rules": "rules baseline",
    "no_action": "no action",
    "oracle": "oracle",
}


def _figure(figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """A figure not attached to pyplot (no global state, no backend switch)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _interval(entry: dict) -> str:
    return f"{_pct(entry['value'])} [{_pct(entry['lower'])}, {_pct(entry['upper'])}]"


def plot_policies(metrics: dict, path: Path) -> Path:
    truth = metrics["truth"]
    names = [n for n in LABELS if f"{n}_recovery_rate" in truth]
    values = np.array([truth[f"{n}_recovery_rate"]["value"] for n in names])
    lower = values - np.array([truth[f"{n}_recovery_rate"]["lower"] for n in names])
    upper = np.array([truth[f"{n}_recovery_rate"]["upper"] for n in names]) - values
    fig, ax = _figure(figsize=(7, 4))
    ax.bar(
        [LABELS[n] for n in names],
        100 * values,
        yerr=100 * np.vstack([lower, upper]),
        capsize=4,
        color=[
            "#2b8cbe" if n == "learned" else "#bbbbbb" if n != "oracle" else "#238b45"
            for n in names
        ],
    )
    ax.set_ylabel("expected recovery rate (%)")
    ax.set_title("Held-out period: exact expected recovery by policy (95% bootstrap CI)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def plot_calibration(metrics: dict, path: Path) -> Path:
    bins = metrics["expected_recovery_calibration"]["bins"]
    estimate, truth = zip(*bins, strict=True)
    fig, ax = _figure(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", label="perfect")
    ax.plot(estimate, truth, marker="o", label="deciles of the estimate")
    ax.set_xlabel("expected_recovery_probability (model)")
    ax.set_ylabel("true recovery probability (simulator)")
    ax.set_title("Is the promised recovery what the world delivers?")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def plot_breakdown(table: pd.DataFrame, title: str, path: Path) -> Path:
    columns = [c for c in LABELS if c in table.columns and c != "no_action"]
    fig, ax = _figure(figsize=(8, 0.45 * len(table) + 1.5))
    y = np.arange(len(table))
    height = 0.8 / len(columns)
    for i, name in enumerate(columns):
        ax.barh(y + i * height, 100 * table[name], height, label=LABELS[name])
    ax.set_yticks(
        y + 0.4 - height / 2,
        [f"{g} (n={n})" for g, n in zip(table.index, table["invoices"], strict=True)],
    )
    ax.set_xlabel("expected recovery rate (%)")
    ax.set_title(f"Recovery by {title}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def plot_off_policy(metrics: dict, path: Path) -> Path:
    ope = metrics["off_policy"]
    names = [n for n in ("ips", "snips", "dr", "dm") if "value" in ope.get(n, {})]
    values = np.array([ope[n]["value"] for n in names])
    err = np.vstack(
        [values - [ope[n]["lower"] for n in names], [ope[n]["upper"] for n in names] - values]
    )
    fig, ax = _figure(figsize=(6, 4))
    ax.errorbar(range(len(names)), 100 * values, yerr=100 * err, fmt="o", capsize=5)
    if "truth" in ope:
        ax.axhline(100 * ope["truth"], color="#238b45", linestyle="--", label="simulator truth")
        ax.legend()
    ax.set_xticks(range(len(names)), [n.upper() for n in names])
    ax.set_ylabel("estimated recovery rate (%)")
    ax.set_title("Off-policy estimates of the model choosing among logged plans")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def write_report(result, folder: Path, artifact: DecisionArtifact) -> list[Path]:
    """report.md plus PNGs in ``folder``; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    m = result.metrics
    lines = [
        f"# Evaluation of {artifact.metadata.get('name', 'smart-retry')} "
        f"({artifact.model_version})",
        "",
        f"Held-out period: {m['held_out_from'][:10]} to {m['held_out_to'][:10]} "
        f"({m['held_out_invoices']:,} invoices with a closed dunning window; "
        f"{m['evaluated_invoices']:,} sampled for the policy comparison).",
        "",
        f"Rule violations of the learned policy: **{m['rule_violations']}** "
        f"(all policies: {m['rule_violations_by_policy']}).",
        "",
    ]
    files: list[Path] = []
    if "truth" in m:
        t = m["truth"]
        lines += [
            "## Simulator truth (exact expected recovery, 95% bootstrap intervals)",
            "",
            "| policy | recovery rate | recovered revenue share | model estimate |",
            "|---|---|---|---|",
        ]
        for name, label in LABELS.items():
            if f"{name}_recovery_rate" not in t:
                continue
            estimate = m["model_estimate"].get(name)
            lines.append(
                f"| {label} | {_interval(t[f'{name}_recovery_rate'])} | "
                f"{_interval(t[f'{name}_recovered_revenue_share'])} | "
                f"{_pct(estimate) if estimate is not None else '-'} |"
            )
        cal = m["expected_recovery_calibration"]
        lines += [
            "",
            f"Share of the oracle's uplift over the fixed schedule captured by the learned "
            f"policy: **{_interval(t['captured_share'])}**; uplift over the fixed schedule: "
            f"{_interval(t['uplift_over_fixed'])} points.",
            "",
            f"`expected_recovery_probability` against the truth: mean absolute error "
            f"{cal['binned_mae']:.3f} over deciles of the estimate, {cal['per_invoice_mae']:.3f} "
            "per invoice (the model cannot see each customer's hidden traits).",
            "",
            "![policies](policies.png)",
            "",
            "![calibration](calibration.png)",
            "",
        ]
        files += [
            plot_policies(m, folder / "policies.png"),
            plot_calibration(m, folder / "calibration.png"),
        ]
        for name, table in result.breakdowns.items():
            slug = name.replace(" ", "_")
            shown = table.copy()
            lines += [f"### By {name}", "", _markdown(shown), "", f"![{slug}]({slug}.png)", ""]
            files.append(plot_breakdown(table, name, folder / f"{slug}.png"))
    ope = m.get("off_policy", {})
    lines += ["## Off-policy estimates from logged propensities", ""]
    if "ips" in ope:
        lines += [
            f"Target: {ope['target']} ({ope['menu']['retry_plans']} retry plans x "
            f"{ope['menu']['message_plans']} message plans). The learned policy's own "
            "schedules were never explored by the logs, so propensities cannot speak for "
            "them; its value on real data is the model estimate above.",
            "",
            "| estimator | value | 95% interval | matched invoices | effective sample size |",
            "|---|---|---|---|---|",
        ]
        for name in ("ips", "snips", "dr", "dm"):
            e = ope[name]
            if "value" in e:
                cells = f"{_pct(e['value'])} | [{_pct(e['lower'])}, {_pct(e['upper'])}]"
            else:
                cells = f"the logs cannot support an estimate: {e['cannot_estimate']} | -"
            lines.append(f"| {name.upper()} | {cells} | {e['matched']} | {e['ess']:.0f} |")
        if "truth" in ope:
            lines += [
                "",
                f"Simulator truth of the same policy: {_pct(ope['truth'])}; inside the "
                f"interval: {ope['truth_inside_interval']}.",
            ]
        lines += ["", "![off-policy](off_policy.png)", ""]
        files.append(plot_off_policy(m, folder / "off_policy.png"))
    else:
        lines.append(ope.get("note", "not available"))
    lines += ["", *timing_lines(m.get("off_policy_timing", {}))]
    report = folder / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return [report, *files]


#: How the first-retry timing estimate weighs the logged first retries, by its setting.
WEIGHTINGS = {
    "logged": "the team's logged propensities",
    "estimated": "the first-retry distribution the log shows among the invoices sharing a"
    " target (Kaplan-Meier), re-estimated on every bootstrap resample",
}


def timing_lines(timing: dict) -> list[str]:
    """The first-retry timing estimate (any logging policy), or why there is none."""
    lines = ["## Off-policy: the learned first-retry time, on any logging", ""]
    if "units" not in timing:
        return [*lines, timing.get("note", "not available")]
    lines += [
        f"Estimand: {timing['estimand']}. {timing['units']} invoices the learned policy "
        f"retries; the logs show {timing['support_offsets']} first-retry times in "
        f"{timing['support_buckets']} buckets; the learned time lies outside them (and is "
        f"projected onto the nearest) for {_pct(timing['projected_share'])} of the invoices. "
        f"The team's own recovery on these invoices: {_pct(timing['team_recovery'])}. "
        f"Weights: {WEIGHTINGS.get(timing.get('propensity', 'logged'), '?')}.",
        "",
        "| estimator | value | 95% interval | matched invoices | effective sample size |",
        "|---|---|---|---|---|",
    ]
    for name in ("ips", "snips"):
        e = timing[name]
        if "value" in e:
            cells = f"{_pct(e['value'])} | [{_pct(e['lower'])}, {_pct(e['upper'])}]"
        else:
            cells = f"the logs cannot support an estimate: {e['cannot_estimate']} | -"
        lines.append(
            f"| {name.upper()} | {cells} | {e['matched']} | {e['effective_sample_size']:.0f} |"
        )
    if "truth" in timing:
        lines += [
            "",
            f"Simulator truth of the same policy: {_pct(timing['truth'])}; inside the "
            f"interval: {timing['truth_inside_interval']}.",
        ]
    return lines


def _markdown(table: pd.DataFrame) -> str:
    columns = [c for c in [*LABELS, "captured_share", "invoices"] if c in table.columns]
    head = "| group | " + " | ".join(LABELS.get(c, c.replace("_", " ")) for c in columns) + " |"
    rule = "|---" * (len(columns) + 1) + "|"
    rows = []
    for group, row in table[columns].iterrows():
        cells = [f"{int(row[c])}" if c == "invoices" else f"{100 * row[c]:.1f}%" for c in columns]
        rows.append(f"| {group} | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *rows])
