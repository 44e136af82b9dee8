"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PROJECT = REPO_ROOT / "examples" / "iris"

# No telemetry calls (and no network attempts) from any Kedro command the tests run.
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")


def copy_example_project(destination: Path) -> Path:
    """Copy the reference project without its run outputs; return the copy's path."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).relative_to(EXAMPLE_PROJECT)
        skipped = {n for n in names if n in {"__pycache__", ".telemetry", "spark-warehouse"}}
        if relative == Path("data"):
            skipped |= {n for n in names if n != "01_raw"}
        return skipped

    target = destination / "iris"
    shutil.copytree(EXAMPLE_PROJECT, target, ignore=ignore)
    return target


@pytest.fixture
def iris_project(tmp_path: Path) -> Path:
    """A fresh copy of examples/iris in a temporary directory."""
    return copy_example_project(tmp_path)


@pytest.fixture(scope="session")
def make_iris_project(tmp_path_factory):
    """Make fresh copies of examples/iris from fixtures of any scope: ``make_iris_project("name")``."""
    return lambda name: copy_example_project(tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def spark():
    """A small local Spark session shared by the tests that need real DataFrames."""
    from pyspark.sql import SparkSession

    from kedro_aws.spark.session import build_spark_conf, create_spark_session

    conf = build_spark_conf({"spark.master": "local[1]", "spark.sql.shuffle.partitions": "4"})
    session = create_spark_session(conf, "kedro-aws-tests")
    assert isinstance(session, SparkSession)
    yield session
    session.stop()
