"""Fixtures for the deploy workflow: moto's SageMaker, a stubbed one, and registered packages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

REGION = "eu-west-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
GROUP = "iris-classifier"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
PACKAGE_ENV = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
    "SAGEMAKER_REGION": REGION,
}


@pytest.fixture(autouse=True)
def aws_environment(aws_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite-wide dummy credentials (tests/conftest.py), in this suite's region."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def sm() -> Iterator[Any]:
    """A boto3 SageMaker client on moto (records requests, never runs jobs)."""
    with mock_aws():
        yield boto3.client("sagemaker", region_name=REGION)


@pytest.fixture
def stubbed_sm() -> Iterator[tuple[Any, Stubber]]:
    """A boto3 SageMaker client whose responses are queued with botocore's Stubber.

    The Stubber checks every request against ``expected_params`` exactly, and ``assert_no_
    pending_responses`` at teardown proves every queued call was made.
    """
    sm = boto3.client("sagemaker", region_name=REGION)
    with Stubber(sm) as stubber:
        yield sm, stubber
        stubber.assert_no_pending_responses()


def register_package(
    sm: Any, status: str, *, group: str = GROUP, environment: dict[str, str] | None = None
) -> str:
    """Register a version in ``group`` (created if missing); return its ARN."""
    try:
        sm.create_model_package_group(ModelPackageGroupName=group)
    except sm.exceptions.ClientError:
        pass  # the group exists
    return sm.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [
                {
                    "Image": IMAGE,
                    "ModelDataUrl": "s3://iris-aws-demo/iris/models/v/model.tar.gz",
                    "Environment": PACKAGE_ENV if environment is None else environment,
                }
            ],
            "SupportedContentTypes": ["text/csv", "application/x-parquet"],
            "SupportedResponseMIMETypes": ["text/csv", "application/x-parquet"],
        },
    )["ModelPackageArn"]


def describe_response(job_name: str, status: str, reason: str | None = None) -> dict[str, Any]:
    """A ``DescribeTransformJob`` response with every required member (Stubber validates)."""
    response = {
        "TransformJobName": job_name,
        "TransformJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:transform-job/{job_name}",
        "TransformJobStatus": status,
        "ModelName": "iris-model",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}}
        },
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "CreationTime": datetime(2026, 11, 26, tzinfo=timezone.utc),
    }
    if reason is not None:
        response["FailureReason"] = reason
    return response
