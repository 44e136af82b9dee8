"""The local Batch Transform executor: runs one transform job in the background.

``create_transform_job`` records the job in SQLite and starts its runner
(``transform_service.launch_runner``): a detached process (``main``) that owns the job until it
ends, so ``describe_transform_job`` from any process sees it progress, and the job survives the
process that created it. The runner is forked from the warm transform service, or started as a
new interpreter when the service is off. It claims the job, then:

1. lists the input files (``S3Prefix``: every object under the prefix, sorted; ``ManifestFile``:
   the manifest's ``prefix`` joined with each listed key);
2. prepares the model once, while its workers start: downloads ``ModelDataUrl`` from (local)
   S3, verifies its SHA-256 when the model package recorded one, and extracts it safely;
3. spreads the files across ``InstanceCount`` instances: file *i* of the sorted list goes to
   instance ``i % InstanceCount``. SageMaker "distributes the input files" so that one instance
   might process ``input1.csv`` and another ``input2.csv``, and never splits a file across
   instances (developer guide, batch-transform.md); the exact assignment is not documented, so
   this round-robin over sorted keys is our rule;
4. runs ``MaxConcurrentTransforms`` worker processes per instance (never more than it has
   files). A worker loads the model once (``ServingModel.load``, as a gunicorn worker does), then
   transforms whole files: ``open_input`` -> ``iter_mini_batches`` -> ``InputFilter`` ->
   ``ServingModel.invoke`` (with ``InvocationsTimeoutInSeconds`` and ``InvocationsMaxRetries``)
   -> join / ``OutputFilter`` -> ``AssembleWith``. A mini-batch never spans files and records
   keep their input order, because one worker writes one file's output in order. The runner
   sends workers file assignments only; a worker reads its input and writes its output itself.
   The machine's cores are shared out between all workers of the job: each worker's native
   thread pools (BLAS, OpenMP, pyarrow's CSV parsing) get ``cpu_count // workers`` threads,
   through the usual ``*_NUM_THREADS`` variables, unless the job's environment sets one of them;
5. writes each ``<S3OutputPath>/<key relative to the input prefix's folder>.out`` to a scratch
   file (hashing it for the ETag as it goes) and moves it into S3 only once the whole file
   succeeded (API ``TransformOutput``:
   "Batch transform doesn't upload partially processed objects"); a failed file leaves no
   ``.out`` and the other files go on; the job then ends ``Failed`` naming the first failed
   file (in input order), the record position where known, and the cause;
6. watches for ``stop_transform_job`` (status ``Stopping``): workers are terminated, their
   scratch output is discarded, and the job ends ``Stopped``. A worker that dies (killed, or
   ``os._exit`` in user code) fails the file it held, naming the exit signal or code.

Memory per worker stays bounded by a small multiple of ``MaxPayloadInMB``: inputs are streamed
(``transform_records``) and each response is written out before the next request. Freed memory
is kept for the next mini-batch rather than returned to the kernel (``_keep_freed_memory``), and
each worker logs its peak RSS when it exits.

Progress (files and records done) is logged to ``<root>/.kedro-aws/transform-jobs/<job>.log``
(the local stand-in for the job's CloudWatch log stream) and kept in SQLite; it is not added to
the ``describe_transform_job`` response, which keeps AWS's shape.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from kedro_aws.local._client import STATE_DIR_NAME
from kedro_aws.local.serving import ServingError, ServingModel, decode_csv
from kedro_aws.local.transform_records import (
    MIB,
    DataProcessing,
    MiniBatch,
    TransformRecordError,
    assemble_response,
    iter_mini_batches,
    open_input,
)

logger = logging.getLogger(__name__)

#: ``ModelClientConfig`` defaults (API reference, ``ModelClientConfig``).
DEFAULT_INVOCATIONS_TIMEOUT_SECONDS = 600
DEFAULT_INVOCATIONS_MAX_RETRIES = 3
#: ``MaxPayloadInMB`` default (API reference, ``CreateTransformJob``).
DEFAULT_MAX_PAYLOAD_MB = 6
#: FailureReason is at most 1024 characters (API ``DescribeTransformJobResponse``).
MAX_FAILURE_REASON = 1024
JOBS_DIR_NAME = "transform-jobs"
#: A runner that has not written a heartbeat for this long is considered gone.
RUNNER_HEARTBEAT_TIMEOUT_SECONDS = 60.0

_HEARTBEAT_SECONDS = 1.0
_POLL_SECONDS = 0.2
_PROGRESS_MESSAGE_SECONDS = 0.5
_WORKER_STOP_GRACE_SECONDS = 5.0


# --------------------------------------------------------------------------------------------
# Where a job keeps its log and scratch space
# --------------------------------------------------------------------------------------------


def jobs_dir(root: Path) -> Path:
    """Where transform jobs keep their logs and scratch space."""
    return root / STATE_DIR_NAME / JOBS_DIR_NAME


def job_log_path(root: Path, job_name: str) -> Path:
    """The job's log: the local stand-in for its CloudWatch log stream."""
    return jobs_dir(root) / f"{job_name}.log"


# --------------------------------------------------------------------------------------------
# Input listing, instance assignment and output naming
# --------------------------------------------------------------------------------------------


class JobSetupError(Exception):
    """The job cannot start (no input, unreadable manifest, bad model data)."""


@dataclass(frozen=True)
class InputFile:
    """One input object and its key relative to the input prefix's folder."""

    bucket: str
    key: str
    relative: str
    position: int  # in the sorted input list; the first failure is reported in this order

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); the local backend reads s3:// URIs only."""
    if not uri.startswith("s3://"):
        raise JobSetupError(f"{uri} is not an s3:// URI; the local backend reads local S3 only")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def list_input_files(s3: Any, data_source: dict[str, Any]) -> list[InputFile]:
    """The job's input objects in processing order (``TransformS3DataSource``)."""
    source = data_source["S3DataSource"]
    uri = source["S3Uri"]
    if source["S3DataType"] == "ManifestFile":
        pairs = _manifest_objects(s3, uri)
    else:
        bucket, prefix = split_s3_uri(uri)
        pairs = [(bucket, key) for key in _keys_under(s3, bucket, prefix)]
        base = prefix[: prefix.rfind("/") + 1]
        pairs = [(bucket, key, key[len(base) :]) for bucket, key in pairs]
    if not pairs:
        # Worded after SageMaker's own error for an empty input prefix.
        raise JobSetupError(
            f'No S3 objects found under S3 URL "{uri}" given in input data source. Please '
            "ensure that the bucket exists and that objects exist under that S3 prefix."
        )
    return [InputFile(b, k, rel, i) for i, (b, k, rel) in enumerate(pairs)]


def _keys_under(s3: Any, bucket: str, prefix: str) -> list[str]:
    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", ()))
    except s3.exceptions.NoSuchBucket:
        return []
    # "All objects with the specified key name prefix" (TransformS3DataSource.S3DataType);
    # zero-byte folder markers ("dir/") are not data.
    return sorted(key for key in keys if not key.endswith("/"))


def _manifest_objects(s3: Any, uri: str) -> list[tuple[str, str, str]]:
    """Objects listed by a manifest: ``[{"prefix": "s3://b/p/"}, "rel/key1", ...]``."""
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        manifest = json.loads(body)
    except s3.exceptions.NoSuchKey:
        raise JobSetupError(f"The manifest file {uri} does not exist.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JobSetupError(f"The manifest file {uri} is not valid JSON: {exc}") from exc
    # Format from the API reference (TransformS3DataSource.S3Uri): a JSON array whose first
    # element is {"prefix": "s3://bucket/prefix/"} and whose other elements are relative keys.
    if (
        not isinstance(manifest, list)
        or not manifest
        or not isinstance(manifest[0], dict)
        or not isinstance(manifest[0].get("prefix"), str)
        or not all(isinstance(entry, str) for entry in manifest[1:])
    ):
        raise JobSetupError(
            f"The manifest file {uri} must be a JSON array: "
            '[{"prefix": "s3://bucket/prefix/"}, "relative/key-1", "relative/key-2", ...]'
        )
    prefix_bucket, prefix = split_s3_uri(manifest[0]["prefix"])
    base = prefix[: prefix.rfind("/") + 1]
    objects = []
    for entry in manifest[1:]:
        full_key = prefix + entry
        objects.append((prefix_bucket, full_key, full_key[len(base) :]))
    return objects


def assign_to_instances(files: list[InputFile], instance_count: int) -> list[list[InputFile]]:
    """Round-robin over the sorted files: file ``i`` goes to instance ``i % instance_count``.

    >>> files = [InputFile("b", k, k, i) for i, k in enumerate("abc")]
    >>> [[f.key for f in group] for group in assign_to_instances(files, 2)]
    [['a', 'c'], ['b']]
    """
    return [files[index::instance_count] for index in range(instance_count)]


def output_location(output_path: str, relative: str) -> tuple[str, str]:
    """Bucket and key of a file's output: ``<S3OutputPath>/<relative>.out``.

    >>> output_location("s3://b/scores/", "day=1/part-0.csv")
    ('b', 'scores/day=1/part-0.csv.out')
    """
    bucket, prefix = split_s3_uri(output_path)
    prefix = prefix.rstrip("/")
    return bucket, f"{prefix}/{relative}.out" if prefix else f"{relative}.out"


# --------------------------------------------------------------------------------------------
# One file, in a worker
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSettings:
    """How each file is split, sent and assembled (from the CreateTransformJob request)."""

    content_type: str | None
    accept: str | None
    split_type: str
    batch_strategy: str
    max_payload_bytes: int
    assemble_with: str
    compression_type: str
    input_filter: str
    join_source: str
    output_filter: str
    invocations_timeout_seconds: int
    invocations_max_retries: int

    @classmethod
    def from_request(cls, request: dict[str, Any]) -> FileSettings:
        transform_input = request["TransformInput"]
        output = request["TransformOutput"]
        processing = request.get("DataProcessing") or {}
        client_config = request.get("ModelClientConfig") or {}
        split_type = transform_input.get("SplitType", "None")
        return cls(
            content_type=transform_input.get("ContentType"),
            accept=output.get("Accept"),
            split_type=split_type,
            # Without a BatchStrategy SageMaker asks the container (/execution-parameters,
            # which the scikit-learn container does not serve) and then uses MultiRecord
            # (research section 2, "Container protocol"; the SDK's local mode does the same).
            batch_strategy=request.get("BatchStrategy") or "MultiRecord",
            max_payload_bytes=request.get("MaxPayloadInMB", DEFAULT_MAX_PAYLOAD_MB) * MIB,
            assemble_with=output.get("AssembleWith", "None"),
            compression_type=transform_input.get("CompressionType", "None"),
            input_filter=processing.get("InputFilter", "$"),
            join_source=processing.get("JoinSource", "None"),
            output_filter=processing.get("OutputFilter", "$"),
            invocations_timeout_seconds=client_config.get(
                "InvocationsTimeoutInSeconds", DEFAULT_INVOCATIONS_TIMEOUT_SECONDS
            ),
            invocations_max_retries=client_config.get(
                "InvocationsMaxRetries", DEFAULT_INVOCATIONS_MAX_RETRIES
            ),
        )

    def data_processing(self) -> DataProcessing:
        return DataProcessing.create(
            self.input_filter,
            self.join_source,
            self.output_filter,
            self.content_type,
            self.accept,
        )


class FileTransformError(Exception):
    """A file failed; ``position`` is the record range when known (``records 1-500``)."""

    def __init__(self, cause: str, position: str | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.position = position


class InvocationTimeout(BaseException):  # noqa: N818 - mirrors the HTTP timeout it stands for
    """An invocation ran longer than InvocationsTimeoutInSeconds.

    A BaseException, so a handler's broad ``except Exception`` cannot swallow the timeout.
    """


def transform_stream(
    model: ServingModel,
    source: BinaryIO,
    sink: BinaryIO,
    settings: FileSettings,
    on_progress: Callable[[int], None] = lambda records: None,
) -> int:
    """Transform one input stream into ``sink``; returns the number of records.

    Raises ``FileTransformError`` naming the records of the failing mini-batch and the cause.
    """
    processing = settings.data_processing()
    records = 0
    batch: MiniBatch | None = None
    try:
        stream = open_input(source, settings.compression_type)
        for batch in iter_mini_batches(
            stream, settings.split_type, settings.batch_strategy, settings.max_payload_bytes
        ):
            payload = processing.filter_input(batch)
            response = invoke_with_retries(model, payload, settings)
            response = processing.process_output(batch, response)
            sink.write(assemble_response(response, settings.assemble_with))
            records += batch.records
            on_progress(records)
    except ServingError as exc:
        raise FileTransformError(str(exc), batch.describe() if batch else None) from exc
    except TransformRecordError as exc:
        # Its message already names the record (or is about the whole file, e.g. bad gzip).
        raise FileTransformError(str(exc)) from exc
    return records


def invoke_with_retries(model: ServingModel, payload: bytes, settings: FileSettings) -> bytes:
    """One request, retried ``InvocationsMaxRetries`` times if it fails or times out."""
    attempts = settings.invocations_max_retries + 1
    for attempt in range(1, attempts + 1):
        try:
            body, _content_type = _invoke_with_deadline(
                model, payload, settings, settings.invocations_timeout_seconds
            )
            return body
        except (ServingError, InvocationTimeout) as exc:
            if attempt == attempts:
                message = str(exc)
                if attempts > 1:
                    message += (
                        f" (failed {attempts} times: the first try and "
                        f"InvocationsMaxRetries={settings.invocations_max_retries} retries)"
                    )
                raise ServingError(message) from exc
            logger.warning("Invocation failed (try %d of %d): %s", attempt, attempts, exc)
    raise AssertionError("unreachable")  # pragma: no cover


def _invoke_with_deadline(
    model: ServingModel, payload: bytes, settings: FileSettings, timeout: int
) -> tuple[bytes, str]:
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        # No interval timers (Windows), or not the main thread (only it receives signals).
        return model.invoke(payload, settings.content_type, settings.accept)

    def on_alarm(signum: int, frame: Any) -> None:
        raise InvocationTimeout(
            f"the invocation did not answer within InvocationsTimeoutInSeconds={timeout}"
        )

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return model.invoke(payload, settings.content_type, settings.accept)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------------------------
# Worker process
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerConfig:
    """Everything a worker needs; picklable, so workers can also be spawned."""

    root: str
    region: str
    job_name: str
    model_dir: str
    environment: dict[str, str]
    settings: FileSettings
    output_path: str
    scratch_dir: str
    instance: int
    #: Threads each native thread pool (BLAS, OpenMP) of this worker may use; 0: no limit.
    native_threads: int = 0


#: Variables that size native thread pools; a job environment setting any of them wins.
NATIVE_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def native_threads_per_worker(workers: int, cpus: int | None = None) -> int:
    """The machine's cores shared out between the job's workers, at least one each.

    Every instance of a real job has its own cores; locally they share this machine's, so each
    worker's native thread pools get ``cpus // workers`` threads. Without the limit every
    worker's BLAS starts one thread per core, and two workers on two cores oversubscribe them
    (OpenBLAS threads spin while they wait, which costs far more than the second thread gains).

    >>> native_threads_per_worker(2, cpus=2), native_threads_per_worker(1, cpus=8)
    (1, 8)
    """
    cpus = cpus or os.cpu_count() or 1
    return max(1, cpus // max(1, workers))


#: Variables that also size native thread pools, which we never set ourselves.
_OTHER_THREAD_VARIABLES = ("GOTO_NUM_THREADS", "OMP_THREAD_LIMIT")


def _size_native_threads(threads: int) -> None:
    """Size this worker's native thread pools: its share of the cores, or the job's settings.

    The pools the transform service preloaded were sized when it started, so they are resized
    here. Without a thread variable in the job's environment, every pool gets ``threads``
    (exported too, for libraries the model loads later). With one, the pools of OpenBLAS,
    OpenMP and pyarrow get what a new process of the container would read from it at start-up.
    """
    if threads <= 0:
        return
    controller = loaded_thread_pools()
    pyarrow = sys.modules.get("pyarrow")
    if not any(name in os.environ for name in (*NATIVE_THREAD_VARIABLES, *_OTHER_THREAD_VARIABLES)):
        for name in NATIVE_THREAD_VARIABLES:
            os.environ[name] = str(threads)
        if controller is not None:
            controller.limit(limits=threads)
        if pyarrow is not None:
            pyarrow.set_cpu_count(threads)  # CSV decoding parses one block per thread
        return
    if controller is not None:
        for internal_api in {pool.internal_api for pool in controller.lib_controllers}:
            wanted = startup_threads(internal_api, os.environ)
            if wanted:
                controller.select(internal_api=internal_api).limit(limits=wanted)
    if pyarrow is not None:
        pyarrow.set_cpu_count(startup_threads("arrow", os.environ) or usable_cpus())


def startup_threads(library: str, environ: Mapping[str, str]) -> int | None:
    """The threads ``library`` sizes its pool to at start-up from ``environ``; None: its default.

    The rules, checked against new processes in the tests:
    - ``openblas``: ``OPENBLAS_NUM_THREADS``, else ``GOTO_NUM_THREADS``, else
      ``OMP_NUM_THREADS``, at most the CPUs (OpenBLAS README, "Set the number of threads with
      environment variables"; it applies to the pthreads builds numpy and scipy wheels ship).
    - ``openmp``: ``OMP_NUM_THREADS`` (its first value; OpenMP specification).
    - ``arrow`` (pyarrow): ``OMP_NUM_THREADS``, else the CPUs, at most ``OMP_THREAD_LIMIT``
      (``pyarrow.cpu_count`` documentation).
    Values are read like C's ``strtol``: ``"3,1"`` and ``" 3x"`` mean 3; others are ignored.

    >>> startup_threads("openmp", {"OMP_NUM_THREADS": "3,1"})
    3
    >>> startup_threads("arrow", {"OMP_THREAD_LIMIT": "1"})
    1
    >>> startup_threads("openblas", {}) is None
    True
    """

    def first(*names: str) -> int | None:
        for name in names:
            match = _LEADING_COUNT.match(environ.get(name, ""))
            if match and int(match.group(1)) > 0:
                return int(match.group(1))
        return None

    if library == "openblas":
        count = first("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
        return min(count, usable_cpus()) if count else None
    if library == "openmp":
        return first("OMP_NUM_THREADS")
    if library == "arrow":
        count, limit = first("OMP_NUM_THREADS"), first("OMP_THREAD_LIMIT")
        if limit:
            return min(count or usable_cpus(), limit)
        return count
    return None  # MKL, BLIS (not in the scikit-learn image): left as the service sized them


_LEADING_COUNT = re.compile(r"\s*\+?(\d+)")


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def peak_rss_bytes() -> int | None:
    """This process's peak resident set size (``ru_maxrss``), or None where unknown.

    >>> (peak_rss_bytes() or 1) > 0
    True
    """
    try:
        import resource  # noqa: PLC0415 - POSIX only
    except ImportError:  # pragma: no cover - Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


#: glibc ``mallopt`` parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: The ceiling of glibc's own dynamic mmap threshold on 64-bit (``DEFAULT_MMAP_THRESHOLD_MAX``):
#: blocks up to it come from the reusable heap; larger ones (payloads near 100 MB) stay mapped
#: per use, where the faults are small next to the work on that much data.
_MMAP_THRESHOLD_BYTES = 32 * MIB
_TRIM_THRESHOLD_BYTES = 512 * MIB


def _keep_freed_memory() -> None:
    """Let glibc's malloc reuse the memory a mini-batch freed, instead of unmapping it.

    Each mini-batch allocates and frees the same large arrays (decoded features, predictions,
    the encoded response). With glibc's defaults, blocks over 128 KiB are mmap-ed and unmapped
    each time (the threshold adapts only as large blocks are freed) and a freed heap top is
    trimmed, so the next mini-batch faults every page in again: measured in one worker over
    5 million rows, 150,000 page faults and 0.5 s of kernel time, a third of the job.
    Fixed thresholds keep freed pages for the next mini-batch. The peak RSS does not change:
    it is still set by the largest mini-batch. Other C libraries (musl) are left alone.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES)


@functools.cache
def loaded_thread_pools() -> Any:
    """threadpoolctl's view of the native thread pools loaded so far (None without it).

    Finding them scans every loaded shared library (~20 ms): the transform service does it
    once, and the runners and workers it forks inherit the answer.
    """
    try:
        from threadpoolctl import ThreadpoolController  # noqa: PLC0415 - optional
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return ThreadpoolController()


def _worker_main(conn: multiprocessing.connection.Connection, config: WorkerConfig) -> None:
    """Serve files sent by the runner until it sends ``None``.

    Messages to the runner: ``("ready",)``, ``("progress", records)``,
    ``("done", key, records)``, ``("failed", key, kind, cause, position)`` where ``kind`` is
    ``"file"`` or ``"model"`` (the model could not be loaded: every file would fail), and
    ``("bye",)`` once it has nothing more to say and only its process teardown is left.
    """
    from kedro_aws.local.s3 import LocalS3Client  # noqa: PLC0415 - per process

    reseed_random_state()  # forked from the runner: do not share its numpy random state
    _keep_freed_memory()
    # The container's environment is the process environment, which user modules may read.
    os.environ.update(config.environment)
    _size_native_threads(config.native_threads)
    s3 = LocalS3Client(config.root, config.region)
    model: ServingModel | None = None
    files = 0
    conn.send(("ready",))
    while True:
        task: InputFile | None = conn.recv()
        if task is None:
            peak = peak_rss_bytes()
            logger.info(
                "Worker pid %d of instance %d exits after %d file(s); peak RSS %s.",
                os.getpid(),
                config.instance + 1,
                files,
                f"{peak / MIB:.1f} MiB" if peak else "unknown",
            )
            with contextlib.suppress(OSError):
                conn.send(("bye",))
            return
        files += 1
        if model is None:
            try:
                model = ServingModel.load(config.model_dir, config.environment)
            except Exception as exc:  # noqa: BLE001 - every load failure fails the job
                conn.send(("failed", task.key, "model", f"the model could not be loaded: {exc}"))
                return
        try:
            records = _transform_file(s3, model, task, config, conn)
        except FileTransformError as exc:
            conn.send(("failed", task.key, "file", exc.cause, exc.position))
        except Exception as exc:  # noqa: BLE001 - reported with the file, never lost
            conn.send(("failed", task.key, "file", f"{type(exc).__name__}: {exc}", None))
        else:
            conn.send(("done", task.key, records))


def _transform_file(
    s3: Any,
    model: ServingModel,
    task: InputFile,
    config: WorkerConfig,
    conn: multiprocessing.connection.Connection,
) -> int:
    last_report = [0.0]

    def report(records: int) -> None:
        now = time.monotonic()
        if now - last_report[0] >= _PROGRESS_MESSAGE_SECONDS:
            last_report[0] = now
            conn.send(("progress", records))

    part = Path(config.scratch_dir) / f"{uuid.uuid4().hex}.out.part"
    body = s3.get_object(Bucket=task.bucket, Key=task.key)["Body"]
    try:
        with contextlib.closing(body), open(part, "wb") as scratch:
            sink = _HashingWriter(scratch)
            records = transform_stream(model, body, sink, config.settings, report)
        bucket, key = output_location(config.output_path, task.relative)
        # Only a whole file reaches S3: the finished scratch file is moved into the bucket
        # (hashed as it was written, so it is neither read back nor copied).
        s3.adopt_file(bucket, key, part, md5_hexdigest=sink.md5.hexdigest())
    finally:
        part.unlink(missing_ok=True)
    return records


class _HashingWriter:
    """Writes to ``sink`` and keeps the MD5 of everything written (the object's ETag)."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.md5 = hashlib.md5(usedforsecurity=False)

    def write(self, data: bytes) -> int:
        self.md5.update(data)
        return self.sink.write(data)


# --------------------------------------------------------------------------------------------
# The runner process
# --------------------------------------------------------------------------------------------


@dataclass
class _Worker:
    process: Any
    conn: multiprocessing.connection.Connection
    instance: int
    ready: bool = False
    current: InputFile | None = None
    records: int = 0
    said_bye: bool = False


@dataclass
class _Outcome:
    status: str  # Completed | Failed | Stopped
    reason: str | None = None


@dataclass
class _Progress:
    files_total: int = 0
    files_done: int = 0
    records_done: int = 0
    failures: dict[int, tuple[InputFile, str]] = field(default_factory=dict)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the runner process: ``<root> <job name>``."""
    root, job_name = argv or sys.argv[1:]
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s [{job_name} pid %(process)d] %(message)s",
        stream=sys.stderr,
        force=True,  # a runner forked from the transform service inherits its logging setup
    )
    _JobRunner(Path(root), job_name).run()


class _JobRunner:
    def __init__(self, root: Path, job_name: str) -> None:
        from kedro_aws.local.sqlite_store import SqliteStore  # noqa: PLC0415

        self.root = root
        self.name = job_name
        self.store = SqliteStore(root / STATE_DIR_NAME / "sagemaker.sqlite", ())
        self.scratch = jobs_dir(root) / job_name
        self.progress = _Progress()
        self._last_heartbeat = 0.0
        self._last_stop_check = 0.0
        self._exiting: list[_Worker] = []  # released by _supervise, reaped after _finish

    def run(self) -> None:
        with self.store.write() as db:
            row = db.execute("SELECT * FROM transform_jobs WHERE name = ?", (self.name,)).fetchone()
            if row is None:
                return  # deleted before it could start
            now = time.time()
            # The claim: exactly one runner owns a job, even if a slow service and a cold
            # fallback both started one for it.
            claimed = db.execute(
                "UPDATE transform_jobs SET runner_pid = ?, heartbeat = ?, start_time = ? "
                "WHERE name = ? AND start_time IS NULL",
                (os.getpid(), now, now, self.name),
            ).rowcount
        if not claimed:
            logger.info("Transform job %s already has a runner; exiting.", self.name)
            return
        request, plan = json.loads(row["request"]), json.loads(row["plan"])
        logger.info("Transform job %s started (runner pid %d).", self.name, os.getpid())
        try:
            outcome = self._execute(request, plan)
        except BaseException as exc:  # the job must end, whatever happened
            logger.exception("The local transform runner failed")
            outcome = _Outcome("Failed", f"Internal error in the local transform runner: {exc!r}")
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)
        self._finish(outcome)
        # Every worker has said its last word (or is gone) by now; tearing its process down
        # (unmapping a few hundred MiB) is not part of the job, so it is waited for after.
        _reap(self._exiting)

    # -- the job -------------------------------------------------------------------------

    def _execute(self, request: dict[str, Any], plan: dict[str, Any]) -> _Outcome:
        from kedro_aws.local.s3 import LocalS3Client  # noqa: PLC0415

        s3 = LocalS3Client(self.root, plan["region"])
        self.scratch.mkdir(parents=True, exist_ok=True)
        try:
            files = list_input_files(s3, request["TransformInput"]["DataSource"])
        except JobSetupError as exc:
            return _Outcome("Failed", str(exc))
        self.progress.files_total = len(files)
        instances = assign_to_instances(files, request["TransformResources"]["InstanceCount"])
        concurrency = request.get("MaxConcurrentTransforms") or 1
        config = dict(
            root=str(self.root),
            region=plan["region"],
            job_name=self.name,
            model_dir=str(model_dir_of(self.scratch)),
            environment=plan["environment"],
            settings=FileSettings.from_request(request),
            output_path=request["TransformOutput"]["S3OutputPath"],
            scratch_dir=str(self.scratch),
        )
        logger.info(
            "%d input file(s) over %d instance(s) x %d concurrent transform(s).",
            len(files),
            len(instances),
            concurrency,
        )
        return self._supervise(
            instances,
            concurrency,
            config,
            prepare=lambda: prepare_model(s3, plan["container"], self.scratch),
        )

    def _supervise(
        self,
        instances: list[list[InputFile]],
        concurrency: int,
        config: dict[str, Any],
        prepare: Callable[[], Any],
    ) -> _Outcome:
        """Start the workers, ``prepare`` the model meanwhile, then hand out the files."""
        context = _process_context()
        if context.get_start_method() == "fork":
            # pyarrow sets up its CSV reader on first use (~0.4 s): once here, and every forked
            # worker inherits it instead of paying for it.
            decode_csv(b"0,0\n0,0\n")
        pending = [deque(files) for files in instances]
        workers: list[_Worker] = []
        workers_wanted = [min(concurrency, len(files)) for files in instances]
        config = {**config, "native_threads": native_threads_per_worker(sum(workers_wanted))}

        def start_worker(instance: int) -> None:
            parent, child = context.Pipe()
            process = context.Process(
                target=_worker_main,
                args=(child, WorkerConfig(**config, instance=instance)),
                name=f"{self.name}-instance-{instance + 1}",
                daemon=True,
            )
            process.start()
            child.close()
            workers.append(_Worker(process, parent, instance))

        for instance, count in enumerate(workers_wanted):
            for _ in range(count):
                start_worker(instance)
        try:
            # Workers start up while the model is downloaded, verified and extracted; they
            # load it when their first file arrives, after this.
            try:
                prepare()
            except JobSetupError as exc:
                return _Outcome("Failed", str(exc))
            while any(pending) or any(w.current for w in workers):
                waitables = [w.conn for w in workers] + [w.process.sentinel for w in workers]
                multiprocessing.connection.wait(waitables, timeout=_POLL_SECONDS)
                for worker in list(workers):
                    outcome = self._drain(worker, pending)
                    if outcome is not None:
                        return outcome
                    if not worker.process.is_alive():  # killed, crashed, or told to exit
                        outcome = self._worker_exited(worker, pending, start_worker)
                        workers.remove(worker)
                        if outcome is not None:
                            return outcome
                if self._stop_requested():
                    return self._stopped()
            return self._final_outcome()
        finally:
            _release(workers)
            self._exiting = workers

    def _drain(self, worker: _Worker, pending: list[deque]) -> _Outcome | None:
        while True:
            try:
                if not worker.conn.poll():
                    return None
                message = worker.conn.recv()
            except (EOFError, OSError):
                return None  # the worker is gone; _worker_exited handles it
            kind = message[0]
            if kind == "bye":
                worker.said_bye = True
                continue
            if kind == "ready":
                worker.ready = True
            elif kind == "progress":
                worker.records = message[1]
                continue
            elif kind == "done":
                finished = worker.current
                # The worker starts on its next file while the runner keeps the books.
                self._dispatch(worker, pending)
                self._file_done(finished, message[2])
                continue
            elif kind == "failed":
                _, _key, failure_kind, cause, *position = message
                failed = worker.current
                worker.current = None
                if failed is None:  # pragma: no cover - protocol guard
                    continue
                if failure_kind == "model":
                    return _Outcome("Failed", _reason(failed, None, cause))
                self._file_failed(failed, position[0] if position else None, cause)
            self._dispatch(worker, pending)

    def _dispatch(self, worker: _Worker, pending: list[deque]) -> None:
        queue = pending[worker.instance]
        worker.records = 0
        if not worker.process.is_alive():
            worker.current = None  # it exited after its last message: nothing to hand over
            return
        worker.current = queue.popleft() if queue else None
        with contextlib.suppress(OSError):
            worker.conn.send(worker.current)  # None tells an idle worker to exit

    def _file_done(self, finished: InputFile | None, records: int) -> None:
        self.progress.files_done += 1
        self.progress.records_done += records
        logger.info(
            "%s -> done (%d records); %d of %d file(s), %d record(s) so far.",
            finished.uri if finished else "?",
            records,
            self.progress.files_done,
            self.progress.files_total,
            self.progress.records_done,
        )
        self._heartbeat(force=True)

    def _file_failed(self, failed: InputFile, position: str | None, cause: str) -> None:
        reason = _reason(failed, position, cause)
        logger.error("%s", reason)
        self.progress.failures[failed.position] = (failed, reason)
        self.progress.files_done += 1
        self._heartbeat(force=True)

    def _worker_exited(
        self, worker: _Worker, pending: list[deque], start_worker: Callable[[int], None]
    ) -> _Outcome | None:
        outcome = self._drain(worker, pending)  # what it said just before exiting
        if outcome is not None:
            return outcome
        code = worker.process.exitcode
        if worker.current is not None:
            how = f"was killed by signal {-code}" if code and code < 0 else f"exited with {code}"
            self._file_failed(
                worker.current,
                f"after {worker.records} record(s) had been transformed",
                f"the worker process (pid {worker.process.pid}, instance "
                f"{worker.instance + 1}) {how} while transforming this file",
            )
            worker.current = None
        elif not worker.ready:
            return _Outcome(
                "Failed",
                f"A worker process of instance {worker.instance + 1} exited with {code} before "
                f"it could serve requests; see {job_log_path(self.root, self.name)}.",
            )
        if pending[worker.instance]:
            start_worker(worker.instance)  # a fresh worker takes over the instance's files
        return None

    def _final_outcome(self) -> _Outcome:
        failures = self.progress.failures
        if not failures:
            return _Outcome("Completed")
        first = min(failures)
        reason = failures[first][1]
        others = len(failures) - 1
        if others:
            reason += f" ({others} more file(s) failed; see {job_log_path(self.root, self.name)})"
        return _Outcome("Failed", reason)

    # -- state in SQLite -----------------------------------------------------------------

    def _stop_requested(self) -> bool:
        self._heartbeat()
        now = time.monotonic()
        if now - self._last_stop_check < _POLL_SECONDS:
            return False
        self._last_stop_check = now
        with self.store.read() as db:
            row = db.execute(
                "SELECT status FROM transform_jobs WHERE name = ?", (self.name,)
            ).fetchone()
        return row is not None and row["status"] == "Stopping"

    def _stopped(self) -> _Outcome:
        done, total = self.progress.files_done, self.progress.files_total
        logger.info("Stop requested: terminating workers after %d of %d file(s).", done, total)
        return _Outcome(
            "Stopped",
            f"Stopped on request (stop_transform_job) after {done} of {total} input file(s); "
            "files in progress were discarded and left no output.",
        )

    def _heartbeat(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self._last_heartbeat < _HEARTBEAT_SECONDS:
            return
        self._last_heartbeat = now
        progress = self.progress
        with self.store.write() as db:
            db.execute(
                "UPDATE transform_jobs SET heartbeat = ?, files_total = ?, files_done = ?, "
                "records_done = ? WHERE name = ?",
                (
                    now,
                    progress.files_total,
                    progress.files_done,
                    progress.records_done,
                    self.name,
                ),
            )

    def _finish(self, outcome: _Outcome) -> None:
        with self.store.write() as db:
            row = db.execute(
                "SELECT status FROM transform_jobs WHERE name = ?", (self.name,)
            ).fetchone()
            status, reason = outcome.status, outcome.reason
            if row["status"] == "Stopping" and status != "Stopped":
                # The stop request came in as the job ended: honour it, as SageMaker would.
                status, reason = "Stopped", reason or "Stopped on request (stop_transform_job)."
            now = time.time()
            db.execute(
                "UPDATE transform_jobs SET status = ?, failure_reason = ?, end_time = ?, "
                "last_modified_time = ?, heartbeat = ?, files_done = ?, records_done = ? "
                "WHERE name = ?",
                (
                    status,
                    _truncate(reason),
                    now,
                    now,
                    now,
                    self.progress.files_done,
                    self.progress.records_done,
                    self.name,
                ),
            )
        logger.info(
            "Transform job %s ended: %s%s", self.name, status, f" - {reason}" * bool(reason)
        )


def model_dir_of(scratch: Path) -> Path:
    """Where a job's model data is extracted (the container's ``/opt/ml/model``)."""
    return scratch / "model"


def prepare_model(s3: Any, container: dict[str, Any], scratch: Path) -> Path:
    """Download, verify and extract the container's model data into ``scratch/model``."""
    from botocore.exceptions import ClientError  # noqa: PLC0415 - runner only

    from kedro_aws.sagemaker.packaging import (  # noqa: PLC0415 - runner only
        ModelArtifactError,
        download_model_archive,
        extract_model_archive,
        sha256_file,
    )

    model_dir = model_dir_of(scratch)
    url = container.get("ModelDataUrl")
    if not url:
        model_dir.mkdir(parents=True, exist_ok=True)  # a container may need no model data
        return model_dir
    bucket, key = split_s3_uri(url)
    expected = container.get("Sha256")
    download_dir = scratch / "download"
    try:
        if expected:
            archive = download_model_archive(
                s3, url, expected_sha256=expected, destination_dir=download_dir
            )
            logger.info("Model data %s verified (sha256 %s).", url, expected)
        else:
            download_dir.mkdir(parents=True, exist_ok=True)
            archive = download_dir / "model.tar.gz"
            s3.download_file(bucket, key, str(archive))
            logger.warning(
                "Model data %s has no recorded SHA-256 in its model package; not verified "
                "(sha256 %s).",
                url,
                sha256_file(archive),
            )
        extract_model_archive(archive, model_dir)
    except (ModelArtifactError, ClientError, OSError) as exc:
        raise JobSetupError(f"Could not prepare the model data {url}: {exc}") from exc
    finally:
        shutil.rmtree(download_dir, ignore_errors=True)
    return model_dir


def batch_environment(request: dict[str, Any], container_environment: dict[str, str]) -> dict:
    """The container environment of a job: model's, then the job's, then SageMaker's own.

    SageMaker sets ``SAGEMAKER_BATCH`` and, only when given in the request,
    ``SAGEMAKER_MAX_PAYLOAD_IN_MB``, ``SAGEMAKER_BATCH_STRATEGY`` and
    ``SAGEMAKER_MAX_CONCURRENT_TRANSFORMS`` (developer guide, your-algorithms-batch-code.md).
    """
    environment = {**container_environment, **request.get("Environment", {})}
    environment["SAGEMAKER_BATCH"] = "true"
    if "MaxPayloadInMB" in request:
        environment["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(request["MaxPayloadInMB"])
    if "BatchStrategy" in request:
        strategy = {"MultiRecord": "MULTI_RECORD", "SingleRecord": "SINGLE_RECORD"}
        environment["SAGEMAKER_BATCH_STRATEGY"] = strategy[request["BatchStrategy"]]
    if "MaxConcurrentTransforms" in request:
        environment["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(request["MaxConcurrentTransforms"])
    return environment


def _reason(failed: InputFile, position: str | None, cause: str) -> str:
    where = f"{failed.uri} ({position})" if position else failed.uri
    return f"Failed to transform {where}: {cause}"


def _truncate(reason: str | None) -> str | None:
    if reason is None or len(reason) <= MAX_FAILURE_REASON:
        return reason
    return reason[: MAX_FAILURE_REASON - 3] + "..."


def _process_context() -> Any:
    # fork is fast (workers inherit numpy/pyarrow and this module) and safe here: the runner
    # is a single-threaded process of our own. Elsewhere (macOS, Windows) spawn is the default.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _release(workers: list[_Worker]) -> None:
    """Tell idle workers to exit and wait until each has said ``bye``; end busy ones.

    An idle worker logs its peak RSS and says ``bye`` before its process is torn down: waiting
    for that (not for the teardown) keeps every worker line in the job's log before the job
    ends. A busy worker (the job failed or was stopped) is terminated and waited for, so no
    output of it can appear after the job's end is recorded.
    """
    busy = [w for w in workers if w.current is not None]
    for worker in workers:
        if worker.current is None:
            with contextlib.suppress(OSError):
                worker.conn.send(None)  # a second None to a worker already leaving is harmless
        else:
            worker.process.terminate()
    _reap(busy)
    deadline = time.monotonic() + _WORKER_STOP_GRACE_SECONDS
    talking = [w for w in workers if w.current is None and not w.said_bye]
    while talking and time.monotonic() < deadline:
        waitables = [w.conn for w in talking] + [w.process.sentinel for w in talking]
        multiprocessing.connection.wait(waitables, timeout=deadline - time.monotonic())
        for worker in list(talking):
            if _heard_bye(worker) or not worker.process.is_alive():
                talking.remove(worker)


def _heard_bye(worker: _Worker) -> bool:
    with contextlib.suppress(EOFError, OSError):
        while worker.conn.poll():
            if worker.conn.recv()[0] == "bye":
                worker.said_bye = True
    return worker.said_bye


def _reap(workers: list[_Worker]) -> None:
    """Wait for the released workers' processes to end; kill those that outstay the grace."""
    deadline = time.monotonic() + _WORKER_STOP_GRACE_SECONDS
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()


def reseed_random_state() -> None:
    """Fresh random state after a fork, as a process started anew would have.

    Python's ``random`` reseeds itself in a forked child; numpy's global generator does not,
    so every job forked from one service would otherwise draw the same "random" numbers.
    """
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed()
