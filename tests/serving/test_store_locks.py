"""SQLite locking: reads never wait for a writer; one process's writers queue in Python."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

from serving.store.db import make_engine, migrate, ping, write_lock
from serving.store.writes import known_customers


def test_reads_do_not_wait_for_an_open_write_transaction(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    engine, other = make_engine(url), make_engine(url)
    migrate(engine)
    try:
        with other.begin() as writing:  # BEGIN IMMEDIATE: holds the write lock
            writing.execute(
                text("INSERT INTO customers (customer_id, first_seen_at, updated_at) "
                     "VALUES ('cus_1', '2026-01-01', '2026-01-01')")
            )  # fmt: skip
            start = time.monotonic()
            assert known_customers(engine, ["cus_1"]) == {}  # not committed yet
            assert ping(engine)
            assert time.monotonic() - start < 5  # the busy timeout is 30 s
        assert set(known_customers(engine, ["cus_1"])) == {"cus_1"}
    finally:
        engine.dispose()
        other.dispose()


def test_writers_of_one_process_share_one_lock_per_sqlite_engine(tmp_path: Path):
    engine = make_engine(f"sqlite:///{tmp_path / 'a.sqlite'}")
    other = make_engine(f"sqlite:///{tmp_path / 'b.sqlite'}")
    try:
        assert write_lock(engine) is write_lock(engine)
        assert write_lock(engine) is not write_lock(other)
        order: list[str] = []

        def second() -> None:
            with write_lock(engine):
                order.append("second")

        with write_lock(engine):
            waiter = threading.Thread(target=second)
            waiter.start()
            time.sleep(0.1)
            order.append("first")
        waiter.join(5)
        assert order == ["first", "second"]
    finally:
        engine.dispose()
        other.dispose()
