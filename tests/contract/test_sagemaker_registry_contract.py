"""SageMaker Model Registry behaviour, asserted identically on local, moto and a moto server.

Where moto 5.2 departs from SageMaker the point is tested on the local backend only, below,
each with the reason. Group names are lowercase in the shared tests because moto lowercases
them in package ARNs, which SageMaker does not (see test_local_package_arn_keeps_group_case).
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from kedro_aws.clients import client
from kedro_aws.config import LOCAL_ACCOUNT_ID

GROUP = "iris-classifier"
SPEC = {
    "Containers": [
        {
            "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
            "ModelDataUrl": "s3://kedro-aws-contract/models/1/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
        }
    ],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}
METRICS = {
    "ModelQuality": {
        "Statistics": {
            "ContentType": "application/json",
            "S3Uri": "s3://kedro-aws-contract/metrics/1/evaluation.json",
        }
    }
}


@pytest.fixture
def sm(make_client):
    sm = make_client("sagemaker")
    sm.create_model_package_group(
        ModelPackageGroupName=GROUP, ModelPackageGroupDescription="Iris models"
    )
    return sm


def register(sm, group: str = GROUP, **extra) -> str:
    extra.setdefault("ModelApprovalStatus", "PendingManualApproval")
    return sm.create_model_package(
        ModelPackageGroupName=group, InferenceSpecification=SPEC, **extra
    )["ModelPackageArn"]


def error_code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_group_is_created_and_described(sm):
    described = sm.describe_model_package_group(ModelPackageGroupName=GROUP)

    assert described["ModelPackageGroupArn"] == (
        f"arn:aws:sagemaker:us-east-1:{LOCAL_ACCOUNT_ID}:model-package-group/{GROUP}"
    )
    assert described["ModelPackageGroupName"] == GROUP
    assert described["ModelPackageGroupDescription"] == "Iris models"
    assert described["ModelPackageGroupStatus"] == "Completed"
    assert described["CreationTime"].tzinfo is not None


def test_missing_group_is_a_validation_exception(sm):
    with pytest.raises(ClientError) as excinfo:
        sm.describe_model_package_group(ModelPackageGroupName="no-such-group")
    assert error_code(excinfo) == "ValidationException"
    assert "does not exist" in str(excinfo.value)

    with pytest.raises(ClientError) as excinfo:
        register(sm, group="no-such-group")
    assert error_code(excinfo) == "ValidationException"


def test_versions_count_up_from_one_with_their_arns(sm):
    arns = [register(sm) for _ in range(3)]

    assert arns == [
        f"arn:aws:sagemaker:us-east-1:{LOCAL_ACCOUNT_ID}:model-package/{GROUP}/{v}"
        for v in (1, 2, 3)
    ]
    versions = [
        s["ModelPackageVersion"]
        for s in sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    ]
    assert versions == [1, 2, 3]


def test_package_description_round_trips_what_was_registered(sm):
    arn = register(
        sm,
        ModelPackageDescription="trained by kedro run 2024-01-01T00.00.00.000Z",
        CustomerMetadataProperties={"kedro_save_version": "2024-01-01T00.00.00.000Z"},
        ModelMetrics=METRICS,
        MetadataProperties={"CommitId": "abc123", "Repository": "kedro-aws"},
    )

    described = sm.describe_model_package(ModelPackageName=arn)

    assert described["ModelPackageArn"] == arn
    assert described["ModelPackageGroupName"] == GROUP
    assert described["ModelPackageVersion"] == 1
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["ModelPackageStatus"] == "Completed"
    assert described["InferenceSpecification"] == SPEC
    assert described["ModelMetrics"] == METRICS
    assert described["CustomerMetadataProperties"] == {
        "kedro_save_version": "2024-01-01T00.00.00.000Z"
    }
    assert described["MetadataProperties"] == {"CommitId": "abc123", "Repository": "kedro-aws"}
    assert described["ModelPackageDescription"].startswith("trained by kedro run")
    assert described["CreationTime"].tzinfo is not None


def test_missing_package_is_a_validation_exception(sm):
    missing = f"arn:aws:sagemaker:us-east-1:{LOCAL_ACCOUNT_ID}:model-package/{GROUP}/99"
    with pytest.raises(ClientError) as excinfo:
        sm.describe_model_package(ModelPackageName=missing)
    assert error_code(excinfo) == "ValidationException"
    with pytest.raises(ClientError) as excinfo:
        sm.update_model_package(ModelPackageArn=missing, ModelApprovalStatus="Approved")
    assert error_code(excinfo) == "ValidationException"


def test_approval_changes_status_and_records_the_reason(sm):
    arn = register(sm)

    sm.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="accuracy 0.97"
    )
    described = sm.describe_model_package(ModelPackageName=arn)

    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "accuracy 0.97"
    assert described["LastModifiedTime"] >= described["CreationTime"]


@pytest.mark.parametrize("operation", ["create", "update"])
def test_unknown_approval_status_is_rejected(sm, operation):
    with pytest.raises(ClientError) as excinfo:
        if operation == "create":
            register(sm, ModelApprovalStatus="Yes")
        else:
            sm.update_model_package(ModelPackageArn=register(sm), ModelApprovalStatus="Yes")
    assert error_code(excinfo) == "ValidationException"
    assert "modelApprovalStatus" in str(excinfo.value)


def test_latest_approved_is_first_when_filtered_and_sorted_descending(sm):
    arns = [register(sm) for _ in range(4)]
    for arn in (arns[0], arns[2]):
        sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    sm.update_model_package(ModelPackageArn=arns[3], ModelApprovalStatus="Rejected")

    approved = sm.list_model_packages(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus="Approved",
        SortBy="CreationTime",
        SortOrder="Descending",
    )["ModelPackageSummaryList"]

    assert [s["ModelPackageArn"] for s in approved] == [arns[2], arns[0]]
    assert {s["ModelApprovalStatus"] for s in approved} == {"Approved"}


def test_list_model_packages_paginates(sm):
    arns = [register(sm) for _ in range(5)]

    seen, token, pages = [], None, 0
    while True:
        extra = {"NextToken": token} if token else {}
        page = sm.list_model_packages(ModelPackageGroupName=GROUP, MaxResults=2, **extra)
        pages += 1
        seen += [s["ModelPackageArn"] for s in page["ModelPackageSummaryList"]]
        token = page.get("NextToken")
        if not token:
            break
    paginated = (
        sm.get_paginator("list_model_packages")
        .paginate(ModelPackageGroupName=GROUP, PaginationConfig={"PageSize": 2})
        .build_full_result()["ModelPackageSummaryList"]
    )

    assert seen == arns
    assert pages == 3
    assert [s["ModelPackageArn"] for s in paginated] == arns


def test_list_model_package_groups_filters_and_sorts(sm):
    for name in ("zeta-models", "alpha-models"):
        sm.create_model_package_group(ModelPackageGroupName=name)

    by_name = sm.list_model_package_groups(NameContains="models", SortBy="Name")

    assert [g["ModelPackageGroupName"] for g in by_name["ModelPackageGroupSummaryList"]] == [
        "alpha-models",
        "zeta-models",
    ]


def test_metrics_are_pointers_to_s3_documents(sm):
    # ModelMetrics hold MetricsSource{ContentType, S3Uri}: the numbers live in S3, not here.
    arn = register(sm, ModelMetrics=METRICS)
    statistics = sm.describe_model_package(ModelPackageName=arn)["ModelMetrics"]["ModelQuality"]
    assert statistics["Statistics"]["S3Uri"].startswith("s3://")


# -- local backend only -------------------------------------------------------------------------


@pytest.fixture
def local_sm(make_local_client):
    sm = make_local_client("sagemaker")
    sm.create_model_package_group(
        ModelPackageGroupName=GROUP, Tags=[{"Key": "team", "Value": "ml"}]
    )
    return sm


def test_local_default_approval_is_pending_manual_approval(local_sm):
    # SageMaker starts a version as PendingManualApproval; moto 5.2 leaves it unset (moto gap).
    arn = local_sm.create_model_package(ModelPackageGroupName=GROUP, InferenceSpecification=SPEC)[
        "ModelPackageArn"
    ]
    assert local_sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == (
        "PendingManualApproval"
    )


def test_local_versioned_packages_reject_tags_but_groups_keep_theirs(local_sm):
    # API reference, CreateModelPackage.Tags: a versioned package uses its group's tags and
    # "you cannot supply a tag argument". moto 5.2 accepts them (moto gap).
    with pytest.raises(ClientError) as excinfo:
        register(local_sm, Tags=[{"Key": "a", "Value": "b"}])
    assert error_code(excinfo) == "ValidationException"
    group_arn = local_sm.describe_model_package_group(ModelPackageGroupName=GROUP)[
        "ModelPackageGroupArn"
    ]
    assert local_sm.list_tags(ResourceArn=group_arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    assert (
        local_sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"] == []
    )


def test_local_duplicate_group_is_refused(local_sm):
    # SageMaker: ValidationException "Model Package Group already exists"; moto 5.2 silently
    # replaces the group (moto gap).
    with pytest.raises(ClientError, match="already exists") as excinfo:
        local_sm.create_model_package_group(ModelPackageGroupName=GROUP)
    assert error_code(excinfo) == "ValidationException"


@pytest.mark.parametrize("name", ["under_score", "-leading", "trailing-", "x" * 64, "dots.no"])
def test_local_group_names_follow_sagemaker_pattern_and_length(local_sm, name):
    # Pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} from the API model; moto 5.2 does not check it.
    with pytest.raises(ClientError) as excinfo:
        local_sm.create_model_package_group(ModelPackageGroupName=name)
    assert error_code(excinfo) == "ValidationException"
    assert "modelPackageGroupName" in str(excinfo.value)


@pytest.mark.parametrize(
    "properties",
    [
        {f"k{i}": "v" for i in range(51)},
        {"k" * 129: "v"},
        {"k": "v" * 257},
    ],
    ids=["51-entries", "key-129-chars", "value-257-chars"],
)
def test_local_customer_metadata_limits(local_sm, properties):
    # CustomerMetadataMap: at most 50 entries, keys <= 128 and values <= 256 characters (API
    # model); moto 5.2 does not check them.
    with pytest.raises(ClientError) as excinfo:
        register(local_sm, CustomerMetadataProperties=properties)
    assert error_code(excinfo) == "ValidationException"
    register(local_sm, CustomerMetadataProperties={f"k{i}": "v" * 256 for i in range(50)})


def test_local_update_merges_and_removes_customer_metadata(local_sm):
    # UpdateModelPackage adds/changes keys and removes the ...ToRemove ones; moto 5.2 replaces
    # the whole map, and drops it on an update that does not repeat it (moto gap).
    arn = register(local_sm, CustomerMetadataProperties={"a": "1", "b": "2"})

    local_sm.update_model_package(
        ModelPackageArn=arn,
        CustomerMetadataProperties={"b": "20", "c": "3"},
        CustomerMetadataPropertiesToRemove=["a"],
    )
    local_sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")

    described = local_sm.describe_model_package(ModelPackageName=arn)
    assert described["CustomerMetadataProperties"] == {"b": "20", "c": "3"}
    assert described["ModelApprovalStatus"] == "Approved"


def test_local_client_token_makes_registration_idempotent(local_sm):
    # moto 5.2 ignores ClientToken and registers a new version each time (moto gap).
    first = register(local_sm, ClientToken="kedro-run-2024-01-01")
    again = register(local_sm, ClientToken="kedro-run-2024-01-01")
    other = register(local_sm, ClientToken="kedro-run-2024-01-02")
    assert first == again
    assert other.endswith("/2")


def test_local_package_arn_keeps_group_case(make_local_client):
    # SageMaker keeps the group's case in version ARNs: IAM policies written in lowercase do
    # not match them (aws-samples/ml-edge-getting-started#18, fixed in #19). moto lowercases.
    sm = make_local_client("sagemaker", region="eu-west-1")
    sm.create_model_package_group(ModelPackageGroupName="IrisModels")
    assert register(sm, group="IrisModels") == (
        f"arn:aws:sagemaker:eu-west-1:{LOCAL_ACCOUNT_ID}:model-package/IrisModels/1"
    )


def test_local_delete_package_and_group(local_sm):
    # moto 5.2 implements neither DeleteModelPackage nor DeleteModelPackageGroup.
    first, second = register(local_sm), register(local_sm)

    with pytest.raises(local_sm.exceptions.ConflictException):
        local_sm.delete_model_package_group(ModelPackageGroupName=GROUP)
    local_sm.delete_model_package(ModelPackageName=second)
    # A deleted version's number is not given out again.
    assert register(local_sm).endswith("/3")

    for arn in (first, f"{second[:-1]}3"):
        local_sm.delete_model_package(ModelPackageName=arn)
    local_sm.delete_model_package_group(ModelPackageGroupName=GROUP)
    with pytest.raises(ClientError) as excinfo:
        local_sm.describe_model_package_group(ModelPackageGroupName=GROUP)
    assert error_code(excinfo) == "ValidationException"


def test_local_registry_survives_a_new_client(make_local_client, local_sm):
    arn = register(local_sm, ModelApprovalStatus="Approved")

    fresh = make_local_client("sagemaker")

    assert fresh.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"
    assert register(fresh).endswith("/2")


def _register_many(root: str, count: int) -> list[int]:
    sm = client("sagemaker", backend="local", root=root, region="us-east-1")
    return [int(register(sm).rsplit("/", 1)[1]) for _ in range(count)]


def test_local_concurrent_registrations_get_unique_consecutive_versions(local_sm, local_root: Path):
    processes, per_process = 8, 5
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        results = pool.starmap(_register_many, [(str(local_root), per_process)] * processes)

    versions = sorted(v for result in results for v in result)
    assert versions == list(range(1, processes * per_process + 1))
    listed = local_sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    assert [s["ModelPackageVersion"] for s in listed] == versions
    # Each process saw its own registrations in increasing order.
    assert all(result == sorted(result) for result in results)
