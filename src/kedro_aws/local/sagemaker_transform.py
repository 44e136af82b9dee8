"""The Batch Transform operations of the local SageMaker client.

``create_transform_job`` validates the request as SageMaker does (botocore's model plus the
limits the service enforces), records the job in SQLite and starts it in the background
(:mod:`kedro_aws.local.transform_job` runs it); ``describe_transform_job`` and
``list_transform_jobs`` read its state from any process; ``stop_transform_job`` asks the runner
to stop. Statuses: ``InProgress`` -> ``Completed`` | ``Failed`` | ``Stopping`` -> ``Stopped``,
with a ``FailureReason`` naming the file, the record position where known, and the cause.

``get_waiter("transform_job_completed_or_stopped")`` is botocore's own waiter over this client,
with botocore's acceptors and ``WaiterConfig``. Only its default pace differs: 1 s between polls
instead of AWS's 60 s (with 3600 attempts, so the default total wait is still one hour),
because a local job ends in seconds.

Example::

    sm.create_transform_job(
        TransformJobName="score-iris",
        ModelName="iris-v3",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": "s3://b/out/", "Accept": "text/csv", "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
        BatchStrategy="MultiRecord",
    )
    sm.get_waiter("transform_job_completed_or_stopped").wait(TransformJobName="score-iris")

This module is a mixin of :class:`~kedro_aws.local.sagemaker.LocalSageMakerClient`, which
provides ``_store``, ``_validated``, ``_error``, ``_response``, ``_arn_prefix``, ``_page`` and,
from the models mixin, ``_resolved_model``.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from typing import Any

from botocore import xform_name
from botocore.waiter import Waiter, WaiterModel, create_waiter_with_client

from kedro_aws.local._client import botocore_session
from kedro_aws.local.sagemaker_registry import _datetime, _epoch, _listed
from kedro_aws.local.transform_job import (
    DEFAULT_MAX_PAYLOAD_MB,
    RUNNER_HEARTBEAT_TIMEOUT_SECONDS,
    batch_environment,
    job_log_path,
)
from kedro_aws.local.transform_records import DataProcessing, TransformRecordError
from kedro_aws.local.transform_service import launch_runner, runner_is_alive

#: MaxPayloadInMB "cannot be greater than 100 MB", nor MaxConcurrentTransforms x MaxPayloadInMB
#: (API reference, CreateTransformJob.MaxPayloadInMB).
MAX_PAYLOAD_MB = 100
_LOCAL_WAITER_DELAY_SECONDS = 1
_LOCAL_WAITER_MAX_ATTEMPTS = 3600
_DEFAULT_MAX_RESULTS = 10  # API reference, ListTransformJobs.MaxResults: "The default value is 10."
_ACTIVE = ("InProgress", "Stopping")
# Request fields that DescribeTransformJob returns as they were given.
_ECHOED_FIELDS = (
    "ModelName",
    "MaxConcurrentTransforms",
    "ModelClientConfig",
    "MaxPayloadInMB",
    "BatchStrategy",
    "Environment",
    "TransformInput",
    "TransformOutput",
    "DataCaptureConfig",
    "TransformResources",
    "DataProcessing",
    "ExperimentConfig",
)


class TransformJobOperations:
    """create/describe/list/stop transform jobs, and the transform job waiter."""

    schema = (
        """CREATE TABLE IF NOT EXISTS transform_jobs (
            name TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            failure_reason TEXT,
            creation_time REAL NOT NULL,
            start_time REAL,
            end_time REAL,
            last_modified_time REAL NOT NULL,
            request TEXT NOT NULL,      -- the CreateTransformJob request, as given
            plan TEXT NOT NULL,         -- what the runner needs: model container, environment
            runner_pid INTEGER,
            heartbeat REAL,
            files_total INTEGER,        -- progress: logged, kept here, not in Describe
            files_done INTEGER,
            records_done INTEGER
        )""",
    )

    def create_transform_job(self, **params: Any) -> dict[str, Any]:
        """Validate, record and start a transform job (it runs in the background)."""
        params = self._validated("CreateTransformJob", params)
        self._check_transform_limits(params)
        name = params["TransformJobName"]
        now = time.time()
        with self._store.write() as db:
            if db.execute("SELECT 1 FROM transform_jobs WHERE name = ?", (name,)).fetchone():
                # SageMaker's code and wording for a reused job name.
                raise self._error(
                    "CreateTransformJob",
                    "ResourceInUse",
                    "Transform job names must be unique within an AWS account and region, and "
                    f"a transform job with this name already exists ({self._job_arn(name)})",
                )
            containers = self._resolved_model(db, "CreateTransformJob", params["ModelName"])
            if len(containers) != 1:
                raise self._error(
                    "CreateTransformJob",
                    "ValidationException",
                    f"Model {params['ModelName']} has {len(containers)} containers; the local "
                    "backend runs single-container models only (no inference pipelines).",
                )
            plan = {
                "region": self.region,
                "container": containers[0],
                "environment": batch_environment(params, containers[0]["Environment"]),
            }
            db.execute(
                "INSERT INTO transform_jobs (name, status, creation_time, last_modified_time, "
                "request, plan) VALUES (?, 'InProgress', ?, ?, ?, ?)",
                (name, now, now, json.dumps(params), json.dumps(plan)),
            )
        pid = launch_runner(self.root, name, job_log_path(self.root, name))
        with self._store.write() as db:
            db.execute(
                "UPDATE transform_jobs SET runner_pid = ? WHERE name = ? AND runner_pid IS NULL",
                (pid, name),
            )
        return self._response(TransformJobArn=self._job_arn(name))

    def describe_transform_job(self, **params: Any) -> dict[str, Any]:
        """The job's request, status, FailureReason and times."""
        params = self._validated("DescribeTransformJob", params)
        row = self._job_row("DescribeTransformJob", params["TransformJobName"])
        request = json.loads(row["request"])
        return self._response(
            TransformJobName=row["name"],
            TransformJobArn=self._job_arn(row["name"]),
            TransformJobStatus=row["status"],
            FailureReason=row["failure_reason"],
            **{field: request[field] for field in _ECHOED_FIELDS if field in request},
            CreationTime=_datetime(row["creation_time"]),
            TransformStartTime=_optional_datetime(row["start_time"]),
            TransformEndTime=_optional_datetime(row["end_time"]),
        )

    def list_transform_jobs(self, **params: Any) -> dict[str, Any]:
        """Job summaries, newest first by default, filtered and paginated as the API does."""
        params = self._validated("ListTransformJobs", params)
        with self._store.read() as db:
            names = [
                r["name"] for r in db.execute("SELECT name FROM transform_jobs ORDER BY rowid")
            ]
        rows = [self._job_row("ListTransformJobs", name) for name in names]
        rows = [
            row
            for row in rows
            if _listed(row, params)
            and params.get("StatusEquals", row["status"]) == row["status"]
            and _in_modified_window(row["last_modified_time"], params)
        ]
        sort_keys = {
            "Name": lambda r: r["name"],
            "CreationTime": lambda r: r["creation_time"],
            "Status": lambda r: (r["status"], r["creation_time"]),
        }
        # API reference, ListTransformJobs.SortOrder: "The default is Descending."
        page, token = self._sorted_page(
            "ListTransformJobs",
            rows,
            {**params, "MaxResults": params.get("MaxResults", _DEFAULT_MAX_RESULTS)},
            sort_keys,
            "Descending",
        )
        summaries = [
            {
                key: value
                for key, value in {
                    "TransformJobName": row["name"],
                    "TransformJobArn": self._job_arn(row["name"]),
                    "CreationTime": _datetime(row["creation_time"]),
                    "TransformEndTime": _optional_datetime(row["end_time"]),
                    "LastModifiedTime": _datetime(row["last_modified_time"]),
                    "TransformJobStatus": row["status"],
                    "FailureReason": row["failure_reason"],
                }.items()
                if value is not None
            }
            for row in page
        ]
        return self._response(TransformJobSummaries=summaries, NextToken=token)

    def stop_transform_job(self, **params: Any) -> dict[str, Any]:
        """Ask a running job to stop: ``Stopping`` now, ``Stopped`` once its workers are gone."""
        params = self._validated("StopTransformJob", params)
        name = params["TransformJobName"]
        self._job_row("StopTransformJob", name)  # settles a job whose runner died
        with self._store.write() as db:
            row = db.execute("SELECT status FROM transform_jobs WHERE name = ?", (name,)).fetchone()
            if row["status"] == "InProgress":
                db.execute(
                    "UPDATE transform_jobs SET status = 'Stopping', last_modified_time = ? "
                    "WHERE name = ?",
                    (time.time(), name),
                )
            elif row["status"] != "Stopping":
                # A finished job cannot be stopped; SageMaker refuses with a ValidationException.
                raise self._error(
                    "StopTransformJob",
                    "ValidationException",
                    f"Transform job {self._job_arn(name)} is {row['status']}; only an "
                    "InProgress job can be stopped.",
                )
        return self._response()

    # -- waiters -----------------------------------------------------------------------------

    @property
    def waiter_names(self) -> list[str]:
        """Waiters available on this client (those whose operation it implements)."""
        model = _waiter_model()
        return sorted(
            xform_name(name)
            for name in model.waiter_names
            if callable(getattr(self, xform_name(model.get_waiter(name).operation), None))
        )

    def get_waiter(self, waiter_name: str) -> Waiter:
        """botocore's waiter, e.g. ``get_waiter("transform_job_completed_or_stopped")``."""
        if waiter_name not in self.waiter_names:
            raise ValueError(f"Waiter does not exist: {waiter_name}")  # boto3's message
        model = _waiter_model()
        camel = next(name for name in model.waiter_names if xform_name(name) == waiter_name)
        return create_waiter_with_client(camel, model, self)

    # -- helpers -----------------------------------------------------------------------------

    def _job_arn(self, name: str) -> str:
        return f"{self._arn_prefix()}:transform-job/{name}"

    def _job_row(self, operation: str, name: str) -> sqlite3.Row:
        """The job's row, after settling a job whose runner is gone (so waiters never hang)."""
        with self._store.read() as db:
            row = db.execute("SELECT * FROM transform_jobs WHERE name = ?", (name,)).fetchone()
        if row is None:
            # As SageMaker (and moto) answer; the waiter treats it as a terminal failure.
            raise self._error(
                operation,
                "ValidationException",
                f"Could not find transform job '{self._job_arn(name)}'.",
            )
        if row["status"] in _ACTIVE and not runner_is_alive(
            row["runner_pid"], row["heartbeat"], RUNNER_HEARTBEAT_TIMEOUT_SECONDS
        ):
            self._settle_abandoned_job(name)
            with self._store.read() as db:
                row = db.execute("SELECT * FROM transform_jobs WHERE name = ?", (name,)).fetchone()
        return row

    def _settle_abandoned_job(self, name: str) -> None:
        with self._store.write() as db:
            row = db.execute("SELECT * FROM transform_jobs WHERE name = ?", (name,)).fetchone()
            if row["status"] not in _ACTIVE:
                return  # the runner finished after all
            stopping = row["status"] == "Stopping"
            reason = (
                f"The local transform runner (pid {row['runner_pid']}) exited without finishing "
                f"the job (killed, or the machine restarted); outputs of files it had not "
                f"completed were not written. See {job_log_path(self.root, name)}."
            )
            now = time.time()
            db.execute(
                "UPDATE transform_jobs SET status = ?, failure_reason = ?, end_time = ?, "
                "last_modified_time = ? WHERE name = ?",
                ("Stopped" if stopping else "Failed", reason, now, now, name),
            )

    def _check_transform_limits(self, params: dict[str, Any]) -> None:
        problems = []
        payload = params.get("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_MB)
        concurrency = params.get("MaxConcurrentTransforms")
        if payload > MAX_PAYLOAD_MB:
            problems.append(f"MaxPayloadInMB is {payload}; it cannot be greater than 100 MB")
        if concurrency and payload * concurrency > MAX_PAYLOAD_MB:
            problems.append(
                f"MaxConcurrentTransforms x MaxPayloadInMB is {concurrency} x {payload} = "
                f"{concurrency * payload} MB; it cannot exceed 100 MB"
            )
        transform_input = params["TransformInput"]
        source = transform_input["DataSource"]["S3DataSource"]
        if source["S3DataType"] not in ("S3Prefix", "ManifestFile"):
            # AugmentedManifestFile "is not compatible" with transform (TransformS3DataSource).
            problems.append(
                f"S3DataType {source['S3DataType']} is not supported for transform jobs; "
                "use S3Prefix or ManifestFile"
            )
        if transform_input.get("SplitType", "None") not in ("None", "Line"):
            problems.append(
                f"SplitType {transform_input['SplitType']} is not supported by the local "
                "backend (None and Line are)"
            )
        for field, uri in (
            ("TransformInput.DataSource.S3DataSource.S3Uri", source["S3Uri"]),
            ("TransformOutput.S3OutputPath", params["TransformOutput"]["S3OutputPath"]),
        ):
            if not uri.startswith("s3://"):
                problems.append(f"{field} must be an s3:// URI on the local backend; got {uri}")
        processing = params.get("DataProcessing") or {}
        try:
            DataProcessing.create(
                processing.get("InputFilter"),
                processing.get("JoinSource"),
                processing.get("OutputFilter"),
                transform_input.get("ContentType"),
                params["TransformOutput"].get("Accept"),
            )
        except TransformRecordError as exc:
            problems.append(f"DataProcessing: {exc}")
        if problems:
            raise self._error(
                "CreateTransformJob",
                "ValidationException",
                f"Transform job {params['TransformJobName']}: " + "; ".join(problems) + ".",
            )


@functools.cache
def _waiter_model() -> WaiterModel:
    """SageMaker's waiters-2 model from botocore, paced for local jobs (see module docstring)."""
    config = botocore_session().get_waiter_model("sagemaker")._waiter_config
    waiters = {
        name: {
            **waiter,
            "delay": _LOCAL_WAITER_DELAY_SECONDS,
            "maxAttempts": _LOCAL_WAITER_MAX_ATTEMPTS,
        }
        for name, waiter in config.items()
    }
    return WaiterModel({"version": 2, "waiters": waiters})


def _optional_datetime(epoch: float | None) -> Any:
    return None if epoch is None else _datetime(epoch)


def _in_modified_window(epoch: float, params: dict[str, Any]) -> bool:
    after, before = params.get("LastModifiedTimeAfter"), params.get("LastModifiedTimeBefore")
    return (after is None or epoch > _epoch(after)) and (before is None or epoch < _epoch(before))
