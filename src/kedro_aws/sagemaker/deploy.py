"""Deploy an approved model package and score data with SageMaker Batch Transform.

The workflow is written once against a boto3-style ``sagemaker`` client, so it runs unchanged on
AWS (boto3, moto) and on the local backend (``kedro_aws.client("sagemaker", backend="local")``):

1. ``resolve_model_package``: the latest *Approved* version of a group, or a pinned one;
2. ``create_model_from_package``: a SageMaker model whose container is that package;
3. ``run_transform_job``: start a Batch Transform job over an S3 prefix;
4. ``wait_for_transform_job``: poll with capped exponential backoff, log progress, and raise
   with the ``FailureReason`` and the CloudWatch log names when the job fails.

Example::

    package = resolve_model_package(sm, "iris-classifier")          # latest Approved
    model = unique_name("iris-model")
    create_model_from_package(sm, package.arn, model, role_arn)
    job = run_transform_job(sm, job_name=unique_name("iris-scoring"), model_name=model,
                            input_s3_uri="s3://bucket/in/", output_s3_uri="s3://bucket/out/",
                            content_type="text/csv", accept="text/csv", split_type="Line",
                            batch_strategy="MultiRecord", assemble_with="Line")
    wait_for_transform_job(sm, job.name)
    job.output_uri_for("s3://bucket/in/part-0.csv")   # 's3://bucket/out/part-0.csv.out'
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from kedro_aws.sagemaker.registry import (
    ModelPackageRef,
    describe_package,
    require_approved,
    resolve_package,
)

logger = logging.getLogger(__name__)

#: Where Batch Transform sends the container's stdout/stderr. Streams are named
#: ``<job-name>/<instance-id>-<epoch>`` (plus ``/data-log`` for data errors such as a failed
#: file), per the developer guide's table of logs, "Log Amazon SageMaker AI events with Amazon
#: CloudWatch": https://docs.aws.amazon.com/sagemaker/latest/dg/logging-cloudwatch.html
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"
#: What SageMaker needs to find the inference module packed in model.tar.gz (see packaging.py).
ENTRY_POINT_ENV = ("SAGEMAKER_PROGRAM", "SAGEMAKER_SUBMIT_DIRECTORY")

# API patterns: TransformJobName "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", ModelName
# "[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?", both at most 63 characters. One regex satisfies both.
MAX_NAME_LENGTH = 63
_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_NOT_NAME_CHARS = re.compile(r"[^a-zA-Z0-9]+")
_TERMINAL = ("Completed", "Failed", "Stopped")


class DeploymentError(Exception):
    """A deployment step cannot go on; the message names the package, model or job and why."""


class TransformJobError(DeploymentError):
    """A transform job ended without results (Failed or Stopped), or did not end in time.

    Attributes: ``job_name``, ``status``, ``failure_reason`` (SageMaker's, may be empty),
    ``log_group`` and ``log_stream_prefix`` (where the container's logs are on CloudWatch).
    """

    def __init__(self, message: str, *, job_name: str, status: str, failure_reason: str = ""):
        super().__init__(message)
        self.job_name = job_name
        self.status = status
        self.failure_reason = failure_reason
        self.log_group = TRANSFORM_LOG_GROUP
        self.log_stream_prefix = log_stream_prefix(job_name)


class TransformJobFailedError(TransformJobError):
    """The job ended ``Failed``."""


class TransformJobStoppedError(TransformJobError):
    """The job was stopped before it completed."""


class TransformJobTimeoutError(TransformJobError):
    """The job was still running when the wait timed out (it keeps running on SageMaker)."""


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------


def is_valid_name(name: str) -> bool:
    """Whether ``name`` is a valid transform job name and model name.

    >>> is_valid_name("iris-scoring-1"), is_valid_name("-iris"), is_valid_name("iris_1")
    (True, False, False)
    """
    # The pattern alone would allow more than 63 characters when hyphens repeat.
    return len(name) <= MAX_NAME_LENGTH and bool(_NAME.fullmatch(name))


def unique_name(prefix: str, *, now: datetime | None = None, token: str | None = None) -> str:
    """A fresh, valid job or model name: ``<prefix>-<UTC yyyymmdd-hhmmss>-<random hex>``.

    SageMaker names must be unique per account and region, forever for jobs (a job name cannot
    be reused even after the job is gone), so a timestamp alone is not enough when two runs
    start in the same second. Characters SageMaker refuses become ``-`` and the prefix is cut so
    the name fits in 63 characters.

    >>> unique_name("iris_scoring", now=datetime(2026, 11, 26, 2, 26, 36), token="a1b2c3")
    'iris-scoring-20261126-022636-a1b2c3'

    Raises:
        ValueError: the prefix has no letter or digit.
    """
    moment = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    suffix = f"-{moment}-{token or secrets.token_hex(3)}"
    cleaned = _NOT_NAME_CHARS.sub("-", prefix).strip("-")
    if not cleaned:
        raise ValueError(f"Name prefix {prefix!r} must contain at least one letter or digit.")
    cleaned = cleaned[: MAX_NAME_LENGTH - len(suffix)].rstrip("-")
    name = cleaned + suffix
    if not is_valid_name(name):  # only a malformed token can get here
        raise ValueError(f"{name!r} is not a valid SageMaker name (token {token!r}).")
    return name


def log_stream_prefix(job_name: str) -> str:
    """Prefix of the job's CloudWatch log streams in ``TRANSFORM_LOG_GROUP``.

    >>> log_stream_prefix("iris-scoring-1")
    'iris-scoring-1/'
    """
    return f"{job_name}/"


# --------------------------------------------------------------------------------------------
# Model packages
# --------------------------------------------------------------------------------------------


def resolve_model_package(sm: Any, group: str, pinned: str | int | None = None) -> ModelPackageRef:
    """The package to deploy: the latest Approved version of ``group``, or ``pinned``.

    ``pinned`` is a version number of the group (``3`` or ``"3"``) or a package ARN. A pinned
    package must be Approved as well: SageMaker refuses to deploy anything else (API reference,
    ``ModelApprovalStatus``), and we never approve on the user's behalf.

    >>> resolve_model_package(sm, "iris-classifier").arn  # doctest: +SKIP
    'arn:aws:sagemaker:eu-west-1:123456789012:model-package/iris-classifier/2'

    Raises:
        NoApprovedModelPackageError: nothing Approved in the group (the message lists the
            versions and statuses found), or the pinned package is not Approved.
        RegistryError: the group or the pinned version does not exist.
    """
    if isinstance(pinned, str) and pinned.startswith("arn:"):
        package = resolve_package(sm, arn=pinned)
    else:
        version = None if pinned in (None, "") else pinned
        package = resolve_package(sm, group, version=version)
    return require_approved(package)


def create_model_from_package(
    sm: Any,
    package_arn: str,
    model_name: str,
    role_arn: str,
    environment: Mapping[str, str] | None = None,
) -> str:
    """Create SageMaker model ``model_name`` serving ``package_arn``; return the model ARN.

    The container is the package itself (``ModelPackageName``; developer guide "Deploy a Model
    from the Registry with Python"), so image and artifact come from the registry, not from
    us. Its ``Environment`` restates the package's entry point (``SAGEMAKER_PROGRAM``, and
    ``SAGEMAKER_SUBMIT_DIRECTORY`` when set) so that the model alone says which module serves
    it, plus any ``environment`` given here.

    >>> create_model_from_package(sm, package.arn, "iris-model-1", role_arn)  # doctest: +SKIP
    'arn:aws:sagemaker:eu-west-1:123456789012:model/iris-model-1'

    Raises:
        DeploymentError: the package's container names no ``SAGEMAKER_PROGRAM``.
        botocore.exceptions.ClientError: SageMaker refused the model (e.g. the package is not
            Approved); a note names the model and the package.
    """
    if not is_valid_name(model_name):
        raise ValueError(f"Model name {model_name!r} is not a valid SageMaker name.")
    package_env = describe_package(sm, package_arn).environment or {}
    if not package_env.get("SAGEMAKER_PROGRAM"):
        # Without it the scikit-learn container imports no inference module at all and every
        # request fails (sagemaker_containers _server.start only installs `if env.module_name`).
        raise DeploymentError(
            f"Model package {package_arn} sets no SAGEMAKER_PROGRAM in its container "
            "Environment, so the serving container would load no inference module. Register "
            "the package with the environment from kedro_aws.sagemaker.container_environment."
        )
    container_env = {k: package_env[k] for k in ENTRY_POINT_ENV if k in package_env}
    container_env.update(environment or {})
    try:
        response = sm.create_model(
            ModelName=model_name,
            ExecutionRoleArn=role_arn,
            PrimaryContainer={"ModelPackageName": package_arn, "Environment": container_env},
        )
    except Exception as error:
        _add_note(error, f"while creating SageMaker model '{model_name}' from {package_arn}")
        raise
    logger.info("Created SageMaker model %s from %s.", model_name, package_arn)
    return response["ModelArn"]


# --------------------------------------------------------------------------------------------
# Transform jobs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransformJob:
    """A started transform job, and where its results will be.

    >>> job = TransformJob("j-1", "arn:...:transform-job/j-1", "m", "s3://b/in/", "s3://b/out")
    >>> job.output_uri_for("s3://b/in/day=1/part-0.csv")
    's3://b/out/day=1/part-0.csv.out'
    """

    name: str
    arn: str
    model_name: str
    input_s3_uri: str
    output_s3_uri: str
    request: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def log_group(self) -> str:
        return TRANSFORM_LOG_GROUP

    @property
    def log_stream_prefix(self) -> str:
        return log_stream_prefix(self.name)

    def output_uri_for(self, input_uri: str) -> str:
        """Where Batch Transform writes the results of one input object.

        SageMaker names the output after the input key relative to the input prefix, plus
        ``.out`` (API reference, ``TransformOutput.S3OutputPath``).
        """
        prefix = self.input_s3_uri
        if not input_uri.startswith(prefix):
            raise ValueError(f"{input_uri} is not under the job's input prefix {prefix}.")
        relative = input_uri[len(prefix) :].lstrip("/")
        return f"{self.output_s3_uri.rstrip('/')}/{relative}.out"


def run_transform_job(
    sm: Any,
    *,
    job_name: str,
    model_name: str,
    input_s3_uri: str,
    output_s3_uri: str,
    content_type: str,
    accept: str,
    split_type: str = "None",
    batch_strategy: str | None = None,
    max_payload_mb: int = 6,
    max_concurrent: int = 1,
    instance_type: str = "ml.m5.large",
    instance_count: int = 1,
    assemble_with: str = "None",
    data_processing: Mapping[str, str] | None = None,
    environment: Mapping[str, str] | None = None,
    compression_type: str = "None",
    s3_data_type: str = "S3Prefix",
    invocations_timeout_seconds: int | None = None,
    invocations_max_retries: int | None = None,
) -> TransformJob:
    """Start a Batch Transform job; returns at once (see ``wait_for_transform_job``).

    Arguments map one to one onto ``CreateTransformJob``. ``batch_strategy`` only applies with a
    ``split_type`` other than ``"None"`` (API reference, ``BatchStrategy``), so leave it ``None``
    to send each whole object as one request (e.g. Parquet). Defaults are SageMaker's:
    6 MB payloads, one request at a time per instance.

    Raises:
        botocore.exceptions.ClientError: SageMaker refused the job; a note names it.
    """
    if not is_valid_name(job_name):
        raise ValueError(f"Transform job name {job_name!r} is not a valid SageMaker name.")
    request: dict[str, Any] = {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "MaxConcurrentTransforms": max_concurrent,
        "MaxPayloadInMB": max_payload_mb,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": s3_data_type, "S3Uri": input_s3_uri}},
            "ContentType": content_type,
            "CompressionType": compression_type,
            "SplitType": split_type,
        },
        "TransformOutput": {
            "S3OutputPath": output_s3_uri,
            "Accept": accept,
            "AssembleWith": assemble_with,
        },
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": instance_count},
    }
    if batch_strategy is not None:
        request["BatchStrategy"] = batch_strategy
    if environment:
        request["Environment"] = dict(environment)
    if data_processing:
        request["DataProcessing"] = dict(data_processing)
    client_config = {
        key: value
        for key, value in (
            ("InvocationsTimeoutInSeconds", invocations_timeout_seconds),
            ("InvocationsMaxRetries", invocations_max_retries),
        )
        if value is not None
    }
    if client_config:
        request["ModelClientConfig"] = client_config
    try:
        response = sm.create_transform_job(**request)
    except Exception as error:
        _add_note(error, f"while creating transform job '{job_name}' (model '{model_name}')")
        raise
    logger.info(
        "Started transform job %s: %s (%s) -> %s (%s).",
        job_name,
        input_s3_uri,
        content_type,
        output_s3_uri,
        accept,
    )
    return TransformJob(
        name=job_name,
        arn=response["TransformJobArn"],
        model_name=model_name,
        input_s3_uri=input_s3_uri,
        output_s3_uri=output_s3_uri,
        request=request,
    )


# --------------------------------------------------------------------------------------------
# Waiting
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransformJobProgress:
    """One observation of a job while waiting; passed to the ``progress`` callback."""

    job_name: str
    status: str
    elapsed: float
    status_changed: bool
    description: Mapping[str, Any] = field(repr=False)


def backoff_delays(initial: float, maximum: float, factor: float = 2.0) -> Iterator[float]:
    """Poll intervals: ``initial``, then multiplied by ``factor``, capped at ``maximum``.

    >>> import itertools
    >>> list(itertools.islice(backoff_delays(5, 60), 6))
    [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    """
    if initial <= 0 or maximum < initial or factor < 1:
        raise ValueError(
            f"Need 0 < initial <= maximum and factor >= 1 (got {initial}, {maximum}, {factor})."
        )
    delay = float(initial)
    while True:
        yield delay
        delay = min(delay * factor, float(maximum))


def progress_logger(log: logging.Logger) -> Callable[[TransformJobProgress], None]:
    """A progress reporter writing one INFO line per poll to ``log``: status and elapsed time.

    With the default backoff that is a line at 0, 5, 15, 35, 75 s and then once a minute. Kedro
    renders records with rich, but only from loggers at INFO: its own and the project's
    package's. A node therefore passes its own logger, so progress shows without configuration:

    >>> progress = progress_logger(logging.getLogger("iris_aws.pipelines.deploy_model"))
    """

    def report(event: TransformJobProgress) -> None:
        what = event.status if event.status_changed else f"still {event.status}"
        log.info("Transform job %s: %s (%s elapsed).", event.job_name, what, _hms(event.elapsed))

    return report


#: The default reporter, on this module's logger.
log_progress = progress_logger(logger)


def wait_for_transform_job(
    sm: Any,
    job_name: str,
    *,
    poll_seconds: float = 5.0,
    max_poll_seconds: float = 60.0,
    timeout: float | None = 3600.0,
    progress: Callable[[TransformJobProgress], None] | None = log_progress,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Wait until the job completes; return its last ``describe_transform_job`` response.

    Polls ``describe_transform_job`` every ``poll_seconds``, doubling up to ``max_poll_seconds``
    (a job takes minutes on AWS; fast first polls keep local runs snappy, the cap keeps API
    calls well under SageMaker's Describe* throttling limits). ``progress`` sees every poll
    (``None`` for silence); ``sleep`` and ``clock`` are injectable for tests.

    >>> wait_for_transform_job(sm, "iris-scoring-20261126-022636-a1b2c3")  # doctest: +SKIP
    {'TransformJobStatus': 'Completed', ...}

    Raises:
        TransformJobFailedError: the job failed; the message carries SageMaker's FailureReason
            and the CloudWatch log group and stream prefix to read.
        TransformJobStoppedError: the job was stopped.
        TransformJobTimeoutError: still running after ``timeout`` seconds (it is not stopped).
    """
    start = clock()
    last_status = None
    for planned in backoff_delays(poll_seconds, max(poll_seconds, max_poll_seconds)):
        delay = planned
        description = sm.describe_transform_job(TransformJobName=job_name)
        status = description["TransformJobStatus"]
        elapsed = clock() - start
        if progress is not None:
            progress(
                TransformJobProgress(job_name, status, elapsed, status != last_status, description)
            )
        last_status = status
        if status == "Completed":
            return description
        if status in _TERMINAL:
            raise _ended_error(job_name, status, description.get("FailureReason") or "")
        if timeout is not None:
            remaining = timeout - elapsed
            if remaining <= 0:
                raise TransformJobTimeoutError(
                    f"Transform job {job_name} is still {status} after {_hms(elapsed)} (timeout "
                    f"{_hms(timeout)}). It keeps running on SageMaker: wait again, or stop it "
                    f"with stop_transform_job(TransformJobName='{job_name}'). Logs: CloudWatch "
                    f"group {TRANSFORM_LOG_GROUP}, streams {log_stream_prefix(job_name)}*.",
                    job_name=job_name,
                    status=status,
                )
            delay = min(delay, remaining)  # wake up in time to report the timeout
        sleep(delay)
    raise AssertionError("unreachable: backoff_delays is infinite")  # pragma: no cover


def _ended_error(job_name: str, status: str, reason: str) -> TransformJobError:
    logs = (
        f"Logs: CloudWatch group {TRANSFORM_LOG_GROUP}, streams {log_stream_prefix(job_name)}* "
        f"(container output; data errors in the .../data-log stream)."
    )
    if status == "Failed":
        return TransformJobFailedError(
            f"Transform job {job_name} failed: {reason or 'SageMaker gave no FailureReason'}. "
            + logs,
            job_name=job_name,
            status=status,
            failure_reason=reason,
        )
    return TransformJobStoppedError(
        f"Transform job {job_name} was stopped before it completed"
        + (f": {reason}" if reason else "")
        + f"; its outputs are incomplete. {logs}",
        job_name=job_name,
        status=status,
        failure_reason=reason,
    )


def _hms(seconds: float) -> str:
    """``125.0`` -> ``'2m05s'``; under a minute, ``'7.5s'``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _add_note(error: BaseException, note: str) -> None:
    # BaseException.add_note exists from Python 3.11; on 3.10 the error goes on without it.
    if hasattr(error, "add_note"):
        error.add_note(note)
