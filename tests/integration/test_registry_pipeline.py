"""train_and_register_model end to end on the local backend, and the `kedro aws registry` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

pytestmark = pytest.mark.integration

KEDRO = Path(sys.executable).parent / "kedro"


def kedro(project: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "COLUMNS": "250"}
    env.pop("KEDRO_ENV", None)
    done = subprocess.run(
        [str(KEDRO), *args], cwd=project, env=env, capture_output=True, text=True, timeout=600
    )
    if ok:
        assert done.returncode == 0, (
            f"kedro {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def recorded_packages(project: Path) -> list[dict]:
    records = sorted((project / "data/09_registry/model_package.json").glob("*/model_package.json"))
    return [json.loads(r.read_text()) | {"_dir": r.parent.name} for r in records]


def test_train_register_approve_and_load(iris_project):
    project = iris_project
    kedro(project, "run", "--pipelines", "train_and_register_model")
    [first] = recorded_packages(project)
    # The versioned dataset links the Kedro save version to the package, and back.
    assert first["kedro_save_version"] == first["_dir"]
    assert first["version"] == 1 and first["approval_status"] == "PendingManualApproval"
    artifact = project / "data/aws/iris-aws-demo/iris/models" / first["_dir"] / "model.tar.gz"
    assert artifact.is_file()
    assert first["model_data_url"].endswith(f"/iris/models/{first['_dir']}/model.tar.gz")

    approved = kedro(project, "aws", "registry", "approve", "iris-classifier", "1", "-d", "ok")
    assert "PendingManualApproval -> Approved" in approved.stdout

    kedro(project, "run", "--pipelines", "train_and_register_model")
    second = recorded_packages(project)[-1]
    assert second["version"] == 2 and second["approval_status"] == "PendingManualApproval"

    listing = kedro(project, "aws", "registry", "list", "iris-classifier").stdout
    assert "PendingManualApproval" in listing and "Approved" in listing
    described = kedro(project, "aws", "registry", "describe", "iris-classifier").stdout
    assert "version 1" in described  # latest Approved, not the newer pending one
    assert first["_dir"] in described  # its metadata names the Kedro save version

    rejected = kedro(project, "aws", "registry", "reject", "iris-classifier", "2")
    assert "PendingManualApproval -> Rejected" in rejected.stdout

    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        catalog = session.load_context().catalog
        model = catalog.load("approved_iris_classifier")
    row = pd.DataFrame(
        [[5.1, 3.5, 1.4, 0.2]],
        columns=["sepal_length", "sepal_width", "petal_length", "petal_width"],
    )
    assert model.predict(row)[0] == "setosa"


def test_registry_cli_errors_are_clear(iris_project):
    missing = kedro(iris_project, "aws", "registry", "approve", "nope", "1", ok=False)
    assert missing.returncode == 1
    assert "Error: Model package group 'nope' does not exist." in missing.stderr
    usage = kedro(iris_project, "aws", "registry", "approve", "iris-classifier", ok=False)
    assert usage.returncode != 0
    assert "Give GROUP VERSION or a model package ARN" in usage.stderr


def test_settings_command_shows_the_env_and_its_spark_properties(iris_project):
    local = kedro(iris_project, "aws", "settings").stdout
    assert "env 'local'" in local and "backend" in local and "local" in local
    assert "spark.sql.shuffle.partitions" in local  # from conf/base/spark.yml
    assert "fs.s3a" not in local  # the local env's catalog has no s3a:// paths
    remote = kedro(iris_project, "aws", "settings", "--env", "aws").stdout
    assert "(catalog uses s3a://)" in remote
    assert "spark.hadoop.fs.s3a.endpoint.region" in remote and "eu-west-1" in remote
    assert "hadoop-aws:3.5.0" in remote  # conf/aws/spark.yml


def test_sample_data_refuses_the_aws_backend_and_bad_dates(iris_project):
    remote = kedro(iris_project, "aws", "sample-data", "eth", "--env", "aws", ok=False)
    assert remote.returncode == 1
    assert "Sample data is generated into the local backend only" in remote.stderr
    assert not (iris_project / "data/aws/aws-public-blockchain").exists()
    bad = kedro(iris_project, "aws", "sample-data", "eth", "--start", "2024-13-01", ok=False)
    assert bad.returncode != 0
    assert "'2024-13-01' is not a YYYY-MM-DD date" in bad.stderr
