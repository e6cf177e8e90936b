"""Statements run through the SQLite driver itself: compiled by SQLAlchemy once, their
values converted by the columns' own bind processors, ``executemany`` on the DBAPI cursor.

For the few rows of one decision commit, SQLAlchemy's execution of an already compiled
statement (an execution context, parameters built row by row by ``construct_params``,
the ``begin`` event's ``BEGIN IMMEDIATE`` as a statement of its own, the pool's reset)
cost more CPU than SQLite's own work: this path takes 0.6-0.9 ms of the decision
writer's thread for a commit of three decisions, SQLAlchemy's 1.25-1.35 ms. The values stored are the ones
SQLAlchemy would store (the same bind processors: its SQLite date format, JSON through
the engine's serializer); ``tests/serving/test_driver_writes.py`` compares the rows.
Driver errors are raised as SQLAlchemy's (``OperationalError`` ...), which the store's
health and the decision writer tell apart, without the statement's parameters (the
requests: personal data).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Engine, FromClause
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

from serving.store.db import write_lock

Processor = Callable[[Any], Any] | None


class DriverStatement(NamedTuple):
    """A statement as the driver takes it: its SQL, and its parameters in order, each
    with the bind processor of its column."""

    sql: str
    keys: tuple[str, ...]
    processors: tuple[Processor, ...]

    def rows(self, params: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        converted = tuple(zip(self.keys, self.processors, strict=True))
        return [tuple(row[k] if p is None else p(row[k]) for k, p in converted) for row in params]


def compile_for_driver(
    statement: Any, table: FromClause, dialect: Dialect, keys: Sequence[str]
) -> DriverStatement:
    """``statement`` (an insert or upsert into ``table`` with the values ``keys``) for the
    driver of ``dialect`` (positional parameters, ``qmark`` style)."""
    compiled = statement.compile(dialect=dialect, column_keys=list(keys))
    names = tuple(compiled.positiontup or ())
    unknown = set(names) - set(table.c.keys())
    if unknown:
        raise ValueError(f"not columns of {table.description}: {sorted(unknown)}")
    processors = tuple(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    return DriverStatement(str(compiled), names, processors)


def execute_in_one_transaction(
    engine: Engine, work: Sequence[tuple[DriverStatement, Sequence[Mapping[str, Any]]]]
) -> None:
    """Each statement with its rows (``executemany``), in one write transaction
    (``BEGIN IMMEDIATE`` ... ``COMMIT``) on a pooled connection of ``engine``, after the
    process's write lock (:func:`serving.store.db.write_lock`)."""
    with write_lock(engine):
        connection = engine.raw_connection()  # connect errors come wrapped already
        try:
            cursor = connection.cursor()
            sql = "BEGIN IMMEDIATE"
            try:
                cursor.execute(sql)
                for statement, rows in work:
                    if rows:
                        sql = statement.sql
                        cursor.executemany(sql, statement.rows(rows))
                sql = "COMMIT"
                cursor.execute(sql)
            except sqlite3.Error as error:
                driver = connection.driver_connection
                with contextlib.suppress(sqlite3.Error):  # the file may be gone
                    if driver is not None and driver.in_transaction:
                        driver.rollback()
                # parameters left out: they are the requests (personal data)
                raise DBAPIError.instance(
                    sql, None, error, sqlite3.Error, dialect=engine.dialect
                ) from error
            finally:
                cursor.close()
        finally:
            connection.close()
