"""The process's generator: one per process, and a forked child draws its own stream."""

from __future__ import annotations

import os
import sys

import pytest

from training.core.randomness import process_rng


def test_the_generator_is_kept() -> None:
    assert process_rng() is process_rng()


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="fork: Linux")
def test_a_forked_child_does_not_repeat_the_parents_draws() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next draws, then leave at once
        os.write(write, process_rng().bytes(16))
        os._exit(0)
    os.close(write)
    child = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 16
    assert child != process_rng().bytes(16)  # the same state would give the same bytes
