"""kedro_aws.clients.client: backend selection and settings precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedro_aws.clients import client
from kedro_aws.config import AwsSettings, AwsSettingsError
from kedro_aws.local.s3 import LocalS3Client
from kedro_aws.local.sagemaker import LocalSageMakerClient


@pytest.fixture(autouse=True)
def outside_any_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no Kedro project here, so no aws.yml is read


def test_aws_backend_returns_a_boto3_client_with_region_and_endpoint():
    s3 = client("s3", backend="aws", region="eu-west-1", endpoint_url="http://127.0.0.1:9")
    assert type(s3).__module__ == "botocore.client"
    assert s3.meta.region_name == "eu-west-1"
    assert s3.meta.endpoint_url == "http://127.0.0.1:9"


def test_local_backend_returns_local_clients_rooted_where_asked(tmp_path: Path):
    s3 = client("s3", backend="local", root=tmp_path / "state", region="eu-west-1")
    sm = client("sagemaker", backend="local", root=tmp_path / "state")
    assert isinstance(s3, LocalS3Client)
    assert isinstance(sm, LocalSageMakerClient)
    assert s3.root == (tmp_path / "state").resolve()
    assert s3.meta.region_name == "eu-west-1"


def test_unknown_local_service_names_the_supported_ones(tmp_path: Path):
    with pytest.raises(
        ValueError, match=r"no 'kinesis' client.*\['athena', 'glue', 's3', 'sagemaker'\]"
    ):
        client("kinesis", backend="local", root=tmp_path)


def test_settings_fill_what_arguments_leave_out(tmp_path: Path):
    settings = AwsSettings(backend="local", region="ap-south-1", local_root=tmp_path / "conf-root")

    from_settings = client("s3", settings=settings)
    overridden = client("s3", settings=settings, region="eu-central-1", root=tmp_path / "arg")

    assert isinstance(from_settings, LocalS3Client)
    assert from_settings.meta.region_name == "ap-south-1"
    assert from_settings.root == (tmp_path / "conf-root").resolve()
    assert overridden.meta.region_name == "eu-central-1"
    assert overridden.root == (tmp_path / "arg").resolve()
    assert client("s3", settings=settings, backend="aws").meta.region_name == "ap-south-1"


def test_environment_region_applies_without_settings(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "sa-east-1")
    assert client("s3", backend="aws").meta.region_name == "sa-east-1"


def test_default_local_root_is_data_aws_of_the_working_directory(tmp_path: Path):
    assert client("s3", backend="local").root == (tmp_path / "data" / "aws").resolve()


def test_invalid_backend_is_refused():
    with pytest.raises(AwsSettingsError, match="'azure'"):
        client("s3", backend="azure")
