"""Fixtures for the transform tests: a local backend with a bucket, and models built end to end.

``LocalBackend.make_model(code)`` goes the whole way a deployment goes: build ``model.tar.gz`` with the
packaging module, upload it, register it as a version in the local Model Registry (with its
SHA-256 in the package metadata), approve it, and create a SageMaker model from the package.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import WaiterError
from moto import mock_aws

from kedro_aws.clients import client
from kedro_aws.sagemaker.packaging import build_model_archive, upload_model_archive

REGION = "us-east-1"
BUCKET = "scoring-data"
ROLE = "arn:aws:iam::123456789012:role/sagemaker-execution"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
INSTANCE = {"InstanceType": "ml.m5.large", "InstanceCount": 1}

# Sums each row; no scikit-learn import, so workers start instantly. Accepts a single record
# (1-D) too, so SingleRecord jobs work; the default input_fn/output_fn are the container's.
SUM_MODULE = """
import numpy as np

class RowSum:
    def predict(self, data):
        return np.atleast_2d(data).sum(axis=1)

def model_fn(model_dir):
    return RowSum()
"""

#: Ends an inference module that defines ``report() -> str``: every request is answered with
#: that one line, computed in the worker (its environment, thread pools, process tree...).
ANSWERS_WITH_REPORT = """
def model_fn(model_dir):
    return None

def transform_fn(model, body, content_type, accept):
    return report() + "\\n", accept
"""


class LocalBackend:
    """Local S3 + SageMaker under one root, with the steps a deployment takes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.s3 = client("s3", backend="local", root=root, region=REGION)
        self.s3.create_bucket(Bucket=BUCKET)
        self.sm = client("sagemaker", backend="local", root=root, region=REGION)
        self._count = 0

    def register_package(self, code: str = SUM_MODULE, model: Any = None, approve: bool = True):
        """Build, upload and register a package from inference ``code``; returns its ARN."""
        self._count += 1
        n = self._count
        module = self.root.parent / f"src{n}" / "inference.py"
        module.parent.mkdir(parents=True)
        module.write_text(textwrap.dedent(code))
        archive = build_model_archive(
            model if model is not None else {"kind": "row-sum"}, module, module.parent / "build"
        )
        artifact = upload_model_archive(
            self.s3, archive, bucket=BUCKET, prefix="models", save_version=f"v{n}"
        )
        groups = self.sm.list_model_package_groups(NameContains="scoring")
        if not groups["ModelPackageGroupSummaryList"]:
            self.sm.create_model_package_group(ModelPackageGroupName="scoring")
        arn = self.sm.create_model_package(
            ModelPackageGroupName="scoring",
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": IMAGE,
                        "ModelDataUrl": artifact.s3_uri,
                        "Environment": artifact.container_environment(REGION),
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            CustomerMetadataProperties={"sha256": artifact.sha256},
        )["ModelPackageArn"]
        if approve:
            self.sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
        return arn

    def make_model(self, code: str = SUM_MODULE, model: Any = None, environment=None) -> str:
        """Register, approve and create a model from inference ``code``; returns its name."""
        arn = self.register_package(code, model)
        name = f"model-{self._count}"
        container: dict[str, Any] = {"ModelPackageName": arn}
        if environment:
            container["Environment"] = environment
        self.sm.create_model(ModelName=name, PrimaryContainer=container, ExecutionRoleArn=ROLE)
        return name

    def put_inputs(self, prefix: str, files: dict[str, bytes]) -> str:
        """Write ``{relative key: bytes}`` under ``prefix``; returns ``s3://<bucket>/<prefix>/``."""
        for relative, body in files.items():
            self.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{relative}", Body=body)
        return f"s3://{BUCKET}/{prefix}/"

    def read_outputs(self, prefix: str) -> dict[str, bytes]:
        """Every object under ``prefix``, by key relative to it."""
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}/").get("Contents", [])
        return {
            item["Key"][len(prefix) + 1 :]: self.s3.get_object(Bucket=BUCKET, Key=item["Key"])[
                "Body"
            ].read()
            for item in listing
        }

    def run_job(self, name: str, model: str, input_uri: str, output: str, **overrides: Any):
        """Create a transform job, wait for it with the boto3 waiter, return its description."""
        self.sm.create_transform_job(**job_request(name, model, input_uri, output, **overrides))
        wait(self.sm, name)
        return self.sm.describe_transform_job(TransformJobName=name)


@pytest.fixture
def moto_sm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """boto3 on moto's in-process mock, with dummy credentials (moto records, never runs, jobs)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield client("sagemaker", backend="aws", region=REGION)


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(tmp_path / "aws")


@pytest.fixture
def root(backend: LocalBackend) -> Path:
    return backend.root


@pytest.fixture
def s3(backend: LocalBackend) -> Any:
    return backend.s3


@pytest.fixture
def sm(backend: LocalBackend) -> Any:
    return backend.sm


@pytest.fixture
def register_package(backend: LocalBackend) -> Callable[..., str]:
    return backend.register_package


@pytest.fixture
def make_model(backend: LocalBackend) -> Callable[..., str]:
    return backend.make_model


@pytest.fixture
def put_inputs(backend: LocalBackend) -> Callable[[str, dict[str, bytes]], str]:
    return backend.put_inputs


@pytest.fixture
def read_outputs(backend: LocalBackend) -> Callable[[str], dict[str, bytes]]:
    return backend.read_outputs


@pytest.fixture
def run_job(backend: LocalBackend) -> Callable[..., dict[str, Any]]:
    return backend.run_job


def job_request(name: str, model: str, input_uri: str, output: str, **overrides: Any) -> dict:
    """A CreateTransformJob request; ``overrides`` may hold TransformInput/Output fields."""
    transform_input = {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
        "ContentType": "text/csv",
        "SplitType": "Line",
    }
    transform_output = {
        "S3OutputPath": f"s3://{BUCKET}/{output}/",
        "Accept": "text/csv",
        "AssembleWith": "Line",
    }
    for field in ("ContentType", "SplitType", "CompressionType", "DataSource"):
        if field in overrides:
            transform_input[field] = overrides.pop(field)
    for field in ("Accept", "AssembleWith"):
        if field in overrides:
            transform_output[field] = overrides.pop(field)
    request = {
        "TransformJobName": name,
        "ModelName": model,
        "TransformInput": {k: v for k, v in transform_input.items() if v is not None},
        "TransformOutput": {k: v for k, v in transform_output.items() if v is not None},
        "TransformResources": dict(INSTANCE),
        "BatchStrategy": "MultiRecord",
    }
    request.update(overrides)
    return {k: v for k, v in request.items() if v is not None}


def wait(sm: Any, name: str) -> None:
    """The waiter; a Failed job makes it raise, which the tests check through describe."""
    waiter = sm.get_waiter("transform_job_completed_or_stopped")
    try:
        waiter.wait(TransformJobName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 1200})
    except WaiterError as exc:
        if "Failed" not in str(exc):
            raise
