"""``smartretry validate``: exit codes, printed summary, rejects file."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from training.cli.main import app
from training.contract.io import write_history

runner = CliRunner()


def _run(*args: str, params_dir):
    # a params file that does not exist: the embedded defaults, whatever ./params.yaml says
    return runner.invoke(app, ["validate", *args, "--params", str(params_dir / "none.yaml")])


def test_clean_history_passes(tmp_path, history):
    write_history(history, tmp_path / "h", fmt="parquet")
    result = _run("--data", str(tmp_path / "h"), params_dir=tmp_path)
    assert result.exit_code == 0, result.output
    assert "OK: 0 of 12 rows rejected (0.00%), within the limit of 5.00%" in result.stdout
    rejects = pd.read_csv(tmp_path / "h" / "rejects" / "rejects.csv")
    assert list(rejects.columns) == ["table", "row", "id", "field", "reason", "raw"]
    assert rejects.empty


def test_rejects_above_limit_fail_with_counts(tmp_path, history):
    history.invoices.loc[0, "currency"] = "EURO"
    write_history(history, tmp_path / "h", fmt="csv")
    out = tmp_path / "out" / "rej.csv"
    result = _run("--data", str(tmp_path / "h"), "--rejects", str(out), params_dir=tmp_path)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(
        line.split() == ["invoices", "currency", "is", "not", "an", "ISO", "4217", "code", "1"]
        for line in lines
    )
    assert any(
        " ".join(line.split()) == "attempts invoice_id refers to a rejected invoices row 2"
        for line in lines
    )
    assert "FAILED: 3 of 12 rows rejected (25.00%), above the limit of 5.00%" in result.stdout
    rejects = pd.read_csv(out, dtype=str)
    assert rejects[["table", "row", "id", "reason"]].values.tolist() == [
        ["invoices", "0", "i1", "currency is not an ISO 4217 code"],
        ["attempts", "0", "a1", "invoice_id refers to a rejected invoices row"],
        ["attempts", "1", "a2", "invoice_id refers to a rejected invoices row"],
    ]
    assert '"currency":"EURO"' in rejects.loc[0, "raw"]


def test_limit_option_overrides_params(tmp_path, history):
    history.invoices.loc[0, "currency"] = "EURO"
    write_history(history, tmp_path / "h", fmt="csv")
    result = _run("--data", str(tmp_path / "h"), "--max-reject-share", "0.3", params_dir=tmp_path)
    assert result.exit_code == 0, result.output
    assert "OK: 3 of 12 rows rejected (25.00%), within the limit of 30.00%" in result.stdout


def test_missing_column_exits_2_naming_it(tmp_path, history):
    history.attempts = history.attempts.drop(columns=["attempted_at"])
    write_history(history, tmp_path / "h", fmt="csv")
    result = _run("--data", str(tmp_path / "h"), params_dir=tmp_path)
    assert result.exit_code == 2
    assert "missing required column(s): 'attempted_at' in table 'attempts'" in result.stderr


def test_missing_table_exits_2_naming_it(tmp_path, history):
    write_history(history, tmp_path / "h", fmt="csv")
    (tmp_path / "h" / "customers.csv").unlink()
    result = _run("--data", str(tmp_path / "h"), params_dir=tmp_path)
    assert result.exit_code == 2
    assert "missing table 'customers'" in result.stderr
