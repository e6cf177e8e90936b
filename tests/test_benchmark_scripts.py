"""Every script in benchmarks/ imports: a rename in the product must not leave a
benchmark or diagnostic script broken until someone next runs it."""

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("*.py"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_benchmark_script_imports(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the scripts import their siblings
    importlib.import_module(name)  # raises on a name the product no longer has
    sys.modules.pop(name, None)
