"""Read what an Athena query produced: CSV results (SELECT) or Parquet listed in a manifest
(UNLOAD/CTAS), with Athena's column types, into Arrow.

Only the files a manifest lists are read, so stray objects under the output prefix never leak
into the result, and an empty result keeps its schema (from the query's ``ColumnInfo``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

# Athena type names (ColumnInfo.Type) → Arrow. Complex types arrive as text in CSV results.
_ARROW_TYPES: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "tinyint": pa.int8(),
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "float": pa.float32(),
    "real": pa.float32(),
    "double": pa.float64(),
    "varchar": pa.string(),
    "char": pa.string(),
    "string": pa.string(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("ms"),
    "varbinary": pa.string(),
    "json": pa.string(),
}


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` → ``("bucket", "key")``."""
    if not uri.startswith("s3://"):
        raise ValueError(f"Not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def arrow_type(column: Mapping[str, Any]) -> pa.DataType:
    """Arrow type of one ``ColumnInfo`` entry (unknown and complex types as strings)."""
    name = str(column.get("Type", "varchar")).lower()
    if name == "decimal":
        return pa.decimal128(int(column.get("Precision") or 38), int(column.get("Scale") or 0))
    return _ARROW_TYPES.get(name.split("(")[0], pa.string())


def schema_from_column_info(column_info: Sequence[Mapping[str, Any]]) -> pa.Schema:
    return pa.schema([(c["Name"], arrow_type(c)) for c in column_info])


def read_csv_result(s3: Any, uri: str, column_info: Sequence[Mapping[str, Any]]) -> pa.Table:
    """A SELECT's ``<QueryExecutionId>.csv``, typed by ``ColumnInfo``.

    Athena quotes every non-NULL value and writes NULL as an empty unquoted field, so only
    unquoted empty fields become nulls (a quoted ``""`` stays an empty string).
    """
    schema = schema_from_column_info(column_info)
    bucket, key = split_s3_uri(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if not body.strip():
        return schema.empty_table()
    timestamp_columns = {f.name for f in schema if pa.types.is_timestamp(f.type)}
    convert = pacsv.ConvertOptions(
        column_types={
            f.name: (pa.string() if f.name in timestamp_columns else f.type) for f in schema
        },
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["true"],
        false_values=["false"],
    )
    table = pacsv.read_csv(
        io.BytesIO(body),
        read_options=pacsv.ReadOptions(column_names=schema.names, skip_rows=1),
        convert_options=convert,
    )
    for name in timestamp_columns:  # "2024-01-02 03:04:05.000"
        index = table.schema.get_field_index(name)
        parsed = table.column(name).cast(pa.timestamp("ms"))
        table = table.set_column(index, name, parsed)
    return table


def read_manifest(s3: Any, manifest_uri: str) -> list[str]:
    """The data files a CTAS/UNLOAD wrote, as listed in its ``-manifest.csv``."""
    bucket, key = split_s3_uri(manifest_uri)
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def hive_partition_values(uri: str, root: str) -> dict[str, str | None]:
    """``{col: value}`` from the ``col=value/`` directories between ``root`` and the file."""
    relative = uri[len(root) :].lstrip("/") if uri.startswith(root) else uri
    values: dict[str, str | None] = {}
    for part in relative.split("/")[:-1]:
        if "=" in part:
            name, _, value = part.partition("=")
            values[unquote(name)] = (
                None if value == "__HIVE_DEFAULT_PARTITION__" else unquote(value)
            )
    return values


def read_parquet_files(
    s3: Any,
    uris: Iterable[str],
    root: str,
    partition_types: Mapping[str, pa.DataType] | None = None,
) -> list[pa.Table]:
    """Each listed Parquet file as a table, with its Hive partition columns appended."""
    uris = list(uris)
    values = [hive_partition_values(uri, root) for uri in uris]
    kinds = dict(partition_types or {})
    for name in {n for v in values for n in v} - set(kinds):
        kinds[name] = infer_partition_type([v.get(name) for v in values])
    tables = []
    for uri, partition in zip(uris, values, strict=True):
        bucket, key = split_s3_uri(uri)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        table = pq.read_table(io.BytesIO(body))
        for name, value in partition.items():
            column = pa.array([value] * table.num_rows, type=pa.string())
            table = table.append_column(name, column.cast(kinds[name]))
        tables.append(table)
    return tables


def infer_partition_type(values: Sequence[str | None]) -> pa.DataType:
    """``int64`` when every value is an integer (as Hive partition discovery does), else string.

    Example:
    >>> infer_partition_type(["2024", "12"]), infer_partition_type(["2024-01-01"])
    (DataType(int64), DataType(string))
    """
    present = [v for v in values if v is not None]
    if present and all(v.lstrip("-").isdigit() for v in present):
        return pa.int64()
    return pa.string()


def concat(tables: Sequence[pa.Table], schema: pa.Schema | None = None) -> pa.Table:
    """One table from many files (the empty result keeps ``schema``)."""
    if not tables:
        if schema is None:
            raise ValueError("No data files and no schema to build an empty result from.")
        return schema.empty_table()
    return pa.concat_tables(tables, promote_options="default")
