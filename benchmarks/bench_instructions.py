"""Instructions per decision, exactly, and per stage: the lone decision under callgrind.

    python benchmarks/bench_instructions.py [--decisions 50] [--batch 1] [--warm N]
        [--work /tmp/smartretry-bench] [--out DIR] [--no-stages] [--only LABEL]
        [--stage LABEL=module:function ...] [--invoices 20000] [--seed 7]

CPU times on a shared machine move by 5-20 % between runs; instruction counts do not. This
builds (or reuses) the model of ``bench_decision.py --work`` (:func:`bench_world.prepare`),
writes (``--warm`` + ``--decisions``) x ``--batch`` held-out requests (``World.sample(...,
known_share=0.2)``) to ``--out``, then runs itself under ``valgrind --tool=callgrind
--instr-atstart=no``: the child loads the decider (its warm-up, ``serving/warm_up.py``,
included: not counted), freezes the heap as the server does,
decides the first ``--warm`` calls of ``--batch`` requests (default: 5 lone ones, or one
batch) to warm the caches, then the next ``--decisions`` calls through
``training.api.service.recommend`` under a seeded process generator
(``seeded_process_rng(12345)``: the exploration's draws are the same every run).
Callgrind counts only that loop: a small C extension, compiled on first use with ``gcc``
into ``--out`` (it needs ``valgrind/callgrind.h`` and Python's headers), starts and stops
the instrumentation with ``CALLGRIND_START_INSTRUMENTATION``/``STOP``.

Two runs (``--no-stages``: the first only):

1. *total*: nothing wrapped; ``PROGRAM TOTALS`` of ``callgrind_annotate`` divided by the
   calls: M instructions per decision call.
2. *stages*: each function of :data:`STAGES` runs inside a C frame of its own
   (``stage_K`` of the extension) and is read from ``callgrind_annotate --inclusive=yes``:
   its inclusive count per call (stages nest: the message pruning holds the whole-schedule
   scoring, which holds its model calls). The wrappers cost ~0.2 M per lone decision, so
   the ``recommend`` row exceeds the total run's figure by that much.

``--only LABEL`` (with the stages): callgrind counts only inside that stage
(``--toggle-collect=stage_K``), so the stages nested in it read as its shares.
``--stage LABEL=module:attribute`` (repeated) adds a stage after :data:`STAGES`' (a
stage's own parts, say).

Run a before/after as ``PYTHONPATH=TREE python benchmarks/bench_instructions.py ...``
for each tree (an export: ``git archive COMMIT | tar -x -C TREE``), the same ``--work``
model; a stage a tree lacks is left out. Each run takes some minutes (Python under
valgrind is ~50x slower; loading the model is most of it).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import json
import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

SEED = 12345
"""The process generator's seed for the measured loop (the exploration's draws)."""

STAGES: tuple[tuple[str, str], ...] = (
    ("recommend", "training.api.service:recommend"),
    ("requests", "training.api.service:requests_to_tables"),
    ("decide", "training.policy.decider:ModelDecider.decide"),
    ("rules", "training.declines.rules:RetryRules.decide_table"),
    ("event features", "training.policy.scorer:ModelScorer.event_features"),
    ("fixed schedule", "training.policy.decider:fixed_schedule_columns"),
    ("message search", "training.policy.decider:plan_messages"),
    ("retry search", "training.policy.decider:plan_retries"),
    ("explore", "training.policy.decider:ModelDecider._explore"),
    ("message pruning", "training.policy.decider:prune_messages"),
    ("whole-schedule scoring", "training.policy.decider:ModelDecider.score_laid_out"),
    ("  its dunning state", "training.policy.decider:state_of_rows"),
    ("self-cure", "training.policy.scorer:ModelScorer.self_cure_probabilities"),
    ("reported values", "training.policy.decider:ModelDecider.reported_values"),
    ("reasons", "training.policy.decider:model_reasons"),
    ("responses", "training.api.service:responses_from_decisions"),
    ("model calls", "training.models.calibrated:CalibratedModel.predict_matrix"),
)
"""(label, ``module:attribute`` or ``module:Class.method``) of each stage, as the code
that calls it looks it up (a function imported by name is wrapped where it is used)."""

_EXTENSION = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <valgrind/callgrind.h>

static PyObject *cg_start(PyObject *self, PyObject *unused) {
    CALLGRIND_START_INSTRUMENTATION;
    Py_RETURN_NONE;
}

static PyObject *cg_stop(PyObject *self, PyObject *unused) {
    CALLGRIND_STOP_INSTRUMENTATION;
    Py_RETURN_NONE;
}

/* stage_K(function, *args, **kwargs): function(*args, **kwargs) inside a C frame of its
   own (compiled with -O0: no tail call, no folding of the identical functions) */
#define STAGE(K) \
    static PyObject *stage_##K(PyObject *self, PyObject *const *args, Py_ssize_t nargs, \
                               PyObject *kwnames) { \
        return PyObject_Vectorcall(args[0], args + 1, nargs - 1, kwnames); \
    }
#define ENTRY(K) {"stage_" #K, (PyCFunction)(void (*)(void))stage_##K, \
                  METH_FASTCALL | METH_KEYWORDS, NULL},
@STAGES@
static PyMethodDef methods[] = {
    {"start", cg_start, METH_NOARGS, NULL},
    {"stop", cg_stop, METH_NOARGS, NULL},
@ENTRIES@
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cgstage", NULL, -1, methods};

PyMODINIT_FUNC PyInit__cgstage(void) { return PyModule_Create(&module); }
"""

STAGE_FRAMES = 64
"""``stage_K`` functions in the extension (K < STAGE_FRAMES)."""


class Annotated(NamedTuple):
    """What :func:`parse_annotate` reads: the program's total instructions and the
    inclusive count of each ``stage_K`` frame (by K)."""

    total: int
    stages: dict[int, int]


_TOTAL = re.compile(r"^\s*([\d,]+)\s.*PROGRAM TOTALS")
_STAGE_LINE = re.compile(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?\S*?:stage_(\d+)(?:\s|$)")


def parse_annotate(text: str) -> Annotated:
    """The total and the ``stage_K`` inclusive counts of a ``callgrind_annotate
    --inclusive=yes`` output (a frame of a recursion level, ``stage_3'2``, is not a
    stage: its cost is inside the first level's; a function listed under two source
    files keeps its first, largest, line)."""
    total: int | None = None
    stages: dict[int, int] = {}
    for line in text.splitlines():
        if total is None and (match := _TOTAL.match(line)):
            total = int(match.group(1).replace(",", ""))
        elif (match := _STAGE_LINE.match(line)) and int(match.group(2)) not in stages:
            stages[int(match.group(2))] = int(match.group(1).replace(",", ""))
    if total is None:
        raise ValueError("no PROGRAM TOTALS line in the callgrind_annotate output")
    return Annotated(total, stages)


def build_extension(out: Path) -> Path:
    """The directory holding the ``_cgstage`` extension, compiled once per source and
    Python (``gcc``)."""
    source = _EXTENSION.replace(
        "@STAGES@", "\n".join(f"STAGE({k})" for k in range(STAGE_FRAMES))
    ).replace("@ENTRIES@", "\n".join(f"    ENTRY({k})" for k in range(STAGE_FRAMES)))
    tag = hashlib.sha256((source + sys.version).encode()).hexdigest()[:12]
    directory = out / f"cgstage-{tag}"
    target = directory / f"_cgstage{sysconfig.get_config_var('EXT_SUFFIX')}"
    if not target.exists():
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "cgstage.c").write_text(source)
        command = [
            "gcc", "-shared", "-fPIC", "-O0", "-g", f"-I{sysconfig.get_paths()['include']}",
            str(directory / "cgstage.c"), "-o", str(target),
        ]  # fmt: skip
        subprocess.run(command, check=True)
    return directory


def _resolve(spec: str) -> tuple[Any, str] | None:
    """The owner (module or class) and attribute name of ``module:attr`` or
    ``module:Class.method``; None when the tree measured lacks it."""
    module_name, _, path = spec.partition(":")
    try:
        owner: Any = importlib.import_module(module_name)
    except ImportError:
        return None
    *classes, name = path.split(".")
    for part in classes:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    return (owner, name) if hasattr(owner, name) else None


def _framed(stage: Callable[..., Any], function: Callable[..., Any], calls: list[int]) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return stage(function, *args, **kwargs)

    return wrapper


def wrap_stages(cg: Any, stages: tuple[tuple[str, str], ...]) -> dict[int, tuple[str, list[int]]]:
    """Each stage's function replaced by one calling it inside ``stage_K``; per K its
    label and call counter."""
    wrapped: dict[int, tuple[str, list[int]]] = {}
    for k, (label, spec) in enumerate(stages):
        found = _resolve(spec)
        if found is None:
            print(f"  (no {spec} in this tree: '{label}' left out)", file=sys.stderr)
            continue
        owner, name = found
        static = inspect.getattr_static(owner, name)
        calls = [0]
        if isinstance(static, staticmethod | classmethod):
            wrapper = type(static)(_framed(getattr(cg, f"stage_{k}"), static.__func__, calls))
        else:
            wrapper = _framed(getattr(cg, f"stage_{k}"), static, calls)
        setattr(owner, name, wrapper)
        wrapped[k] = (label, calls)
    return wrapped


def stages_of(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """:data:`STAGES` and the ``--stage LABEL=SPEC`` ones."""
    extra: list[tuple[str, str]] = []
    for stage in args.stage:
        label, equals, spec = stage.rpartition("=")
        if not (label and equals and ":" in spec):
            raise SystemExit(f"--stage {stage!r}: LABEL=module:function expected")
        extra.append((label, spec))
    if len(STAGES) + len(extra) > STAGE_FRAMES:
        raise SystemExit(f"at most {STAGE_FRAMES} stages in all")
    return STAGES + tuple(extra)


def child(args: argparse.Namespace) -> None:
    """Under valgrind: warm up, then decide the measured calls with instrumentation on."""
    sys.path.insert(0, str(args.extension))
    import _cgstage as cg  # the extension built by the parent

    from serving.artifact_decider import load_artifact_decider
    from serving.model_loader import freeze_heap
    from training.api import service
    from training.core.randomness import seeded_process_rng

    requests = json.loads((args.out / "requests.json").read_text())
    wrapped = wrap_stages(cg, stages_of(args)) if args.mode == "stages" else {}
    decider = load_artifact_decider(str(args.model))
    freeze_heap()  # as the server does after loading its model
    size = args.batch
    calls_of = [requests[i : i + size] for i in range(0, len(requests), size)]
    for call in calls_of[: args.warm]:  # first-call costs (caches), outside the count
        service.recommend(decider, call)
    measured = calls_of[args.warm :]
    for _, calls in wrapped.values():
        calls[0] = 0
    with seeded_process_rng(SEED):
        cg.start()
        for call in measured[: args.decisions]:
            service.recommend(decider, call)
        cg.stop()
    counts = {str(k): [label, calls[0]] for k, (label, calls) in wrapped.items()}
    (args.out / f"calls-{args.mode}.json").write_text(json.dumps(counts))


def run(args: argparse.Namespace, model: Path, extension: Path, mode: str) -> Annotated:
    """The child under callgrind in ``mode`` ("total" or "stages"), its annotation read."""
    out_file = args.out / f"callgrind.{mode}.out"
    valgrind = [
        "valgrind", "--tool=callgrind", "--instr-atstart=no",
        f"--callgrind-out-file={out_file}",
    ]  # fmt: skip
    only = [k for k, (label, _) in enumerate(stages_of(args)) if label.strip() == args.only]
    if mode == "stages" and args.only:
        if not only:
            raise SystemExit(f"--only {args.only!r}: no such stage label")
        valgrind.append(f"--toggle-collect=stage_{only[0]}")
    command = [
        *valgrind, sys.executable, __file__, "--child", mode, "--model", str(model),
        "--extension", str(extension), "--out", str(args.out), "--warm", str(args.warm),
        "--decisions", str(args.decisions), "--batch", str(args.batch),
        *(f"--stage={stage}" for stage in args.stage),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
    subprocess.run(command, check=True, env=env, stderr=subprocess.DEVNULL)
    annotate = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out_file)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (args.out / f"annotate.{mode}.txt").write_text(annotate)
    return parse_annotate(annotate)


def report(args: argparse.Namespace, total: Annotated | None, stages: Annotated | None) -> None:
    unit = "lone decision" if args.batch == 1 else f"{args.batch}-item batch"
    n = args.decisions
    if total is not None:
        print(
            f"{n} calls of {args.batch} request(s): {total.total / n / 1e6:.2f} M instructions "
            f"per {unit} ({total.total / 1e6:,.1f} M in all)"
        )
    if stages is None:
        return
    calls = json.loads((args.out / "calls-stages.json").read_text())
    scope = f"inside '{args.only}'; calls: all of them" if args.only else "inclusive"
    print(f"stages ({scope}; the wrapped run's total {stages.total / n / 1e6:.2f} M per call):")
    print(f"  {'stage':26s} {'M per call':>10s} {'calls per call':>15s}")
    for k, (label, count) in sorted(calls.items(), key=lambda item: int(item[0])):
        instructions = stages.stages.get(int(k), 0)
        print(f"  {label:26s} {instructions / n / 1e6:10.2f} {count / n:15.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=50, help="measured calls")
    parser.add_argument("--batch", type=int, default=1, help="requests per call")
    parser.add_argument("--warm", type=int, help="warm-up calls (default: 5 lone ones, or 1 batch)")
    parser.add_argument("--invoices", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=Path("/tmp/smartretry-bench"))
    parser.add_argument("--out", type=Path, help="callgrind files (default: WORK/instructions)")
    parser.add_argument("--no-stages", action="store_true", help="the total run only")
    parser.add_argument("--only", metavar="LABEL", help="count only inside this stage")
    parser.add_argument(
        "--stage",
        action="append",
        default=[],
        metavar="LABEL=SPEC",
        help="one more stage (SPEC: module:function or module:Class.method)",
    )
    parser.add_argument("--child", choices=("total", "stages"), help=argparse.SUPPRESS)
    parser.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--extension", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out = (args.out or args.work / "instructions").resolve()
    if args.warm is None:
        args.warm = 5 if args.batch == 1 else 1
    if args.child:
        args.mode = args.child
        child(args)
        return

    from bench_world import prepare

    world = prepare(args.work, args.invoices, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    requests = world.sample((args.warm + args.decisions) * args.batch, known_share=0.2)
    (args.out / "requests.json").write_text(json.dumps(requests, default=str))
    extension = build_extension(args.out)
    total = None if args.only else run(args, world.model_dir, extension, "total")
    stages = None if args.no_stages else run(args, world.model_dir, extension, "stages")
    report(args, total, stages)


if __name__ == "__main__":
    main()
