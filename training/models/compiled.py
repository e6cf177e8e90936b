"""Boosters compiled to machine code with ``lleaves`` (LLVM), for scoring.

LightGBM's own ``predict`` walks its trees in an interpreter loop and pays ~60 µs of fixed
cost per call; the policy makes a dozen small calls per decision and, for a batch, scores
hundreds of thousands of retry-grid rows. The same trees compiled by ``lleaves`` score a
row about nine times faster and a small call for a fifth of the fixed cost, with the same
results up to the last bits of a double (the sums run in another order; measured in
docs/performance.md, checked by ``tests/models/test_compiled.py``).

Compiling takes a few seconds per model, so the machine code is cached on disk per model
text, library versions and host CPU (``SMARTRETRY_COMPILED_CACHE``, default
``~/.cache/smartretry/compiled-trees``): the next worker or restart loads it in
milliseconds. When compiling is impossible (the library missing, an unsupported CPU, a
read-only cache and no compiler) the model keeps scoring with LightGBM itself and a
warning says why.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

log = logging.getLogger(__name__)

CACHE_ENV = "SMARTRETRY_COMPILED_CACHE"


def cache_folder() -> Path:
    """Where compiled models are kept (``SMARTRETRY_COMPILED_CACHE`` or the user's cache)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "smartretry" / "compiled-trees"


ENTRY_POINT = "forest_root"
"""The compiled function lleaves links (its ``compile`` default)."""
_ENTRY_TYPE = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32
)
"""``forest_root(data, predictions, first row, end row)`` over float64 rows, as lleaves
declares it, with the two arrays passed as plain addresses."""


@dataclass
class CompiledTrees:
    """A booster's first ``num_iteration`` trees as machine code (``predict`` as LightGBM's,
    the objective's sigmoid included)."""

    model: Any  # lleaves.Model, compiled
    num_features: int

    def __post_init__(self) -> None:
        self._entry = _entry_function(self.model)

    def predict(self, matrix: np.ndarray, threads: int = 1) -> np.ndarray:
        data = np.ascontiguousarray(matrix, dtype=np.float64)
        if threads > 1 or self._entry is None or len(data) >= 2**31 - 1:  # (int32 rows)
            return np.asarray(self.model.predict(data, n_jobs=max(1, threads)))
        # one thread: the compiled function called directly (lleaves' ``predict`` costs
        # ~15 µs a call in conversions and checks, a lone decision makes about nine)
        if data.ndim != 2 or data.shape[1] != self.num_features:
            raise ValueError(f"data must be of dimension (N, {self.num_features}), is {data.shape}")
        out = np.zeros(len(data))
        if len(data):
            self._entry(_address(data), _address(out), 0, len(data))
        return out


def _address(array: np.ndarray) -> int:
    """The address of a C-contiguous array's first value: through ctypes' buffer view
    (~1 µs) when the array is writable, else ``array.ctypes.data`` (~2.4 µs: it builds
    an object of numpy's ctypes helper on every read; two reads per model call)."""
    if array.flags.writeable:
        # (numpy's stubs declare the buffer protocol only for Python 3.12)
        return ctypes.addressof(ctypes.c_char.from_buffer(array))  # type: ignore[arg-type]
    return int(array.ctypes.data)


def _entry_function(model: Any) -> Any:
    """The compiled model's entry function (None when this lleaves keeps it elsewhere, or
    the model is not one output of float64: lleaves' own ``predict`` is then used)."""
    engine = getattr(model, "_execution_engine", None)
    if engine is None or not getattr(model, "use_fp64", False):
        return None
    if getattr(model, "_n_classes", None) != 1:
        return None
    try:
        address = engine.get_function_address(ENTRY_POINT)
    except Exception:  # an engine without the symbol: lleaves' predict still works
        return None
    return _ENTRY_TYPE(address) if address else None


def compile_booster(booster: lgb.Booster, num_iteration: int) -> CompiledTrees | None:
    """The booster compiled (or loaded from the cache); ``None`` when that is impossible."""
    try:
        import lleaves
        import llvmlite
        import llvmlite.binding as llvm
    except ImportError as error:
        log.warning("compiled trees unavailable (%s): scoring with LightGBM", error)
        return None
    text = booster.model_to_string(num_iteration=num_iteration)
    llvm.initialize_native_target()
    host = f"{llvm.get_host_cpu_name()} {llvm.get_host_cpu_features().flatten()}"
    versions = f"lleaves {lleaves.__version__ if hasattr(lleaves, '__version__') else '?'} "
    versions += f"llvmlite {llvmlite.__version__}"
    digest = hashlib.sha256("\n".join([versions, host, text]).encode()).hexdigest()[:32]
    try:
        folder = cache_folder()
        folder.mkdir(parents=True, exist_ok=True)
        binary = folder / f"{digest}.o"
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            model_file = Path(scratch) / "model.txt"
            model_file.write_text(text)
            model = lleaves.Model(model_file=str(model_file))
            if binary.exists():
                model.compile(cache=str(binary))
            else:
                # compiled into the scratch folder, then moved into place in one step:
                # workers starting together never read a half-written file
                fresh = Path(scratch) / "model.o"
                model.compile(cache=str(fresh))
                os.replace(fresh, binary)
        return CompiledTrees(model, booster.num_feature())
    except Exception as error:  # LLVM and file-system errors have no common type
        log.warning("could not compile the trees (%s): scoring with LightGBM", error)
        return None
