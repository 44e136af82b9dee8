"""AthenaQueryDataset on the AWS path: boto3 clients, moto for S3 and Glue, a stubbed Athena.

moto records Athena queries but does not run SQL, so Athena's answers are stubbed with
botocore's Stubber (which also checks every request the dataset sends) while the data files
and the clean-up go through moto's S3.
"""

from __future__ import annotations

import io
import uuid

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.stub import ANY, Stubber
from kedro.io import DatasetError
from moto import mock_aws

from kedro_aws.datasets import AthenaQueryDataset
from kedro_aws.datasets import athena_query_dataset as module

TOKEN = uuid.UUID("00000000-0000-0000-0000-0000000000ab")
RESULTS = "s3://results/athena/"
PREFIX = f"athena/kedro-aws-tmp/{TOKEN.hex}/"


@pytest.fixture
def aws(monkeypatch):
    """moto S3 with the results bucket, a stubbed Athena client, and a fixed temporary token."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="results")
        athena = boto3.client("athena", region_name="us-east-1")
        stubber = Stubber(athena)
        clients = {
            "s3": s3,
            "athena": athena,
            "glue": boto3.client("glue", region_name="us-east-1"),
        }
        monkeypatch.setattr(module, "client", lambda service, **_: clients[service])
        monkeypatch.setattr(module.uuid, "uuid4", lambda: TOKEN)
        with stubber:
            yield s3, stubber


def execution(query_id, state, *, scanned=0, reason=None, manifest=None):
    status = {"State": state}
    if reason:
        status["StateChangeReason"] = reason
    statistics = {"DataScannedInBytes": scanned, "EngineExecutionTimeInMillis": 5}
    if manifest:
        statistics["DataManifestLocation"] = manifest
    return {
        "QueryExecution": {
            "QueryExecutionId": query_id,
            "Status": status,
            "Statistics": statistics,
            "StatementType": "DML",
            "ResultConfiguration": {"OutputLocation": f"{RESULTS}{query_id}"},
        }
    }


def put_parquet(s3, key, table):
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    s3.put_object(Bucket="results", Key=key, Body=buffer.getvalue())


def test_unload_requests_polling_reading_and_cleanup(aws):
    s3, stubber = aws
    qid = "11111111-2222-3333-4444-555555555555"
    files = [f"{PREFIX}day=2024-01-01/a.parquet", f"{PREFIX}day=2024-01-02/b.parquet"]
    put_parquet(s3, files[0], pa.table({"id": [1, 2]}))
    put_parquet(s3, files[1], pa.table({"id": [3]}))
    put_parquet(s3, f"{PREFIX}day=2024-01-02/stray.parquet", pa.table({"id": [99]}))  # not listed
    manifest = f"athena/{qid}-manifest.csv"
    s3.put_object(
        Bucket="results", Key=manifest, Body="\n".join(f"s3://results/{f}" for f in files).encode()
    )
    s3.put_object(Bucket="results", Key=f"athena/{qid}.metadata", Body=b"meta")

    stubber.add_response(
        "start_query_execution",
        {"QueryExecutionId": qid},
        {
            "QueryString": ANY,
            "QueryExecutionContext": {"Database": "eth"},
            "ResultConfiguration": {"OutputLocation": RESULTS},
            "WorkGroup": "analytics",
            "ExecutionParameters": ["'2024-01-01'"],
        },
    )
    stubber.add_response("get_query_execution", execution(qid, "QUEUED"), {"QueryExecutionId": qid})
    stubber.add_response(
        "get_query_execution", execution(qid, "RUNNING", scanned=10), {"QueryExecutionId": qid}
    )
    stubber.add_response(
        "get_query_execution",
        execution(qid, "SUCCEEDED", scanned=2048, manifest=f"s3://results/{manifest}"),
        {"QueryExecutionId": qid},
    )
    dataset = AthenaQueryDataset(
        query="SELECT id, day FROM transactions WHERE day >= ?",
        params=["2024-01-01"],
        database="eth",
        workgroup="analytics",
        output_location=RESULTS,
        partition_cols=["day"],
        poll_interval=0.001,
    )
    df = dataset.load()
    stubber.assert_no_pending_responses()
    assert sorted(zip(df["id"], df["day"], strict=True)) == [
        (1, "2024-01-01"),
        (2, "2024-01-01"),
        (3, "2024-01-02"),
    ]
    assert 99 not in df["id"].tolist()  # only the manifest's files are read
    assert s3.list_objects_v2(Bucket="results").get("KeyCount", 0) == 0  # everything cleaned up


def test_the_unload_statement_sent_to_athena(aws, monkeypatch):
    s3, stubber = aws
    qid = "22222222-2222-3333-4444-555555555555"
    sent = []
    original = module.start_query

    def spy(athena, sql, **kwargs):
        sent.append(sql)
        return original(athena, sql, **kwargs)

    monkeypatch.setattr(module, "start_query", spy)
    s3.put_object(Bucket="results", Key=f"athena/{qid}-manifest.csv", Body=b"")
    stubber.add_response("start_query_execution", {"QueryExecutionId": qid}, None)
    stubber.add_response(
        "get_query_execution",
        execution(qid, "SUCCEEDED", manifest=f"s3://results/athena/{qid}-manifest.csv"),
        {"QueryExecutionId": qid},
    )
    schema_qid = "33333333-2222-3333-4444-555555555555"  # empty result: schema from LIMIT 0
    stubber.add_response("start_query_execution", {"QueryExecutionId": schema_qid}, None)
    stubber.add_response(
        "get_query_execution", execution(schema_qid, "SUCCEEDED"), {"QueryExecutionId": schema_qid}
    )
    stubber.add_response(
        "get_query_results",
        {
            "ResultSet": {
                "Rows": [],
                "ResultSetMetadata": {
                    "ColumnInfo": [
                        {"Name": "id", "Type": "bigint"},
                        {"Name": "__kedro_aws_order", "Type": "bigint"},
                        {"Name": "day", "Type": "varchar"},
                    ]
                },
            }
        },
        {"QueryExecutionId": schema_qid, "MaxResults": 1},
    )
    s3.put_object(
        Bucket="results", Key=f"athena/{schema_qid}.csv", Body=b'"id","__kedro_aws_order","day"\n'
    )
    df = AthenaQueryDataset(
        query="SELECT day, id FROM t ORDER BY id",
        database="eth",
        output_location=RESULTS,
        partition_cols=["day"],
        poll_interval=0.001,
    ).load()
    assert df.empty and list(df.columns) == ["id", "day"]
    unload = sent[0]
    assert unload.startswith("UNLOAD (SELECT ")
    assert f"TO 's3://results/{PREFIX}'" in unload
    assert "format = 'PARQUET'" in unload and "partitioned_by = ARRAY['day']" in unload
    assert '"__kedro_aws_order"' in unload  # ORDER BY kept through the multi-file write
    assert sent[1].endswith("LIMIT 0")


def test_failed_query_maps_to_a_dataset_error_and_still_cleans_up(aws):
    s3, stubber = aws
    qid = "44444444-2222-3333-4444-555555555555"
    put_parquet(s3, f"{PREFIX}partial.parquet", pa.table({"id": [1]}))  # left by the failure
    stubber.add_response("start_query_execution", {"QueryExecutionId": qid}, None)
    stubber.add_response(
        "get_query_execution",
        execution(
            qid, "FAILED", reason="COLUMN_NOT_FOUND: line 1:8: Column 'x' cannot be resolved"
        ),
        {"QueryExecutionId": qid},
    )
    with pytest.raises(DatasetError) as error:
        AthenaQueryDataset(
            query="SELECT x AS y FROM t", output_location=RESULTS, poll_interval=0.001
        ).load()
    message = str(error.value)
    assert (
        qid in message
        and "COLUMN_NOT_FOUND" in message
        and "Column 'x' cannot be resolved" in message
    )
    assert s3.list_objects_v2(Bucket="results").get("KeyCount", 0) == 0


def test_scan_guard_stops_a_running_query(aws):
    s3, stubber = aws
    qid = "55555555-2222-3333-4444-555555555555"
    stubber.add_response("start_query_execution", {"QueryExecutionId": qid}, None)
    stubber.add_response(
        "get_query_execution",
        execution(qid, "RUNNING", scanned=5_000_000),
        {"QueryExecutionId": qid},
    )
    stubber.add_response("stop_query_execution", {}, {"QueryExecutionId": qid})
    with pytest.raises(
        DatasetError,
        match="scanned 5,000,000 bytes, over max_bytes_scanned=1,000,000; it was stopped",
    ):
        AthenaQueryDataset(
            query="SELECT 1 AS one",
            output_location=RESULTS,
            max_bytes_scanned=1_000_000,
            poll_interval=0.001,
        ).load()
    stubber.assert_no_pending_responses()


def test_timeout_stops_the_query(aws):
    s3, stubber = aws
    qid = "66666666-2222-3333-4444-555555555555"
    stubber.add_response("start_query_execution", {"QueryExecutionId": qid}, None)
    stubber.add_response(
        "get_query_execution", execution(qid, "RUNNING"), {"QueryExecutionId": qid}
    )
    stubber.add_response("stop_query_execution", {}, {"QueryExecutionId": qid})
    with pytest.raises(DatasetError, match=f"{qid} did not finish within 0 s"):
        AthenaQueryDataset(
            query="SELECT 1 AS one", output_location=RESULTS, timeout=0, poll_interval=0.001
        ).load()
    stubber.assert_no_pending_responses()
