"""The deploy workflow over boto3: moto records what we ask for, the Stubber pins exact requests.

moto accepts transform jobs but never runs them (they are ``Completed`` at once), so job
execution is covered by the local backend; here we check what is sent to SageMaker, and how the
waiting loop reacts to each status, without sleeping.
"""

from __future__ import annotations

import doctest
import itertools
import logging
import re
from datetime import datetime, timezone

import pytest
from botocore.exceptions import ClientError

from kedro_aws.clients import client
from kedro_aws.sagemaker import deploy
from kedro_aws.sagemaker.deploy import (
    TRANSFORM_LOG_GROUP,
    DeploymentError,
    TransformJob,
    TransformJobFailedError,
    TransformJobStoppedError,
    TransformJobTimeoutError,
    backoff_delays,
    create_model_from_package,
    is_valid_name,
    resolve_model_package,
    run_transform_job,
    unique_name,
    wait_for_transform_job,
)
from kedro_aws.sagemaker.registry import NoApprovedModelPackageError, RegistryError

from .conftest import GROUP, PACKAGE_ENV, ROLE_ARN, describe_response, register_package

JOB = "iris-scoring-20261126-022636-a1b2c3-csv"
API_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # CreateTransformJob, CreateModel


def test_docstring_examples_hold():
    assert doctest.testmod(deploy, raise_on_error=False).failed == 0


# --- names ------------------------------------------------------------------------------------


def test_unique_name_is_prefix_utc_timestamp_and_random_suffix():
    name = unique_name("iris-scoring", now=datetime(2026, 11, 26, 2, 26, 36))
    assert re.fullmatch(r"iris-scoring-20261126-022636-[0-9a-f]{6}", name)
    assert unique_name("iris-scoring") != unique_name("iris-scoring")


@pytest.mark.parametrize(
    ("prefix", "expected_start"),
    [
        ("iris_scoring", "iris-scoring-"),
        ("--iris..v2__", "iris-v2-"),
        ("Iris Model 3", "Iris-Model-3-"),
        ("x" * 100, "x" * 40 + "-"),
    ],
)
def test_unique_name_is_valid_for_any_prefix(prefix, expected_start):
    name = unique_name(prefix, token="a1b2c3")
    assert name.startswith(expected_start)
    assert len(name) <= 63 and API_NAME.match(name) and is_valid_name(name)


def test_unique_name_never_ends_the_prefix_with_a_hyphen_when_cut():
    # Cut at 40 characters, this prefix would end in "-": two hyphens would still be valid, but
    # the name would look broken; the cut drops them.
    name = unique_name("a" * 39 + "-bbbb", token="a1b2c3")
    assert name.startswith("a" * 39 + "-2") and is_valid_name(name)


@pytest.mark.parametrize("prefix", ["", "---", "__"])
def test_unique_name_refuses_a_prefix_without_letters_or_digits(prefix):
    with pytest.raises(ValueError, match="at least one letter or digit"):
        unique_name(prefix)


@pytest.mark.parametrize(
    ("name", "valid"),
    [("a", True), ("a--b", True), ("a" * 63, True), ("a" * 64, False), ("-a", False),
     ("a-", False), ("a_b", False), ("a.b", False), ("", False), ("a" + "-" * 62 + "b", False)],
)  # fmt: skip
def test_is_valid_name_follows_the_api_pattern_and_length(name, valid):
    assert is_valid_name(name) is valid
    assert bool(API_NAME.match(name) and len(name) <= 63) is valid


# --- package resolution (moto) ----------------------------------------------------------------


def test_latest_approved_package_wins_over_newer_unapproved_ones(sm):
    register_package(sm, "Approved")
    latest_approved = register_package(sm, "Approved")
    register_package(sm, "PendingManualApproval")
    register_package(sm, "Rejected")

    package = resolve_model_package(sm, GROUP)

    assert package.arn == latest_approved
    assert (package.group, package.version, package.status) == (GROUP, 2, "Approved")
    assert package.environment == PACKAGE_ENV


@pytest.mark.parametrize("pinned", [1, "1"])
def test_pinned_version_is_used_even_when_a_newer_one_is_approved(sm, pinned):
    first = register_package(sm, "Approved")
    register_package(sm, "Approved")
    assert resolve_model_package(sm, GROUP, pinned).arn == first


def test_pinned_arn_is_used_as_is(sm):
    first = register_package(sm, "Approved")
    register_package(sm, "Approved")
    assert resolve_model_package(sm, GROUP, first).arn == first


def test_no_approved_package_names_the_group_and_the_statuses_found(sm):
    register_package(sm, "PendingManualApproval")
    register_package(sm, "Rejected")
    with pytest.raises(NoApprovedModelPackageError) as raised:
        resolve_model_package(sm, GROUP)
    message = str(raised.value)
    assert f"No Approved model package in group '{GROUP}'" in message
    assert "1 (PendingManualApproval), 2 (Rejected)" in message
    assert f"kedro aws registry approve {GROUP}" in message


def test_empty_group_says_there_is_nothing_registered(sm):
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    with pytest.raises(NoApprovedModelPackageError, match="has no model packages"):
        resolve_model_package(sm, GROUP)


def test_pinned_unapproved_package_is_refused_with_its_status(sm):
    register_package(sm, "Approved")
    pending = register_package(sm, "PendingManualApproval")
    with pytest.raises(NoApprovedModelPackageError) as raised:
        resolve_model_package(sm, GROUP, 2)
    assert f"{pending} is PendingManualApproval, not Approved" in str(raised.value)


def test_unknown_pinned_version_lists_the_versions(sm):
    register_package(sm, "Approved")
    register_package(sm, "Approved")
    with pytest.raises(RegistryError, match=f"'{GROUP}' has no version 7; versions: 1, 2"):
        resolve_model_package(sm, GROUP, 7)


def test_resolution_follows_next_token_across_pages(stubbed_sm):
    sm, stubber = stubbed_sm
    group_arn = f"arn:aws:sagemaker:us-east-1:123456789012:model-package-group/{GROUP}"
    # The group is checked once (SageMaker lists nothing, without error, for a missing group).
    stubber.add_response(
        "describe_model_package_group",
        {
            "ModelPackageGroupName": GROUP,
            "ModelPackageGroupArn": group_arn,
            "CreationTime": datetime(2026, 1, 1, tzinfo=timezone.utc),
            "CreatedBy": {},
            "ModelPackageGroupStatus": "Completed",
        },
        {"ModelPackageGroupName": GROUP},
    )
    approved = {
        "ModelPackageGroupName": GROUP,
        "ModelApprovalStatus": "Approved",
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
    }
    stubber.add_response("list_model_packages", {"ModelPackageSummaryList": []}, approved)
    listing = {"ModelPackageGroupName": GROUP, "SortBy": "CreationTime", "SortOrder": "Descending"}
    stubber.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": [_summary(2, "PendingManualApproval")], "NextToken": "page-2"},
        listing,
    )
    stubber.add_response(
        "list_model_packages",
        {"ModelPackageSummaryList": [_summary(1, "Rejected")]},
        {**listing, "NextToken": "page-2"},
    )
    with pytest.raises(NoApprovedModelPackageError, match=r"1 \(Rejected\), 2 \(Pending"):
        resolve_model_package(sm, GROUP)
    stubber.assert_no_pending_responses()


def _summary(version: int, status: str) -> dict:
    return {
        "ModelPackageArn": f"arn:aws:sagemaker:eu-west-1:123456789012:model-package/{GROUP}/{version}",
        "ModelPackageGroupName": GROUP,
        "ModelPackageVersion": version,
        "ModelPackageStatus": "Completed",
        "ModelApprovalStatus": status,
        "CreationTime": datetime(2026, 11, 26, 2, version),
    }


def _package_description(arn: str, environment: dict[str, str]) -> dict:
    return {
        "ModelPackageName": GROUP,
        "ModelPackageArn": arn,
        "CreationTime": datetime(2026, 11, 26),
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "ModelApprovalStatus": "Approved",
        "InferenceSpecification": {"Containers": [{"Image": "img", "Environment": environment}]},
    }


# --- models -----------------------------------------------------------------------------------


def test_model_is_created_from_the_package_with_its_entry_point(sm):
    arn = register_package(sm, "Approved")

    model_arn = create_model_from_package(sm, arn, "iris-model-1", ROLE_ARN, {"EXTRA": "1"})

    model = sm.describe_model(ModelName="iris-model-1")
    assert model_arn == model["ModelArn"]
    assert model["ExecutionRoleArn"] == ROLE_ARN
    assert model["PrimaryContainer"] == {
        "ModelPackageName": arn,
        "Environment": {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "EXTRA": "1",
        },
    }


def test_create_model_sends_exactly_one_container_request(stubbed_sm):
    sm, stubber = stubbed_sm
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/iris-classifier/3"
    stubber.add_response(
        "describe_model_package",
        _package_description(arn, {"SAGEMAKER_PROGRAM": "serve.py"}),
        {"ModelPackageName": arn},
    )
    stubber.add_response(
        "create_model",
        {"ModelArn": "arn:aws:sagemaker:eu-west-1:123456789012:model/m-1"},
        {
            "ModelName": "m-1",
            "ExecutionRoleArn": ROLE_ARN,
            "PrimaryContainer": {
                "ModelPackageName": arn,
                "Environment": {"SAGEMAKER_PROGRAM": "serve.py"},
            },
        },
    )
    assert create_model_from_package(sm, arn, "m-1", ROLE_ARN).endswith(":model/m-1")


def test_package_without_program_is_refused_before_creating_a_model(sm):
    arn = register_package(sm, "Approved", environment={"SAGEMAKER_REGION": "eu-west-1"})
    with pytest.raises(DeploymentError, match=f"{re.escape(arn)} sets no SAGEMAKER_PROGRAM"):
        create_model_from_package(sm, arn, "iris-model-1", ROLE_ARN)
    assert sm.list_models()["Models"] == []


def test_refused_model_keeps_the_aws_error_and_names_model_and_package(stubbed_sm):
    sm, stubber = stubbed_sm
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/iris-classifier/1"
    stubber.add_response(
        "describe_model_package",
        _package_description(arn, {"SAGEMAKER_PROGRAM": "i.py"}),
    )
    stubber.add_client_error(
        "create_model", "ValidationException", "Model package is not approved."
    )
    with pytest.raises(ClientError) as raised:
        create_model_from_package(sm, arn, "m-1", ROLE_ARN)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert f"while creating SageMaker model 'm-1' from {arn}" in raised.value.__notes__


# --- transform jobs ---------------------------------------------------------------------------

CSV_JOB = {
    "job_name": JOB,
    "model_name": "iris-model-1",
    "input_s3_uri": "s3://iris-aws-demo/run/input/csv/",
    "output_s3_uri": "s3://iris-aws-demo/run/output/csv/",
    "content_type": "text/csv",
    "accept": "text/csv",
    "split_type": "Line",
    "batch_strategy": "MultiRecord",
    "assemble_with": "Line",
    "max_payload_mb": 6,
    "max_concurrent": 2,
    "instance_type": "ml.m5.xlarge",
    "instance_count": 2,
}


def test_transform_job_request_is_exactly_what_the_api_expects(stubbed_sm):
    sm, stubber = stubbed_sm
    arn = f"arn:aws:sagemaker:eu-west-1:123456789012:transform-job/{JOB}"
    stubber.add_response(
        "create_transform_job",
        {"TransformJobArn": arn},
        {
            "TransformJobName": JOB,
            "ModelName": "iris-model-1",
            "MaxConcurrentTransforms": 2,
            "MaxPayloadInMB": 6,
            "BatchStrategy": "MultiRecord",
            "TransformInput": {
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://iris-aws-demo/run/input/csv/",
                    }
                },
                "ContentType": "text/csv",
                "CompressionType": "None",
                "SplitType": "Line",
            },
            "TransformOutput": {
                "S3OutputPath": "s3://iris-aws-demo/run/output/csv/",
                "Accept": "text/csv",
                "AssembleWith": "Line",
            },
            "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2},
            "Environment": {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "120"},
            "DataProcessing": {"InputFilter": "$[0:3]", "JoinSource": "Input"},
            "ModelClientConfig": {"InvocationsTimeoutInSeconds": 120, "InvocationsMaxRetries": 0},
        },
    )
    job = run_transform_job(
        sm,
        **CSV_JOB,
        environment={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "120"},
        data_processing={"InputFilter": "$[0:3]", "JoinSource": "Input"},
        invocations_timeout_seconds=120,
        invocations_max_retries=0,
    )
    assert (job.name, job.arn, job.model_name) == (JOB, arn, "iris-model-1")


def test_whole_object_job_leaves_out_batch_strategy_and_optional_blocks(sm):
    register = register_package(sm, "Approved")
    create_model_from_package(sm, register, "iris-model-1", ROLE_ARN)

    job = run_transform_job(
        sm,
        job_name="iris-parquet-1",
        model_name="iris-model-1",
        input_s3_uri="s3://iris-aws-demo/run/input/parquet/",
        output_s3_uri="s3://iris-aws-demo/run/output/parquet/",
        content_type="application/x-parquet",
        accept="application/x-parquet",
    )

    recorded = sm.describe_transform_job(TransformJobName="iris-parquet-1")
    assert job.arn == recorded["TransformJobArn"]
    assert "BatchStrategy" not in job.request and "BatchStrategy" not in recorded
    assert "Environment" not in job.request and "DataProcessing" not in job.request
    assert recorded["TransformInput"] == {
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": "s3://iris-aws-demo/run/input/parquet/",
            }
        },
        "ContentType": "application/x-parquet",
        "CompressionType": "None",
        "SplitType": "None",
    }
    assert recorded["TransformOutput"] == {
        "S3OutputPath": "s3://iris-aws-demo/run/output/parquet/",
        "Accept": "application/x-parquet",
        "AssembleWith": "None",
    }
    assert recorded["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1}
    assert (recorded["MaxPayloadInMB"], recorded["MaxConcurrentTransforms"]) == (6, 1)


def test_invalid_job_name_is_refused_before_any_request(stubbed_sm):
    sm, _ = stubbed_sm  # no response queued: any call would fail the test
    with pytest.raises(ValueError, match="'iris_scoring' is not a valid SageMaker name"):
        run_transform_job(sm, **{**CSV_JOB, "job_name": "iris_scoring"})


def test_refused_job_keeps_the_aws_error_and_names_the_job(stubbed_sm):
    sm, stubber = stubbed_sm
    stubber.add_client_error(
        "create_transform_job", "ResourceInUse", f"Job name {JOB} must be unique"
    )
    with pytest.raises(ClientError) as raised:
        run_transform_job(sm, **CSV_JOB)
    assert raised.value.response["Error"]["Code"] == "ResourceInUse"
    assert f"while creating transform job '{JOB}' (model 'iris-model-1')" in raised.value.__notes__


def test_output_uri_is_the_input_key_relative_to_the_prefix_plus_out():
    job = TransformJob("j", "arn", "m", "s3://b/run/input/", "s3://b/run/output")
    assert job.output_uri_for("s3://b/run/input/iris.csv") == "s3://b/run/output/iris.csv.out"
    assert job.output_uri_for("s3://b/run/input/d=1/x.csv") == "s3://b/run/output/d=1/x.csv.out"
    assert (job.log_group, job.log_stream_prefix) == ("/aws/sagemaker/TransformJobs", "j/")
    with pytest.raises(ValueError, match="not under the job's input prefix"):
        job.output_uri_for("s3://b/elsewhere/x.csv")


# --- waiting ----------------------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _queue(stubber, *statuses: str, reason: str | None = None) -> None:
    for status in statuses:
        stubber.add_response(
            "describe_transform_job",
            describe_response(JOB, status, reason if status in ("Failed", "Stopped") else None),
            {"TransformJobName": JOB},
        )


def test_waits_with_backoff_until_completed_and_reports_each_poll(stubbed_sm):
    sm, stubber = stubbed_sm
    _queue(stubber, "InProgress", "InProgress", "InProgress", "Completed")
    fake, events = FakeTime(), []

    final = wait_for_transform_job(
        sm, JOB, poll_seconds=5, max_poll_seconds=60, progress=events.append,
        sleep=fake.sleep, clock=fake.clock,
    )  # fmt: skip

    assert final["TransformJobStatus"] == "Completed"
    assert fake.sleeps == [5, 10, 20]
    assert [(e.status, e.status_changed, e.elapsed) for e in events] == [
        ("InProgress", True, 0),
        ("InProgress", False, 5),
        ("InProgress", False, 15),
        ("Completed", True, 35),
    ]


def test_backoff_is_capped(stubbed_sm):
    sm, stubber = stubbed_sm
    _queue(stubber, *["InProgress"] * 6, "Completed")
    fake = FakeTime()
    wait_for_transform_job(
        sm, JOB, poll_seconds=2, max_poll_seconds=30, progress=None,
        sleep=fake.sleep, clock=fake.clock,
    )  # fmt: skip
    assert fake.sleeps == [2, 4, 8, 16, 30, 30]


def test_failed_job_raises_with_reason_and_cloudwatch_log_names(stubbed_sm):
    sm, stubber = stubbed_sm
    reason = "ClientError: See job logs for more information"
    _queue(stubber, "InProgress", "Failed", reason=reason)
    fake = FakeTime()

    with pytest.raises(TransformJobFailedError) as raised:
        wait_for_transform_job(sm, JOB, sleep=fake.sleep, clock=fake.clock, progress=None)

    error = raised.value
    assert (error.job_name, error.status, error.failure_reason) == (JOB, "Failed", reason)
    assert (error.log_group, error.log_stream_prefix) == (TRANSFORM_LOG_GROUP, f"{JOB}/")
    message = str(error)
    assert f"Transform job {JOB} failed: {reason}." in message
    assert f"CloudWatch group /aws/sagemaker/TransformJobs, streams {JOB}/*" in message
    assert fake.sleeps == [5]


def test_failed_job_without_reason_says_so(stubbed_sm):
    sm, stubber = stubbed_sm
    _queue(stubber, "Failed")
    with pytest.raises(TransformJobFailedError, match="SageMaker gave no FailureReason"):
        wait_for_transform_job(sm, JOB, sleep=FakeTime().sleep, progress=None)


def test_stopped_job_is_an_error_with_incomplete_outputs(stubbed_sm):
    sm, stubber = stubbed_sm
    _queue(stubber, "InProgress", "Stopping", "Stopped")
    fake = FakeTime()
    with pytest.raises(TransformJobStoppedError, match=f"{JOB} was stopped .* incomplete"):
        wait_for_transform_job(sm, JOB, sleep=fake.sleep, clock=fake.clock, progress=None)
    assert fake.sleeps == [5, 10]


def test_timeout_raises_on_time_and_tells_how_to_stop_the_job(stubbed_sm):
    sm, stubber = stubbed_sm
    _queue(stubber, "InProgress", "InProgress", "InProgress", "InProgress")
    fake = FakeTime()

    with pytest.raises(TransformJobTimeoutError) as raised:
        wait_for_transform_job(
            sm, JOB, poll_seconds=5, max_poll_seconds=60, timeout=30,
            sleep=fake.sleep, clock=fake.clock, progress=None,
        )  # fmt: skip

    # 5 + 10, then only the 15 s left instead of 20, then one last look at t=30.
    assert fake.sleeps == [5, 10, 15]
    assert raised.value.status == "InProgress"
    message = str(raised.value)
    assert f"{JOB} is still InProgress after 30.0s" in message
    assert f"stop_transform_job(TransformJobName='{JOB}')" in message


def test_progress_is_logged_by_default(stubbed_sm, caplog):
    sm, stubber = stubbed_sm
    _queue(stubber, "InProgress", "InProgress", "Completed")
    fake = FakeTime()
    with caplog.at_level(logging.INFO, logger="kedro_aws.sagemaker.deploy"):
        wait_for_transform_job(sm, JOB, sleep=fake.sleep, clock=fake.clock)
    assert [r.getMessage() for r in caplog.records] == [
        f"Transform job {JOB}: InProgress (0.0s elapsed).",
        f"Transform job {JOB}: still InProgress (5.0s elapsed).",
        f"Transform job {JOB}: Completed (15.0s elapsed).",
    ]


def test_backoff_schedule_and_its_arguments():
    assert list(itertools.islice(backoff_delays(1, 10, factor=3), 5)) == [1, 3, 9, 10, 10]
    assert list(itertools.islice(backoff_delays(5, 5), 3)) == [5, 5, 5]
    for bad in ((0, 10), (10, 5), (1, 10, 0.5)):
        with pytest.raises(ValueError, match="0 < initial <= maximum"):
            next(backoff_delays(*bad))


def test_unknown_group_is_a_registry_error_naming_the_group(tmp_path):
    sm = client("sagemaker", backend="local", root=tmp_path, region="eu-west-1")
    with pytest.raises(RegistryError, match="Model package group 'no-such-group' does not exist"):
        resolve_model_package(sm, "no-such-group")
