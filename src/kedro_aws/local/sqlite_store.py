"""Persistent state of a local client (SageMaker, Glue, Athena): one SQLite database each,
under the local root's state directory.

SQLite gives what a service needs: state that outlives the process, and transactions that
serialise concurrent writers across processes (``BEGIN IMMEDIATE`` takes the write lock up
front, so two registrations can never read the same "last version").

Each feature of a client declares its own tables (``schema``) and the store creates them all,
so adding resources (models, transform jobs) does not touch this module.

Example:
>>> store = SqliteStore("/tmp/kedro-aws-doc-sm.sqlite", ["CREATE TABLE IF NOT EXISTS t (x)"])
>>> with store.write() as db:
...     _ = db.execute("INSERT INTO t VALUES (1)")
>>> with store.read() as db:
...     db.execute("SELECT count(*) FROM t").fetchone()[0] >= 1
True
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

# Long enough to ride out a burst of concurrent registrations; a stuck writer still surfaces.
_LOCK_TIMEOUT_SECONDS = 60


class SqliteStore:
    """SQLite database file with read and write transactions.

    Args:
        path: The database file (created with its parent folder if missing).
        schema: ``CREATE TABLE IF NOT EXISTS`` / ``CREATE INDEX IF NOT EXISTS`` statements.
        durable: Sync every commit to disk (SQLite's default). ``False`` for caches that can
            be rebuilt: in WAL mode a commit then survives a crash of the process, but not
            necessarily a power cut ("synchronous=NORMAL", sqlite.org/pragma.html#pragma_synchronous).
    """

    def __init__(self, path: str | Path, schema: Iterable[str], *, durable: bool = True) -> None:
        self._local = threading.local()
        self.durable = durable
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        with self.write() as db:
            for statement in schema:
                db.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN ourselves, so the lock mode is ours to choose.
        db = sqlite3.connect(self.path, timeout=_LOCK_TIMEOUT_SECONDS, isolation_level=None)
        db.row_factory = sqlite3.Row
        if not self.durable:
            db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened once: pollers call describe/get many times a second.

        One connection per thread and per process (a forked child opens its own: SQLite
        connections must not cross a fork). Kept open also because closing the last connection
        to a WAL database checkpoints it and deletes the WAL (several fsyncs).
        """
        cached = getattr(self._local, "connection", None)
        if cached is None or self._local.pid != os.getpid():
            cached = self._local.connection = self._connect()
            self._local.pid = os.getpid()
        return cached

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A transaction holding the write lock from its first statement; commits on success."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for reads."""
        db = self._connection()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("ROLLBACK")
