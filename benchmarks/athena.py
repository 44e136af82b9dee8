"""Local Athena against DuckDB and Spark SQL on the same Parquet files, in one run.

Workload (issue 5, "Performance"): the sample ``eth.transactions`` table of
``kedro_aws.local.sample_data`` — 10 million rows as Hive-partitioned Parquet, one
``date=YYYY-MM-DD`` partition per day of 2024 (366 partitions; ``--quick``: 300 000 rows over
61 days), registered in the local Glue catalog. Two queries, each run by three engines:

(i)  a group-by aggregate with a date function: rows, value and distinct senders per month;
(ii) an UNLOAD of five columns partitioned by two derived columns (year, month), Parquet/Snappy.

Engines, timed over the same files and interleaved repeat by repeat:

(a) ``duckdb``: the limit. The equivalent hand-written DuckDB SQL over ``read_parquet`` on a
    fresh connection with the same thread count; for (ii) a ``COPY … (FORMAT PARQUET,
    COMPRESSION SNAPPY, PARTITION_BY (year, month))``, the same format, codec and layout.
(b) ``local Athena``: ``client("athena", backend="local")``, timed from
    ``start_query_execution`` until ``get_query_execution`` says SUCCEEDED (polled every
    10 ms). Includes translation, Glue look-ups, bytes-scanned accounting, staging, the
    results CSV or manifest, and the SQLite state.
(c) ``Spark SQL``: a local session (``local[*]``, as many cores as DuckDB has threads) built with
    ``kedro_aws.spark.session``; JVM start-up is *not* timed (reported separately). Each
    repeat reads the files again (``spark.read.parquet`` with partition discovery).

Every variant gets one untimed warm-up run (page cache, JIT) before its timed repeats.

Then ``AthenaQueryDataset`` loading ~1 million rows (the first 37 days; ``--quick``: 6 days,
~30 000) into pandas with ``approach="unload"`` (Parquet via the manifest) against ``approach="select"``
(the CSV results file), both end to end through ``dataset.load()`` with its default polling.

Usage: ``python -m benchmarks athena [--quick] [--repeats N] [--skip spark,dataset]``.
Reported: median seconds, the spread (min–max) and ratios against (a) — or against
``select`` for the dataset — measured in the same run. Timings are never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import report

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "athena"
BUCKET = "kedro-aws-bench"  # scratch bucket in the local root: results and UNLOAD outputs
DATABASE = "eth"
TABLE = "transactions"
SEED = 0
START_DAY = "2024-01-01"
POLL_SECONDS = 0.01
# The Athena SQL of the two queries; the UNLOAD target is filled in per run.
ATHENA_AGGREGATE = (
    "SELECT date_trunc('month', block_timestamp) AS month, count(*) AS n, "
    "sum(value) AS total, approx_distinct(from_address) AS senders "
    "FROM transactions GROUP BY 1"
)
UNLOAD_SELECT = (
    "SELECT hash, value, gas, year(block_timestamp) AS year, month(block_timestamp) AS month "
    "FROM transactions"
)
ATHENA_UNLOAD = (
    f"UNLOAD ({UNLOAD_SELECT}) TO '{{target}}' "
    "WITH (format = 'PARQUET', compression = 'SNAPPY', partitioned_by = ARRAY['year', 'month'])"
)
# The same, hand-written for DuckDB and for Spark SQL ({source}: the table's files).
DUCKDB_AGGREGATE = (
    "SELECT date_trunc('month', block_timestamp) AS month, count(*) AS n, "
    "sum(value) AS total, approx_count_distinct(from_address) AS senders "
    "FROM {source} GROUP BY 1"
)
DUCKDB_UNLOAD = (
    f"COPY ({UNLOAD_SELECT.replace('FROM transactions', 'FROM {source}')}) TO '{{target}}' "
    "(FORMAT PARQUET, COMPRESSION SNAPPY, PARTITION_BY (year, month))"
)
SPARK_AGGREGATE = (
    "SELECT date_trunc('MONTH', block_timestamp) AS month, count(*) AS n, "
    "sum(value) AS total, approx_count_distinct(from_address) AS senders "
    "FROM transactions GROUP BY 1"
)
# The dataset's query: a plain projection of the first ``load_days`` days.
LOAD_QUERY = (
    "SELECT hash, from_address, to_address, value, gas, gas_price, block_timestamp, "
    "block_number, date FROM transactions WHERE date < '{end}'"
)


@dataclass(frozen=True)
class Size:
    name: str
    rows: int
    days: int
    load_days: int  # days the dataset query selects (~1M rows at full size)
    repeats: int


FULL = Size("full", rows=10_000_000, days=366, load_days=37, repeats=3)
QUICK = Size("quick", rows=300_000, days=61, load_days=6, repeats=1)


@dataclass
class Result:
    group: str
    variant: str
    seconds: list[float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


# --------------------------------------------------------------------------------------------
# Data (deterministic, generated once under benchmarks/.data/athena/<size>/)
# --------------------------------------------------------------------------------------------


def sample_root(size: Size) -> tuple[Path, dict[str, Any]]:
    """The local root holding the sample table (reused when generated with the same arguments)."""
    import datetime as dt

    from kedro_aws import client
    from kedro_aws.local.sample_data import write_eth_transactions

    root = DATA / size.name / "root"
    stamp_path = DATA / size.name / "sample.json"
    wanted = {"rows": size.rows, "days": size.days, "seed": SEED, "start": START_DAY}
    if stamp_path.exists() and json.loads(stamp_path.read_text()).get("params") == wanted:
        stamp = json.loads(stamp_path.read_text())
        glue = client("glue", backend="local", root=root)
        try:
            glue.get_table(DatabaseName=DATABASE, Name=TABLE)
            if all(Path(f).exists() for f in stamp["files"]):
                return root, stamp
        except glue.exceptions.EntityNotFoundException:
            pass
    print(f"Generating {size.rows:,} rows in {size.days} daily partitions (one-off)...", flush=True)
    shutil.rmtree(root, ignore_errors=True)
    stamp_path.unlink(missing_ok=True)
    glue = client("glue", backend="local", root=root)
    started = time.perf_counter()
    table = write_eth_transactions(
        root,
        glue,
        rows=size.rows,
        days=size.days,
        start=dt.date.fromisoformat(START_DAY),
        seed=SEED,
        database=DATABASE,
        table=TABLE,
    )
    print(f"  written in {time.perf_counter() - started:.1f} s", flush=True)
    stamp = {
        "params": wanted,
        "location": table.location,
        "partitions": list(table.partitions),
        "files": [str(f) for f in table.files],
        "bytes": sum(f.stat().st_size for f in table.files),
    }
    stamp_path.write_text(json.dumps(stamp))
    return root, stamp


def fresh_state(root: Path) -> None:
    """No query history (it would slow look-ups run after run) and no scratch outputs."""
    state = root / ".kedro-aws"
    for path in state.glob("athena.sqlite*"):
        path.unlink()
    shutil.rmtree(state / "athena-tmp", ignore_errors=True)
    shutil.rmtree(root / BUCKET, ignore_errors=True)
    (root / BUCKET).mkdir(parents=True)


def table_dir(root: Path, stamp: dict[str, Any]) -> Path:
    bucket_and_key = stamp["location"][len("s3://") :].rstrip("/")
    return root / bucket_and_key


def rows_loaded(size: Size) -> int:
    per_day, extra = divmod(size.rows, size.days)
    return per_day * size.load_days + min(extra, size.load_days)


def load_end_day(size: Size) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(START_DAY) + dt.timedelta(days=size.load_days)).isoformat()


# --------------------------------------------------------------------------------------------
# The engines
# --------------------------------------------------------------------------------------------


class DuckDbRunner:
    """(a) the hand-written DuckDB SQL, each run on a fresh connection like the local Athena's."""

    def __init__(self, files: Path, threads: int) -> None:
        pattern = str(files / "date=*" / "*.parquet").replace("'", "''")
        self.source = f"read_parquet('{pattern}', hive_partitioning = true)"
        self.threads = threads

    def _connect(self) -> Any:
        import duckdb

        conn = duckdb.connect()
        conn.execute(f"SET threads = {self.threads}")
        conn.execute("SET TimeZone = 'UTC'")
        return conn

    def aggregate(self) -> float:
        start = time.perf_counter()
        conn = self._connect()
        conn.execute(DUCKDB_AGGREGATE.format(source=self.source)).fetchall()
        conn.close()
        return time.perf_counter() - start

    def unload(self, target: Path) -> float:
        start = time.perf_counter()
        conn = self._connect()
        target_sql = str(target).replace("'", "''")
        conn.execute(DUCKDB_UNLOAD.format(source=self.source, target=target_sql)).fetchall()
        conn.close()
        return time.perf_counter() - start


class AthenaRunner:
    """(b) the local Athena, end to end: start_query_execution → polls → SUCCEEDED."""

    def __init__(self, root: Path) -> None:
        from kedro_aws import client

        self.athena = client("athena", backend="local", root=root)
        self.engine_ms: dict[str, list[int]] = {"aggregate": [], "unload": []}

    def _run(self, sql: str, key: str) -> float:
        start = time.perf_counter()
        query_id = self.athena.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": DATABASE},
            ResultConfiguration={"OutputLocation": f"s3://{BUCKET}/athena-results/"},
        )["QueryExecutionId"]
        while True:
            execution = self.athena.get_query_execution(QueryExecutionId=query_id)
            status = execution["QueryExecution"]["Status"]
            if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                break
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - start
        if status["State"] != "SUCCEEDED":
            raise RuntimeError(f"local Athena query {query_id} {status['State']}: {status}")
        statistics_ = execution["QueryExecution"]["Statistics"]
        self.engine_ms[key].append(int(statistics_["EngineExecutionTimeInMillis"]))
        return seconds

    def aggregate(self) -> float:
        return self._run(ATHENA_AGGREGATE, "aggregate")

    def unload(self, target_uri: str) -> float:
        return self._run(ATHENA_UNLOAD.format(target=target_uri), "unload")


class SparkRunner:
    """(c) Spark SQL in a local session; the session is started before any timing."""

    def __init__(self, files: Path, cores: int) -> None:
        from kedro_aws.spark.session import build_spark_conf, create_spark_session

        conf = build_spark_conf(
            {
                "spark.master": f"local[{cores}]",
                "spark.driver.memory": "4g",
                "spark.sql.shuffle.partitions": str(cores),
                # The Glue table has `date` as a string partition, not a date.
                "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
            }
        )
        started = time.perf_counter()
        self.spark = create_spark_session(conf, "kedro-aws-athena-benchmark")
        self.spark.range(1).collect()  # the JVM and the first job are up
        self.startup_seconds = time.perf_counter() - started
        self.files = str(files)

    def _table(self) -> None:
        self.spark.read.parquet(self.files).createOrReplaceTempView(TABLE)

    def aggregate(self) -> float:
        start = time.perf_counter()
        self._table()
        self.spark.sql(SPARK_AGGREGATE).collect()
        return time.perf_counter() - start

    def unload(self, target: Path) -> float:
        start = time.perf_counter()
        self._table()
        frame = self.spark.sql(UNLOAD_SELECT)
        frame.write.partitionBy("year", "month").option("compression", "snappy").parquet(
            str(target)
        )
        return time.perf_counter() - start

    def stop(self) -> None:
        self.spark.stop()


def load_with_dataset(root: Path, size: Size, approach: str) -> tuple[float, int]:
    """Seconds for ``AthenaQueryDataset(approach=…).load()`` into pandas, and the rows it got."""
    from kedro_aws.datasets import AthenaQueryDataset

    dataset = AthenaQueryDataset(
        query=LOAD_QUERY.format(end=load_end_day(size)),
        database=DATABASE,
        output_location=f"s3://{BUCKET}/dataset-results/",
        approach=approach,
        output="pandas",
        credentials={"backend": "local", "root": str(root)},
    )
    start = time.perf_counter()
    frame = dataset.load()
    return time.perf_counter() - start, len(frame)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks athena")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--repeats", type=int, help="timed repeats per variant (median reported)")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: spark,dataset")
    args = parser.parse_args(argv)
    size = QUICK if args.quick else FULL
    repeats = args.repeats or size.repeats
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    cpus = os.cpu_count() or 1
    print(f"Athena benchmark, {size.name}: {size.rows:,} rows in {size.days} daily partitions, "
          f"{cpus} threads/cores per engine, {repeats} repeat(s) after one warm-up.", flush=True)  # fmt: skip

    root, stamp = sample_root(size)
    fresh_state(root)
    notes: list[str] = []
    results = run_queries(
        root, stamp, repeats, cpus=cpus, with_spark="spark" not in skip, notes=notes
    )
    if "dataset" not in skip:
        results += run_dataset_loads(root, size, repeats, notes)
    shutil.rmtree(root / BUCKET, ignore_errors=True)
    print()
    print(render(results, notes, size, repeats, stamp))
    _save(results, notes, size, repeats)
    return 0


def run_queries(
    root: Path,
    stamp: dict[str, Any],
    repeats: int,
    *,
    cpus: int,
    with_spark: bool,
    notes: list[str],
) -> list[Result]:
    """(i) and (ii) on every engine: a warm-up each, then ``repeats`` interleaved runs."""
    files = table_dir(root, stamp)
    duck = DuckDbRunner(files, cpus)
    athena = AthenaRunner(root)
    spark = None
    if with_spark:
        try:
            spark = SparkRunner(files, cpus)
        except Exception as error:  # noqa: BLE001 - no Java, no pyspark: report, go on
            notes.append(f"Spark not measured: {type(error).__name__}: {error}")
    counter = iter(range(1_000_000))

    def unload(run: Callable[[Any], float], engine: str, *, as_uri: bool = False) -> float:
        """One UNLOAD into a fresh, empty target, deleted afterwards (not timed)."""
        target = root / BUCKET / "unload" / f"{engine}-{next(counter)}"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            return run(f"s3://{target.relative_to(root).as_posix()}/" if as_uri else target)
        finally:
            shutil.rmtree(target, ignore_errors=True)

    duck_label, athena_label = "(a) DuckDB, hand-written SQL", "(b) local Athena, start → SUCCEEDED"
    variants: dict[str, dict[str, Callable[[], float]]] = {
        "(i) group-by": {duck_label: duck.aggregate, athena_label: athena.aggregate},
        "(ii) UNLOAD by year, month": {
            duck_label: lambda: unload(duck.unload, "duckdb"),
            athena_label: lambda: unload(athena.unload, "athena", as_uri=True),
        },
    }
    if spark is not None:
        label = f"(c) Spark SQL, local[{cpus}]"
        variants["(i) group-by"][label] = spark.aggregate
        variants["(ii) UNLOAD by year, month"][label] = lambda: unload(spark.unload, "spark")

    results: list[Result] = []
    for group, runs in variants.items():
        print(f"{group}:", flush=True)
        for run in runs.values():  # warm-up, not timed
            run()
        athena.engine_ms = {"aggregate": [], "unload": []}
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        order = list(runs)
        for repeat in range(repeats):
            # Interleaved, in a rotating order: machine noise and any after-effect of one
            # engine on the next (page cache write-back, JVM GC) spread over all variants.
            for name in order[repeat % len(order) :] + order[: repeat % len(order)]:
                seconds[name].append(runs[name]())
        key = "aggregate" if group.startswith("(i)") else "unload"
        for name in runs:
            extra = {"engine_ms": athena.engine_ms[key]} if name == athena_label else {}
            results.append(Result(group, name, seconds[name], extra))
            _report_progress(results[-1])
    if spark is not None:
        notes.append(
            f"Spark JVM start-up (not timed above): {spark.startup_seconds:.1f} s; "
            "spark.sql.shuffle.partitions = cores."
        )
        spark.stop()
    return results


def run_dataset_loads(root: Path, size: Size, repeats: int, notes: list[str]) -> list[Result]:
    """``AthenaQueryDataset.load()`` with ``select`` and with ``unload``, interleaved."""
    group = f"AthenaQueryDataset, {rows_loaded(size):,} rows → pandas"
    print(f"{group}:", flush=True)
    approaches = {"select": "select (CSV results)", "unload": "unload (Parquet, manifest)"}
    seconds: dict[str, list[float]] = {a: [] for a in approaches}
    counts: set[int] = set()
    for approach in approaches:  # warm-up
        counts.add(load_with_dataset(root, size, approach)[1])
    for repeat in range(repeats):
        for approach in list(approaches)[:: 1 if repeat % 2 == 0 else -1]:  # alternating order
            elapsed, count = load_with_dataset(root, size, approach)
            seconds[approach].append(elapsed)
            counts.add(count)
    if counts != {rows_loaded(size)}:
        notes.append(f"Dataset row counts differ from {rows_loaded(size):,}: {sorted(counts)}")
    results = []
    for approach, label in approaches.items():
        results.append(Result(group, label, seconds[approach]))
        _report_progress(results[-1])
    return results


def _report_progress(result: Result) -> None:
    spread = f"{min(result.seconds):.2f}–{max(result.seconds):.2f}"
    print(f"  {result.variant}: median {result.median:.2f} s ({spread})", flush=True)


def _versions() -> str:
    import duckdb

    versions = [f"Python {platform.python_version()}", f"DuckDB {duckdb.__version__}"]
    try:
        import pyspark

        versions.append(f"PySpark {pyspark.__version__}")
    except ImportError:
        pass
    return ", ".join(versions)


def render(
    results: list[Result], notes: list[str], size: Size, repeats: int, stamp: dict[str, Any]
) -> str:
    """The results as a Markdown table, with the targets of issue 5 checked."""
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs ({report.cpu_model()}), "
        f"{platform.system()} {platform.release()}, {_versions()}",
        f"Command: python -m benchmarks athena{' --quick' if size is QUICK else ''} "
        f"({size.rows:,} rows, {size.days} partitions, {stamp['bytes'] / 1024**2:,.0f} MiB of "
        f"Parquet; median of {repeats} after one warm-up)",
        f"Date: {time.strftime('%Y-%m-%d')}",
        "",
        "| workload | variant | median s | min–max s | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    checks = []
    groups = list(dict.fromkeys(r.group for r in results))
    for group in groups:
        rows = [r for r in results if r.group == group]
        if group.startswith("AthenaQueryDataset"):
            select = next(r for r in rows if r.variant.startswith("select"))
            for r in rows:
                ratio = select.median / r.median
                lines.append(_row(group, r, f"{ratio:.1f}× faster than select"))
            unload = next(r for r in rows if r.variant.startswith("unload"))
            checks.append(report.check("unload ≥ 5× faster than select", select.median / unload.median,
                                 5.0, higher_is_better=True))  # fmt: skip
            continue
        baseline = rows[0].median
        for r in rows:
            lines.append(_row(group, r, f"{r.median / baseline:.2f}× (a)"))
        athena = next((r for r in rows if r.variant.startswith("(b)")), None)
        if athena is not None:
            checks.append(report.check(f"{group}: local Athena ≤ 1.2 × DuckDB", athena.median / baseline,
                                 1.2, higher_is_better=False))  # fmt: skip
            engine = statistics.median(athena.extra.get("engine_ms") or [0]) / 1000
            notes.append(
                f"{group}: local Athena EngineExecutionTimeInMillis median {engine:.2f} s of "
                f"{athena.median:.2f} s end to end."
            )
        spark = next((r for r in rows if r.variant.startswith("(c)")), None)
        if spark is not None and athena is not None:
            notes.append(
                f"{group}: Spark SQL / local Athena = {spark.median / athena.median:.2f}×."
            )
    lines += ["", "Targets (issue 5):", *[f"- {c}" for c in checks]]
    if notes:
        lines += ["", *[f"Note: {n}" for n in notes]]
    return "\n".join(lines)


def _row(group: str, r: Result, ratio: str) -> str:
    spread = f"{min(r.seconds):.2f}–{max(r.seconds):.2f}"
    return f"| {group} | {r.variant} | {r.median:.2f} | {spread} | {ratio} |"


def _save(results: list[Result], notes: list[str], size: Size, repeats: int) -> None:
    payload = {
        "size": asdict(size),
        "repeats": repeats,
        "results": [{**asdict(r), "median": r.median} for r in results],
        "notes": notes,
    }
    path = report.save(DATA / "results", f"athena-{size.name}", payload)
    print(f"\nSaved {path.relative_to(HERE.parent)}")


if __name__ == "__main__":
    sys.exit(main())
