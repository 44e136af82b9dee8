"""Turn a Glue table into something DuckDB can scan: the files, the format, the typed columns.

Athena reads a table the way its Glue definition says, never the way the files look: the
columns and their types come from the catalog, partition values come from the registered
partitions (a folder that is not registered is not read), and the SerDe decides how text
files are split. :func:`register_table_view` builds one DuckDB view per table that does the
same over the local S3 root and reports the files it reads::

    >>> scan = register_table_view(conn, "v_orders", table, partitions, s3_root)  # doctest: +SKIP
    >>> scan.files        # [(path, size), ...] the view reads; their sizes are DataScannedInBytes  # doctest: +SKIP

Formats: Parquet, delimited text (LazySimpleSerDe, OpenCSVSerde; ``skip.header.line.count``)
and JSON lines (OpenX / Hive JSON SerDe). ORC, Avro and Ion fail with ``NOT_SUPPORTED``.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from kedro_aws.local.athena_sql_errors import AthenaQueryError
from kedro_aws.local.athena_sql_types import split_top_level

STATE_DIR_NAME = ".kedro-aws"  # kept in sync with kedro_aws.local.STATE_DIR_NAME
_RESERVED_PREFIX = ".kedro-aws-"  # temporary files of in-flight local S3 writes

_HIVE_SIMPLE = {
    "string": "VARCHAR",
    "varchar": "VARCHAR",
    "char": "VARCHAR",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "real": "FLOAT",
    "double": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    # Athena's Hive tables hold timestamp(3); DuckDB keeps microseconds, which render the same
    # at millisecond precision (athena_sql_types renders timestamp(3)).
    "timestamp": "TIMESTAMP",
    "binary": "BLOB",
}


def s3_uri_to_path(uri: str, s3_root: Path) -> Path:
    """``s3://bucket/key`` → ``<root>/bucket/key`` (the local S3 layout)."""
    match = re.match(r"^s3a?n?://([^/]+)/?(.*)$", uri)
    if match is None:
        raise AthenaQueryError("INVALID_TABLE_PROPERTY", f"Location {uri!r} is not an s3:// URI")
    bucket, key = match.groups()
    return s3_root / bucket / key.rstrip("/")


def path_to_s3_uri(path: Path, s3_root: Path) -> str:
    """Inverse of :func:`s3_uri_to_path`."""
    relative = path.relative_to(s3_root).as_posix()
    return f"s3://{relative}"


def hive_to_duckdb_type(hive_type: str) -> str:
    """DuckDB type for a Glue/Hive column type: ``array<struct<a:int>>`` → ``STRUCT(a INTEGER)[]``."""
    text = hive_type.strip()
    lower = text.lower()
    if lower.startswith("array<") and lower.endswith(">"):
        return f"{hive_to_duckdb_type(text[6:-1])}[]"
    if lower.startswith("map<") and lower.endswith(">"):
        key, value = split_top_level(text[4:-1])
        return f"MAP({hive_to_duckdb_type(key)}, {hive_to_duckdb_type(value)})"
    if lower.startswith("struct<") and lower.endswith(">"):
        fields = []
        for field in split_top_level(text[7:-1]):
            name, _, ftype = field.partition(":")
            fields.append(f'"{name.strip()}" {hive_to_duckdb_type(ftype)}')
        return f"STRUCT({', '.join(fields)})"
    if lower.startswith("decimal"):
        return lower.upper().replace(" ", "") if "(" in lower else "DECIMAL(10,0)"
    base = re.sub(r"\(.*\)$", "", lower).strip()
    if base in _HIVE_SIMPLE:
        return _HIVE_SIMPLE[base]
    raise AthenaQueryError("NOT_SUPPORTED", f"Unsupported Hive type: {hive_type}")


@dataclass(frozen=True)
class TableScan:
    """What a table view reads: the files (path, size in bytes) and the partition keys."""

    files: tuple[tuple[Path, int], ...]
    partition_keys: tuple[str, ...]
    # Partition values of each file (same order as ``files``), for partition-pruned byte counts.
    file_partitions: tuple[tuple[str, ...], ...]


def data_files(directory: Path) -> Iterator[Path]:
    """Files under ``directory``, recursively, skipping what Hive and Athena treat as hidden.

    Athena ignores objects whose name starts with ``_`` or ``.`` (Athena user guide, "Table
    location in Amazon S3"); the local backend's own state and temporary files start with a dot.
    """
    for path, _ in sized_data_files(directory):
        yield path


def sized_data_files(directory: Path) -> list[tuple[Path, int]]:
    """``data_files`` with their sizes, from one ``scandir`` per folder (no extra ``stat``):
    a table of a few hundred partitions is listed on every query."""
    found: list[tuple[Path, int]] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return found
    for entry in entries:
        if entry.name.startswith(("_", ".")):
            continue
        if entry.is_dir(follow_symlinks=False):
            found += sized_data_files(Path(entry.path))
        elif entry.is_file():
            found.append((Path(entry.path), entry.stat().st_size))
    return found


def register_table_view(
    conn: duckdb.DuckDBPyConnection,
    view: str,
    table: dict[str, Any],
    partitions: Iterable[dict[str, Any]],
    s3_root: Path,
) -> TableScan:
    """Create the temporary view ``view`` on ``conn`` that reads ``table`` as Athena would.

    Args:
        conn: The query's DuckDB connection.
        view: Name of the view to create.
        table: A Glue ``Table`` (``get_table()["Table"]``).
        partitions: Its Glue partitions (ignored for unpartitioned tables).
        s3_root: Root directory of the local S3 client.
    """
    descriptor = table.get("StorageDescriptor", {})
    columns = [(c["Name"].lower(), c["Type"]) for c in descriptor.get("Columns", [])]
    keys = [(k["Name"].lower(), k["Type"]) for k in table.get("PartitionKeys", [])]
    reader = _reader_for(table)

    groups: list[tuple[tuple[str, ...], list[Path]]] = []
    sizes: dict[Path, int] = {}
    if keys:
        for partition in partitions:
            location = partition.get("StorageDescriptor", {}).get("Location")
            if not location:
                continue
            listed = sized_data_files(s3_uri_to_path(location, s3_root))
            if listed:
                sizes.update(listed)
                groups.append((tuple(partition["Values"]), [path for path, _ in listed]))
    else:
        location = descriptor.get("Location")
        if location:
            listed = sized_data_files(s3_uri_to_path(location, s3_root))
            if listed:
                sizes.update(listed)
                groups.append(((), [path for path, _ in listed]))

    if groups and isinstance(reader, _ParquetReader) and _hive_shaped(groups, keys):
        # One scan over every file, partition values read from the key=value folders: DuckDB
        # then prunes files on partition filters itself, as Athena prunes partitions.
        selects = [reader.select_hive([f for _, files in groups for f in files], columns, keys)]
    else:
        selects = [
            reader.select(
                files, columns, list(zip([k for k, _ in keys], values, strict=True)), keys
            )
            for values, files in groups
        ]
    if not selects:  # no data yet: an empty relation with the catalog's columns
        typed = [*columns, *keys]
        selects = [
            "SELECT "
            + ", ".join(f"CAST(NULL AS {hive_to_duckdb_type(t)}) AS {_quote(n)}" for n, t in typed)
            + " WHERE false"
        ]
    conn.execute(f"CREATE OR REPLACE TEMP VIEW {_quote(view)} AS " + " UNION ALL ".join(selects))
    all_files = [(path, values) for values, files in groups for path in files]
    return TableScan(
        files=tuple((path, sizes[path]) for path, _ in all_files),
        partition_keys=tuple(k for k, _ in keys),
        file_partitions=tuple(values for _, values in all_files),
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _file_list(files: list[Path]) -> str:
    return "[" + ", ".join(_literal(str(f)) for f in files) + "]"


def _partition_columns(values: list[tuple[str, str]], keys: list[tuple[str, str]]) -> list[str]:
    types = dict(keys)
    # Hive's default partition name stands for NULL (Hive: __HIVE_DEFAULT_PARTITION__).
    return [
        (
            f"CAST(NULL AS {hive_to_duckdb_type(types[name])}) AS {_quote(name)}"
            if value == "__HIVE_DEFAULT_PARTITION__"
            else f"TRY_CAST({_literal(value)} AS {hive_to_duckdb_type(types[name])}) AS {_quote(name)}"
        )
        for name, value in values
    ]


class _Reader:
    def select(
        self,
        files: list[Path],
        columns: list[tuple[str, str]],
        partition_values: list[tuple[str, str]],
        keys: list[tuple[str, str]],
    ) -> str:
        raise NotImplementedError


class _ParquetReader(_Reader):
    """Parquet columns are matched by name; a column absent from the files reads as NULL."""

    def select(self, files, columns, partition_values, keys) -> str:
        present, uniform = _parquet_columns(files)
        source = f"read_parquet({_file_list(files)}, union_by_name = {_sql_bool(not uniform)})"
        projections = [
            (
                f"CAST({_quote(present[name])} AS {hive_to_duckdb_type(hive)}) AS {_quote(name)}"
                if name in present
                else f"CAST(NULL AS {hive_to_duckdb_type(hive)}) AS {_quote(name)}"
            )
            for name, hive in columns
        ]
        projections += _partition_columns(partition_values, keys)
        return f"SELECT {', '.join(projections) or '1'} FROM {source}"

    def select_hive(self, files, columns, keys) -> str:
        types = ", ".join(f"{_literal(k)}: {_literal(hive_to_duckdb_type(t))}" for k, t in keys)
        present, uniform = _parquet_columns(files)
        source = (
            f"read_parquet({_file_list(files)}, union_by_name = {_sql_bool(not uniform)}, "
            f"hive_partitioning = true, hive_types = {{{types}}})"
        )
        projections = [
            (
                f"CAST({_quote(present[name])} AS {hive_to_duckdb_type(hive)}) AS {_quote(name)}"
                if name in present
                else f"CAST(NULL AS {hive_to_duckdb_type(hive)}) AS {_quote(name)}"
            )
            for name, hive in columns
        ]
        projections += [_quote(k) for k, _ in keys]
        return f"SELECT {', '.join(projections)} FROM {source}"


def _hive_shaped(
    groups: list[tuple[tuple[str, ...], list[Path]]], keys: list[tuple[str, str]]
) -> bool:
    """Whether every file sits under ``k1=v1/k2=v2/`` folders spelling its partition's values."""
    if not keys:
        return False
    for values, files in groups:
        expected = [f"{k}={v}" for (k, _), v in zip(keys, values, strict=True)]
        if any("%" in v or v == "__HIVE_DEFAULT_PARTITION__" for v in values):
            return False  # DuckDB would URL-decode or type-cast these differently from Hive
        for path in files:
            found = [part for part in path.parts if "=" in part]
            if found[-len(expected) :] != expected or len(found) != len(expected):
                return False
    return True


# Footer summaries of _parquet_columns by the files' identity (path, size, mtime, inode): a file
# rewritten or replaced gets a new key, so an answer is never reused for changed files. Reading
# hundreds of footers costs as much as a small query; tables are read again and again.
_FOOTER_CACHE: OrderedDict[tuple[Any, ...], tuple[dict[str, str], bool]] = OrderedDict()
_FOOTER_CACHE_SIZE = 32
_FOOTER_CACHE_LOCK = threading.Lock()


def _parquet_columns(files: list[Path]) -> tuple[dict[str, str], bool]:
    """Lower-case name → name as written, over all files, and whether all schemas are equal.

    Athena matches names case-insensitively. When every file has exactly the same schema
    (names, order, physical and logical types), ``union_by_name`` is not needed: reading by
    position is then the same as by name, and DuckDB skips reading every footer to unify
    the schemas (with hundreds of files that costs as much as a small query itself).
    """
    key = tuple(_file_identity(f) for f in files)
    with _FOOTER_CACHE_LOCK:
        cached = _FOOTER_CACHE.get(key)
        if cached is not None:
            _FOOTER_CACHE.move_to_end(key)
            return dict(cached[0]), cached[1]
    present, uniform = _read_parquet_columns(files)
    with _FOOTER_CACHE_LOCK:
        _FOOTER_CACHE[key] = (dict(present), uniform)
        while len(_FOOTER_CACHE) > _FOOTER_CACHE_SIZE:
            _FOOTER_CACHE.popitem(last=False)
    return present, uniform


def _file_identity(path: Path) -> tuple[str, int, int, int]:
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino


def _read_parquet_columns(files: list[Path]) -> tuple[dict[str, str], bool]:
    # A private connection: the module-level default one is not safe across query threads.
    # One row per distinct schema element (position and everything describing it) with the
    # number of files holding it: the schemas are equal when each position has one element,
    # held by every file.
    with duckdb.connect() as conn:
        rows = conn.execute(
            "SELECT name, column_id, count(DISTINCT file_name) FROM parquet_schema("
            + _file_list(files)
            + ") GROUP BY column_id, name, type, type_length, repetition_type, num_children,"
            " converted_type, scale, precision, field_id, logical_type"
        ).fetchall()
    positions = {column_id for _, column_id, _ in rows}
    uniform = len(positions) == len(rows) and all(n == len(set(files)) for _, _, n in rows)
    return {name.lower(): name for name, _, _ in rows}, uniform


def _sql_bool(value: bool) -> str:
    return "true" if value else "false"


class _TextReader(_Reader):
    """Delimited text: every field is read as text, then cast to the catalog type.

    LazySimpleSerDe (Athena's default for TEXTFILE) has no quoting, turns ``\\N`` into NULL and
    unparseable numbers into NULL; OpenCSVSerde honours ``quoteChar``/``escapeChar``
    (Athena user guide, "LazySimpleSerDe for CSV, TSV, and custom-delimited files" and
    "Open CSV SerDe for processing CSV").
    """

    def __init__(self, delimiter: str, quote: str, escape: str, skip: int) -> None:
        self.delimiter, self.quote, self.escape, self.skip = delimiter, quote, escape, skip

    def select(self, files, columns, partition_values, keys) -> str:
        spec = ", ".join(f"{_literal(f'c{i}')}: 'VARCHAR'" for i in range(len(columns)))
        options = [
            f"delim = {_literal(self.delimiter)}",
            f"quote = {_literal(self.quote)}",
            f"escape = {_literal(self.escape)}",
            "header = false",
            f"skip = {self.skip}",
            f"columns = {{{spec}}}",
            "null_padding = true",
            "ignore_errors = false",
            "auto_detect = false",
            "strict_mode = false",
        ]
        source = f"read_csv({_file_list(files)}, {', '.join(options)})"
        projections = []
        for i, (name, hive) in enumerate(columns):
            raw = f"NULLIF(c{i}, '\\N')"
            duck = hive_to_duckdb_type(hive)
            value = raw if duck == "VARCHAR" else f"TRY_CAST({raw} AS {duck})"
            projections.append(f"{value} AS {_quote(name)}")
        projections += _partition_columns(partition_values, keys)
        return f"SELECT {', '.join(projections) or '1'} FROM {source}"


class _JsonReader(_Reader):
    """JSON lines; keys are matched case-insensitively by the JSON SerDes, by name here."""

    def select(self, files, columns, partition_values, keys) -> str:
        spec = ", ".join(
            f"{_literal(name)}: {_literal(hive_to_duckdb_type(hive))}" for name, hive in columns
        )
        source = (
            f"read_json({_file_list(files)}, format = 'newline_delimited', "
            f"columns = {{{spec}}}, ignore_errors = true)"
        )
        projections = [_quote(name) for name, _ in columns]
        projections += _partition_columns(partition_values, keys)
        return f"SELECT {', '.join(projections) or '1'} FROM {source}"


def _reader_for(table: dict[str, Any]) -> _Reader:
    descriptor = table.get("StorageDescriptor", {})
    serde = descriptor.get("SerdeInfo", {}) or {}
    library = (serde.get("SerializationLibrary") or "").lower()
    input_format = (descriptor.get("InputFormat") or "").lower()
    serde_params = serde.get("Parameters", {}) or {}
    table_params = table.get("Parameters", {}) or {}
    name = f"{table.get('DatabaseName', '?')}.{table.get('Name', '?')}"
    if "parquet" in library or "parquet" in input_format:
        return _ParquetReader()
    if "json" in library:
        return _JsonReader()
    if any(f in library or f in input_format for f in ("orc", "avro", "ion")):
        raise AthenaQueryError(
            "NOT_SUPPORTED",
            f"Table '{name}' uses {library or input_format}, which the local Athena engine "
            "cannot read (supported: Parquet, delimited text, JSON lines)",
        )
    skip = int(table_params.get("skip.header.line.count", "0") or 0)
    if "opencsvserde" in library:
        return _TextReader(
            serde_params.get("separatorChar", ","),
            serde_params.get("quoteChar", '"'),
            serde_params.get("escapeChar", "\\"),
            skip,
        )
    if "lazysimpleserde" in library or "textinputformat" in input_format or not library:
        # Hive's default field delimiter is \001 (Ctrl-A) when none is declared.
        delimiter = serde_params.get("field.delim") or serde_params.get(
            "serialization.format", "\x01"
        )
        if delimiter.isdigit() and len(delimiter) == 1 and "field.delim" not in serde_params:
            delimiter = "\x01"  # serialization.format "1" is Hive's marker for the default
        return _TextReader(delimiter, "", serde_params.get("escape.delim", ""), skip)
    raise AthenaQueryError(
        "NOT_SUPPORTED",
        f"Table '{name}' uses SerDe {library!r}, which the local Athena engine cannot read",
    )
