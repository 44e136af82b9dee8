"""create_model / describe_model / delete_model / list_models, and the approval gate.

Shape tests run the same calls on the local backend and on moto (``mock_aws``) and compare the
response keys, so local answers look like AWS's to code written against boto3.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from .conftest import IMAGE, REGION, ROLE

DATA_URL = "s3://scoring-data/models/v1/model.tar.gz"


def test_create_model_refuses_a_package_that_is_not_approved(sm, register_package):
    arn = register_package(approve=False)
    with pytest.raises(ClientError) as refused:
        sm.create_model(
            ModelName="pending", PrimaryContainer={"ModelPackageName": arn}, ExecutionRoleArn=ROLE
        )
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert arn in error["Message"]
    assert "PendingManualApproval" in error["Message"]
    assert "only an Approved version can be deployed" in error["Message"]
    # Refusing never approves on the caller's behalf (unlike the SageMaker SDK).
    package = sm.describe_model_package(ModelPackageName=arn)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert sm.list_models()["Models"] == []


def test_create_model_refuses_a_rejected_package_and_accepts_it_once_approved(sm, register_package):
    arn = register_package(approve=False)
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected")
    with pytest.raises(ClientError, match="Rejected"):
        sm.create_model(
            ModelName="m", Containers=[{"ModelPackageName": arn}], ExecutionRoleArn=ROLE
        )
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    created = sm.create_model(
        ModelName="m", Containers=[{"ModelPackageName": arn}], ExecutionRoleArn=ROLE
    )
    assert created["ModelArn"] == f"arn:aws:sagemaker:{REGION}:123456789012:model/m"


def test_create_model_accepts_a_package_by_group_and_version(sm, register_package):
    register_package()
    sm.create_model(
        ModelName="by-version",
        PrimaryContainer={"ModelPackageName": "scoring/1"},
        ExecutionRoleArn=ROLE,
    )
    described = sm.describe_model(ModelName="by-version")
    assert described["PrimaryContainer"] == {"ModelPackageName": "scoring/1"}


def test_create_model_refuses_an_unknown_package(sm):
    with pytest.raises(ClientError, match="does not exist") as refused:
        sm.create_model(
            ModelName="m", PrimaryContainer={"ModelPackageName": "scoring/9"}, ExecutionRoleArn=ROLE
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize(
    ("request_fields", "message"),
    [
        ({}, "exactly one of PrimaryContainer"),
        (
            {"PrimaryContainer": {"Image": IMAGE}, "Containers": [{"Image": IMAGE}]},
            "exactly one of PrimaryContainer",
        ),
        ({"PrimaryContainer": {"Environment": {"A": "1"}}}, "either ModelPackageName or Image"),
    ],
)
def test_create_model_needs_exactly_one_container_source(sm, request_fields, message):
    with pytest.raises(ClientError, match=message):
        sm.create_model(ModelName="m", ExecutionRoleArn=ROLE, **request_fields)


def test_create_model_validates_names_and_roles_like_sagemaker(sm):
    with pytest.raises(ClientError, match="regular expression pattern"):
        sm.create_model(ModelName="bad_name", PrimaryContainer={"Image": IMAGE})
    with pytest.raises(ClientError, match="executionRoleArn"):
        sm.create_model(
            ModelName="m",
            PrimaryContainer={"Image": IMAGE},
            ExecutionRoleArn="arn:aws:iam::12:user/not-a-role",
        )


def test_duplicate_model_name_is_refused(sm):
    sm.create_model(ModelName="m", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    with pytest.raises(ClientError, match="Cannot create already existing model") as refused:
        sm.create_model(ModelName="m", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_describe_returns_the_containers_as_given(sm):
    container = {"Image": IMAGE, "ModelDataUrl": DATA_URL, "Environment": {"A": "1"}}
    sm.create_model(ModelName="m", PrimaryContainer=container, ExecutionRoleArn=ROLE)
    described = sm.describe_model(ModelName="m")
    assert described["PrimaryContainer"] == container
    assert described["ExecutionRoleArn"] == ROLE
    assert described["EnableNetworkIsolation"] is False
    assert described["CreationTime"].tzinfo is not None


def test_delete_then_describe_and_delete_again_fail(sm):
    sm.create_model(ModelName="m", PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    sm.delete_model(ModelName="m")
    for call in (sm.describe_model, sm.delete_model):
        with pytest.raises(ClientError, match='Could not find model "arn:aws:sagemaker:') as gone:
            call(ModelName="m")
        assert gone.value.response["Error"]["Code"] == "ValidationException"


def test_list_models_is_newest_first_filtered_and_paginated(sm):
    for name in ("alpha", "beta", "gamma"):
        sm.create_model(ModelName=name, PrimaryContainer={"Image": IMAGE}, ExecutionRoleArn=ROLE)
    names = [m["ModelName"] for m in sm.list_models()["Models"]]
    assert names == ["gamma", "beta", "alpha"]
    by_name = sm.list_models(SortBy="Name", SortOrder="Ascending", NameContains="a")["Models"]
    assert [m["ModelName"] for m in by_name] == ["alpha", "beta", "gamma"]
    pages = list(sm.get_paginator("list_models").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["Models"]) for p in pages] == [2, 1]


def _container_request() -> dict[str, Any]:
    return {
        "ModelName": "shape",
        "PrimaryContainer": {"Image": IMAGE, "ModelDataUrl": DATA_URL, "Environment": {"A": "1"}},
        "ExecutionRoleArn": ROLE,
    }


def test_model_response_shapes_match_moto(sm, moto_sm):
    shapes = {}
    for backend, api in (("local", sm), ("moto", moto_sm)):
        created = api.create_model(**_container_request())
        described = api.describe_model(ModelName="shape")
        listed = api.list_models()["Models"]
        shapes[backend] = (
            set(created) - {"ResponseMetadata"},
            described["PrimaryContainer"],
            described["ModelArn"],
            [set(summary) for summary in listed],
        )
        for key in ("ModelName", "ModelArn", "CreationTime", "ExecutionRoleArn"):
            assert key in described, (backend, key)
    assert shapes["local"] == shapes["moto"]


def test_model_from_package_shape_matches_moto(sm, moto_sm, register_package):
    local_arn = register_package()
    moto_sm.create_model_package_group(ModelPackageGroupName="scoring")
    moto_arn = moto_sm.create_model_package(
        ModelPackageGroupName="scoring",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": DATA_URL}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelApprovalStatus="Approved",
    )["ModelPackageArn"]
    responses = {}
    for backend, api, arn in (("local", sm, local_arn), ("moto", moto_sm, moto_arn)):
        api.create_model(
            ModelName="from-package",
            PrimaryContainer={"ModelPackageName": arn, "Environment": {"B": "2"}},
            ExecutionRoleArn=ROLE,
        )
        described = api.describe_model(ModelName="from-package")
        responses[backend] = described["PrimaryContainer"] == {
            "ModelPackageName": arn,
            "Environment": {"B": "2"},
        }
    assert responses == {"local": True, "moto": True}
