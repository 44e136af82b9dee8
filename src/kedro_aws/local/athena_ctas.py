"""Writers of CTAS and UNLOAD: a query's rows as Hive-partitioned files under an S3 prefix.

Both statements write what a SELECT returns as data files (Parquet by default), one folder per
partition (``year=2024/month=1/``), with Athena's checks before a single byte lands::

    >>> output = write_query_output(conn, duck_sql, spec, tmp_dir=..., destination=..., ...)  # doctest: +SKIP
    >>> output.files, output.partitions, output.row_count  # doctest: +SKIP

Athena rules kept (sources cited where each is enforced): partition columns come last in the
SELECT, in the order of ``partitioned_by``; at most 100 partitions (times buckets) are written;
the destination must be empty; CTAS needs every column named and typed. Files are written by
DuckDB's ``COPY`` into a private temporary folder and moved into place only when every check
passed, so a failed or cancelled query leaves nothing behind (Athena itself may leave orphaned
files; the local engine is stricter).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from kedro_aws.local.athena_sql_errors import AthenaQueryError
from kedro_aws.local.athena_sql_types import split_top_level, trino_type_name
from kedro_aws.local.athena_tables import data_files

# "Athena supports writing to 100 unique partition and bucket combinations" (Athena user guide,
# "Considerations and limitations for CTAS queries"; UNLOAD: "The maximum number of partitions
# that can be used with UNLOAD is 100").
MAX_OPEN_WRITERS = 100

# "GZIP is the default write compression format for files in the Parquet and text file storage
# formats" (Athena user guide, "Athena compression support"); CTAS stores Parquet when no
# format is given ("Considerations and limitations for CTAS queries").
DEFAULT_FORMAT = "PARQUET"
DEFAULT_COMPRESSION = "GZIP"
_PARQUET_CODECS = {
    "GZIP": "gzip",
    "SNAPPY": "snappy",
    "ZSTD": "zstd",
    "LZ4": "lz4",
    "NONE": "uncompressed",
    "UNCOMPRESSED": "uncompressed",
}
_TEXT_CODECS = {"GZIP": "gzip", "ZSTD": "zstd", "NONE": "none", "UNCOMPRESSED": "none"}
# CTAS TEXTFILE default delimiter is Hive's \001 (Athena user guide, CTAS table properties,
# "field_delimiter").
_DEFAULT_TEXT_DELIMITER = "\x01"
_BUCKET_COLUMN = "__kedro_aws_bucket"

# Hive SerDe descriptors of what the writer produces, for the Glue table CTAS registers.
HIVE_STORAGE = {
    "PARQUET": {
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerdeInfo": {
            "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            "Parameters": {"serialization.format": "1"},
        },
    },
    "JSON": {
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hive.hcatalog.data.JsonSerDe"},
    },
    "TEXTFILE": {
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"},
    },
}


@dataclass(frozen=True)
class OutputSpec:
    """What a CTAS/UNLOAD asked for, read from its ``WITH (…)`` properties."""

    kind: str  # "CREATE_TABLE_AS" or "UNLOAD"
    format: str = DEFAULT_FORMAT
    compression: str = DEFAULT_COMPRESSION
    partitioned_by: tuple[str, ...] = ()
    bucketed_by: tuple[str, ...] = ()
    bucket_count: int = 0
    field_delimiter: str = _DEFAULT_TEXT_DELIMITER

    @classmethod
    def from_properties(cls, kind: str, properties: dict[str, Any]) -> OutputSpec:
        """Validate the ``WITH`` properties of a CTAS (``kind="CREATE_TABLE_AS"``) or UNLOAD."""
        props = {k.lower(): v for k, v in properties.items()}
        fmt = str(props.get("format", DEFAULT_FORMAT)).upper()
        if fmt not in HIVE_STORAGE:
            raise AthenaQueryError(
                "NOT_SUPPORTED",
                f"format '{fmt}' is not supported by the local Athena engine "
                f"(supported: {', '.join(HIVE_STORAGE)})",
            )
        # CTAS calls it write_compression (parquet_compression is its older name), UNLOAD
        # compression (Athena user guide, "CTAS table properties" and "UNLOAD").
        key = "compression" if kind == "UNLOAD" else "write_compression"
        raw = props.get(key, props.get("parquet_compression", DEFAULT_COMPRESSION))
        compression = str(raw).upper()
        codecs = _PARQUET_CODECS if fmt == "PARQUET" else _TEXT_CODECS
        if compression not in codecs:
            raise AthenaQueryError(
                "INVALID_TABLE_PROPERTY",
                f"Compression '{compression}' is not supported for {fmt} "
                f"(supported: {', '.join(codecs)})",
            )
        partitioned_by = tuple(_names(props.get("partitioned_by")))
        bucketed_by = tuple(_names(props.get("bucketed_by")))
        bucket_count = int(props.get("bucket_count") or 0)
        if bool(bucketed_by) != bool(bucket_count):
            raise AthenaQueryError(
                "INVALID_TABLE_PROPERTY",
                "bucketed_by and bucket_count must be specified together",
            )
        return cls(
            kind=kind,
            format=fmt,
            compression=compression,
            partitioned_by=partitioned_by,
            bucketed_by=bucketed_by,
            bucket_count=bucket_count,
            field_delimiter=str(props.get("field_delimiter", _DEFAULT_TEXT_DELIMITER)),
        )


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [str(v).strip().lower() for v in items]


@dataclass
class WrittenOutput:
    """Files a CTAS/UNLOAD wrote (final paths), its partitions and its columns."""

    files: list[Path] = field(default_factory=list)
    partitions: list[tuple[str, ...]] = field(default_factory=list)
    row_count: int = 0
    columns: list[tuple[str, str]] = field(default_factory=list)  # (name, Trino type)


def output_columns(conn: duckdb.DuckDBPyConnection, duck_sql: str) -> list[tuple[str, str]]:
    """Names and Trino types of a query's columns, without running it."""
    relation = conn.sql(duck_sql)
    return [
        (name, trino_type_name(str(dtype)))
        for name, dtype in zip(relation.columns, relation.types, strict=True)
    ]


def check_columns(columns: list[tuple[str, str]], spec: OutputSpec) -> None:
    """Athena's checks on what a CTAS/UNLOAD may write; raises :class:`AthenaQueryError`."""
    names = [name.lower() for name, _ in columns]
    if spec.kind == "CREATE_TABLE_AS":
        for position, name in enumerate(names):
            # Trino names unnamed expressions _col<N>; CTAS refuses them (awswrangler matches on
            # "Column name not specified", aws-sdk-pandas#3118).
            if name == f"_col{position}":
                raise AthenaQueryError(
                    "MISSING_COLUMN_NAME",
                    f"line 1:1: Column name not specified at position {position + 1}",
                )
    for name in names:
        if names.count(name) > 1:
            raise AthenaQueryError(
                "DUPLICATE_COLUMN_NAME", f"line 1:1: Column name '{name}' specified more than once"
            )
    for name, trino_type in columns:
        if trino_type == "unknown":
            raise AthenaQueryError("COLUMN_TYPE_UNKNOWN", f"Column type is unknown: {name}")
        if "with time zone" in trino_type:
            # CTAS cannot store timestamp with time zone (aws-sdk-pandas#86).
            raise AthenaQueryError("NOT_SUPPORTED", f"Unsupported Hive type: {trino_type}")
    partitions = list(spec.partitioned_by)
    if partitions:
        missing = [p for p in partitions if p not in names]
        if missing or names[-len(partitions) :] != partitions or len(partitions) == len(names):
            # "specify the names of partitioned columns last in the list of columns in the SELECT
            # statement" (Athena user guide, CREATE TABLE AS); Trino's Hive connector message.
            raise AthenaQueryError(
                "HIVE_COLUMN_ORDER_MISMATCH",
                "Partition keys must be the last columns in the table and in the same order as "
                f"the table properties: {partitions}",
            )
    for column in spec.bucketed_by:
        if column not in names or column in partitions:
            raise AthenaQueryError(
                "INVALID_TABLE_PROPERTY",
                f"Bucketing column '{column}' not present in the data columns {names}",
            )


def ensure_empty(directory: Path, uri: str, table: str | None) -> None:
    """``HIVE_PATH_ALREADY_EXISTS`` unless ``directory`` holds no data files.

    "The external_location property must specify a location that is empty" (CTAS); "the TO
    destination must specify a location in Amazon S3 that has no data" (UNLOAD) — Athena user
    guide, "Considerations and limitations for CTAS queries" and "UNLOAD".
    """
    if next(data_files(directory), None) is not None:
        owner = f" for table '{table}'" if table else ""
        raise AthenaQueryError(
            "HIVE_PATH_ALREADY_EXISTS", f"Target directory{owner} already exists: {uri}"
        )


@dataclass
class StagedOutput:
    """Files written to a private folder, moved under the destination by :meth:`commit`."""

    spec: OutputSpec
    tmp_dir: Path
    destination: Path
    destination_uri: str
    table: str | None
    row_count: int
    columns: list[tuple[str, str]]
    placed: list[tuple[Path, Path, int | None]]  # (staged file, partition folder, bucket)

    @property
    def partition_dirs(self) -> list[Path]:
        return sorted({folder for _, folder, _ in self.placed})

    def check_destination(self) -> None:
        """``HIVE_PATH_ALREADY_EXISTS`` if the write would land on existing data."""
        if self.spec.partitioned_by:
            # A partitioned write may add partitions beside existing data, never into them.
            for folder in self.partition_dirs:
                uri = f"{self.destination_uri.rstrip('/')}/{folder.as_posix()}"
                ensure_empty(self.destination / folder, uri, self.table)
        else:
            ensure_empty(self.destination, self.destination_uri, self.table)

    def commit(self) -> WrittenOutput:
        """Check the destination again and move the files into place."""
        try:
            self.check_destination()
            final = []
            for path, folder, bucket in self.placed:
                name = path.name if bucket is None else f"bucket-{bucket:05d}_{path.name}"
                target = self.destination / folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(path, target)
                final.append(target)
        finally:
            self.discard()
        partitions = (
            [_partition_values(folder) for folder in self.partition_dirs]
            if self.spec.partitioned_by
            else []
        )
        return WrittenOutput(final, partitions, self.row_count, self.columns)

    def discard(self) -> None:
        """Delete whatever is still staged."""
        shutil.rmtree(self.tmp_dir, ignore_errors=True)


def stage_query_output(
    conn: duckdb.DuckDBPyConnection,
    duck_sql: str,
    spec: OutputSpec,
    *,
    columns: list[tuple[str, str]],
    tmp_dir: Path,
    destination: Path,
    destination_uri: str,
    file_prefix: str,
    table: str | None = None,
) -> StagedOutput:
    """Run ``duck_sql`` and write its rows into ``tmp_dir``, checking Athena's write limits.

    Args:
        conn: The query's DuckDB connection (interruptible by ``stop_query_execution``).
        duck_sql: The SELECT, translated to DuckDB.
        spec: Format, compression, partitioning and bucketing.
        columns: :func:`output_columns` of ``duck_sql``, already checked.
        tmp_dir: Private staging folder (deleted by ``commit``/``discard``).
        destination: Local folder of the target S3 prefix.
        destination_uri: The same as ``s3://…``, for error messages.
        file_prefix: Start of every data file name (Athena uses the query id).
        table: The CTAS table name, for error messages.
    """
    tmp_dir.mkdir(parents=True, exist_ok=True)
    try:
        row_count = _copy(conn, duck_sql, spec, tmp_dir, file_prefix)
        placed = [
            (path, _partition_dir(path, tmp_dir), _bucket_of(path)) for path in data_files(tmp_dir)
        ]
        if len({(folder, bucket) for _, folder, bucket in placed}) > MAX_OPEN_WRITERS:
            raise AthenaQueryError(
                "HIVE_TOO_MANY_OPEN_PARTITIONS",
                f"Exceeded limit of {MAX_OPEN_WRITERS} open writers for partitions/buckets",
            )
        staged = StagedOutput(
            spec, tmp_dir, destination, destination_uri, table, row_count, columns, placed
        )
        staged.check_destination()
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return staged


def _copy(
    conn: duckdb.DuckDBPyConnection,
    duck_sql: str,
    spec: OutputSpec,
    tmp_dir: Path,
    file_prefix: str,
) -> int:
    """DuckDB ``COPY`` of the query into ``tmp_dir``; returns the number of rows written."""
    select = f"SELECT * FROM ({duck_sql})"
    partition_by = list(spec.partitioned_by)
    if spec.bucketed_by:
        # Bucket = hash of the bucketing columns modulo bucket_count. DuckDB's hash is not Hive's
        # bucketing hash: rows are grouped the same way, but into differently numbered files.
        keys = ", ".join(_quote(c) for c in spec.bucketed_by)
        select = (
            f"SELECT *, CAST(hash({keys}) % {spec.bucket_count} AS BIGINT) "
            f"AS {_BUCKET_COLUMN} FROM ({duck_sql})"
        )
        partition_by.append(_BUCKET_COLUMN)
    options = [
        f"FORMAT {'PARQUET' if spec.format == 'PARQUET' else spec.format.replace('TEXTFILE', 'CSV')}"
    ]
    if spec.format == "PARQUET":
        options.append(f"COMPRESSION {_PARQUET_CODECS[spec.compression]}")
    else:
        options.append(f"COMPRESSION {_TEXT_CODECS[spec.compression]}")
    if spec.format == "TEXTFILE":
        # LazySimpleSerDe text: no quoting, \N for NULL (what Athena reads back).
        delimiter = spec.field_delimiter.replace("'", "''")
        options += [
            f"DELIMITER '{delimiter}'",
            "HEADER false",
            "QUOTE ''",
            "ESCAPE ''",
            "NULLSTR '\\N'",
        ]
    if partition_by:
        options += [
            "PARTITION_BY (" + ", ".join(_quote(c) for c in partition_by) + ")",
            f"FILENAME_PATTERN '{file_prefix}_{{i}}'",
        ]
        target = tmp_dir
    else:
        target = tmp_dir / f"{file_prefix}_0{_extension(spec)}"
    target_text = str(target).replace("'", "''")
    result = conn.execute(f"COPY ({select}) TO '{target_text}' ({', '.join(options)})")
    return int(result.fetchone()[0])


def _extension(spec: OutputSpec) -> str:
    if spec.format == "PARQUET":
        return ".parquet"
    base = ".json" if spec.format == "JSON" else ".csv"
    return base + {"gzip": ".gz", "zstd": ".zst"}.get(_TEXT_CODECS[spec.compression], "")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _partition_dir(path: Path, tmp_dir: Path) -> Path:
    """The ``k=v/…`` folder of a written file, without the bucket folder."""
    parts = [p for p in path.parent.relative_to(tmp_dir).parts if not p.startswith(_BUCKET_COLUMN)]
    return Path(*parts) if parts else Path()


def _bucket_of(path: Path) -> int | None:
    for part in path.parent.parts:
        if part.startswith(_BUCKET_COLUMN + "="):
            return int(part.split("=", 1)[1])
    return None


def _partition_values(folder: Path) -> tuple[str, ...]:
    return tuple(part.split("=", 1)[1] for part in folder.parts)


def trino_to_hive_type(trino_type: str) -> str:
    """Glue/Hive column type for a Trino type: ``array(row(a integer))`` → ``array<struct<a:int>>``."""
    text = trino_type.strip()
    if text.startswith("array(") and text.endswith(")"):
        return f"array<{trino_to_hive_type(text[6:-1])}>"
    if text.startswith("map(") and text.endswith(")"):
        key, value = split_top_level(text[4:-1])
        return f"map<{trino_to_hive_type(key)},{trino_to_hive_type(value)}>"
    if text.startswith("row(") and text.endswith(")"):
        fields = []
        for item in split_top_level(text[4:-1]):
            name, _, ftype = item.strip().partition(" ")
            fields.append(f"{name}:{trino_to_hive_type(ftype)}")
        return f"struct<{','.join(fields)}>"
    if text.startswith("timestamp"):
        return "timestamp"
    if text.startswith("decimal"):
        return text.replace(" ", "")
    return {"varchar": "string", "integer": "int", "real": "float", "varbinary": "binary"}.get(
        text, text
    )
