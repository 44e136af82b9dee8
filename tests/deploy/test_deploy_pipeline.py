"""End to end: ``kedro run --pipelines deploy_model`` on the local backend, in a copy of the example.

The registry is prepared the way train_and_register_model leaves it (an archive on local S3,
versions in the group), with the public packaging API and plain registry calls, so this test
exercises deploy_model alone: version 1 is Approved, version 2 is newer but still pending and
predicts a constant, so any mix-up between "latest" and "latest Approved" shows in the output.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sklearn
from sklearn.dummy import DummyClassifier
from sklearn.tree import DecisionTreeClassifier

from kedro_aws.clients import client
from kedro_aws.sagemaker import (
    build_model_archive,
    framework_version_for_sklearn,
    pin_requirements,
    sklearn_image_uri,
    upload_model_archive,
)

pytestmark = pytest.mark.integration

KEDRO = Path(sys.executable).parent / "kedro"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
REGION, BUCKET, GROUP = "eu-west-1", "iris-aws-demo", "iris-classifier"  # conf/*/aws.yml, params
BROKEN_GROUP = "iris-broken"
BROKEN_MODULE = """
import os
import joblib

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))

def input_fn(body, content_type):
    raise ValueError("iris-broken refuses every request")
"""


def kedro_run(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "COLUMNS": "250"}
    env.pop("KEDRO_ENV", None)
    return subprocess.run(
        [str(KEDRO), "run", "--pipelines", "deploy_model", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def succeeded(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"kedro run failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


def register(
    sm: Any, s3: Any, model: Any, module: Path, build_dir: Path, *, status: str, group: str
) -> str:
    """Package ``model`` with ``module``, upload it and register it in ``group``."""
    version = build_dir.name
    archive = build_model_archive(
        model, module, build_dir, requirements=pin_requirements(["pyarrow"])
    )
    artifact = upload_model_archive(
        s3, archive, bucket=BUCKET, prefix=f"{group}/models", save_version=version
    )
    framework = framework_version_for_sklearn(sklearn.__version__)
    return sm.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [
                {
                    "Image": sklearn_image_uri(REGION, framework),
                    "ModelDataUrl": artifact.s3_uri,
                    "Environment": artifact.container_environment(REGION),
                    "Framework": "SKLEARN",
                    "FrameworkVersion": framework,
                }
            ],
            "SupportedContentTypes": ["text/csv", "application/x-parquet"],
            "SupportedResponseMIMETypes": ["text/csv", "application/x-parquet"],
        },
        CustomerMetadataProperties={"sha256": artifact.sha256},
    )["ModelPackageArn"]


@pytest.fixture(scope="module")
def deployed(make_iris_project, tmp_path_factory):
    """A project copy with a prepared registry, after one successful deploy_model run."""
    project = make_iris_project("deploy")
    root = project / "data" / "aws"  # local_root in conf/base/aws.yml
    sm = client("sagemaker", backend="local", root=root, region=REGION)
    s3 = client("s3", backend="local", root=root, region=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})

    iris = pd.read_csv(project / "data" / "01_raw" / "iris.csv")
    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(iris[FEATURES], iris["species"])
    constant = DummyClassifier(strategy="constant", constant="virginica").fit(
        iris[FEATURES], iris["species"]
    )
    module = project / "src" / "iris_aws" / "serving" / "inference.py"
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    build = tmp_path_factory.mktemp("build")
    approved = register(sm, s3, tree, module, build / "v1", status="Approved", group=GROUP)
    pending = register(
        sm, s3, constant, module, build / "v2", status="PendingManualApproval", group=GROUP
    )

    broken_module = build / "broken" / "inference.py"
    broken_module.parent.mkdir()
    broken_module.write_text(textwrap.dedent(BROKEN_MODULE))
    sm.create_model_package_group(ModelPackageGroupName=BROKEN_GROUP)
    register(sm, s3, tree, broken_module, build / "v3", status="Approved", group=BROKEN_GROUP)

    done = succeeded(kedro_run(project))
    return {
        "project": project,
        "sm": sm,
        "s3": s3,
        "tree": tree,
        "iris": iris,
        "approved": approved,
        "pending": pending,
        "done": done,
    }


def only_version(path: Path) -> Path:
    """The single saved version of a versioned Kedro dataset ``path``."""
    versions = sorted(path.iterdir())
    assert len(versions) == 1, versions
    return versions[0] / path.name


def read_report(project: Path) -> dict[str, Any]:
    path = only_version(project / "data/08_reporting/iris_batch_transform_report.json")
    return json.loads(path.read_text())


def test_predictions_come_from_the_latest_approved_package_joined_to_their_inputs(deployed):
    project, iris, tree = deployed["project"], deployed["iris"], deployed["tree"]
    path = only_version(project / "data/07_model_output/iris_predictions.parquet")
    predictions = pd.read_parquet(path)

    assert list(predictions.columns) == [*FEATURES, "prediction"]
    pd.testing.assert_frame_equal(predictions[FEATURES], iris[FEATURES])
    # The tree's labels, not the pending constant model's all-"virginica".
    assert predictions["prediction"].tolist() == tree.predict(iris[FEATURES]).tolist()
    assert predictions["prediction"].nunique() == 3


def test_report_names_the_package_the_model_and_a_completed_job_per_format(deployed):
    report = read_report(deployed["project"])
    sm = deployed["sm"]

    assert report["model_package_arn"] == deployed["approved"]
    model = sm.describe_model(ModelName=report["model_name"])
    assert model["PrimaryContainer"]["ModelPackageName"] == deployed["approved"]
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"

    assert set(report["jobs"]) == {"parquet", "csv"}
    for fmt, job in report["jobs"].items():
        described = sm.describe_transform_job(TransformJobName=job["name"])
        assert described["TransformJobStatus"] == "Completed"
        assert described["ModelName"] == report["model_name"]
        assert job["output"].endswith(f"/output/{fmt}/iris.{fmt}.out")


def test_scoring_input_is_features_only_and_csv_has_no_header(deployed):
    report, s3, iris = read_report(deployed["project"]), deployed["s3"], deployed["iris"]

    def read(uri: str) -> bytes:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    csv_lines = read(report["jobs"]["csv"]["input"] + "iris.csv").decode().splitlines()
    assert len(csv_lines) == len(iris)
    assert csv_lines[0] == ",".join(str(v) for v in iris.loc[0, FEATURES])

    parquet = pd.read_parquet(io.BytesIO(read(report["jobs"]["parquet"]["input"] + "iris.parquet")))
    pd.testing.assert_frame_equal(parquet, iris[FEATURES])


def test_pinning_an_unapproved_version_fails_before_creating_anything(deployed):
    project, sm = deployed["project"], deployed["sm"]
    models_before = sm.list_models()["Models"]

    done = kedro_run(project, "--params", "deploy_model.model_package=2")

    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert f"{deployed['pending']} is PendingManualApproval, not Approved" in output
    assert sm.list_models()["Models"] == models_before


def test_failed_transform_job_fails_the_node_with_the_reason(deployed):
    project = deployed["project"]

    done = kedro_run(
        project, "--params", f"deploy_model.model_package_group={BROKEN_GROUP},deploy_model.formats=[csv]"
    )  # fmt: skip

    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "TransformJobFailedError" in output
    assert "iris-broken refuses every request" in output
    assert "/aws/sagemaker/TransformJobs" in output
