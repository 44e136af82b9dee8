"""Fixtures for the local Athena SQL engine: a DuckDB connection with one registered table."""

from __future__ import annotations

import duckdb
import pytest

from kedro_aws.local.athena_sql import run_select


@pytest.fixture
def conn():
    connection = duckdb.connect()
    connection.execute(
        "CREATE TABLE sales_src AS SELECT * FROM (VALUES"
        " (1, 'north', 7, DATE '2024-01-31', TIMESTAMP '2024-01-02 03:04:05.123', [1, 2, 3]),"
        " (2, 'south', NULL, DATE '2024-03-15', TIMESTAMP '2024-02-29 23:59:59.000', [4])"
        ") AS v(id, region, qty, day, ts, items)"
    )
    yield connection
    connection.close()


def resolver(database: str, table: str) -> str | None:
    """Only ``db.sales`` exists; it is the ``sales_src`` table of the fixture."""
    return "sales_src" if (database, table) == ("db", "sales") else None


@pytest.fixture
def query(conn):
    """Run an Athena query against db.sales and return its rows as dicts."""

    def run(sql: str, parameters=None):
        table = run_select(conn, sql, database="db", table_resolver=resolver, parameters=parameters)
        return table.to_pylist()

    return run


@pytest.fixture
def scalar(query):
    """Value of a one-column, one-row query."""

    def run(sql: str, parameters=None):
        (row,) = query(sql, parameters)
        (value,) = row.values()
        return value

    return run
