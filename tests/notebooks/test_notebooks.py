"""The notebooks run top to bottom, headless, and are committed without outputs.

Each notebook is executed with papermill in a kernel of this very interpreter: a
kernelspec written to a temporary Jupyter data folder (``JUPYTER_PATH``) points at
``sys.executable``, so nothing has to be installed by hand and no other ``python3``
kernel on the machine can be picked up by mistake.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import papermill as pm
import pytest
from ipykernel.kernelspec import write_kernel_spec

from training.contract.io import write_history
from training.config.params import SimulateParams
from training.simulator.run import simulate_history

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL = "smartretry-tests"
RECOVERY_FIGURES = {
    "recovery_by_decline_category.png",
    "recovery_by_processor.png",
    "recovery_by_payment_method.png",
    "recovery_by_country.png",
    "retry_success_by_number.png",
    "hour_of_week_retry_success_rate.png",
    "hour_of_week_retry_successes.png",
    "hour_of_week_customer_payments.png",
    "time_to_recovery.png",
    "message_click_rate.png",
    "message_pay_through_rate.png",
    "revenue_at_risk.png",
}

MODEL_FIGURES = {
    "calibration.png",
    "feature_importance.png",
    "policies.png",
    "off_policy.png",
    "off_policy_timing.png",
    "uplift_by_segment.png",
}
WHAT_IF_FIGURES = {
    "retry_probability.png",
    "message_options.png",
    "what_if_variants.png",
}


def all_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    data_dir = tmp_path / "jupyter"
    write_kernel_spec(data_dir / "kernels" / KERNEL, overrides={"display_name": KERNEL})
    monkeypatch.setenv("JUPYTER_PATH", str(data_dir))
    return KERNEL


def output_images(notebook: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )


def errors_in(notebook: nbformat.NotebookNode) -> list:
    return [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]


def run_notebook(name: str, tmp_path: Path, kernel: str, parameters: dict) -> nbformat.NotebookNode:
    executed = tmp_path / f"executed-{name}"
    pm.execute_notebook(
        str(NOTEBOOKS / name),
        str(executed),
        parameters=parameters,
        kernel_name=kernel,
        cwd=str(tmp_path),
        progress_bar=False,
    )
    return nbformat.read(executed, as_version=4)


@pytest.fixture
def saved_world(small_world, tmp_path: Path) -> dict[str, str]:
    """The session's small simulated world and model, written where a notebook reads."""
    write_history(small_world.history, tmp_path / "history")
    small_world.truth.save(tmp_path / "truth")
    small_world.artifact.save(tmp_path / "model")
    return {name: str(tmp_path / name) for name in ("history", "truth", "model")}


@pytest.mark.slow
def test_recovery_analytics_notebook_runs_headless(tmp_path: Path, kernel: str) -> None:
    history_dir = tmp_path / "history"
    write_history(simulate_history(SimulateParams(invoices=1500, seed=5)).history, history_dir)
    figures = tmp_path / "figures"
    executed = tmp_path / "01-executed.ipynb"

    pm.execute_notebook(
        str(NOTEBOOKS / "01-recovery-analytics.ipynb"),
        str(executed),
        parameters={"history_dir": str(history_dir), "window_days": 14, "output_dir": str(figures)},
        kernel_name=kernel,
        cwd=str(tmp_path),
        progress_bar=False,
    )

    assert {p.name for p in figures.glob("*.png")} == RECOVERY_FIGURES
    assert all(p.stat().st_size > 10_000 for p in figures.glob("*.png"))
    result = nbformat.read(executed, as_version=4)
    assert output_images(result) == len(RECOVERY_FIGURES)  # each figure shown once
    errors = [
        o
        for c in result.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert not errors


@pytest.mark.slow
def test_model_and_policy_notebook_computes_its_evaluation(
    tmp_path: Path, kernel: str, saved_world: dict[str, str]
) -> None:
    """No metrics JSON on disk and no MLflow run: the notebook evaluates a small sample."""
    figures = tmp_path / "figures"
    result = run_notebook(
        "02-model-and-policy.ipynb",
        tmp_path,
        kernel,
        {
            "model": saved_world["model"],
            "history_dir": saved_world["history"],
            "truth_dir": saved_world["truth"],
            "evaluation_metrics": str(tmp_path / "missing.json"),
            "evaluation_report_dir": None,
            "output_dir": str(figures),
            "max_invoices": 120,
            "max_ope_invoices": 600,
            "bootstrap": 100,
        },
    )
    assert not errors_in(result)
    assert {p.name for p in figures.glob("*.png")} == MODEL_FIGURES
    assert output_images(result) == len(MODEL_FIGURES)
    text = "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in result.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "computed on 120 invoices" in text
    assert "oracle" in text and "SNIPS" in text
    assert not (tmp_path / "mlflow.db").exists()  # nothing asked of a tracking store


@pytest.mark.slow
def test_what_if_notebook_runs_headless(
    tmp_path: Path, kernel: str, saved_world: dict[str, str]
) -> None:
    figures = tmp_path / "figures"
    result = run_notebook(
        "03-what-if.ipynb",
        tmp_path,
        kernel,
        {
            "model": saved_world["model"],
            "history_dir": saved_world["history"],
            "output_dir": str(figures),
        },
    )
    assert not errors_in(result)
    assert {p.name for p in figures.glob("*.png")} == WHAT_IF_FIGURES
    assert output_images(result) == len(WHAT_IF_FIGURES)


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{path.name} cell {index} has outputs: strip them"
        assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"


@pytest.mark.parametrize("path", all_notebooks(), ids=lambda p: p.name)
def test_notebook_takes_parameters_and_imports_the_package(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    source = "\n".join(c.source for c in code)
    assert "from training" in source or "import training" in source
    defined = [line for line in source.splitlines() if line.lstrip().startswith(("def ", "class "))]
    assert not defined, f"{path.name}: put functions in the package, not in cells: {defined}"


def test_there_are_the_three_notebooks() -> None:
    names = {p.name for p in all_notebooks()}
    assert {
        "01-recovery-analytics.ipynb",
        "02-model-and-policy.ipynb",
        "03-what-if.ipynb",
    } <= names
