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


# --------------------------------------------------------------------------------------------
# Local Athena client fixtures: a root with the Glue table ``db.sales`` (Parquet, partitioned
# by ``dt``) over files in the local S3 layout.

RESULTS = "s3://results/athena/"


@pytest.fixture
def root(tmp_path):
    return tmp_path / "root"


@pytest.fixture
def glue(root):
    from kedro_aws.local.glue import LocalGlueClient

    return LocalGlueClient(root, region="us-east-1")


@pytest.fixture
def athena(root, glue):
    from kedro_aws.local.athena import LocalAthenaClient

    client = LocalAthenaClient(root, region="us-east-1", glue=glue)
    yield client
    client.close()


@pytest.fixture
def sales(root, glue):
    """``db.sales``: 3 partitions (dt) of Parquet files; returns the partition file sizes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {
        "2024-01-01": [(1, "north", 10.5), (2, "south", None)],
        "2024-01-02": [(3, "north", 7.0)],
        "2024-01-03": [(4, "east", 1.25), (5, None, 2.0)],
    }
    sizes = {}
    glue.create_database(DatabaseInput={"Name": "db"})
    glue.create_table(
        DatabaseName="db",
        TableInput={
            "Name": "sales",
            "StorageDescriptor": {
                "Columns": [
                    {"Name": "id", "Type": "int"},
                    {"Name": "region", "Type": "string"},
                    {"Name": "amount", "Type": "double"},
                ],
                "Location": "s3://data/sales/",
                "SerdeInfo": {
                    "SerializationLibrary": (
                        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                    )
                },
            },
            "PartitionKeys": [{"Name": "dt", "Type": "string"}],
        },
    )
    for day, values in rows.items():
        folder = root / "data" / "sales" / f"dt={day}"
        folder.mkdir(parents=True)
        ids, regions, amounts = zip(*values, strict=True)
        table = pa.table(
            {
                "id": pa.array(ids, pa.int32()),
                "region": pa.array(regions, pa.string()),
                "amount": pa.array(amounts, pa.float64()),
            }
        )
        pq.write_table(table, folder / "part-0.parquet")
        sizes[day] = (folder / "part-0.parquet").stat().st_size
    glue.batch_create_partition(
        DatabaseName="db",
        TableName="sales",
        PartitionInputList=[
            {"Values": [day], "StorageDescriptor": {"Location": f"s3://data/sales/dt={day}/"}}
            for day in rows
        ],
    )
    return sizes


@pytest.fixture
def run(athena):
    """Start a query in database ``db``, wait for it; returns its ``QueryExecution``."""

    def start_and_wait(sql: str, **params):
        params.setdefault("QueryExecutionContext", {"Database": "db"})
        params.setdefault("ResultConfiguration", {"OutputLocation": RESULTS})
        query_id = athena.start_query_execution(QueryString=sql, **params)["QueryExecutionId"]
        return athena.wait(query_id, timeout=120)

    return start_and_wait


@pytest.fixture
def rows(athena):
    """All result rows of a query execution as lists of strings (None for NULL)."""

    def fetch(execution):
        pages = athena.get_paginator("get_query_results").paginate(
            QueryExecutionId=execution["QueryExecutionId"]
        )
        return [
            [datum.get("VarCharValue") for datum in row["Data"]]
            for page in pages
            for row in page["ResultSet"]["Rows"]
        ]

    return fetch
