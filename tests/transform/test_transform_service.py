"""The warm transform service (kedro_aws.local.transform_service) and the runners it forks.

Jobs really run. Their inference modules report what a worker sees (its runner's pid and that
runner's parent, the working directory, environment variables), so each test can tell whether
the runner was forked from the service or started cold. Tests that start, kill or idle out a
service of their own use ``own_service_dir``; the others share the suite's service
(``transform_service_dir`` in tests/conftest.py).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from kedro_aws.clients import client
from kedro_aws.local import transform_service
from kedro_aws.local.transform_job import _JobRunner, job_log_path, reseed_random_state
from kedro_aws.local.transform_service import (
    DIR_VARIABLE,
    ENABLE_VARIABLE,
    IDLE_VARIABLE,
    fingerprint,
    runner_environment,
    service_status,
    socket_path,
    stop_all_services,
    stop_service,
)

from .conftest import ANSWERS_WITH_REPORT, BUCKET, REGION, LocalBackend, job_request, wait

DEADLINE_SECONDS = 30.0
GOOD = b"1,2,3,4\n5,6,7,8\n"
GOOD_SUMS = b"10.0\n26.0\n"

# Shared by the inference modules below: the pid of the worker's parent (the job's runner)
# and of the runner's parent, read while the runner is necessarily alive.
_LINEAGE = """
import os

def lineage():
    runner = os.getppid()
    with open(f"/proc/{runner}/stat") as stat:
        text = stat.read()
    return runner, int(text[text.rindex(")") + 2 :].split()[1])
"""

#: Reports ``runner|runner's parent|cwd|<REPORTED_VARIABLES...>`` for each request.
CONTEXT_MODULE = (
    _LINEAGE
    + """
KEYS = (
    "KEDRO_AWS_TEST_MARKER",
    "KEDRO_AWS_TEST_GONE",
    "KEDRO_AWS_TEST_OVERRIDE",
    "OPENBLAS_THREAD_TIMEOUT",
)

def report():
    runner, parent = lineage()
    fields = [str(runner), str(parent), os.getcwd(), *(os.environ.get(k, "-") for k in KEYS)]
    return "|".join(fields)
"""
    + ANSWERS_WITH_REPORT
)
REPORTED_VARIABLES = ("marker", "gone", "override", "openblas_thread_timeout")

#: Reports ``runner's parent|x|y|z`` with three draws from numpy's global random state.
RANDOM_MODULE = (
    _LINEAGE
    + """
import numpy as np

def report():
    _, parent = lineage()
    return "|".join([str(parent), *(repr(x) for x in np.random.random(3))])
"""
    + ANSWERS_WITH_REPORT
)

PROBABILITY_MODULE = """
import os
import joblib

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))

def predict_fn(data, model):
    return model.predict_proba(data)
"""

WORKER_EXIT = re.compile(
    r"Worker pid (\d+) of instance (\d+) exits after (\d+) file\(s\); peak RSS ([0-9.]+) MiB\."
)


def poll(condition: Callable[[], Any], what: str, timeout: float = DEADLINE_SECONDS) -> Any:
    """Wait until ``condition()`` is truthy and return it; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def job_row(root: Path, name: str) -> dict[str, Any]:
    """The job's row in the local SageMaker state."""
    with sqlite3.connect(root / ".kedro-aws" / "sagemaker.sqlite") as db:
        db.row_factory = sqlite3.Row
        return dict(db.execute("SELECT * FROM transform_jobs WHERE name = ?", (name,)).fetchone())


def started_cold(root: Path, name: str) -> bool:
    """Whether the job's runner is a new interpreter launched by this process."""
    return job_row(root, name)["runner_pid"] in transform_service._LAUNCHED


def context_report(output: bytes) -> dict[str, Any]:
    """Parse one line written by CONTEXT_MODULE."""
    runner, parent, cwd, *values = output.decode().rstrip("\n").split("|")
    return {
        "runner": int(runner),
        "parent": int(parent),
        "cwd": cwd,
        **dict(zip(REPORTED_VARIABLES, values, strict=True)),
    }


def run_context_job(backend: LocalBackend, name: str, **overrides: Any) -> dict[str, Any]:
    """Run a CONTEXT_MODULE job over one record; returns what its worker reported."""
    model = backend.make_model(CONTEXT_MODULE)
    uri = backend.put_inputs(f"{name}-in", {"x.csv": b"1\n"})
    described = backend.run_job(name, model, uri, f"{name}-out", **overrides)
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    return context_report(backend.read_outputs(f"{name}-out")["x.csv.out"])


def raw_request(path: Path, data: bytes) -> bytes:
    """Send ``data`` as is to the service at ``path``; returns its reply line (b"" if none)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(DEADLINE_SECONDS)
        conn.connect(os.fspath(path))
        conn.sendall(data)
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply.rstrip(b"\n")


def sockets_in(directory: Path) -> list[Path]:
    """The service sockets in ``directory`` (none if it does not exist)."""
    return sorted(directory.glob("transform-*.sock")) if directory.is_dir() else []


def process_state(pid: int) -> str:
    """The state letter of ``pid`` in /proc (R, S, Z...)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2]


def wait_gone(pid: int) -> None:
    """Wait until ``pid`` has exited, reaping it if this process launched it."""
    launched = transform_service._LAUNCHED.get(pid)
    if launched is not None:
        launched.wait(timeout=DEADLINE_SECONDS)
    else:
        poll(lambda: not transform_service._pid_running(pid), f"pid {pid} to exit")


def start_service(backend: LocalBackend) -> dict[str, Any]:
    """Make sure the configured directory's service runs (a job starts it); its status."""
    run_context_job(backend, f"start-{time.monotonic_ns()}")
    status = service_status()
    assert status is not None
    return status


@pytest.fixture
def own_service_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A service directory of the test's own; its services are stopped and reaped at the end."""
    directory = tmp_path_factory.mktemp("svc")  # short: a Unix socket path has < 100 bytes
    monkeypatch.setenv(DIR_VARIABLE, str(directory))
    assert socket_path() is not None, "the service directory is too long for a Unix socket"
    launched_before = set(transform_service._LAUNCHED)
    yield directory
    stop_all_services(directory)
    poll(lambda: not sockets_in(directory), "the test's services to remove their sockets")
    # Services and cold runners this test started: make sure they are gone, and reap them.
    for pid in set(transform_service._LAUNCHED) - launched_before:
        process = transform_service._LAUNCHED[pid]
        try:
            process.wait(timeout=DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise


# --------------------------------------------------------------------------------------------
# Jobs through the service, and the cold path
# --------------------------------------------------------------------------------------------


def test_a_job_runs_in_a_runner_forked_by_the_warm_service(backend, root):
    report = run_context_job(backend, "forked")

    status = service_status()
    assert status is not None
    assert report["runner"] == job_row(root, "forked")["runner_pid"]
    assert report["parent"] == status["pid"]
    assert report["parent"] != os.getpid()
    assert not started_cold(root, "forked")
    assert {"numpy", "sklearn"} <= set(status["preloaded"])
    assert status["fingerprint"] == fingerprint()


def test_the_cold_path_gives_the_same_outputs_and_starts_no_service(
    backend, root, own_service_dir, monkeypatch
):
    iris = load_iris()
    model = LogisticRegression(max_iter=500).fit(iris.data, iris.target)
    name = backend.make_model(PROBABILITY_MODULE, model=model)
    rows = [
        "".join(f"{','.join(repr(float(v)) for v in row)}\n" for row in iris.data[i::3])
        for i in range(3)
    ]
    uri = backend.put_inputs("iris", {f"part-{i}.csv": r.encode() for i, r in enumerate(rows)})
    two_instances = {"InstanceType": "ml.m5.large", "InstanceCount": 2}

    monkeypatch.setenv(ENABLE_VARIABLE, "0")
    cold = backend.run_job("cold", name, uri, "cold", TransformResources=two_instances)
    assert cold["TransformJobStatus"] == "Completed", cold.get("FailureReason")
    assert started_cold(root, "cold")
    assert sockets_in(own_service_dir) == []
    assert stop_all_services(own_service_dir) == 0

    monkeypatch.delenv(ENABLE_VARIABLE)
    warm = backend.run_job("warm", name, uri, "warm", TransformResources=two_instances)
    assert warm["TransformJobStatus"] == "Completed", warm.get("FailureReason")
    assert not started_cold(root, "warm")

    outputs = backend.read_outputs("cold")
    assert set(outputs) == {"part-0.csv.out", "part-1.csv.out", "part-2.csv.out"}
    assert outputs == backend.read_outputs("warm")


def test_a_forked_runner_has_the_creating_process_environment_and_directory(
    backend, tmp_path, own_service_dir, monkeypatch
):
    # The service starts (with the first job) in one directory and environment...
    (tmp_path / "at-start").mkdir()
    monkeypatch.chdir(tmp_path / "at-start")
    monkeypatch.setenv("KEDRO_AWS_TEST_MARKER", "at-service-start")
    monkeypatch.setenv("KEDRO_AWS_TEST_GONE", "at-service-start")
    monkeypatch.delenv("KEDRO_AWS_TEST_OVERRIDE", raising=False)
    first = run_context_job(backend, "first")
    assert (first["cwd"], first["marker"], first["gone"]) == (
        str(tmp_path / "at-start"),
        "at-service-start",
        "at-service-start",
    )

    # ...and the next job is created from another one.
    (tmp_path / "later").mkdir()
    monkeypatch.chdir(tmp_path / "later")
    monkeypatch.setenv("KEDRO_AWS_TEST_MARKER", "from-the-creating-process")
    monkeypatch.delenv("KEDRO_AWS_TEST_GONE")
    monkeypatch.setenv("KEDRO_AWS_TEST_OVERRIDE", "from-the-creating-process")
    second = run_context_job(backend, "second", Environment={"KEDRO_AWS_TEST_OVERRIDE": "job"})

    assert second["parent"] == first["parent"]  # forked by the same service
    assert second["cwd"] == str(tmp_path / "later")
    assert second["marker"] == "from-the-creating-process"
    assert second["gone"] == "-"
    assert second["override"] == "job"  # the job's Environment wins inside workers


def test_numpy_random_state_is_fresh_in_every_job_and_worker(backend, put_inputs, read_outputs):
    name = backend.make_model(RANDOM_MODULE)
    uri = put_inputs("in", {"a.csv": b"1\n", "b.csv": b"1\n"})
    two_instances = {"InstanceType": "ml.m5.large", "InstanceCount": 2}
    draws = {}
    for job in ("draw-1", "draw-2"):
        described = backend.run_job(job, name, uri, job, TransformResources=two_instances)
        assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
        for key, line in read_outputs(job).items():
            parent, *values = line.decode().split("|")
            draws[job, key] = (int(parent), tuple(values))

    status = service_status()
    assert status is not None
    assert {parent for parent, _ in draws.values()} == {status["pid"]}  # one service forked all
    # Two jobs x two workers: four different draws (a shared state would repeat them).
    assert len({values for _, values in draws.values()}) == 4


def test_reseed_random_state_gives_numpy_a_fresh_global_state():
    saved = np.random.get_state()
    try:
        np.random.seed(0)
        inherited = np.random.random(3)
        np.random.seed(0)  # the state a forked child would share with its parent
        reseed_random_state()
        fresh = np.random.random(3)
    finally:
        np.random.set_state(saved)
    assert not np.array_equal(fresh, inherited)


def test_jobs_created_together_with_no_service_start_exactly_one(backend, root, own_service_dir):
    name = backend.make_model()
    uri = backend.put_inputs("in", {"a.csv": GOOD})
    jobs = ("together-1", "together-2")
    clients = [client("sagemaker", backend="local", root=root, region=REGION) for _ in jobs]
    barrier = threading.Barrier(len(jobs))

    def create(api: Any, job: str) -> None:
        barrier.wait(timeout=DEADLINE_SECONDS)
        api.create_transform_job(**job_request(job, name, uri, job))

    assert sockets_in(own_service_dir) == []
    launched_before = set(transform_service._LAUNCHED)
    with ThreadPoolExecutor(len(jobs)) as pool:
        for future in [
            pool.submit(create, api, job) for api, job in zip(clients, jobs, strict=True)
        ]:
            future.result()

    for job in jobs:
        wait(backend.sm, job)
        described = backend.sm.describe_transform_job(TransformJobName=job)
        assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
        assert backend.read_outputs(job) == {"a.csv.out": GOOD_SUMS}
    assert stop_all_services(own_service_dir) == 1
    # Whatever this test launched (a service that lost the race runs its job and exits) is
    # gone once the one service is stopped: no second service kept running unreachable.
    launched = [p for pid, p in transform_service._LAUNCHED.items() if pid not in launched_before]
    assert launched
    poll(
        lambda: all(process.poll() is not None for process in launched),
        "every process this test launched to exit",
    )


def test_a_killed_service_leaves_a_stale_socket_the_next_job_replaces(backend, own_service_dir):
    killed = run_context_job(backend, "before-kill")["parent"]
    path = socket_path()
    os.kill(killed, signal.SIGKILL)
    wait_gone(killed)
    assert path.exists()  # nobody removed it
    assert service_status() is None

    after = run_context_job(backend, "after-kill")

    status = service_status()
    assert status is not None
    assert status["pid"] == after["parent"] != killed
    assert path.exists()


def test_an_idle_service_exits_by_itself_and_removes_its_socket(
    backend, own_service_dir, monkeypatch
):
    monkeypatch.setenv(IDLE_VARIABLE, "1")
    service = run_context_job(backend, "idle")["parent"]
    assert service != os.getpid()
    path = socket_path()

    poll(lambda: not path.exists(), "the idle service to remove its socket")
    wait_gone(service)
    assert "Idle for" in path.with_suffix(".log").read_text()
    assert service_status() is None


# --------------------------------------------------------------------------------------------
# Talking to the service
# --------------------------------------------------------------------------------------------


def test_stop_service_stops_the_running_service(backend, own_service_dir):
    service = start_service(backend)
    path = socket_path()

    assert stop_service() is True

    assert service_status() is None
    wait_gone(service["pid"])
    poll(lambda: not path.exists(), "the stopped service to remove its socket")
    assert stop_service() is False
    assert stop_all_services(own_service_dir) == 0


def test_stop_all_services_without_services_stops_none(tmp_path):
    assert stop_all_services(tmp_path / "missing") == 0
    (tmp_path / "empty").mkdir()
    assert stop_all_services(tmp_path / "empty") == 0


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"this is not json\n", "bad request"),
        (b'{"op": "dance"}\n', "unknown op 'dance'"),
        (b"\n", "unknown op None"),
        (b'{"op": "run", "job": "x"}\n', "run request without root"),
    ],
    ids=["not-json", "unknown-op", "empty", "incomplete-run"],
)
def test_a_malformed_request_gets_an_error_and_the_service_keeps_serving(backend, data, error):
    service = start_service(backend)

    reply = json.loads(raw_request(socket_path(), data))

    assert error in reply["error"]
    assert "pid" not in reply  # nothing was forked
    status = service_status()
    assert status is not None
    assert status["pid"] == service["pid"]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"[1, 2]\n", "a request is a JSON object, not list"),
        (b"null\n", "a request is a JSON object, not NoneType"),
        (
            b'{"op": "run", "root": 1, "job": "j", "cwd": "/", "env": {}}\n',
            "field root must be a string",
        ),
        (
            b'{"op": "run", "root": "/r", "job": "j", "cwd": "/", "env": {"A": 1}}\n',
            "field env must be an object of strings",
        ),
    ],
    ids=["json-array", "json-null", "run-with-a-number-as-root", "run-with-a-number-in-env"],
)
def test_a_request_of_the_wrong_shape_gets_an_error_and_the_service_keeps_serving(
    backend, own_service_dir, data, error
):
    service = start_service(backend)

    reply = raw_request(socket_path(), data)

    assert reply, "the service closed the connection without answering"
    assert error in json.loads(reply)["error"]
    status = service_status()
    assert status is not None
    assert status["pid"] == service["pid"]


# --------------------------------------------------------------------------------------------
# The runner's claim on its job
# --------------------------------------------------------------------------------------------


def test_a_second_runner_for_a_finished_job_changes_nothing(backend, root, caplog):
    uri = backend.put_inputs("in", {"a.csv": GOOD})
    described = backend.run_job("claimed", backend.make_model(), uri, "out")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    before = job_row(root, "claimed")
    etag = backend.s3.head_object(Bucket=BUCKET, Key="out/a.csv.out")["ETag"]

    with caplog.at_level(logging.INFO, logger="kedro_aws.local.transform_job"):
        _JobRunner(root, "claimed").run()

    assert "already has a runner" in caplog.text
    assert job_row(root, "claimed") == before  # status, times, runner pid, progress
    assert backend.read_outputs("out") == {"a.csv.out": GOOD_SUMS}
    assert backend.s3.head_object(Bucket=BUCKET, Key="out/a.csv.out")["ETag"] == etag


# --------------------------------------------------------------------------------------------
# Where the service listens
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OMP_NUM_THREADS", "3"), ("PYTHONPATH", "/nonexistent/kedro-aws-tests")],
)
def test_the_fingerprint_follows_the_variables_that_change_imports(monkeypatch, variable, value):
    assert variable in transform_service._FINGERPRINT_VARIABLES
    original_value = os.environ.get(variable)
    original = fingerprint()
    assert fingerprint() == original
    monkeypatch.setenv("KEDRO_AWS_TEST_MARKER", "not a fingerprint variable")
    assert fingerprint() == original

    monkeypatch.setenv(variable, value + "1" if original_value == value else value)
    changed = fingerprint()
    assert changed != original
    assert socket_path() == transform_service.service_dir() / f"transform-{changed}.sock"

    if original_value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, original_value)
    assert fingerprint() == original


def test_a_socket_path_too_long_falls_back_to_cold_runners(
    backend, root, tmp_path, monkeypatch, caplog
):
    too_long = tmp_path / ("d" * 100)
    monkeypatch.setenv(DIR_VARIABLE, str(too_long))
    with caplog.at_level(logging.WARNING, logger="kedro_aws.local.transform_service"):
        assert socket_path() is None
    assert "too long for a Unix socket" in caplog.text
    assert service_status() is None
    assert stop_service() is False

    report = run_context_job(backend, "long-dir")

    assert started_cold(root, "long-dir")
    assert report["parent"] == os.getpid()  # a new interpreter launched by this process
    assert not too_long.exists()


def test_an_unusable_service_directory_falls_back_to_cold_runners(
    backend, root, tmp_path_factory, monkeypatch, caplog
):
    not_a_directory = tmp_path_factory.mktemp("f") / "svc"  # short enough for a socket path
    not_a_directory.write_text("a file where the socket directory should be\n")
    monkeypatch.setenv(DIR_VARIABLE, str(not_a_directory))

    with caplog.at_level(logging.WARNING, logger="kedro_aws.local.transform_service"):
        report = run_context_job(backend, "unusable-dir")

    assert started_cold(root, "unusable-dir")
    assert report["parent"] == os.getpid()
    # Says that, and why, the job did not use the service.
    assert "starts its runner without the transform service" in caplog.text
    assert "Not a directory" in caplog.text
    assert not_a_directory.read_text().startswith("a file")  # left as it was


# --------------------------------------------------------------------------------------------
# Runner liveness, worker memory, runner environment
# --------------------------------------------------------------------------------------------


def test_a_zombie_is_not_a_running_process():
    pid = os.fork()
    if pid == 0:  # the child exits at once and stays unreaped
        os._exit(0)
    try:
        poll(lambda: process_state(pid) == "Z", "the child to become a zombie")
        assert transform_service._pid_running(pid) is False
    finally:
        os.waitpid(pid, 0)
    assert transform_service._pid_running(pid) is False
    assert transform_service._pid_running(os.getpid()) is True


def test_workers_log_their_peak_memory_when_they_exit(root, make_model, put_inputs, run_job):
    uri = put_inputs("in", {"a.csv": GOOD, "b.csv": GOOD, "c.csv": GOOD})
    two_instances = {"InstanceType": "ml.m5.large", "InstanceCount": 2}
    described = run_job("peak", make_model(), uri, "out", TransformResources=two_instances)
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")

    log = job_log_path(root, "peak").read_text()
    exits = WORKER_EXIT.findall(log)

    # Files a and c go to instance 1, b to instance 2 (round-robin over sorted keys).
    assert sorted((instance, files) for _, instance, files, _ in exits) == [("1", "2"), ("2", "1")]
    assert len({pid for pid, *_ in exits}) == 2
    assert all(float(peak) > 0 for *_, peak in exits)
    # The job ends after its workers have said their last word (their processes may still be
    # tearing down): read as soon as the job is Completed, the log already holds every line.
    assert log.rstrip("\n").splitlines()[-1].endswith("Transform job peak ended: Completed")


def test_runner_environment_adds_the_openblas_default_only_when_absent():
    environment = {"A": "1"}
    assert runner_environment(environment) == {"A": "1", "OPENBLAS_THREAD_TIMEOUT": "4"}
    assert environment == {"A": "1"}  # not modified
    assert runner_environment({"OPENBLAS_THREAD_TIMEOUT": "28"}) == {
        "OPENBLAS_THREAD_TIMEOUT": "28"
    }


@pytest.mark.parametrize(
    "case",
    [("1", None, "4"), ("0", None, "4"), ("0", "28", "28")],
    ids=["service-default", "cold-default", "cold-user-setting"],
)
def test_a_job_sees_openblas_thread_timeout(backend, root, monkeypatch, case):
    enabled, setting, expected = case
    monkeypatch.setenv(ENABLE_VARIABLE, enabled)
    if setting is None:
        monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", setting)

    report = run_context_job(backend, "openblas")

    assert report["openblas_thread_timeout"] == expected
    assert started_cold(root, "openblas") is (enabled == "0")


def test_a_new_service_removes_logs_of_services_long_gone(backend, own_service_dir):
    old = own_service_dir / "transform-0123456789abcdef.log"
    recent = own_service_dir / "transform-fedcba9876543210.log"
    for log in (old, recent):
        log.write_text("a service that is gone\n")
    week_and_a_day_ago = time.time() - 8 * 24 * 3600
    os.utime(old, (week_and_a_day_ago, week_and_a_day_ago))

    start_service(backend)

    assert not old.exists()
    assert recent.exists()  # a week's grace: it may still explain a recent failure
    assert socket_path().with_suffix(".log").exists()  # the running service's own log stays
