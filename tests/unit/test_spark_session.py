"""The Spark session config: defaults, spark.yml precedence, S3A settings from aws.yml."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kedro_aws.config import AwsSettings
from kedro_aws.hooks import is_spark_dataset_type
from kedro_aws.spark.session import (
    S3A_PROFILE_PROVIDER,
    build_spark_conf,
    bundled_hadoop_version,
    has_hadoop_aws,
    s3a_conf,
    uses_s3_paths,
)


def test_defaults_make_a_quiet_local_session_on_loopback():
    conf = build_spark_conf(None)
    assert conf["spark.master"] == "local[*]"
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.log.level"] == "WARN"
    assert conf["spark.driver.bindAddress"] == "127.0.0.1"


def test_spark_yml_wins_and_yaml_scalars_become_spark_strings():
    conf = build_spark_conf(
        {"spark.ui.enabled": True, "spark.sql.shuffle.partitions": 8, "spark.log.level": "ERROR"}
    )
    assert conf["spark.ui.enabled"] == "true"
    assert conf["spark.sql.shuffle.partitions"] == "8"
    assert conf["spark.log.level"] == "ERROR"


def test_cluster_master_gets_no_loopback_binding():
    conf = build_spark_conf({"spark.master": "yarn"})
    assert "spark.driver.bindAddress" not in conf and "spark.driver.host" not in conf


def test_s3a_settings_only_when_the_catalog_uses_s3():
    aws = AwsSettings(region="ap-southeast-1")
    assert not any(k.startswith("spark.hadoop.fs.s3a") for k in build_spark_conf({}, aws))
    conf = build_spark_conf({}, aws, uses_s3=True)
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "ap-southeast-1"
    assert "spark.hadoop.fs.s3a.aws.credentials.provider" not in conf  # default chain


def test_profile_selects_the_profile_provider():
    conf = s3a_conf(AwsSettings(region="eu-west-1", profile="ml-dev"))
    assert conf["spark.hadoop.fs.s3a.aws.credentials.provider"] == S3A_PROFILE_PROVIDER
    assert conf["spark.hadoop.fs.s3a.auth.profile.name"] == "ml-dev"


@pytest.mark.parametrize(
    ("endpoint", "ssl"), [("http://127.0.0.1:5000", "false"), ("https://minio.internal", "true")]
)
def test_endpoint_url_uses_path_style(endpoint, ssl):
    conf = s3a_conf(AwsSettings(endpoint_url=endpoint))
    assert conf["spark.hadoop.fs.s3a.endpoint"] == endpoint
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == ssl


def test_user_s3a_keys_override_derived_ones():
    conf = build_spark_conf(
        {"spark.hadoop.fs.s3a.endpoint.region": "us-west-2"},
        AwsSettings(region="eu-west-1"),
        uses_s3=True,
    )
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "us-west-2"


def test_uses_s3_paths_walks_nested_config():
    assert uses_s3_paths({"a": {"filepath": "data/x"}, "b": [{"p": "s3a://b/k"}]})
    assert uses_s3_paths({"a": {"filepath": "s3://b/k"}})
    assert not uses_s3_paths({"a": {"filepath": "data/s3a://"}, "n": 3, "none": None})


def test_hadoop_aws_detection_and_bundled_version():
    version = bundled_hadoop_version()
    assert version is not None and version.split(".")[0] == "3"
    assert has_hadoop_aws({"spark.jars.packages": f"org.apache.hadoop:hadoop-aws:{version}"})
    assert not has_hadoop_aws({})  # plain PySpark ships no hadoop-aws jar


@pytest.mark.parametrize(
    ("type_name", "expected"),
    [
        ("kedro_datasets.spark.spark_dataset.SparkDataset", True),
        ("kedro_datasets.spark.SparkDatasetV2", True),
        ("my_pkg.datasets.MySparkTableDataset", True),
        ("kedro_datasets.pandas.csv_dataset.CSVDataset", False),
        ("kedro.io.memory_dataset.MemoryDataset", False),
        (None, False),
    ],
)
def test_spark_dataset_detection(type_name, expected):
    assert is_spark_dataset_type(type_name) is expected


HOOK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from kedro.pipeline import Pipeline
    from pyspark.sql import SparkSession
    from kedro_aws.hooks import hooks

    project = sys.argv[1]
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        context = session.load_context()
        catalog = context.catalog
        result = {}
        hooks.before_pipeline_run(run_params={}, pipeline=Pipeline([]), catalog=catalog)
        result["started_for_non_spark_pipeline"] = SparkSession.getActiveSession() is not None
        hooks.before_pipeline_run(run_params={}, pipeline=pipelines["__default__"], catalog=catalog)
        spark = SparkSession.getActiveSession()
        result["partitions"] = spark.conf.get("spark.sql.shuffle.partitions")
        result["ui"] = spark.conf.get("spark.ui.enabled")
        result["app"] = spark.sparkContext.appName
        hooks.after_pipeline_run()
        result["stopped"] = SparkSession.getActiveSession() is None
    print("RESULT" + json.dumps(result))
    """
)


def test_hook_starts_spark_from_spark_yml_only_for_spark_pipelines_and_stops_it(iris_project: Path):
    # A pipeline without Spark datasets must not pay for a JVM; spark.yml must reach Spark.
    (iris_project / "conf" / "base" / "spark.yml").write_text("spark.sql.shuffle.partitions: 3\n")
    # A fresh interpreter: no Spark session from other tests can be reused.
    done = subprocess.run(
        [sys.executable, "-c", HOOK_SCRIPT, str(iris_project)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=iris_project,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT", 1)[1])
    assert result == {
        "started_for_non_spark_pipeline": False,
        "partitions": "3",
        "ui": "false",
        "app": "iris",
        "stopped": True,
    }
