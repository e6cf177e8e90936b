"""Engine creation (SQLite pragmas, PostgreSQL via psycopg 3) and migrations to head.

SQLite runs in WAL mode with ``synchronous=FULL``: in WAL mode ``NORMAL`` may lose the
last committed transactions on power loss, and the API promises an outcome is durable
once it answered 2xx, so every commit waits for the WAL fsync. Writers take the lock
up front (``BEGIN IMMEDIATE``) and wait up to ``busy_timeout`` for each other instead of
failing with "database is locked"; within one process they queue on a Python lock
(:func:`write_lock`). Reads (:func:`read_connection`) take no lock.
"""

from __future__ import annotations

import contextlib
import json
import threading
import weakref
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

SERVING_DIR = Path(__file__).resolve().parent.parent
BUSY_TIMEOUT_SECONDS = 30
CONNECT_TIMEOUT_SECONDS = 5
READ_ONLY_OPTION = "smartretry_read_only"
_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def normalize_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class EncodedJSON(str):
    """JSON text already encoded (by pydantic's serializer, ``model_dump_json``): a JSON
    column of an engine from :func:`make_engine` stores it as it is, instead of turning a
    model into a dict and the dict into text again."""


def json_serializer(value: Any) -> str:
    """The JSON columns' encoder: :class:`EncodedJSON` as it is, anything else with
    ``json.dumps`` (SQLAlchemy's default)."""
    return value if isinstance(value, EncodedJSON) else json.dumps(value)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" hook emit BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")  # deferred: in WAL mode a reader takes no lock
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def read_connection(engine: Engine) -> Connection:
    """A connection for reads only. On SQLite its transactions begin ``DEFERRED``: a
    ``BEGIN IMMEDIATE`` would take the write lock and make every lookup queue behind the
    writers (and they behind it)."""
    return engine.connect().execution_options(**{READ_ONLY_OPTION: True})


def write_lock(engine: Engine) -> contextlib.AbstractContextManager[Any]:
    """Serializes this process's write transactions on a SQLite file.

    SQLite allows one writer at a time; a writer that finds the file locked sleeps in
    its busy handler and polls (up to 100 ms between tries), so threads of one process
    that write together (outcome posts, the decision writer) would waste most of that
    time asleep while the lock is free. A Python lock hands over at once. Other
    processes (workers) still meet the busy timeout. No lock for other databases.
    """
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    with _LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(engine, threading.Lock())


def make_engine(url: str) -> Engine:
    """An engine for ``url``; for a SQLite file, its folder is created if missing. Its
    JSON columns take :class:`EncodedJSON` as it is (the store's writes rely on it)."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        # a store that does not answer is reported within seconds, not the OS's minutes
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        if "connect_timeout" in parsed.query or parsed.get_backend_name() != "postgresql":
            connect_args = {}
        return create_engine(
            url, pool_pre_ping=True, connect_args=connect_args, json_serializer=json_serializer
        )
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_SECONDS},
        json_serializer=json_serializer,
    )
    event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def alembic_config() -> Config:
    config = Config(str(SERVING_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(SERVING_DIR / "migrations"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def ping(engine: Engine) -> bool:
    try:
        with read_connection(engine) as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # any driver error means "not reachable"
        return False
    return True
