"""The athena pipeline end to end on the local backend: sample data → Athena UNLOAD → Spark."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration

KEDRO = Path(sys.executable).parent / "kedro"


def kedro(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "COLUMNS": "250"}
    env.pop("KEDRO_ENV", None)
    done = subprocess.run(
        [str(KEDRO), *args], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (
        f"kedro {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


def sample_rows(project: Path, last_day: str) -> int:
    """Successful transactions up to last_day, counted from the sample files themselves."""
    location = project / "data/aws/aws-public-blockchain/v1.0/eth/transactions"
    table = ds.dataset(location, format="parquet", partitioning="hive").to_table(
        columns=["receipt_status", "date"]
    )
    keep = pc.and_(pc.equal(table["receipt_status"], 1), pc.less_equal(table["date"], last_day))
    return pc.sum(keep.cast("int64")).as_py()


def partition_rows(output: Path) -> dict[tuple[int, int], int]:
    counts = {}
    for month_dir in output.glob("year=*/month=*"):
        key = (int(month_dir.parent.name.split("=")[1]), int(month_dir.name.split("=")[1]))
        counts[key] = sum(pq.read_metadata(f).num_rows for f in month_dir.glob("*.parquet"))
    return counts


def test_sample_data_then_athena_pipeline_with_a_backfill(iris_project):
    project = iris_project
    created = kedro(project, "aws", "sample-data", "eth", "--rows", "6000", "--days", "70").stdout
    assert "eth.transactions: 6,000 rows in 70 partitions (2024-01-01 .. 2024-03-10)" in created

    done = kedro(project, "run", "--pipelines", "athena", "--params", "run_date=2024-02-15")
    log = done.stdout + done.stderr
    assert "scanned" in log and "estimated cost $" in log  # every query's scan is logged
    output = project / "data/02_intermediate/nightly/2024-02-15/eth_transactions"
    counts = partition_rows(output)
    # year/month derived in SQL, partitioned by the scheme in globals.yml; the ? parameter
    # (run_date) kept only the days up to the backfill date.
    assert set(counts) == {(2024, 1), (2024, 2)}
    assert sum(counts.values()) == sample_rows(project, "2024-02-15")
    fields = pq.read_schema(next(output.glob("year=2024/month=1/*.parquet"))).names
    assert {"hash", "value_eth", "fee_eth", "gas_price_gwei"} <= set(fields)
    assert "receipt_status" not in fields
    # UNLOAD's temporary files and the query results were removed after the load.
    results = project / "data/aws/iris-aws-demo/athena-results"
    assert not results.exists() or not any(p.is_file() for p in results.rglob("*"))
