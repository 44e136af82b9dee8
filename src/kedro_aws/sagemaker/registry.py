"""SageMaker Model Registry workflows, written once against a boto3-style ``sagemaker`` client.

The same calls run on AWS (boto3), on moto, and on the local backend
(``kedro_aws.client("sagemaker", backend="local")``)::

    sm, s3 = kedro_aws.client("sagemaker"), kedro_aws.client("s3")
    package = register_sklearn_model(
        model, sm=sm, s3=s3, group="iris-classifier", bucket="ml-artifacts",
        prefix="iris/models", save_version="2026-11-26T02.26.36.123Z",
        inference_module="src/iris_aws/serving/inference.py", region="eu-west-1",
        metrics={"accuracy": 0.97}, lineage={"kedro_session_id": "..."},
    )
    package.arn, package.status        # registered, 'PendingManualApproval'
    set_approval(sm, package.arn, "Approved", "reviewed by ml-lead")
    latest_approved(sm, "iris-classifier").version

Registration never approves: approval is a separate, explicit act (``set_approval``, or
``kedro aws registry approve``).
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from kedro_aws.sagemaker.images import (
    check_sklearn_compatibility,
    framework_version_for_sklearn,
    sklearn_image_uri,
)
from kedro_aws.sagemaker.packaging import (
    ModelArtifact,
    build_model_archive,
    pin_requirements,
    upload_model_archive,
)

logger = logging.getLogger(__name__)

APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
# CreateModelPackage limits (API reference, CustomerMetadataProperties): at most 50 entries,
# keys up to 128 and values up to 256 characters.
MAX_METADATA_ENTRIES = 50
MAX_METADATA_KEY = 128
MAX_METADATA_VALUE = 256
SHA256_PROPERTY = "model_sha256"
DEFAULT_CONTENT_TYPES = ("text/csv", "application/x-parquet")
DEFAULT_TRANSFORM_INSTANCE_TYPES = ("ml.m5.large",)
DEFAULT_REALTIME_INSTANCE_TYPES = ("ml.m5.large",)


class RegistryError(Exception):
    """A registry request cannot be satisfied: unknown group/version, nothing approved, ..."""


class NoApprovedModelPackageError(RegistryError):
    """Nothing Approved to use: the group has no Approved version, or a pinned one is not."""


@dataclass(frozen=True)
class ModelPackageRef:
    """One versioned model package, as the registry describes it."""

    arn: str
    group: str
    version: int
    status: str
    created: datetime | None
    description: str = ""
    metadata: Mapping[str, str] | None = None
    model_data_url: str | None = None
    image: str | None = None
    environment: Mapping[str, str] | None = None

    @classmethod
    def from_description(cls, described: Mapping[str, Any]) -> ModelPackageRef:
        """Build from a ``describe_model_package`` or ``list_model_packages`` entry."""
        containers = described.get("InferenceSpecification", {}).get("Containers", [{}])
        container = containers[0] if containers else {}
        return cls(
            arn=described["ModelPackageArn"],
            group=described.get("ModelPackageGroupName", ""),
            version=int(described.get("ModelPackageVersion", 0)),
            status=described.get("ModelApprovalStatus", ""),
            created=described.get("CreationTime"),
            description=described.get("ModelPackageDescription", ""),
            metadata=described.get("CustomerMetadataProperties"),
            model_data_url=container.get("ModelDataUrl"),
            image=container.get("Image"),
            environment=container.get("Environment"),
        )

    @property
    def sha256(self) -> str | None:
        """The model archive's SHA-256 recorded at registration."""
        return (self.metadata or {}).get(SHA256_PROPERTY)


def ensure_model_package_group(
    sm: Any, group: str, description: str = "", tags: Mapping[str, str] | None = None
) -> str:
    """The group's ARN, creating the group first if it does not exist."""
    try:
        return sm.describe_model_package_group(ModelPackageGroupName=group)["ModelPackageGroupArn"]
    except ClientError as error:
        if not _is_missing(error):
            raise
    request: dict[str, Any] = {"ModelPackageGroupName": group}
    if description:
        request["ModelPackageGroupDescription"] = description
    if tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    arn = sm.create_model_package_group(**request)["ModelPackageGroupArn"]
    logger.info("Created model package group %s.", group)
    return arn


def customer_metadata(properties: Mapping[str, Any]) -> dict[str, str]:
    """Validate and stringify ``CustomerMetadataProperties`` against the API's limits.

    Raises ``RegistryError`` naming the offending key instead of letting the request fail
    with a generic validation message.

    Example:
    >>> customer_metadata({"accuracy": 0.97, "git_commit": None})
    {'accuracy': '0.97'}
    """
    result = {str(k): str(v) for k, v in properties.items() if v is not None}
    if len(result) > MAX_METADATA_ENTRIES:
        raise RegistryError(
            f"{len(result)} metadata properties; SageMaker allows at most {MAX_METADATA_ENTRIES}."
        )
    for key, value in result.items():
        if not 1 <= len(key) <= MAX_METADATA_KEY:
            raise RegistryError(
                f"Metadata key {key[:40]!r}... must be 1-{MAX_METADATA_KEY} characters."
            )
        if len(value) > MAX_METADATA_VALUE:
            raise RegistryError(
                f"Metadata value of {key!r} has {len(value)} characters; SageMaker allows at "
                f"most {MAX_METADATA_VALUE}."
            )
    return result


def register_model_package(
    sm: Any,
    *,
    group: str,
    artifact: ModelArtifact,
    image_uri: str,
    environment: Mapping[str, str],
    framework_version: str,
    metadata: Mapping[str, Any] | None = None,
    metrics_s3_uri: str | None = None,
    description: str = "",
    commit_id: str | None = None,
    content_types: Sequence[str] = DEFAULT_CONTENT_TYPES,
    client_token: str | None = None,
) -> ModelPackageRef:
    """Register a verified artifact as a new version in ``group`` (``PendingManualApproval``).

    Only a :class:`ModelArtifact` (the proof of a verified upload) can be registered, so a
    package never points at a missing or partial archive.
    """
    properties = customer_metadata({**(metadata or {}), SHA256_PROPERTY: artifact.sha256})
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "ModelPackageDescription": description,
        "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": {
            "Containers": [
                {
                    "Image": image_uri,
                    "ModelDataUrl": artifact.s3_uri,
                    "Environment": dict(environment),
                    "Framework": "SKLEARN",
                    "FrameworkVersion": framework_version.split("-", maxsplit=1)[0],
                }
            ],
            "SupportedContentTypes": list(content_types),
            "SupportedResponseMIMETypes": list(content_types),
            "SupportedTransformInstanceTypes": list(DEFAULT_TRANSFORM_INSTANCE_TYPES),
            "SupportedRealtimeInferenceInstanceTypes": list(DEFAULT_REALTIME_INSTANCE_TYPES),
        },
        "CustomerMetadataProperties": properties,
    }
    if metrics_s3_uri:
        # ModelMetrics hold pointers to JSON documents on S3, not the numbers themselves.
        request["ModelMetrics"] = {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": metrics_s3_uri}
            }
        }
    if commit_id:
        request["MetadataProperties"] = {"CommitId": commit_id, "GeneratedBy": "kedro-aws"}
    if client_token:
        request["ClientToken"] = client_token
    arn = sm.create_model_package(**request)["ModelPackageArn"]
    package = describe_package(sm, arn)
    logger.info("Registered %s (version %d, %s).", arn, package.version, package.status)
    return package


def register_sklearn_model(
    model: Any,
    *,
    sm: Any,
    s3: Any,
    group: str,
    bucket: str,
    prefix: str,
    save_version: str,
    inference_module: str,
    region: str,
    metrics: Mapping[str, Any] | None = None,
    lineage: Mapping[str, Any] | None = None,
    requirements: Sequence[str] = ("pyarrow",),
    framework_version: str | None = None,
    allow_version_mismatch: bool = False,
    description: str = "",
) -> ModelPackageRef:
    """Package a scikit-learn model, upload it and its metrics, and register it.

    The steps run in an order that never leaves a package without its artifact: the version
    check, then the archive, then a verified upload, then the metrics document, and only then
    ``create_model_package``. ``save_version`` (the Kedro save version) names the S3 key and
    doubles as the request's ``ClientToken``, so a retried run does not register twice.
    """
    import sklearn  # noqa: PLC0415 - only this workflow needs it

    framework_version = framework_version or framework_version_for_sklearn(sklearn.__version__)
    check_sklearn_compatibility(sklearn.__version__, framework_version, allow_version_mismatch)
    image_uri = sklearn_image_uri(region, framework_version)
    ensure_model_package_group(sm, group, description=f"Models trained by kedro-aws: {group}")
    with tempfile.TemporaryDirectory(prefix="kedro-aws-model-") as workdir:
        archive = build_model_archive(
            model, inference_module, workdir, requirements=pin_requirements(requirements)
        )
        artifact = upload_model_archive(
            s3, archive, bucket=bucket, prefix=prefix, save_version=save_version
        )
    metrics_uri = None
    if metrics is not None:
        key = f"{prefix.strip('/')}/{save_version}/metrics.json"
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(metrics, indent=2, sort_keys=True).encode(),
            ContentType="application/json",
        )
        metrics_uri = f"s3://{bucket}/{key}"
    lineage = dict(lineage or {})
    return register_model_package(
        sm,
        group=group,
        artifact=artifact,
        image_uri=image_uri,
        environment=artifact.container_environment(region),
        framework_version=framework_version,
        metadata={
            **lineage,
            "sklearn_version": sklearn.__version__,
            "framework_version": framework_version,
            "image_uri": image_uri,
        },
        metrics_s3_uri=metrics_uri,
        description=description,
        commit_id=lineage.get("git_commit"),
        # ClientToken: 1-36 characters [a-zA-Z0-9-]; a Kedro save version has '.', ':' and 'Z'.
        client_token=_client_token(group, save_version),
    )


def describe_package(sm: Any, arn: str) -> ModelPackageRef:
    """The package ``arn``; ``RegistryError`` if there is none."""
    try:
        return ModelPackageRef.from_description(sm.describe_model_package(ModelPackageName=arn))
    except ClientError as error:
        if _is_missing(error):
            raise RegistryError(f"No model package {arn}.") from error
        raise


def list_packages(
    sm: Any, group: str, status: str | None = None, *, check_group: bool = True
) -> list[ModelPackageRef]:
    """All versions in ``group`` (newest first), optionally only those with ``status``.

    SageMaker lists nothing (no error) for a group that does not exist, so the group is
    checked first unless ``check_group`` is false.
    """
    _check_status(status, allow_none=True)
    if check_group:
        ensure_group_exists(sm, group)
    request: dict[str, Any] = {
        "ModelPackageGroupName": group,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
    }
    if status:
        request["ModelApprovalStatus"] = status
    summaries: list[dict[str, Any]] = []
    paginator = sm.get_paginator("list_model_packages")
    for page in paginator.paginate(**request):
        summaries.extend(page["ModelPackageSummaryList"])
    return sorted(
        (
            ModelPackageRef.from_description({**s, "ModelPackageGroupName": group})
            for s in summaries
        ),
        key=lambda p: p.version,
        reverse=True,
    )


def ensure_group_exists(sm: Any, group: str) -> None:
    """Raise ``RegistryError`` naming ``group`` if it does not exist."""
    try:
        sm.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as error:
        if _is_missing(error):
            raise RegistryError(f"Model package group {group!r} does not exist.") from error
        raise


def latest_approved(sm: Any, group: str) -> ModelPackageRef:
    """The newest ``Approved`` version of ``group``.

    Raises:
        NoApprovedModelPackageError: none is Approved; the message lists every version with
            its status, and how to approve one.
    """
    approved = list_packages(sm, group, status="Approved")
    if approved:
        return describe_package(sm, approved[0].arn)
    found = sorted(list_packages(sm, group, check_group=False), key=lambda p: p.version)
    detail = (
        "found version " + ", ".join(f"{p.version} ({p.status})" for p in found)
        if found
        else "it has no model packages (run train_and_register_model first)"
    )
    raise NoApprovedModelPackageError(
        f"No Approved model package in group '{group}': {detail}. Approve a version "
        f"(kedro aws registry approve {group} <version>) or pin one with its version or ARN."
    )


def require_approved(package: ModelPackageRef) -> ModelPackageRef:
    """``package`` itself if it is Approved; SageMaker deploys nothing else.

    Raises:
        NoApprovedModelPackageError: naming the package, its status and how to approve it.
    """
    if package.status != "Approved":
        raise NoApprovedModelPackageError(
            f"Model package {package.arn} is {package.status or 'of unknown status'}, not "
            "Approved; only Approved packages can be deployed. Approve it first "
            f"(kedro aws registry approve {package.group} {package.version})."
        )
    return package


def resolve_package(
    sm: Any, group: str | None = None, version: int | str | None = None, arn: str | None = None
) -> ModelPackageRef:
    """A package by ARN, by group and version, or the group's latest Approved one.

    ``version`` is a number, ``"latest"`` (the newest version, whatever its status) or
    ``"latest-approved"`` (the default).
    """
    if arn:
        return describe_package(sm, arn)
    if not group:
        raise RegistryError("Give a model package ARN or a model package group.")
    if version in (None, "", "latest-approved"):
        return latest_approved(sm, group)
    if version == "latest":
        newest = list_packages(sm, group)
        if not newest:
            raise RegistryError(f"Model package group {group!r} has no versions yet.")
        return describe_package(sm, newest[0].arn)
    try:
        wanted = int(version)
    except (TypeError, ValueError):
        raise RegistryError(
            f"Version must be a number, 'latest' or 'latest-approved', got {version!r}."
        ) from None
    packages = list_packages(sm, group)
    for package in packages:
        if package.version == wanted:
            return describe_package(sm, package.arn)
    known = ", ".join(str(p.version) for p in sorted(packages, key=lambda p: p.version))
    raise RegistryError(
        f"Model package group '{group}' has no version {wanted}; versions: {known or 'none'}."
    )


def set_approval(sm: Any, arn: str, status: str, description: str | None = None) -> ModelPackageRef:
    """Set a package's approval status (``Approved``, ``Rejected``, ``PendingManualApproval``)."""
    _check_status(status)
    describe_package(sm, arn)  # a clear error for an unknown ARN
    request: dict[str, Any] = {"ModelPackageArn": arn, "ModelApprovalStatus": status}
    if description:
        request["ApprovalDescription"] = description
    sm.update_model_package(**request)
    package = describe_package(sm, arn)
    logger.info("Model package %s is now %s.", arn, package.status)
    return package


def _check_status(status: str | None, allow_none: bool = False) -> None:
    if status is None and allow_none:
        return
    if status not in APPROVAL_STATUSES:
        raise RegistryError(
            f"Invalid approval status {status!r}; use one of {', '.join(APPROVAL_STATUSES)}."
        )


def _client_token(group: str, save_version: str) -> str:
    import hashlib  # noqa: PLC0415

    return hashlib.sha256(f"{group}/{save_version}".encode()).hexdigest()[:36]


def _is_missing(error: ClientError) -> bool:
    """SageMaker reports a missing group/package as a ValidationException ("... does not
    exist"; moto words it "... not found")."""
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    return code in {"ResourceNotFound", "ResourceNotFoundException"} or (
        code == "ValidationException" and ("does not exist" in message or "not found" in message)
    )
