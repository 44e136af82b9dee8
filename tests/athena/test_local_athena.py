"""Local Athena client: states, results, paging, CTAS/UNLOAD, DDL, errors, cancellation."""

from __future__ import annotations

import time

import boto3
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from moto import mock_aws

from kedro_aws.local.athena import LocalAthenaClient

from .conftest import RESULTS


def reason(execution) -> str:
    return execution["Status"].get("StateChangeReason", "")


def succeeded(execution):
    assert execution["Status"]["State"] == "SUCCEEDED", reason(execution)
    return execution


# -- SELECT ----------------------------------------------------------------------------------


def test_select_rows_header_types_and_nulls(sales, athena, run):
    execution = succeeded(
        run(
            "SELECT id, region, amount, 7 / 2 AS half FROM sales WHERE dt = '2024-01-01' ORDER BY id"
        )
    )
    assert execution["StatementType"] == "DML"
    result = athena.get_query_results(QueryExecutionId=execution["QueryExecutionId"])
    data = [row["Data"] for row in result["ResultSet"]["Rows"]]
    assert data[0] == [{"VarCharValue": n} for n in ("id", "region", "amount", "half")]
    assert data[1] == [{"VarCharValue": v} for v in ("1", "north", "10.5", "3")]
    assert data[2][2] == {}  # NULL is an empty datum
    types = [c["Type"] for c in result["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
    assert types == ["integer", "varchar", "double", "integer"]


def test_select_writes_csv_and_metadata_to_output_location(sales, root, run):
    execution = succeeded(
        run("SELECT region, '' AS empty FROM sales WHERE id IN (2, 5) ORDER BY id")
    )
    query_id = execution["QueryExecutionId"]
    location = execution["ResultConfiguration"]["OutputLocation"]
    assert location == f"{RESULTS}{query_id}.csv"
    csv_file = root / "results" / "athena" / f"{query_id}.csv"
    # Every value quoted; NULL an empty unquoted field, distinct from the empty string.
    assert csv_file.read_text() == '"region","empty"\n"south",""\n,""\n'
    assert (root / "results" / "athena" / f"{query_id}.csv.metadata").exists()


def test_states_and_statistics(sales, athena, run):
    execution = succeeded(run("SELECT count(*) FROM sales"))
    status, stats = execution["Status"], execution["Statistics"]
    assert status["SubmissionDateTime"] <= status["CompletionDateTime"]
    assert status["SubmissionDateTime"].tzinfo is not None
    assert stats["EngineExecutionTimeInMillis"] >= 0
    assert stats["TotalExecutionTimeInMillis"] >= stats["EngineExecutionTimeInMillis"]
    assert execution["WorkGroup"] == "primary"


def test_data_scanned_is_the_size_of_the_files_read(sales, run):
    everything = succeeded(run("SELECT count(*) FROM sales"))
    one_day = succeeded(run("SELECT count(*) FROM sales WHERE dt = '2024-01-02'"))
    assert everything["Statistics"]["DataScannedInBytes"] == sum(sales.values())
    assert one_day["Statistics"]["DataScannedInBytes"] == sales["2024-01-02"]


def test_unregistered_partition_folders_are_not_read(sales, root, run, rows):
    (root / "data" / "sales" / "dt=2099-01-01").mkdir()
    (root / "data" / "sales" / "dt=2099-01-01" / "x.parquet").write_bytes(
        (root / "data" / "sales" / "dt=2024-01-02" / "part-0.parquet").read_bytes()
    )
    assert rows(succeeded(run("SELECT count(*) FROM sales"))) == [["_col0"], ["5"]]


def test_paging_with_max_results_and_next_token(athena, run):
    execution = succeeded(
        run("SELECT x FROM UNNEST(sequence(1, 25)) AS t(x) ORDER BY x", QueryExecutionContext={})
    )
    query_id = execution["QueryExecutionId"]
    sizes, token, values = [], None, []
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = athena.get_query_results(QueryExecutionId=query_id, MaxResults=10, **kwargs)
        page_rows = page["ResultSet"]["Rows"]
        sizes.append(len(page_rows))
        values += [r["Data"][0]["VarCharValue"] for r in page_rows]
        token = page.get("NextToken")
        if token is None:
            break
    assert sizes == [10, 10, 6]  # the header row counts on the first page, as on Athena
    assert values == ["x", *map(str, range(1, 26))]
    with pytest.raises(ClientError) as info:
        athena.get_query_results(QueryExecutionId=query_id, MaxResults=1001)
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"


def test_paginator_returns_every_row(athena, run, rows):
    execution = succeeded(
        run("SELECT x FROM UNNEST(sequence(1, 2500)) AS t(x)", QueryExecutionContext={})
    )
    assert len(rows(execution)) == 2501


def test_execution_parameters_are_bound_as_literals(sales, run, rows):
    execution = succeeded(
        run(
            "SELECT id FROM sales WHERE region = ? AND dt >= ? ORDER BY id",
            ExecutionParameters=["'north'", "'2024-01-02'"],
        )
    )
    assert rows(execution) == [["id"], ["3"]]
    injected = run("SELECT id FROM sales WHERE region = ?", ExecutionParameters=["'x' OR 1=1"])
    assert injected["Status"]["State"] == "FAILED"
    assert reason(injected).startswith("INVALID_PARAMETER_USAGE")


# -- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELEC 1", "SYNTAX_ERROR"),
        ("SELECT * FROM nope", "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.db.nope'"),
        ("SELECT nope FROM sales", "COLUMN_NOT_FOUND"),
        ("SELECT 1 / 0", "DIVISION_BY_ZERO"),
    ],
)
def test_bad_queries_fail_with_athena_errors(sales, athena, run, sql, error):
    execution = run(sql)
    assert execution["Status"]["State"] == "FAILED"
    assert reason(execution).startswith(error)
    athena_error = execution["Status"]["AthenaError"]
    assert athena_error["ErrorCategory"] == 2
    assert athena_error["ErrorMessage"] == reason(execution)
    with pytest.raises(ClientError) as info:
        athena.get_query_results(QueryExecutionId=execution["QueryExecutionId"])
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "FAILED" in info.value.response["Error"]["Message"]


def test_malformed_requests_are_rejected_at_start(athena):
    with pytest.raises(ClientError) as info:
        athena.start_query_execution(QueryString="SELECT 1")
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "No output location provided" in info.value.response["Error"]["Message"]
    with pytest.raises(ParamValidationError):
        athena.start_query_execution(QueryString="SELECT 1", OutputLocation=RESULTS)
    with pytest.raises(athena.exceptions.InvalidRequestException):
        athena.get_query_execution(QueryExecutionId="does-not-exist")


# -- CTAS ------------------------------------------------------------------------------------


CTAS = (
    "CREATE TABLE db.by_region WITH (format = 'PARQUET', write_compression = 'SNAPPY', "
    "external_location = 's3://data/by_region/', partitioned_by = ARRAY['region']) AS "
    "SELECT id, amount, region FROM sales WHERE region IS NOT NULL"
)


def test_ctas_writes_hive_partitions_registers_table_and_manifest(sales, root, glue, run, rows):
    execution = succeeded(run(CTAS))
    assert execution["StatementType"] == "DDL"
    folders = sorted(p.name for p in (root / "data" / "by_region").iterdir())
    assert folders == ["region=east", "region=north", "region=south"]
    files = sorted((root / "data" / "by_region").rglob("*.parquet"))
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(0).compression == "SNAPPY"
    assert pq.read_schema(files[0]).names == ["id", "amount"]  # partition column not in files
    table = glue.get_table(DatabaseName="db", Name="by_region")["Table"]
    assert table["PartitionKeys"] == [{"Name": "region", "Type": "string"}]
    assert [c["Type"] for c in table["StorageDescriptor"]["Columns"]] == ["int", "double"]
    partitions = glue.get_partitions(DatabaseName="db", TableName="by_region")["Partitions"]
    assert sorted(p["Values"][0] for p in partitions) == ["east", "north", "south"]
    manifest = execution["Statistics"]["DataManifestLocation"]
    assert manifest == f"{RESULTS}{execution['QueryExecutionId']}-manifest.csv"
    listed = (root / manifest.removeprefix("s3://")).read_text().split()
    assert sorted(listed) == sorted(f"s3://{f.relative_to(root).as_posix()}" for f in files)
    query = succeeded(run("SELECT region, sum(amount) FROM by_region GROUP BY region ORDER BY 1"))
    assert rows(query)[1:] == [["east", "1.25"], ["north", "17.5"], ["south", None]]


def test_ctas_without_location_writes_under_output_location(sales, root, run):
    execution = succeeded(run("CREATE TABLE copy AS SELECT id FROM sales"))
    folder = root / "results" / "athena" / "tables" / execution["QueryExecutionId"]
    assert len(list(folder.glob("*.parquet"))) == 1


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("CREATE TABLE t1 AS SELECT count(*) FROM sales", "Column name not specified"),
        (
            "CREATE TABLE t2 WITH (partitioned_by = ARRAY['dt']) AS SELECT dt, id FROM sales",
            "HIVE_COLUMN_ORDER_MISMATCH",
        ),
        ("CREATE TABLE sales AS SELECT 1 AS x", "TABLE_ALREADY_EXISTS"),
        (
            "CREATE TABLE t3 WITH (external_location = 's3://data/sales/') AS SELECT 1 AS x",
            "HIVE_PATH_ALREADY_EXISTS",
        ),
        ("CREATE TABLE t4 AS SELECT id, id AS ID FROM sales", "DUPLICATE_COLUMN_NAME"),
    ],
)
def test_ctas_refusals(sales, glue, run, sql, error):
    execution = run(sql)
    assert execution["Status"]["State"] == "FAILED"
    assert error in reason(execution)
    names = [t["Name"] for t in glue.get_tables(DatabaseName="db")["TableList"]]
    assert names == ["sales"]


def test_more_than_100_partitions_fail_and_leave_nothing(sales, root, glue, run):
    execution = run(
        "CREATE TABLE many WITH (external_location = 's3://data/many/', "
        "partitioned_by = ARRAY['p']) AS SELECT x AS v, x AS p FROM UNNEST(sequence(1, 101)) AS t(x)"
    )
    assert reason(execution).startswith("HIVE_TOO_MANY_OPEN_PARTITIONS")
    assert not (root / "data" / "many").exists()
    assert [t["Name"] for t in glue.get_tables(DatabaseName="db")["TableList"]] == ["sales"]
    assert list((root / ".kedro-aws" / "athena-tmp").iterdir()) == []


# -- UNLOAD ----------------------------------------------------------------------------------


def test_unload_partitioned_parquet_with_manifest(sales, root, run):
    execution = succeeded(
        run(
            "UNLOAD (SELECT id, amount, dt FROM sales) TO 's3://data/unload/' "
            "WITH (format = 'PARQUET', compression = 'ZSTD', partitioned_by = ARRAY['dt'])"
        )
    )
    assert execution["StatementType"] == "DML"
    folders = sorted(p.name for p in (root / "data" / "unload").iterdir())
    assert folders == ["dt=2024-01-01", "dt=2024-01-02", "dt=2024-01-03"]
    files = sorted((root / "data" / "unload").rglob("*.parquet"))
    assert pq.ParquetFile(files[0]).metadata.row_group(0).column(0).compression == "ZSTD"
    manifest = root / execution["Statistics"]["DataManifestLocation"].removeprefix("s3://")
    assert len(manifest.read_text().split()) == len(files) == 3


def test_unload_into_non_empty_location_fails(sales, root, run):
    (root / "data" / "out").mkdir(parents=True)
    (root / "data" / "out" / "old.parquet").write_bytes(b"x")
    execution = run("UNLOAD (SELECT id FROM sales) TO 's3://data/out/' WITH (format = 'PARQUET')")
    assert reason(execution).startswith("HIVE_PATH_ALREADY_EXISTS")
    assert [p.name for p in (root / "data" / "out").iterdir()] == ["old.parquet"]


def test_unload_json_text(sales, root, run):
    succeeded(
        run(
            "UNLOAD (SELECT id, region FROM sales WHERE id = 1) TO 's3://data/json/' "
            "WITH (format = 'JSON', compression = 'NONE')"
        )
    )
    (file,) = (root / "data" / "json").iterdir()
    assert file.read_text().strip() == '{"id":1,"region":"north"}'


# -- DDL -------------------------------------------------------------------------------------


def test_csv_table_ddl_msck_and_queries(glue, root, run, rows):
    for day, body in (("2024-01-01", "id,name\n1,a\n2,\\N\n"), ("2024-01-02", "id,name\n3,c\n")):
        folder = root / "data" / "people" / f"day={day}"
        folder.mkdir(parents=True)
        (folder / "part.csv").write_text(body)
    succeeded(run("CREATE DATABASE IF NOT EXISTS db"))
    succeeded(
        run(
            "CREATE EXTERNAL TABLE db.people (id int, name string) PARTITIONED BY (day string) "
            "ROW FORMAT DELIMITED FIELDS TERMINATED BY ',' LOCATION 's3://data/people/' "
            "TBLPROPERTIES ('skip.header.line.count'='1')"
        )
    )
    assert rows(succeeded(run("SELECT count(*) FROM people"))) == [["_col0"], ["0"]]
    repair = succeeded(run("MSCK REPAIR TABLE people"))
    assert any("day=2024-01-02" in r[0] for r in rows(repair))
    assert rows(succeeded(run("SHOW PARTITIONS people"))) == [
        ["day=2024-01-01"],
        ["day=2024-01-02"],
    ]
    query = succeeded(run("SELECT id, name, day FROM people ORDER BY id"))
    assert rows(query)[1:] == [
        ["1", "a", "2024-01-01"],
        ["2", None, "2024-01-01"],
        ["3", "c", "2024-01-02"],
    ]
    assert rows(succeeded(run("SHOW TABLES"))) == [["people"]]
    described = rows(succeeded(run("DESCRIBE people")))
    assert described[0][0].split() == ["id", "int"]
    assert "# Partition Information" in [r[0] for r in described]
    succeeded(run("ALTER TABLE people DROP PARTITION (day='2024-01-01')"))
    assert rows(succeeded(run("SELECT count(*) FROM people"))) == [["_col0"], ["1"]]
    succeeded(run("ALTER TABLE people ADD PARTITION (day='2024-01-01')"))
    assert rows(succeeded(run("SELECT count(*) FROM people"))) == [["_col0"], ["3"]]
    succeeded(run("DROP TABLE people"))
    assert glue.get_tables(DatabaseName="db")["TableList"] == []
    assert (root / "data" / "people" / "day=2024-01-01" / "part.csv").exists()  # data stays


def test_ddl_errors(sales, run):
    assert reason(run("DROP TABLE nope")).startswith("TABLE_NOT_FOUND")
    assert run("DROP TABLE IF EXISTS nope")["Status"]["State"] == "SUCCEEDED"
    assert reason(run("CREATE DATABASE db")).startswith("SCHEMA_ALREADY_EXISTS")
    assert reason(run("CREATE TABLE x (a int)")).startswith("NOT_SUPPORTED")
    assert reason(run("GRANT SELECT ON sales TO bob")).startswith("NOT_SUPPORTED")


# -- lifecycle -------------------------------------------------------------------------------


SLOW = (
    "SELECT count(*) FROM UNNEST(sequence(1, 3000)) AS a(x) CROSS JOIN UNNEST(sequence(1, 3000)) "
    "AS b(y) CROSS JOIN UNNEST(sequence(1, 3000)) AS c(z) WHERE x * y * z % 7 = 3"
)


def wait_for_state(athena, query_id, state, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if current["Status"]["State"] == state:
            return current
        time.sleep(0.01)
    raise AssertionError(f"{query_id} never reached {state}")


def test_stop_cancels_a_running_query(athena, root):
    query_id = athena.start_query_execution(
        QueryString=SLOW, ResultConfiguration={"OutputLocation": RESULTS}
    )["QueryExecutionId"]
    wait_for_state(athena, query_id, "RUNNING")
    athena.stop_query_execution(QueryExecutionId=query_id)
    execution = athena.wait(query_id)
    assert execution["Status"]["State"] == "CANCELLED"
    with pytest.raises(ClientError):
        athena.get_query_results(QueryExecutionId=query_id)
    athena.close()  # the worker has finished: nothing was published
    assert not (root / "results" / "athena" / f"{query_id}.csv").exists()
    assert athena.wait(query_id)["Status"]["State"] == "CANCELLED"


def test_two_queries_run_concurrently(sales, athena, rows):
    ids = [
        athena.start_query_execution(
            QueryString=f"SELECT {n} AS n, count(*) AS c FROM sales",
            QueryExecutionContext={"Database": "db"},
            ResultConfiguration={"OutputLocation": RESULTS},
        )["QueryExecutionId"]
        for n in (1, 2)
    ]
    results = [rows(succeeded(athena.wait(q))) for q in ids]
    assert results == [[["n", "c"], ["1", "5"]], [["n", "c"], ["2", "5"]]]


def test_client_request_token_is_idempotent(athena):
    token = "t" * 32
    request = {
        "QueryString": "SELECT 1 AS one",
        "ResultConfiguration": {"OutputLocation": RESULTS},
        "ClientRequestToken": token,
    }
    first = athena.start_query_execution(**request)["QueryExecutionId"]
    assert athena.start_query_execution(**request)["QueryExecutionId"] == first
    with pytest.raises(athena.exceptions.InvalidRequestException):
        athena.start_query_execution(**{**request, "QueryString": "SELECT 2 AS two"})


def test_result_reuse_returns_previous_result(sales, athena, run, rows):
    reuse = {"ResultReuseByAgeConfiguration": {"Enabled": True, "MaxAgeInMinutes": 60}}
    first = succeeded(run("SELECT count(*) FROM sales", ResultReuseConfiguration=reuse))
    second = succeeded(run("SELECT count(*) FROM sales", ResultReuseConfiguration=reuse))
    assert second["QueryExecutionId"] != first["QueryExecutionId"]
    assert second["Statistics"]["ResultReuseInformation"]["ReusedPreviousResult"] is True
    assert second["ResultConfiguration"] == first["ResultConfiguration"]
    assert rows(second) == rows(first)


def test_list_and_batch_get(athena, run, root):
    ids = [run(f"SELECT {n} AS n", QueryExecutionContext={})["QueryExecutionId"] for n in range(3)]
    listed = athena.list_query_executions(MaxResults=2)
    assert listed["QueryExecutionIds"] == ids[::-1][:2]
    rest = athena.list_query_executions(MaxResults=2, NextToken=listed["NextToken"])
    assert rest["QueryExecutionIds"] == [ids[0]]
    batch = athena.batch_get_query_execution(QueryExecutionIds=[ids[0], "missing"])
    assert [q["QueryExecutionId"] for q in batch["QueryExecutions"]] == [ids[0]]
    assert batch["UnprocessedQueryExecutionIds"][0]["QueryExecutionId"] == "missing"
    other = LocalAthenaClient(root, region="us-east-1")  # state is shared through the root
    assert (
        other.get_query_execution(QueryExecutionId=ids[0])["QueryExecution"]["Query"]
        == "SELECT 0 AS n"
    )
    other.close()


@mock_aws
def test_execution_shape_matches_moto(athena):
    """The QueryExecution keys clients read are those boto3 on moto returns."""
    remote = boto3.client("athena", region_name="us-east-1")
    shapes = []
    for client in (remote, athena):
        query_id = client.start_query_execution(
            QueryString="SELECT 1", ResultConfiguration={"OutputLocation": RESULTS}
        )["QueryExecutionId"]
        if client is athena:
            athena.wait(query_id)
        execution = client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        shapes.append(
            (
                {"QueryExecutionId", "Query", "ResultConfiguration", "Status"} <= set(execution),
                {"State", "SubmissionDateTime"} <= set(execution["Status"]),
                execution["Status"]["State"],
                type(execution["Status"]["SubmissionDateTime"]).__name__,
            )
        )
    assert shapes[0] == shapes[1]
