"""kedro_aws.client() inside a Kedro project: aws.yml of the env decides the backend."""

from __future__ import annotations

import botocore.client
import pytest

from kedro_aws import client, run_state
from kedro_aws.config import AwsSettings
from kedro_aws.local.s3 import LocalS3Client


@pytest.fixture(autouse=True)
def _no_session():
    run_state.set_session_params(None)
    yield
    run_state.set_session_params(None)


def test_default_env_uses_the_local_backend_under_the_project(iris_project, monkeypatch):
    monkeypatch.chdir(iris_project)
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    s3 = client("s3")
    assert isinstance(s3, LocalS3Client)
    assert s3.root == (iris_project / "data" / "aws").resolve()
    assert s3.meta.region_name == "eu-west-1"  # conf/base/aws.yml


def test_kedro_env_aws_gives_a_boto3_client_and_arguments_still_win(iris_project, monkeypatch):
    monkeypatch.chdir(iris_project)
    monkeypatch.setenv("KEDRO_ENV", "aws")
    s3 = client("s3")
    assert isinstance(s3, botocore.client.BaseClient)
    assert s3.meta.region_name == "eu-west-1"
    assert client("s3", region="ap-southeast-1").meta.region_name == "ap-southeast-1"
    assert isinstance(client("s3", backend="local", root=iris_project / "x"), LocalS3Client)


def test_a_running_session_settings_win_over_the_env_variable(iris_project, monkeypatch, tmp_path):
    monkeypatch.chdir(iris_project)
    monkeypatch.setenv("KEDRO_ENV", "aws")
    session_settings = AwsSettings(backend="local", region="us-west-2", local_root=tmp_path / "r")
    run_state.set_session_params(
        run_state.SessionParams(params={}, env="local", aws_settings=session_settings)
    )
    s3 = client("s3")
    assert isinstance(s3, LocalS3Client)
    assert (s3.root, s3.meta.region_name) == ((tmp_path / "r").resolve(), "us-west-2")


def test_credentials_dict_sets_backend_and_keys_and_rejects_unknown_keys(tmp_path):
    local = client(
        "s3", credentials={"backend": "local", "root": str(tmp_path), "region": "ap-south-1"}
    )
    assert isinstance(local, LocalS3Client) and local.meta.region_name == "ap-south-1"
    remote = client(
        "s3",
        credentials={
            "backend": "aws",
            "region": "eu-west-1",
            "aws_access_key_id": "AKIDEXAMPLE",
            "aws_secret_access_key": "secret",
        },
    )
    assert remote._request_signer._credentials.access_key == "AKIDEXAMPLE"
    with pytest.raises(ValueError, match=r"Unknown credentials key\(s\) \['password'\]"):
        client("s3", credentials={"password": "x"})
