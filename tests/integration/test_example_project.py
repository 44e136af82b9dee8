"""End to end: `kedro run` the reference project in a temporary copy and check what it wrote."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration

KEDRO = Path(sys.executable).parent / "kedro"
MAX_RECORDS_PER_FILE = 4  # examples/iris/conf/base/globals.yml
SPARK_FILE = re.compile(r"part-(\d+)-[0-9a-f-]+\.c\d+(\.\w+)?\.parquet")


def kedro_run(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "COLUMNS": "250"}
    env.pop("KEDRO_ENV", None)
    done = subprocess.run(
        [str(KEDRO), "run", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (
        f"kedro run {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    )
    return done


def singapore_yesterday() -> date:
    return datetime.now(ZoneInfo("Asia/Singapore")).date() - timedelta(days=1)


def rows_per_month(project: Path) -> Counter:
    with (project / "data" / "01_raw" / "iris.csv").open() as f:
        return Counter(
            (int(r["measured_on"][:4]), int(r["measured_on"][5:7])) for r in csv.DictReader(f)
        )


def partition_dirs(output: Path) -> dict[tuple[int, int], list[Path]]:
    found: dict[tuple[int, int], list[Path]] = {}
    for year_dir in output.glob("year=*"):
        for month_dir in year_dir.glob("month=*"):
            key = (int(year_dir.name.split("=")[1]), int(month_dir.name.split("=")[1]))
            found[key] = sorted(month_dir.glob("part-*.parquet"))
    return found


@pytest.fixture(scope="module")
def default_run(make_iris_project) -> tuple[Path, subprocess.CompletedProcess, date]:
    project = make_iris_project("default")
    before = singapore_yesterday()
    done = kedro_run(project)
    after = singapore_yesterday()
    run_date = (
        before
        if (project / "data/02_intermediate/nightly" / before.isoformat()).exists()
        else after
    )
    return project, done, run_date


def test_default_run_writes_the_globals_partition_scheme_under_yesterdays_prefix(default_run):
    project, done, run_date = default_run
    nightly = project / "data" / "02_intermediate" / "nightly"
    # The prefix is yesterday in Asia/Singapore (globals.yml), whatever the machine's timezone.
    assert [p.name for p in nightly.iterdir()] == [run_date.isoformat()]
    output = nightly / run_date.isoformat() / "iris_parsed"
    dirs = partition_dirs(output)
    expected = rows_per_month(project)
    assert set(dirs) == set(expected)  # one year=/month= directory per month present in the data

    total = 0
    for key, files in dirs.items():
        counts = [pq.read_metadata(f).num_rows for f in files]
        total += sum(counts)
        assert sum(counts) == expected[key]
        assert max(counts) <= MAX_RECORDS_PER_FILE  # maxRecordsPerFile from globals
        # repartition_by(year, month): one task wrote the whole directory, so it holds exactly
        # ceil(rows / maxRecordsPerFile) files, all from the same task.
        assert len(files) == math.ceil(expected[key] / MAX_RECORDS_PER_FILE)
        assert len({SPARK_FILE.match(f.name).group(1) for f in files}) == 1
    assert total == 150


def test_default_run_trains_and_reports(default_run):
    project, done, run_date = default_run
    metrics_path = (
        project / "data/08_reporting/nightly" / run_date.isoformat() / "iris_metrics.json"
    )
    metrics = json.loads(metrics_path.read_text())
    assert 0.8 <= metrics["accuracy"] <= 1.0
    assert set(metrics["per_class"]) >= {"setosa", "versicolor", "virginica"}
    assert metrics["test_rows"] > 0
    assert any((project / "data/06_models/iris_classifier.pkl").iterdir())  # versioned model
    log = done.stdout + done.stderr
    assert "Model accuracy on" in log
    assert "Pipeline execution completed successfully" in log


def test_params_override_backfills_a_date_and_changes_the_repartitioning(iris_project):
    project = iris_project
    kedro_run(
        project,
        "--params",
        "run_date=2020-01-31,parse.repartition_columns=sepal_length,parse.num_partitions=3",
    )
    nightly = project / "data" / "02_intermediate" / "nightly"
    assert [p.name for p in nightly.iterdir()] == ["2020-01-31"]
    assert (project / "data/08_reporting/nightly/2020-01-31/iris_metrics.json").exists()
    dirs = partition_dirs(nightly / "2020-01-31" / "iris_parsed")
    assert set(dirs) == set(rows_per_month(project))  # the on-disk scheme still comes from globals
    tasks_per_dir = [
        len({SPARK_FILE.match(f.name).group(1) for f in files}) for files in dirs.values()
    ]
    # Hashing by sepal_length into 3 partitions spreads a month over several tasks.
    assert max(tasks_per_dir) > 1
    for files in dirs.values():
        assert max(pq.read_metadata(f).num_rows for f in files) <= MAX_RECORDS_PER_FILE


def test_bad_partition_parameter_fails_the_run_before_writing(iris_project):
    project = iris_project
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "COLUMNS": "250"}
    done = subprocess.run(
        [str(KEDRO), "run", "--params", "parse.repartition_columns=yaer"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0
    log = re.sub(r"\s+", " ", done.stdout + done.stderr)
    assert "node 'parse_iris_node'" in log
    assert "['yaer']" in log
    assert "parameter 'parse.repartition_columns' (env 'local')" in log
    assert not (project / "data" / "02_intermediate").exists()
