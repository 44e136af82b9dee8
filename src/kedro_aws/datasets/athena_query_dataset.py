"""``AthenaQueryDataset`` loads the result of an Athena query into pandas or Spark."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

import fsspec
import pyarrow as pa
from kedro.io import AbstractDataset, DatasetError

from kedro_aws.athena.execution import (
    AthenaQueryError,
    QueryExecution,
    start_query,
    wait_for_query,
)
from kedro_aws.athena.results import (
    arrow_type,
    concat,
    hive_partition_values,
    infer_partition_type,
    read_csv_result,
    read_manifest,
    read_parquet_files,
    schema_from_column_info,
    split_s3_uri,
)
from kedro_aws.athena.rewrite import (
    QueryRewriteError,
    ctas_statement,
    execution_parameter,
    partition_values_query,
    prepare_select,
    restrict_to_partitions,
    unload_statement,
)
from kedro_aws.clients import client, current_settings

logger = logging.getLogger(__name__)

APPROACHES = ("select", "ctas", "unload")
OUTPUTS = ("pandas", "spark")
# Athena: "a CTAS or INSERT INTO query can create up to 100 partitions" (ctas-insert-into.html);
# UNLOAD has the same limit (unload.html).
MAX_PARTITIONS_PER_WRITE = 100
TEMP_PREFIX = "kedro-aws-tmp"


class AthenaQueryDataset(AbstractDataset[None, Any]):
    """Read-only dataset whose data is the result of an Athena query.

    ``approach`` picks how the result travels back:

    - ``unload`` (default): ``UNLOAD (query) TO <temporary prefix> WITH (format='PARQUET')``;
      the Parquet files listed in the query's manifest are read. Fast and typed.
    - ``ctas``: ``CREATE TABLE <temporary table> WITH (external_location=...) AS query``;
      the same, through a temporary Glue table, which is dropped afterwards.
    - ``select``: the query's CSV result file, typed by its ``ColumnInfo``. Slow for large
      results, but the only approach that can use Athena's result reuse.

    Temporary tables and files are always removed (also when the query fails) unless
    ``keep_files`` is set. ``ORDER BY`` is kept through UNLOAD/CTAS (an order column is added
    and sorted on); an empty result keeps its columns and types; every query's bytes scanned
    and estimated cost are logged; ``params`` travel as ``ExecutionParameters``, never
    formatted into the SQL text. On the local backend the same queries run on DuckDB with
    Athena's semantics (``docs/athena-local.md``).

    Examples:
        Using the [YAML API](https://docs.kedro.org/en/stable/catalog-data/data_catalog_yaml_examples/):

        ```yaml
        daily_transactions:
          type: kedro_aws.datasets.AthenaQueryDataset
          database: eth
          query: >
            SELECT hash, value, year(block_timestamp) AS year, month(block_timestamp) AS month
            FROM transactions WHERE date >= ?
          params: ["2024-01-01"]
          approach: unload
          partition_cols: [year, month]
          output: spark
          max_bytes_scanned: 10000000000
        ```

        Using the [Python API](https://docs.kedro.org/en/stable/catalog-data/advanced_data_catalog_usage/):

        >>> from kedro_aws.datasets import AthenaQueryDataset
        >>> dataset = AthenaQueryDataset(
        ...     query="SELECT 1 AS one",
        ...     output_location="s3://my-bucket/athena-results/",
        ...     credentials={"backend": "local", "root": "data/aws"},
        ... )
        >>> dataset.load()  # doctest: +SKIP
           one
        0    1
    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        query: str | None = None,
        filepath: str | None = None,
        database: str | None = None,
        catalog: str | None = None,
        workgroup: str | None = None,
        output_location: str | None = None,
        approach: str = "unload",
        partition_cols: Sequence[str] | None = None,
        output: str = "pandas",
        params: Sequence[Any] | None = None,
        result_reuse_minutes: int | None = None,
        max_bytes_scanned: int | None = None,
        timeout: float = 3600.0,
        poll_interval: float = 0.2,
        max_poll_interval: float = 5.0,
        keep_files: bool = False,
        split_partitions: bool = False,
        ctas_database: str | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset for one Athena query.

        Args:
            query: The SQL (one SELECT). Exclusive with ``filepath``.
            filepath: A ``.sql`` file holding the query (any fsspec path).
            database: Default database for unqualified table names.
            catalog: Data catalog (default: Athena's ``AwsDataCatalog``).
            workgroup: Athena workgroup (default: ``primary``).
            output_location: ``s3://`` prefix for query results and temporary data; default
                ``s3://<bucket from aws.yml>/athena-results/``.
            approach: ``unload`` (default), ``ctas`` or ``select``.
            partition_cols: Write the UNLOAD/CTAS output partitioned by these columns (they
                come back as columns); moved to the end of the SELECT list as Athena requires.
            output: ``pandas`` (default) or ``spark``.
            params: Values for the query's ``?`` placeholders, sent as ExecutionParameters.
            result_reuse_minutes: Let Athena reuse a previous identical result up to this age
                (``select`` only: UNLOAD and CTAS always write).
            max_bytes_scanned: Fail (stopping the query) when it scans more than this.
            timeout: Seconds to wait for a query before stopping it.
            poll_interval: First delay between status polls; grows ×1.5.
            max_poll_interval: Longest delay between polls.
            keep_files: Keep temporary tables, data and result files (for debugging).
            split_partitions: When the partitioned output has more than 100 partitions (Athena's
                limit per write), write it in batches of at most 100 (``unload`` only).
            ctas_database: Database for the temporary CTAS table (default: ``database``).
            credentials: Client settings and/or keys: ``backend``, ``region``, ``profile``,
                ``endpoint_url``, ``root``, ``aws_access_key_id``, ``aws_secret_access_key``,
                ``aws_session_token``. Default: the session's ``aws.yml``.
            fs_args: Extra arguments for the fsspec filesystem that reads ``filepath``.
            metadata: Free-form metadata (kedro-viz reads ``preview_args`` from it).

        Raises:
            DatasetError: Invalid combinations of arguments.
        """
        if (query is None) == (filepath is None):
            raise DatasetError("AthenaQueryDataset needs exactly one of 'query' and 'filepath'.")
        if approach not in APPROACHES:
            raise DatasetError(f"approach {approach!r} is not one of {list(APPROACHES)}.")
        if output not in OUTPUTS:
            raise DatasetError(f"output {output!r} is not one of {list(OUTPUTS)}.")
        if partition_cols and approach == "select":
            raise DatasetError("partition_cols needs approach 'unload' or 'ctas'.")
        if split_partitions and approach != "unload":
            raise DatasetError("split_partitions is supported with approach 'unload'.")
        if result_reuse_minutes and approach != "select":
            raise DatasetError("result_reuse_minutes applies to approach 'select' only.")
        self._query = query
        self._filepath = filepath
        self._fs_args = dict(fs_args or {})
        self._database = database
        self._catalog = catalog
        self._workgroup = workgroup
        self._output_location = output_location
        self._approach = approach
        self._partition_cols = list(partition_cols or [])
        self._output = output
        self._params = list(params or [])
        self._reuse = result_reuse_minutes
        self._max_bytes = max_bytes_scanned
        self._wait = {
            "timeout": timeout,
            "poll_interval": poll_interval,
            "max_poll_interval": max_poll_interval,
        }
        self._keep_files = keep_files
        self._split = split_partitions
        self._ctas_database = ctas_database or database
        self._credentials = dict(credentials or {})
        self.metadata = metadata
        self.last_query_ids: list[str] = []

    # -- Kedro API ---------------------------------------------------------------------------

    def load(self) -> Any:
        self.last_query_ids = []
        context = _Run(self)
        try:
            table, order_column = context.execute()
            return self._to_output(table, order_column, context)
        except (AthenaQueryError, QueryRewriteError) as error:
            query_id = getattr(error, "query_id", None) or (
                self.last_query_ids[-1] if self.last_query_ids else None
            )
            raise DatasetError(
                f"AthenaQueryDataset ({self._source()}): query {query_id or '(not started)'} "
                f"failed: {error}"
            ) from error
        finally:
            context.cleanup()

    def save(self, data: Any) -> None:
        raise DatasetError("'save' is not supported on AthenaQueryDataset: it is read-only.")

    def _describe(self) -> dict[str, Any]:
        return {
            "query": self._query
            if self._query is None or len(self._query) < 200
            else self._query[:200] + "...",
            "filepath": self._filepath,
            "database": self._database,
            "workgroup": self._workgroup,
            "output_location": self._output_location,
            "approach": self._approach,
            "partition_cols": self._partition_cols,
            "output": self._output,
            "params": self._params,
            # credentials are never described: they may hold keys.
        }

    def preview(self, nrows: int = 5) -> dict[str, Any]:
        """The first ``nrows`` rows (through a SELECT ... LIMIT, not a full load), for kedro-viz."""
        preview = AthenaQueryDataset(
            query=f"SELECT * FROM ({self.sql()}) AS q LIMIT {int(nrows)}",
            database=self._database,
            catalog=self._catalog,
            workgroup=self._workgroup,
            output_location=self._output_location,
            approach="select",
            params=self._params,
            credentials=self._credentials,
        )
        return preview.load().to_dict(orient="split")

    # -- helpers -----------------------------------------------------------------------------

    def sql(self) -> str:
        """The query text (read from ``filepath`` when given)."""
        if self._query is not None:
            return self._query.strip().rstrip(";")
        protocol = fsspec.utils.get_protocol(self._filepath)
        fs = fsspec.filesystem(protocol, **self._fs_args)
        with fs.open(self._filepath, "r", encoding="utf-8") as f:
            return f.read().strip().rstrip(";")

    def _source(self) -> str:
        return f"filepath={self._filepath!r}" if self._filepath else "query"

    def client(self, service: str) -> Any:
        return client(service, credentials=self._credentials)

    def output_location(self) -> str:
        if self._output_location:
            return self._output_location.rstrip("/") + "/"
        bucket = self._credentials.get("bucket") or current_settings().bucket
        if not bucket:
            raise DatasetError(
                "AthenaQueryDataset needs output_location (or a bucket in aws.yml) for query "
                "results and temporary data."
            )
        return f"s3://{bucket}/athena-results/"

    def _to_output(self, table: pa.Table | None, order_column: str | None, context: _Run) -> Any:
        if self._output == "spark":
            return context.to_spark(table, order_column)
        if order_column is not None and order_column in table.column_names:
            table = table.sort_by(order_column).drop_columns([order_column])
        return table.to_pandas()


class _Run:
    """One load: the queries it starts and the temporary things it must clean up."""

    def __init__(self, dataset: AthenaQueryDataset) -> None:
        self.dataset = dataset
        self.athena = dataset.client("athena")
        self.s3 = dataset.client("s3")
        self.token = uuid.uuid4().hex
        self.results = dataset.output_location()
        self.data_prefix = f"{self.results}{TEMP_PREFIX}/{self.token}/"
        self.query_ids: list[str] = dataset.last_query_ids
        self.temp_table: str | None = None
        self.files: list[tuple[str, str]] = []  # (data file, the prefix its partitions start at)
        self.schema: pa.Schema | None = None

    def run(
        self, sql: str, *, parameters: Sequence[Any] = (), reuse: int | None = None
    ) -> QueryExecution:
        ds = self.dataset
        # Both the start and the wait can fail: record the id as soon as it exists, for the
        # error message and the clean-up of its result files.
        query_id = start_query(
            self.athena,
            sql,
            database=ds._database,
            catalog=ds._catalog,
            workgroup=ds._workgroup,
            output_location=self.results,
            parameters=[execution_parameter(p) for p in parameters] or None,
            reuse_max_age_minutes=reuse,
        )
        self.query_ids.append(query_id)
        return wait_for_query(self.athena, query_id, max_bytes_scanned=ds._max_bytes, **ds._wait)

    def execute(self) -> tuple[pa.Table, str | None]:
        ds = self.dataset
        sql = ds.sql()
        if ds._approach == "select":
            execution = self.run(sql, parameters=ds._params, reuse=ds._reuse)
            return self.select_result(execution), None
        prepared = prepare_select(sql, ds._partition_cols)
        if ds._approach == "ctas":
            return self.ctas(prepared.sql), prepared.order_column
        return self.unload(prepared.sql), prepared.order_column

    def select_result(self, execution: QueryExecution) -> pa.Table:
        column_info = self.athena.get_query_results(
            QueryExecutionId=execution.query_id, MaxResults=1
        )["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
        # The execution's OutputLocation is the CSV file itself; for a reused result it is the
        # file of the execution whose result was reused.
        csv_uri = execution.output_location or f"{self.results}{execution.query_id}.csv"
        return read_csv_result(self.s3, csv_uri, column_info)

    def schema_of(self, select_sql: str) -> pa.Schema:
        """Column names and types of a query, from a LIMIT 0 run (scans nothing)."""
        execution = self.run(
            f"SELECT * FROM ({select_sql}) AS q LIMIT 0", parameters=self.dataset._params
        )
        column_info = self.athena.get_query_results(
            QueryExecutionId=execution.query_id, MaxResults=1
        )["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
        return schema_from_column_info(column_info)

    def unload(self, select_sql: str) -> pa.Table:
        ds = self.dataset
        batches: list[tuple[str, str]] = [(select_sql, self.data_prefix)]
        if ds._split and ds._partition_cols:
            batches = self.partition_batches(select_sql)
        for batch_sql, location in batches:
            execution = self.run(
                unload_statement(batch_sql, location, ds._partition_cols), parameters=ds._params
            )
            self.files += [(uri, location) for uri in self.manifest(execution)]
        return self.read_files(select_sql, schema=None)

    def manifest(self, execution: QueryExecution) -> list[str]:
        if not execution.manifest_location:
            return []
        return read_manifest(self.s3, execution.manifest_location)

    def read_files(self, select_sql: str, schema: pa.Schema | None) -> pa.Table | None:
        """The listed files as Arrow (``None`` when the output is Spark: it reads them itself).

        An empty result gets its columns and types from a ``LIMIT 0`` query (or the CTAS
        table), so it still has a schema.
        """
        if not self.files and schema is None:
            schema = self.schema_of(select_sql)
        self.schema = schema
        if self.dataset._output == "spark" and self.files:
            return None
        tables = []
        for uri, location in self.files:
            tables += read_parquet_files(
                self.s3, [uri], location, _partition_types(schema, self.dataset._partition_cols)
            )
        return _conform(concat(tables, schema), schema)

    def partition_batches(self, select_sql: str) -> list[tuple[str, str]]:
        ds = self.dataset
        execution = self.run(
            partition_values_query(select_sql, ds._partition_cols), parameters=ds._params
        )
        values = self.select_result(execution).to_pylist()
        combos = [tuple(row[c] for c in ds._partition_cols) for row in values]
        if len(combos) <= MAX_PARTITIONS_PER_WRITE:
            return [(select_sql, self.data_prefix)]
        logger.info(
            "%d partitions exceed Athena's %d per write: writing %d batches.",
            len(combos),
            MAX_PARTITIONS_PER_WRITE,
            -(-len(combos) // MAX_PARTITIONS_PER_WRITE),
        )
        return [
            (
                restrict_to_partitions(
                    select_sql, ds._partition_cols, combos[i : i + MAX_PARTITIONS_PER_WRITE]
                ),
                f"{self.data_prefix}batch-{i // MAX_PARTITIONS_PER_WRITE:04d}/",
            )
            for i in range(0, len(combos), MAX_PARTITIONS_PER_WRITE)
        ]

    def ctas(self, select_sql: str) -> pa.Table:
        ds = self.dataset
        if not ds._ctas_database:
            raise DatasetError(
                "approach 'ctas' needs a database (or ctas_database) for its temporary table."
            )
        name = f"kedro_aws_tmp_{self.token}"
        self.temp_table = name
        execution = self.run(
            ctas_statement(
                f'"{ds._ctas_database}"."{name}"', select_sql, self.data_prefix, ds._partition_cols
            ),
            parameters=ds._params,
        )
        glue_table = self.dataset.client("glue").get_table(
            DatabaseName=ds._ctas_database, Name=name
        )["Table"]
        schema = pa.schema(
            [
                (c["Name"], arrow_type({"Type": c["Type"]}))
                for c in glue_table["StorageDescriptor"]["Columns"]
            ]
            + [
                (c["Name"], arrow_type({"Type": c["Type"]}))
                for c in glue_table.get("PartitionKeys", [])
            ]
        )
        self.files = [(uri, self.data_prefix) for uri in self.manifest(execution)]
        return self.read_files(select_sql, schema)

    def to_spark(self, table: pa.Table | None, order_column: str | None) -> Any:
        """A Spark DataFrame of the result, materialised before the temporary files go.

        Spark reads the data files itself (``s3a://`` on AWS, the local root's files offline)
        instead of funnelling them through the driver, with Hive partition discovery from
        each prefix; ``localCheckpoint`` then materialises it, since Spark is lazy and the
        files are deleted right after the load.
        """
        from pyspark.sql import SparkSession  # noqa: PLC0415

        spark = SparkSession.builder.getOrCreate()
        if table is not None:  # already in Arrow: a SELECT result, or an empty result
            return spark.createDataFrame(table.to_pandas(), schema=_spark_schema(table.schema))
        frames = []
        for location in dict.fromkeys(loc for _, loc in self.files):
            paths = [self.spark_path(uri) for uri, loc in self.files if loc == location]
            frames.append(spark.read.option("basePath", self.spark_path(location)).parquet(*paths))
        frame = frames[0]
        for other in frames[1:]:
            frame = frame.unionByName(other, allowMissingColumns=True)
        # Partition values as the pandas path types them (Spark alone would turn a
        # '2024-01-01' directory into a date): the query's type when known, else int or string.
        kinds = _partition_types(self.schema, self.dataset._partition_cols)
        for name in self.dataset._partition_cols:
            if name in frame.columns:
                kind = kinds.get(name) or infer_partition_type(
                    [hive_partition_values(uri, loc).get(name) for uri, loc in self.files]
                )
                frame = frame.withColumn(name, frame[name].cast(_spark_type(kind)))
        if self.schema is not None:
            frame = frame.select(*[n for n in self.schema.names if n in frame.columns])
        if order_column is not None:
            frame = frame.orderBy(order_column).drop(order_column)
        return frame.localCheckpoint(eager=True)

    def spark_path(self, uri: str) -> str:
        """Where Spark reads an ``s3://`` URI: the local root's file, or ``s3a://`` on AWS."""
        root = getattr(self.s3, "root", None)  # the local backend's S3 root
        if root is not None:
            bucket, key = split_s3_uri(uri)
            return str(root / bucket / key)
        return "s3a://" + uri[len("s3://") :]

    def cleanup(self) -> None:
        """Drop the temporary table and delete temporary data and result files."""
        if self.dataset._keep_files:
            logger.info("Keeping temporary Athena files under %s.", self.data_prefix)
            return
        problems = []
        if self.temp_table:
            try:
                self.dataset.client("glue").delete_table(
                    DatabaseName=self.dataset._ctas_database, Name=self.temp_table
                )
            except Exception as error:  # noqa: BLE001 - the table may never have been created
                if "EntityNotFound" not in str(error):
                    problems.append(f"table {self.temp_table}: {error}")
        bucket, prefix = split_s3_uri(self.data_prefix)
        keys = [o["Key"] for o in _list(self.s3, bucket, prefix)]
        results_bucket, results_prefix = split_s3_uri(self.results)
        # With result reuse, a SELECT's result files are the cache later loads reuse: keep them.
        reusable = self.dataset._reuse and self.dataset._approach == "select"
        for query_id in [] if reusable else self.query_ids:
            keys += [
                o["Key"]
                for o in _list(self.s3, results_bucket, f"{results_prefix}{query_id}")
                if PurePosixPath(o["Key"]).name.startswith(query_id)
            ]
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            chunk = keys[start : start + 1000]
            response = self.s3.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
            )
            problems += [f"{e['Key']}: {e.get('Message')}" for e in response.get("Errors", [])]
        if problems:
            logger.warning(
                "Could not clean up all temporary Athena objects: %s", "; ".join(problems)
            )


def _list(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        objects.extend(page.get("Contents", []))
    return objects


def _partition_types(
    schema: pa.Schema | None, partition_cols: Sequence[str]
) -> dict[str, pa.DataType]:
    if schema is None:
        return {}
    return {name: schema.field(name).type for name in partition_cols if name in schema.names}


def _spark_schema(schema: pa.Schema) -> Any:
    from pyspark.sql.pandas.types import from_arrow_schema  # noqa: PLC0415

    return from_arrow_schema(schema)


def _spark_type(kind: pa.DataType) -> Any:
    from pyspark.sql.pandas.types import from_arrow_type  # noqa: PLC0415

    return from_arrow_type(kind)


def _conform(table: pa.Table, schema: pa.Schema | None) -> pa.Table:
    """Columns in the query's order with its types, where known."""
    if schema is None:
        return table
    names = [n for n in schema.names if n in table.column_names]
    names += [n for n in table.column_names if n not in names]
    table = table.select(names)
    target = pa.schema(
        [schema.field(n) if n in schema.names else table.schema.field(n) for n in names]
    )
    return table.cast(target) if table.schema != target else table
