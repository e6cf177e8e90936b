"""benchmarks/bench_instructions.py reads callgrind_annotate's output right (valgrind
itself is not run here)."""

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from bench_instructions import STAGE_FRAMES, STAGES, parse_annotate, stages_of

SO = "[/tmp/x/cgstage-abc/_cgstage.cpython-311-x86_64-linux-gnu.so]"
ANNOTATE = f"""\
--------------------------------------------------------------------------------
Profile data file 'callgrind.stages.out' (creator: callgrind-3.19.0)
--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
1,262,512,345 (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                    file:function
--------------------------------------------------------------------------------
3,125,767,770 (247.6%)  /build/Objects/call.c:PyObject_Vectorcall'2 [/lib/libpython3.11.so]
1,262,053,367 (99.96%)  /tmp/x/cgstage-abc/cgstage.c:stage_0 {SO}
  201,096,063 (15.93%)  /tmp/x/cgstage-abc/cgstage.c:stage_6 {SO}
  190,000,000 (15.05%)  /tmp/x/cgstage-abc/cgstage.c:stage_6'2 {SO}
    7,362,744 ( 0.58%)  /tmp/x/cgstage-abc/cgstage.c:stage_13 {SO}
    7,000,000 ( 0.55%)  /tmp/x/cgstage-abc/other.h:stage_13 {SO}
       95,112 ( 0.01%)  ???:stage_12 {SO}
    1,745,112 ( 0.14%)  ???:my_stage_4 [/lib/other.so]
  .           /* stage_K(function, *args, **kwargs): inside a C frame of its own */
"""


def test_parse_annotate_reads_the_total_and_each_stage_once() -> None:
    parsed = parse_annotate(ANNOTATE)
    assert parsed.total == 1_262_512_345
    # the recursion level (stage_6'2), the second file's line of stage_13, another
    # library's my_stage_4 and the source listing are not stages
    assert parsed.stages == {0: 1_262_053_367, 6: 201_096_063, 13: 7_362_744, 12: 95_112}


def test_parse_annotate_without_a_total_fails() -> None:
    with pytest.raises(ValueError, match="PROGRAM TOTALS"):
        parse_annotate(ANNOTATE.replace("PROGRAM TOTALS", "program"))


def test_every_stage_has_a_frame_and_a_distinct_label() -> None:
    labels = [label.strip() for label, _ in STAGES]
    assert len(STAGES) <= STAGE_FRAMES
    assert len(set(labels)) == len(labels)


def test_more_stages_from_the_command_line() -> None:
    spec = "scored with contrast=training.policy.decider:scored_with_contrast"
    stages = stages_of(argparse.Namespace(stage=[spec]))
    assert stages[:-1] == STAGES
    assert stages[-1] == ("scored with contrast", "training.policy.decider:scored_with_contrast")
    with pytest.raises(SystemExit, match="LABEL=module:function"):
        stages_of(argparse.Namespace(stage=["training.policy.decider:past_of_events"]))
