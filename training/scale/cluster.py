"""Connect to a Dask cluster: ``local``, ``local:N`` (a LocalCluster) or a scheduler address."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dask.distributed import Client

LOCAL = re.compile(r"^local(?::(\d+))?$")


def local_workers(spec: str) -> int | None:
    """Workers of a ``local[:N]`` spec (``local``: one per core), None for an address.

    Raises ``ValueError`` for ``local:0`` or ``local:x``."""
    if not spec.startswith("local"):
        return None
    match = LOCAL.match(spec)
    if match is None or (match.group(1) is not None and int(match.group(1)) < 1):
        raise ValueError(
            f"cluster must be local, local:N (N >= 1) or a scheduler address, not {spec!r}"
        )
    return int(match.group(1)) if match.group(1) else max(1, os.cpu_count() or 1)


@contextmanager
def cluster_client(
    spec: str, memory_limit: str | None = None, threads: int | None = None
) -> Iterator[Client]:
    """A ``dask.distributed`` client for ``spec``; a LocalCluster it starts is closed on exit.

    ``local:N`` starts N worker processes (LightGBM's distributed training needs one
    process per worker), each with ``threads`` threads (default: an equal share of the
    cores) and, unless ``memory_limit`` is given, an equal share of the memory; no
    dashboard is served.
    Any other value is the address of a running scheduler (``tcp://host:8786``).
    """
    from dask.distributed import Client, LocalCluster

    workers = local_workers(spec)
    if workers is None:
        with Client(spec) as client:
            yield client
        return
    threads = threads or max(1, (os.cpu_count() or 1) // workers)
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=None,
            memory_limit=memory_limit or "auto",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client
