"""Registry workflow and ModelPackageDataset, one suite on every backend (local, moto, moto server)."""

from __future__ import annotations

import json

import pytest
from kedro.io import DatasetError

from kedro_aws.datasets import ModelPackageDataset
from kedro_aws.sagemaker.images import SklearnVersionMismatchError
from kedro_aws.sagemaker.packaging import ArtifactUploadError
from kedro_aws.sagemaker.registry import (
    SHA256_PROPERTY,
    RegistryError,
    customer_metadata,
    latest_approved,
    list_packages,
    register_sklearn_model,
    resolve_package,
    set_approval,
)

from .conftest import FEATURES, INFERENCE_MODULE

REGION = "eu-west-1"
BUCKET = "registry-tests"
# moto lowercases group names in package ARNs while AWS keeps the case; a lowercase name keeps
# the assertions identical on every backend.
GROUP = "iris-classifier"


@pytest.fixture
def clients(make_client):
    s3 = make_client("s3", region=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return make_client("sagemaker", region=REGION), s3


def register(clients, model, save_version, **overrides):
    sm, s3 = clients
    arguments = dict(
        sm=sm,
        s3=s3,
        group=GROUP,
        bucket=BUCKET,
        prefix="iris/models",
        save_version=save_version,
        inference_module=str(INFERENCE_MODULE),
        region=REGION,
        metrics={"accuracy": 0.95},
        lineage={"kedro_session_id": save_version, "git_commit": "abc123"},
    )
    arguments.update(overrides)
    return register_sklearn_model(model, **arguments)


def test_registration_creates_the_group_and_never_approves(clients, iris_model):
    sm, s3 = clients
    first = register(clients, iris_model, "2026-01-01T00.00.00.000Z")
    second = register(clients, iris_model, "2026-01-02T00.00.00.000Z")
    assert (first.version, second.version) == (1, 2)
    assert first.status == second.status == "PendingManualApproval"
    assert first.arn.endswith(f":model-package/{GROUP}/1")
    assert (
        first.model_data_url == f"s3://{BUCKET}/iris/models/2026-01-01T00.00.00.000Z/model.tar.gz"
    )
    assert len(first.sha256) == 64
    assert first.metadata["kedro_session_id"] == "2026-01-01T00.00.00.000Z"
    assert first.metadata["sklearn_version"].count(".") == 2
    assert first.environment["SAGEMAKER_PROGRAM"] == "inference.py"
    assert first.environment["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert "sagemaker-scikit-learn" in first.image

    described = sm.describe_model_package(ModelPackageName=first.arn)
    metrics_uri = described["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    key = metrics_uri.removeprefix(f"s3://{BUCKET}/")
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()) == {"accuracy": 0.95}
    assert described["MetadataProperties"]["CommitId"] == "abc123"
    assert [p.version for p in list_packages(sm, GROUP)] == [2, 1]


def test_a_retried_run_does_not_register_twice(clients, iris_model, backend):
    first = register(clients, iris_model, "2026-01-01T00.00.00.000Z")
    if backend != "local":
        return  # moto ignores ClientToken (tested on the local backend, as AWS documents it)
    again = register(clients, iris_model, "2026-01-01T00.00.00.000Z")
    assert again.arn == first.arn


def test_approval_is_explicit_and_latest_approved_follows_it(clients, iris_model):
    sm, _ = clients
    one = register(clients, iris_model, "2026-01-01T00.00.00.000Z")
    two = register(clients, iris_model, "2026-01-02T00.00.00.000Z")
    with pytest.raises(
        RegistryError,
        match=f"No Approved model package in group '{GROUP}': found version "
        r"1 \(PendingManualApproval\), 2 \(PendingManualApproval\)",
    ):
        latest_approved(sm, GROUP)
    assert set_approval(sm, one.arn, "Approved", "checked").status == "Approved"
    assert latest_approved(sm, GROUP).version == 1
    set_approval(sm, two.arn, "Approved")
    assert latest_approved(sm, GROUP).version == 2
    set_approval(sm, two.arn, "Rejected")
    assert resolve_package(sm, GROUP).version == 1
    assert resolve_package(sm, GROUP, version=2).status == "Rejected"
    assert resolve_package(sm, arn=one.arn).version == 1
    assert resolve_package(sm, GROUP, version="latest").version == 2  # newest, any status


def test_bad_requests_name_what_was_wrong(clients, iris_model):
    sm, _ = clients
    package = register(clients, iris_model, "2026-01-01T00.00.00.000Z")
    with pytest.raises(RegistryError, match="Invalid approval status 'approved'"):
        set_approval(sm, package.arn, "approved")
    with pytest.raises(RegistryError, match="'nope' does not exist"):
        latest_approved(sm, "nope")
    with pytest.raises(RegistryError, match="has no version 7; versions: 1"):
        resolve_package(sm, GROUP, version=7)
    with pytest.raises(RegistryError, match="No model package"):
        resolve_package(sm, arn=package.arn[:-1] + "9")
    with pytest.raises(RegistryError, match="Version must be a number"):
        resolve_package(sm, GROUP, version="newest")


def test_an_upload_failing_midway_registers_nothing(clients, iris_model):
    sm, s3 = clients

    original_put = s3.put_object

    def put_object(**request):  # reads part of the archive, then the connection breaks
        if request["Key"].endswith("model.tar.gz"):
            body = request["Body"]
            body.read(100)
            raise ConnectionResetError("connection reset during upload")
        return original_put(**request)

    s3.put_object = put_object
    with pytest.raises(ConnectionResetError):
        register(clients, iris_model, "2026-01-01T00.00.00.000Z")
    assert list_packages(sm, GROUP) == []


def test_an_incompatible_sklearn_version_is_refused_unless_overridden(clients, iris_model):
    sm, s3 = clients
    with pytest.raises(SklearnVersionMismatchError):
        register(clients, iris_model, "2026-01-01T00.00.00.000Z", framework_version="1.2-1")
    assert not s3.list_objects_v2(Bucket=BUCKET).get("Contents")  # nothing uploaded either
    package = register(
        clients,
        iris_model,
        "2026-01-01T00.00.00.000Z",
        framework_version="1.2-1",
        allow_version_mismatch=True,
    )
    assert package.image.endswith("sagemaker-scikit-learn:1.2-1-cpu-py3")


def test_a_different_artifact_never_overwrites_a_saved_version(clients, iris_model, iris_frame):
    from sklearn.dummy import DummyClassifier

    register(clients, iris_model, "2026-01-01T00.00.00.000Z")
    other = DummyClassifier().fit(iris_frame[FEATURES], iris_frame["species"])
    with pytest.raises(ArtifactUploadError, match="already exists with a different artifact"):
        register(clients, other, "2026-01-01T00.00.00.000Z")


def test_metadata_limits_are_checked_with_the_key_named():
    with pytest.raises(RegistryError, match="at most 50"):
        customer_metadata({f"k{i}": i for i in range(51)})
    with pytest.raises(RegistryError, match="Metadata value of 'note' has 300 characters"):
        customer_metadata({"note": "x" * 300})
    assert customer_metadata({"a": 1, "b": None}) == {"a": "1"}


def dataset_args(backend, make_client):
    """ModelPackageDataset takes client settings, not clients: rebuild them per backend."""
    sm = make_client("sagemaker", region=REGION)
    return {
        "backend": "local" if backend == "local" else "aws",
        "region": REGION,
        **({"root": sm.root} if backend == "local" else {}),
        **({"endpoint_url": sm.meta.endpoint_url} if backend == "moto-server" else {}),
    }


def test_dataset_loads_the_latest_approved_model_and_verifies_it(
    clients, iris_model, iris_frame, backend, make_client
):
    sm, s3 = clients
    package = register(clients, iris_model, "2026-01-01T00.00.00.000Z")
    args = dataset_args(backend, make_client)
    with pytest.raises(DatasetError, match="No Approved model package"):
        ModelPackageDataset(model_package_group=GROUP, client_args=args).load()
    pinned = ModelPackageDataset(model_package_group=GROUP, version=1, client_args=args)
    model = pinned.load()
    assert list(model.predict(iris_frame[FEATURES].head(3))) == list(
        iris_model.predict(iris_frame[FEATURES].head(3))
    )
    assert pinned.last_package.arn == package.arn

    # Tamper with the archive after registration: loading must refuse it.
    key = package.model_data_url.removeprefix(f"s3://{BUCKET}/")
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"not the registered archive")
    with pytest.raises(DatasetError, match="Checksum mismatch"):
        pinned.load()


def test_dataset_latest_approved_on_the_local_backend(
    tmp_path, iris_model, iris_frame, make_local_client
):
    # Local only: moto's update_model_package drops CustomerMetadataProperties (and with them
    # the recorded SHA-256) when an update does not repeat them; AWS merges them.
    sm, s3 = make_local_client("sagemaker", region=REGION), make_local_client("s3", region=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    package = register((sm, s3), iris_model, "2026-01-01T00.00.00.000Z")
    set_approval(sm, package.arn, "Approved")
    dataset = ModelPackageDataset(
        model_package_group=GROUP,
        client_args={"backend": "local", "root": sm.root, "region": REGION},
    )
    assert dataset.load().predict(iris_frame[FEATURES].head(1))[0] == "setosa"
    assert dataset.last_package.metadata[SHA256_PROPERTY] == package.sha256


def test_dataset_is_load_only_and_checks_its_arguments():
    with pytest.raises(DatasetError, match="needs model_package_group or arn"):
        ModelPackageDataset()
    with pytest.raises(DatasetError, match="a version or an arn, not both"):
        ModelPackageDataset(arn="arn:aws:sagemaker:x", version=2)
    with pytest.raises(DatasetError, match="'save' is not supported"):
        ModelPackageDataset(model_package_group=GROUP).save(object())
