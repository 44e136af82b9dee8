"""AthenaQueryDataset on the local backend (the engine really runs the SQL)."""

from __future__ import annotations

import logging

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from kedro.io import DatasetError

from kedro_aws import client
from kedro_aws.datasets import AthenaQueryDataset

RESULTS = "s3://results/athena/"


@pytest.fixture
def creds(tmp_path):
    """Client settings for a local backend holding db.events: 3 days x 4 rows, partitioned."""
    root = tmp_path / "aws"
    settings = {"backend": "local", "root": str(root), "region": "us-east-1"}
    s3 = client("s3", credentials=settings)
    for bucket in ("data", "results"):
        s3.create_bucket(Bucket=bucket)
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        folder = root / "data" / "events" / f"day={day}"
        folder.mkdir(parents=True)
        rows = {
            "id": [1, 2, 3, 4],
            "amount": [10.0, 20.5, None, 7.25],
            "kind": ["a", "b", "a", "c"],
        }
        pq.write_table(pa.table(rows), folder / "part-0.parquet")
    glue = client("glue", credentials=settings)
    glue.create_database(DatabaseInput={"Name": "db"})
    glue.create_table(
        DatabaseName="db",
        TableInput={
            "Name": "events",
            "PartitionKeys": [{"Name": "day", "Type": "string"}],
            "StorageDescriptor": {
                "Location": "s3://data/events/",
                "Columns": [
                    {"Name": "id", "Type": "bigint"},
                    {"Name": "amount", "Type": "double"},
                    {"Name": "kind", "Type": "string"},
                ],
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "SerdeInfo": {
                    "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                },
            },
        },
    )
    glue.batch_create_partition(
        DatabaseName="db",
        TableName="events",
        PartitionInputList=[
            {"Values": [d], "StorageDescriptor": {"Location": f"s3://data/events/day={d}/"}}
            for d in ("2024-01-01", "2024-01-02", "2024-01-03")
        ],
    )
    return settings


def dataset(creds, **kwargs) -> AthenaQueryDataset:
    arguments = {
        "database": "db",
        "output_location": RESULTS,
        "credentials": creds,
        "poll_interval": 0.01,
    }
    return AthenaQueryDataset(**{**arguments, **kwargs})


def leftovers(creds) -> tuple[list[str], list[str]]:
    """Objects under the results prefix, and temporary tables in db."""
    s3 = client("s3", credentials=creds)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="results").get("Contents", [])]
    tables = [
        t["Name"]
        for t in client("glue", credentials=creds).get_tables(DatabaseName="db")["TableList"]
    ]
    return keys, [t for t in tables if t != "events"]


QUERY = (
    "SELECT id, amount * 2 AS doubled, kind, day FROM events WHERE day >= ? ORDER BY day DESC, id"
)


@pytest.mark.parametrize("approach", ["select", "unload", "ctas"])
def test_every_approach_returns_the_same_typed_ordered_rows_and_leaves_nothing(creds, approach):
    partition = ["day"] if approach != "select" else None
    df = dataset(
        creds, query=QUERY, params=["2024-01-02"], approach=approach, partition_cols=partition
    ).load()
    assert list(df.columns) == ["id", "doubled", "kind", "day"]
    assert df["id"].dtype == "int64" and df["doubled"].dtype == "float64"
    # ORDER BY survives the multi-file UNLOAD/CTAS write.
    assert list(zip(df["day"], df["id"], strict=True)) == [
        (d, i) for d in ("2024-01-03", "2024-01-02") for i in (1, 2, 3, 4)
    ]
    assert df["doubled"].isna().sum() == 2 and df["doubled"].iloc[1] == 41.0
    assert leftovers(creds) == ([], [])


def test_keep_files_keeps_the_temporary_table_and_data(creds):
    ds = dataset(creds, query="SELECT id, day FROM events", approach="ctas", keep_files=True)
    assert len(ds.load()) == 12
    keys, tables = leftovers(creds)
    assert any("kedro-aws-tmp/" in k for k in keys) and len(tables) == 1


@pytest.mark.parametrize("approach", ["select", "unload", "ctas"])
def test_a_failing_query_names_dataset_query_and_reason_and_cleans_up(creds, approach):
    ds = dataset(creds, query="SELECT nope FROM events", approach=approach)
    with pytest.raises(DatasetError) as error:
        ds.load()
    message = str(error.value)
    assert "AthenaQueryDataset (query)" in message
    assert ds.last_query_ids[-1] in message
    assert "COLUMN_NOT_FOUND" in message
    assert leftovers(creds) == ([], [])


def test_params_are_execution_parameters_not_sql_text(creds):
    injected = dataset(creds, query="SELECT id FROM events WHERE kind = ?", params=["a' OR '1'='1"])
    assert injected.load().empty  # the whole string is one literal: no row has that kind
    assert (
        len(dataset(creds, query="SELECT id FROM events WHERE kind = ?", params=["a"]).load()) == 6
    )


def test_an_empty_result_keeps_its_columns_and_types(creds):
    for approach in ("select", "unload", "ctas"):
        df = dataset(
            creds,
            query="SELECT id, amount, day FROM events WHERE id > 100",
            approach=approach,
            partition_cols=None if approach == "select" else ["day"],
        ).load()
        assert df.empty
        assert df.dtypes.astype(str).to_dict() == {
            "id": "int64",
            "amount": "float64",
            "day": "object",
        }


def test_partition_columns_are_moved_last_and_unknown_ones_are_refused(creds):
    df = dataset(creds, query="SELECT day, id FROM events", partition_cols=["day"]).load()
    assert sorted(df["day"].unique()) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    with pytest.raises(DatasetError, match=r"Partition column\(s\) \['month'\] are not in"):
        dataset(creds, query="SELECT day, id FROM events", partition_cols=["month"]).load()
    assert leftovers(creds) == ([], [])


def test_max_bytes_scanned_fails_the_load_and_cleans_up(creds):
    ds = dataset(creds, query="SELECT * FROM events", max_bytes_scanned=10)
    with pytest.raises(DatasetError, match="scanned [0-9,]+ bytes, over max_bytes_scanned=10"):
        ds.load()
    assert leftovers(creds) == ([], [])


def test_more_than_100_partitions_fail_unless_split(creds):
    query = "SELECT id, kind, CAST(id * 100 + length(kind) * 7 + n AS varchar) AS bucket FROM events CROSS JOIN UNNEST(sequence(1, 40)) AS t(n)"
    with pytest.raises(DatasetError, match="HIVE_TOO_MANY_OPEN_PARTITIONS"):
        dataset(creds, query=query, partition_cols=["bucket"]).load()
    assert leftovers(creds) == ([], [])
    df = dataset(creds, query=query, partition_cols=["bucket"], split_partitions=True).load()
    assert len(df) == 12 * 40
    assert df["bucket"].nunique() > 100
    assert leftovers(creds) == ([], [])


def test_result_reuse_on_select_keeps_and_reads_the_reused_result(creds):
    athena = client("athena", credentials=creds)
    query = "SELECT count(*) AS n FROM events"
    first = dataset(creds, query=query, approach="select", result_reuse_minutes=60)
    assert first.load()["n"].tolist() == [12]
    second = dataset(creds, query=query, approach="select", result_reuse_minutes=60)
    assert second.load()["n"].tolist() == [12]
    reused = athena.get_query_execution(QueryExecutionId=second.last_query_ids[0])["QueryExecution"]
    assert reused["Statistics"]["ResultReuseInformation"]["ReusedPreviousResult"] is True
    # The result files are the cache reuse reads from: they stay (and nothing else does).
    keys, tables = leftovers(creds)
    assert keys and all(k.startswith(f"athena/{first.last_query_ids[0]}") for k in keys)


def test_query_from_a_sql_file(creds, tmp_path):
    sql = tmp_path / "count.sql"
    sql.write_text(
        "-- events per kind\nSELECT kind, count(*) AS n FROM events GROUP BY kind ORDER BY kind;\n"
    )
    df = dataset(creds, filepath=str(sql)).load()
    assert df.to_dict("list") == {"kind": ["a", "b", "c"], "n": [6, 3, 3]}


def test_bytes_scanned_and_cost_are_logged(creds, caplog):
    caplog.set_level(logging.INFO, logger="kedro_aws")
    dataset(creds, query="SELECT id FROM events").load()
    assert any("scanned" in r.message and "estimated cost $" in r.message for r in caplog.records)


def test_describe_never_shows_credentials_and_preview_limits_rows(creds):
    ds = dataset(creds | {"aws_secret_access_key": "SECRET"}, query="SELECT id FROM events")
    assert "SECRET" not in repr(ds) and "SECRET" not in str(ds._describe())
    preview = dataset(creds, query="SELECT id, day FROM events ORDER BY day, id").preview(nrows=3)
    assert preview["columns"] == ["id", "day"] and len(preview["data"]) == 3


def test_spark_output_reads_the_files_with_spark(creds, spark):
    df = dataset(
        creds, query=QUERY, params=["2024-01-03"], output="spark", partition_cols=["day"]
    ).load()
    assert dict(df.dtypes) == {
        "id": "bigint",
        "doubled": "double",
        "kind": "string",
        "day": "string",
    }
    assert [tuple(r) for r in df.select("id", "day").collect()] == [
        (i, "2024-01-03") for i in (1, 2, 3, 4)
    ]
    assert leftovers(creds) == ([], [])  # the result was materialised before the clean-up


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of 'query' and 'filepath'"),
        ({"query": "SELECT 1", "approach": "copy"}, "approach 'copy' is not one of"),
        ({"query": "SELECT 1", "output": "polars"}, "output 'polars' is not one of"),
        (
            {"query": "SELECT 1", "approach": "select", "partition_cols": ["a"]},
            "partition_cols needs",
        ),
        ({"query": "SELECT 1", "result_reuse_minutes": 5}, "applies to approach 'select' only"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(DatasetError, match=message):
        AthenaQueryDataset(**kwargs)


def test_only_one_select_statement_is_accepted(creds):
    with pytest.raises(DatasetError, match="single SELECT statement"):
        dataset(creds, query="DROP TABLE events").load()
    with pytest.raises(DatasetError, match="'save' is not supported"):
        dataset(creds, query="SELECT 1 AS one").save(pd.DataFrame())
