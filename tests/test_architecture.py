"""The layers of docs/architecture.md hold, and the docs describe the tree as it is."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def _packages() -> set[str]:
    """``serving`` and every subpackage of ``training`` (folders with an ``__init__``)."""
    found = {"serving"}
    for init in (ROOT / "training").glob("*/__init__.py"):
        found.add(f"training.{init.parent.name}")
    return found


def test_every_package_has_a_place_in_the_layers():
    layers = next(c for c in _contracts() if c["type"] == "layers")["layers"]
    named = {name.strip() for layer in layers for name in re.split(r"[|:]", layer)}
    assert named == _packages(), "add new packages to [tool.importlinter] layers"


def test_no_back_import_and_no_cycle():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:]
    assert "0 broken" in result.stdout


def test_readme_layout_table_matches_the_tree():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(training/[a-z_]+)/`", table))
    on_disk = {f"training/{p.split('.')[1]}" for p in _packages() if p != "serving"}
    assert listed == on_disk
    assert "`serving/`" in table


def test_architecture_doc_names_every_layer():
    doc = (ROOT / "docs" / "architecture.md").read_text()
    for package in _packages():
        assert f"`{package.replace('.', '/')}`" in doc, package
