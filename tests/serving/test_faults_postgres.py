"""The fault drill on PostgreSQL (``SMARTRETRY_TEST_POSTGRES_URL``), at a smaller scale than
the benchmark: a real ``smartretry serve`` process, concurrent clients sending 2,000 outcome
events (some batches twice) and 500 recommendations, ``kill -9`` of the server mid-run, a
restart, clients retrying with the same event ids. Then: 0 acknowledged events lost, 0 stored
twice, every answered recommendation's decision stored.

It runs ``benchmarks/bench_faults.py`` itself, so the test and the published figures come
from the same code. Skipped only when the variable is unset; when it is set and the server
cannot be reached the drill fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def test_kill_9_mid_run_loses_nothing_acknowledged(tmp_path):
    url = os.environ.get("SMARTRETRY_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("SMARTRETRY_TEST_POSTGRES_URL is not set")
    figures_file = tmp_path / "figures.json"
    command = [
        sys.executable, str(REPO / "benchmarks" / "bench_faults.py"),
        "--database-url", url, "--events", "2000", "--recommendations", "500",
        "--clients", "8", "--work", str(tmp_path), "--json", str(figures_file),
    ]  # fmt: skip
    run = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert figures_file.exists(), run.stdout + run.stderr
    figures = json.loads(figures_file.read_text())
    assert figures["killed_at_done"] > 0 and figures["client_retries"] > 0  # a real kill
    assert figures["events_acknowledged"] == 2000
    assert figures["events_acknowledged_lost"] == 0
    assert figures["events_stored_twice"] == 0
    assert figures["recommendations_answered"] == 500
    assert figures["answered_not_stored"] == 0
    assert run.returncode == 0, run.stdout + run.stderr
