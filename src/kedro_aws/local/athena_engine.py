"""Execute one Athena statement locally: tables from Glue, data from the local S3 root, DuckDB.

The engine does the work of a query and stages its outputs; it never decides the query's
state. :meth:`AthenaEngine.execute` returns a :class:`StagedQuery` whose ``commit()`` moves
result files into place and registers CTAS tables, and which the Athena client commits only if
the query was not cancelled meanwhile — so a cancelled or failed query leaves nothing behind::

    >>> engine = AthenaEngine(glue=glue, s3_root=root, tmp_root=root / ".kedro-aws" / "tmp")  # doctest: +SKIP
    >>> staged = engine.execute(request, conn=duckdb.connect())  # doctest: +SKIP
    >>> outcome = staged.commit()       # QueryOutcome: result file, bytes scanned, manifest …  # doctest: +SKIP

Bytes scanned are the sizes of the files of every table read. When the query reads one table
and its WHERE clause pins partition keys to literals (``date = '2024-01-01'``, ``IN (…)``), only
the files of matching partitions are counted; anything else counts every registered file.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from botocore.exceptions import ClientError
from sqlglot import exp

from kedro_aws.local.athena_ctas import (
    HIVE_STORAGE,
    OutputSpec,
    StagedOutput,
    check_columns,
    ensure_empty,
    output_columns,
    stage_query_output,
    trino_to_hive_type,
)
from kedro_aws.local.athena_ddl import DdlRunner
from kedro_aws.local.athena_results import write_results
from kedro_aws.local.athena_sql import (
    AthenaQueryError,
    TableRef,
    athena_column_info,
    bind_parameters,
    classify,
    map_duckdb_error,
    prepare_connection,
    render_rows,
    run_select,
    translate,
)
from kedro_aws.local.athena_sql_rules import AthenaQueryDialect
from kedro_aws.local.athena_sql_types import column_info
from kedro_aws.local.athena_tables import (
    TableScan,
    path_to_s3_uri,
    register_table_view,
    s3_uri_to_path,
)


@dataclass(frozen=True)
class QueryRequest:
    """What ``StartQueryExecution`` asked for, resolved to local paths."""

    query_id: str
    text: str
    database: str | None
    catalog: str
    parameters: Sequence[str] | None
    output_uri: str  # ResultConfiguration.OutputLocation (a prefix)
    output_dir: Path


@dataclass
class QueryOutcome:
    """What a finished query reports: where its rows are and its statistics."""

    statement_type: str
    result_file: Path | None = None
    text_result: bool = False
    data_scanned: int = 0
    manifest_file: Path | None = None
    update_count: int = 0
    column_info: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class StagedQuery:
    """A successful execution whose outputs are staged; ``commit`` publishes them."""

    outcome: QueryOutcome
    staged_files: list[tuple[Path, Path]] = field(default_factory=list)  # (staged, final)
    output: StagedOutput | None = None
    on_commit: Any = None  # callable(written_output) registering a CTAS table
    tmp_dir: Path | None = None
    s3_root: Path = Path()

    def commit(self) -> QueryOutcome:
        """Move staged files into place (and register the CTAS table); returns the outcome."""
        try:
            if self.output is not None:
                written = self.output.commit()
                if self.on_commit is not None:
                    self.on_commit(written)
                self._write_manifest(written.files)
            for staged, final in self.staged_files:
                final.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(staged, final)
        finally:
            self.discard()
        return self.outcome

    def _write_manifest(self, files: list[Path]) -> None:
        manifest = self.outcome.manifest_file
        if manifest is None:
            return
        # The data manifest lists one s3:// URI per line (Athena user guide, "Identifying query
        # output files"); awswrangler and PyAthena read exactly these files.
        root = self.s3_root
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text("".join(path_to_s3_uri(f, root) + "\n" for f in files))

    def discard(self) -> None:
        """Drop whatever is still staged (after a commit, or instead of one)."""
        if self.output is not None:
            self.output.discard()
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)


class AthenaEngine:
    """Runs statements against a Glue client and the local S3 root.

    Args:
        glue: Glue client used to resolve tables and register CTAS results.
        s3_root: Root directory of the local S3 client.
        tmp_root: Folder for staged outputs (same file system as ``s3_root``).
    """

    def __init__(self, glue: Any, s3_root: Path, tmp_root: Path) -> None:
        self.glue = glue
        self.s3_root = s3_root
        self.tmp_root = tmp_root

    def execute(self, request: QueryRequest, conn: duckdb.DuckDBPyConnection) -> StagedQuery:
        """Run ``request`` on ``conn``; raises :class:`AthenaQueryError` when the query fails."""
        tmp_dir = self.tmp_root / request.query_id
        tmp_dir.mkdir(parents=True, exist_ok=True)
        try:
            staged = self._execute(request, conn, tmp_dir)
        except BaseException:
            shutil.rmtree(tmp_dir, ignore_errors=True)
            raise
        staged.tmp_dir = tmp_dir
        staged.s3_root = self.s3_root
        return staged

    def _execute(
        self, request: QueryRequest, conn: duckdb.DuckDBPyConnection, tmp_dir: Path
    ) -> StagedQuery:
        prepare_connection(conn)
        scans: dict[TableRef, TableScan] = {}
        resolver = self._resolver(conn, request, scans)
        kind, statement_type = classify(request.text)
        if kind in ("DDL", "UTILITY"):
            text = bind_parameters(request.text, request.parameters)
            return self._ddl(request, text, statement_type, tmp_dir)
        if kind == "INSERT":
            raise AthenaQueryError(
                "NOT_SUPPORTED", "line 1:1: INSERT INTO is not supported by the local Athena engine"
            )
        if kind == "SELECT":
            return self._select(request, conn, resolver, scans, tmp_dir)
        return self._write(request, conn, resolver, scans, tmp_dir)

    # -- table resolution -------------------------------------------------------------------

    def _resolver(self, conn: duckdb.DuckDBPyConnection, request: QueryRequest, scans: dict) -> Any:
        def resolve(database: str, table: str) -> str | None:
            try:
                glue_table = self.glue.get_table(DatabaseName=database, Name=table)["Table"]
            except ClientError as err:
                if err.response["Error"]["Code"] == "EntityNotFoundException":
                    return None
                raise
            partitions = []
            if glue_table.get("PartitionKeys"):
                paginator = self.glue.get_paginator("get_partitions")
                # Only locations and values are needed: no column schemas, and pages of the
                # API's maximum size (GetPartitions MaxResults <= 1000).
                pages = paginator.paginate(
                    DatabaseName=database,
                    TableName=table,
                    ExcludeColumnSchema=True,
                    PaginationConfig={"PageSize": 1000},
                )
                partitions = [p for page in pages for p in page["Partitions"]]
            view = f"__athena_{database}_{table}"
            scans[TableRef(request.catalog, database, table)] = register_table_view(
                conn, view, glue_table, partitions, self.s3_root
            )
            return f'"{view}"'

        return resolve

    def _data_scanned(self, text: str, scans: dict[TableRef, TableScan]) -> int:
        pinned = _pinned_partition_values(text) if len(scans) == 1 else {}
        total = 0
        for scan in scans.values():
            for (_, size), values in zip(scan.files, scan.file_partitions, strict=True):
                by_key = dict(zip(scan.partition_keys, values, strict=True))
                if all(by_key[k] in allowed for k, allowed in pinned.items() if k in by_key):
                    total += size
        return total

    # -- statements -------------------------------------------------------------------------

    def _select(self, request, conn, resolver, scans, tmp_dir) -> StagedQuery:
        table: pa.Table = run_select(
            conn,
            request.text,
            database=request.database,
            table_resolver=resolver,
            parameters=request.parameters,
            catalog=request.catalog,
        )
        info = athena_column_info(table.schema)
        staged = tmp_dir / f"{request.query_id}.csv"
        write_results(staged, render_rows(table), info, header=table.column_names)
        final = request.output_dir / f"{request.query_id}.csv"
        outcome = QueryOutcome(
            "DML",
            result_file=final,
            data_scanned=self._data_scanned(request.text, scans),
            column_info=info,
        )
        return StagedQuery(
            outcome,
            staged_files=[(staged, final), (_metadata(staged), _metadata(final))],
        )

    def _write(self, request, conn, resolver, scans, tmp_dir) -> StagedQuery:
        translated = translate(
            request.text,
            database=request.database,
            catalog=request.catalog,
            parameters=request.parameters,
            table_resolver=resolver,
        )
        spec = OutputSpec.from_properties(translated.kind, translated.properties)
        props = {k.lower(): v for k, v in translated.properties.items()}
        target = translated.target
        if translated.kind == "CREATE_TABLE_AS":
            self._check_new_table(target)
            location = props.get("external_location") or (
                f"{request.output_uri.rstrip('/')}/tables/{request.query_id}/"
            )
            table_name = f"{target.database}.{target.table}"
        else:
            location, table_name = translated.location, None
        destination = s3_uri_to_path(location, self.s3_root)
        if not spec.partitioned_by:
            ensure_empty(destination, location, table_name)  # fail before doing the work
        try:
            columns = output_columns(conn, translated.sql)
        except duckdb.Error as err:
            raise map_duckdb_error(err, translated.text) from None
        check_columns(columns, spec)
        try:
            output = stage_query_output(
                conn,
                translated.sql,
                spec,
                columns=columns,
                tmp_dir=tmp_dir / "data",
                destination=destination,
                destination_uri=location,
                file_prefix=request.query_id,
                table=table_name,
            )
        except duckdb.Error as err:
            raise map_duckdb_error(err, translated.text) from None
        outcome = QueryOutcome(
            translated.statement_type,
            data_scanned=self._data_scanned(translated.text, scans),
            manifest_file=request.output_dir / f"{request.query_id}-manifest.csv",
            update_count=output.row_count,
        )
        staged = StagedQuery(outcome, output=output)
        if translated.kind == "CREATE_TABLE_AS":
            staged.on_commit = lambda written: self._register_ctas(target, location, spec, written)
        return staged

    def _check_new_table(self, target: TableRef) -> None:
        try:
            self.glue.get_database(Name=target.database)
        except ClientError:
            raise AthenaQueryError(
                "SCHEMA_NOT_FOUND", f"line 1:1: Schema '{target.database}' does not exist"
            ) from None
        try:
            self.glue.get_table(DatabaseName=target.database, Name=target.table)
        except ClientError:
            return
        raise AthenaQueryError("TABLE_ALREADY_EXISTS", f"line 1:1: Table '{target}' already exists")

    def _register_ctas(self, target: TableRef, location: str, spec: OutputSpec, written) -> None:
        partition_keys = [
            {"Name": name, "Type": trino_to_hive_type(t)}
            for name, t in written.columns
            if name.lower() in spec.partitioned_by
        ]
        columns = [
            {"Name": name.lower(), "Type": trino_to_hive_type(t)}
            for name, t in written.columns
            if name.lower() not in spec.partitioned_by
        ]
        storage = {**HIVE_STORAGE[spec.format], "Columns": columns, "Location": location}
        if spec.bucketed_by:
            storage.update(NumberOfBuckets=spec.bucket_count, BucketColumns=list(spec.bucketed_by))
        parameters = {"EXTERNAL": "TRUE", "has_encrypted_data": "false"}
        if spec.format == "PARQUET":
            parameters["parquet.compression"] = spec.compression
        self.glue.create_table(
            DatabaseName=target.database,
            TableInput={
                "Name": target.table,
                "TableType": "EXTERNAL_TABLE",
                "StorageDescriptor": storage,
                "PartitionKeys": partition_keys,
                "Parameters": parameters,
            },
        )
        base = location.rstrip("/")
        inputs = [
            {
                "Values": list(values),
                "StorageDescriptor": {
                    **storage,
                    "Location": base
                    + "/"
                    + "/".join(
                        f"{k['Name']}={v}" for k, v in zip(partition_keys, values, strict=True)
                    )
                    + "/",
                },
            }
            for values in written.partitions
        ]
        for start in range(0, len(inputs), 100):
            self.glue.batch_create_partition(
                DatabaseName=target.database,
                TableName=target.table,
                PartitionInputList=inputs[start : start + 100],
            )

    def _ddl(self, request, text: str, statement_type: str, tmp_dir: Path) -> StagedQuery:
        result = DdlRunner(self.glue, self.s3_root).run(text, request.database)
        info = [column_info(result.column, "string")] if result.column else []
        staged = tmp_dir / f"{request.query_id}.txt"
        write_results(staged, ([r] for r in result.rows), info, header=None, text=True)
        final = request.output_dir / f"{request.query_id}.txt"
        outcome = QueryOutcome(
            statement_type, result_file=final, text_result=True, column_info=info
        )
        return StagedQuery(
            outcome, staged_files=[(staged, final), (_metadata(staged), _metadata(final))]
        )


def _metadata(path: Path) -> Path:
    return path.with_name(path.name + ".metadata")


def _pinned_partition_values(text: str) -> dict[str, set[str]]:
    """Column → literal values the top-level WHERE pins it to (``c = 'x'``, ``c IN (…)``)."""
    try:
        tree = sqlglot.parse_one(text, dialect=AthenaQueryDialect)
    except sqlglot.errors.SqlglotError:
        return {}
    select = tree.find(exp.Select)
    where = select.args.get("where") if select is not None else None
    if where is None:
        return {}
    pinned: dict[str, set[str]] = {}
    for conjunct in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        if isinstance(conjunct, exp.EQ) and isinstance(conjunct.left, exp.Column):
            values = [conjunct.right]
        elif isinstance(conjunct, exp.In) and isinstance(conjunct.this, exp.Column):
            values = conjunct.expressions
        else:
            continue
        # Only string literals: partition values are text, and '01' is not 1.
        if not all(isinstance(v, exp.Literal) and v.is_string for v in values):
            continue
        column = conjunct.left if isinstance(conjunct, exp.EQ) else conjunct.this
        pinned.setdefault(column.name.lower(), set()).update(str(v.this) for v in values)
    return pinned
