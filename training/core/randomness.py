"""One random generator per process, for draws that must be unpredictable, not replayable
(decision ids, the exploration's draws).

``np.random.default_rng()`` seeds a new generator from the operating system's entropy on
every call (~25-90 µs: more than the draws it is made for, twice per decision), so the
process keeps one. numpy's bit generators hold their lock around each draw, so threads
can share it; a forked child reseeds (``os.register_at_fork``), so two workers forked from
one parent never share a stream (and never draw the same decision ids).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

_generator = np.random.default_rng()


def _reseed() -> None:
    global _generator
    _generator = np.random.default_rng()


os.register_at_fork(after_in_child=_reseed)


def process_rng() -> np.random.Generator:
    """The process's generator, seeded from the operating system's entropy."""
    return _generator


@contextmanager
def seeded_process_rng(seed: int) -> Iterator[np.random.Generator]:
    """The process's generator replaced by one seeded with ``seed`` for the block, for a
    simulation that must replay the product's draws (the exploration's, in an evaluation);
    the entropy-seeded one is put back after."""
    global _generator
    kept, _generator = _generator, np.random.default_rng(seed)
    try:
        yield _generator
    finally:
        _generator = kept
