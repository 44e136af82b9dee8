"""Local Glue catalog: boto3 shapes, Glue error codes, persistence, partition filters."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from kedro_aws.local.glue import LocalGlueClient

TABLE_INPUT = {
    "Name": "orders",
    "StorageDescriptor": {
        "Columns": [{"Name": "ID", "Type": "bigint"}, {"Name": "amount", "Type": "double"}],
        "Location": "s3://data/orders/",
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "SerdeInfo": {
            "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        },
    },
    "PartitionKeys": [{"Name": "dt", "Type": "string"}, {"Name": "hour", "Type": "int"}],
    "Parameters": {"classification": "parquet"},
}


@pytest.fixture
def glue(tmp_path):
    client = LocalGlueClient(tmp_path, region="eu-west-1")
    client.create_database(DatabaseInput={"Name": "Sales", "Description": "demo"})
    client.create_table(DatabaseName="sales", TableInput=TABLE_INPUT)
    client.create_table(DatabaseName="sales", TableInput={**TABLE_INPUT, "Name": "Upper"})
    return client


def partition(dt_value: str, hour: str) -> dict:
    return {
        "Values": [dt_value, hour],
        "StorageDescriptor": {"Location": f"s3://data/orders/dt={dt_value}/hour={hour}/"},
    }


def test_names_are_lower_cased_and_times_tz_aware(glue):
    assert glue.get_table(DatabaseName="sales", Name="UPPER")["Table"]["Name"] == "upper"
    table = glue.get_table(DatabaseName="SALES", Name="orders")["Table"]
    assert table["Name"] == "orders"
    assert table["DatabaseName"] == "sales"
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id", "amount"]
    assert table["CreateTime"].tzinfo is not None
    assert glue.get_database(Name="sales")["Database"]["Description"] == "demo"


def test_state_persists_across_clients(glue, tmp_path):
    other = LocalGlueClient(tmp_path, region="eu-west-1")
    assert other.get_table(DatabaseName="sales", Name="orders")["Table"]["Parameters"] == {
        "classification": "parquet"
    }
    assert (tmp_path / ".kedro-aws" / "glue.sqlite").exists()


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda g: g.get_database(Name="nope"), "EntityNotFoundException"),
        (lambda g: g.get_table(DatabaseName="sales", Name="nope"), "EntityNotFoundException"),
        (lambda g: g.get_table(DatabaseName="nope", Name="orders"), "EntityNotFoundException"),
        (lambda g: g.create_database(DatabaseInput={"Name": "sales"}), "AlreadyExistsException"),
        (
            lambda g: g.create_table(DatabaseName="sales", TableInput=TABLE_INPUT),
            "AlreadyExistsException",
        ),
        (
            lambda g: g.create_table(
                DatabaseName="sales",
                TableInput={
                    "Name": "dup",
                    "StorageDescriptor": {"Columns": [{"Name": "a", "Type": "int"}]},
                    "PartitionKeys": [{"Name": "A", "Type": "int"}],
                },
            ),
            "InvalidInputException",
        ),
        (lambda g: g.get_tables(DatabaseName="sales", NextToken="%%%"), "InvalidInputException"),
    ],
)
def test_errors_carry_glue_codes(glue, call, code):
    with pytest.raises(ClientError) as info:
        call(glue)
    assert info.value.response["Error"]["Code"] == code
    assert isinstance(info.value, getattr(glue.exceptions, code))


def test_update_table_bumps_version_and_keeps_partitions(glue):
    glue.batch_create_partition(
        DatabaseName="sales", TableName="orders", PartitionInputList=[partition("2024-01-01", "1")]
    )
    glue.update_table(DatabaseName="sales", TableInput={**TABLE_INPUT, "Parameters": {"k": "v"}})
    table = glue.get_table(DatabaseName="sales", Name="orders")["Table"]
    assert table["Parameters"] == {"k": "v"}
    assert table["VersionId"] == "1"
    assert len(glue.get_partitions(DatabaseName="sales", TableName="orders")["Partitions"]) == 1


def test_get_tables_filters_and_paginates(glue):
    for name in ("orders_2", "refunds"):
        glue.create_table(DatabaseName="sales", TableInput={**TABLE_INPUT, "Name": name})
    assert [
        t["Name"] for t in glue.get_tables(DatabaseName="sales", Expression="orders*")["TableList"]
    ] == ["orders", "orders_2"]
    pages = glue.get_paginator("get_tables").paginate(
        DatabaseName="sales", PaginationConfig={"PageSize": 3}
    )
    assert [[t["Name"] for t in p["TableList"]] for p in pages] == [
        ["orders", "orders_2", "refunds"],
        ["upper"],
    ]


def test_batch_create_partition_reports_existing_in_errors(glue):
    first = glue.batch_create_partition(
        DatabaseName="sales", TableName="orders", PartitionInputList=[partition("2024-01-01", "1")]
    )
    assert "Errors" not in first
    again = glue.batch_create_partition(
        DatabaseName="sales",
        TableName="orders",
        PartitionInputList=[partition("2024-01-01", "1"), {"Values": ["only-one"]}],
    )
    assert [e["ErrorDetail"]["ErrorCode"] for e in again["Errors"]] == [
        "AlreadyExistsException",
        "InvalidInputException",
    ]
    got = glue.get_partition(
        DatabaseName="sales", TableName="orders", PartitionValues=["2024-01-01", "1"]
    )["Partition"]
    assert got["StorageDescriptor"]["Location"].endswith("dt=2024-01-01/hour=1/")
    assert isinstance(got["CreationTime"], dt.datetime)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("dt = '2024-01-02'", [["2024-01-02", "2"], ["2024-01-02", "10"]]),
        ("hour > 2", [["2024-01-02", "10"]]),  # numeric, not text, comparison for int keys
        ("dt >= '2024-01-02' AND hour IN (2, 3)", [["2024-01-02", "2"]]),
        (
            "dt BETWEEN '2024-01-01' AND '2024-01-01' OR hour = 10",
            [["2024-01-01", "1"], ["2024-01-02", "10"]],
        ),
        ("dt LIKE '2024-01-0%' AND NOT hour = 1", [["2024-01-02", "10"], ["2024-01-02", "2"]]),
    ],
)
def test_get_partitions_expression(glue, expression, expected):
    glue.batch_create_partition(
        DatabaseName="sales",
        TableName="orders",
        PartitionInputList=[
            partition("2024-01-01", "1"),
            partition("2024-01-02", "2"),
            partition("2024-01-02", "10"),
        ],
    )
    found = glue.get_partitions(DatabaseName="sales", TableName="orders", Expression=expression)
    assert sorted(p["Values"] for p in found["Partitions"]) == sorted(expected)


def test_partition_expression_with_unknown_key_is_invalid_input(glue):
    glue.batch_create_partition(
        DatabaseName="sales", TableName="orders", PartitionInputList=[partition("d", "1")]
    )
    with pytest.raises(ClientError) as info:
        glue.get_partitions(DatabaseName="sales", TableName="orders", Expression="nope = 1")
    assert info.value.response["Error"]["Code"] == "InvalidInputException"
    assert "nope" in info.value.response["Error"]["Message"]


def test_delete_database_removes_tables(glue):
    glue.delete_database(Name="sales")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_tables(DatabaseName="sales")
    glue.create_database(DatabaseInput={"Name": "sales"})
    assert glue.get_tables(DatabaseName="sales")["TableList"] == []


@mock_aws
def test_response_shapes_match_moto(tmp_path):
    """The keys a caller sees are those boto3 on moto returns for the same calls."""
    remote = boto3.client("glue", region_name="eu-west-1")
    local = LocalGlueClient(tmp_path, region="eu-west-1")
    shapes = []
    for client in (remote, local):
        client.create_database(DatabaseInput={"Name": "sales"})
        client.create_table(DatabaseName="sales", TableInput=TABLE_INPUT)
        client.batch_create_partition(
            DatabaseName="sales", TableName="orders", PartitionInputList=[partition("d", "1")]
        )
        table = client.get_table(DatabaseName="sales", Name="orders")["Table"]
        part = client.get_partitions(DatabaseName="sales", TableName="orders")["Partitions"][0]
        shapes.append(
            (
                table["Name"],
                sorted(table["StorageDescriptor"]),
                table["PartitionKeys"],
                part["Values"],
                # moto leaves out CatalogId, which Glue returns.
                sorted(k for k in part if k not in ("LastAccessTime", "CatalogId")),
            )
        )
        with pytest.raises(ClientError) as info:
            client.get_table(DatabaseName="sales", Name="missing")
        shapes.append(info.value.response["Error"]["Code"])
    assert shapes[0] == shapes[2]
    assert shapes[1] == shapes[3]
