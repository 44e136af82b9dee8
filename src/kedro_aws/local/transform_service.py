"""Starting the runner of a local transform job: warm, from the transform service, or cold.

Every local transform job runs in a detached runner process (``transform_job.main``) that
outlives the process that created the job. Started as a new interpreter, that runner and its
workers spend 1.5-2 s importing numpy, pyarrow, pandas and scikit-learn before reading the first
record: longer than scoring five million rows. SageMaker's instances start from a container
image in which those libraries are already installed. The local stand-in for that image is the
**transform service**: a detached process, one per user and Python environment, that imports the
scikit-learn image's libraries once (``PRELOADED_MODULES``) and then *forks* a fresh runner for
each job. A forked runner has never run user code: the job's workers import the inference module
and call ``model_fn`` themselves, as the workers of a new container do.

Lifecycle:

- The first ``create_transform_job`` with no service running starts one and hands it that job;
  later jobs reach it over a Unix socket in a private directory
  (``KEDRO_AWS_TRANSFORM_SERVICE_DIR``, default ``<tmp>/kedro-aws-<uid>``).
- The socket's name carries a fingerprint of the interpreter, of kedro-aws's sources, of the
  preloaded libraries' files and of the environment variables that change what they import, so
  an upgrade or another virtualenv gets a service of its own instead of a stale one.
- It exits after ``KEDRO_AWS_TRANSFORM_SERVICE_IDLE_SECONDS`` (default 600) without jobs, or on
  :func:`stop_service`. Runners it forked are not affected: they run to the end of their job.
- ``KEDRO_AWS_TRANSFORM_SERVICE=0`` turns it off: each runner then starts cold, as a new
  interpreter (same results, slower start). It is always off where ``fork`` is unavailable.

A runner gets the creating process's working directory and environment, as a cold runner
would; its job's log (``<root>/.kedro-aws/transform-jobs/<job>.log``) receives its output.

Example::

    >>> from kedro_aws.local.transform_service import service_enabled
    >>> isinstance(service_enabled(), bool)
    True
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import hashlib
import importlib
import importlib.util
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro_aws.local._client import client_exceptions, paginator_config, service_model
from kedro_aws.local.serving import decode_csv
from kedro_aws.local.transform_job import (
    NATIVE_THREAD_VARIABLES,
    job_log_path,
    loaded_thread_pools,
    reseed_random_state,
)
from kedro_aws.local.transform_job import main as run_job

logger = logging.getLogger(__name__)

ENABLE_VARIABLE = "KEDRO_AWS_TRANSFORM_SERVICE"
DIR_VARIABLE = "KEDRO_AWS_TRANSFORM_SERVICE_DIR"
IDLE_VARIABLE = "KEDRO_AWS_TRANSFORM_SERVICE_IDLE_SECONDS"
#: Extra modules to import in the service, comma-separated (e.g. ``xgboost``).
PRELOAD_VARIABLE = "KEDRO_AWS_TRANSFORM_PRELOAD"
DEFAULT_IDLE_SECONDS = 600.0
#: A service's log is kept this long after its last line, then the next service removes it.
STALE_LOG_SECONDS = 7 * 24 * 3600.0

#: What the scikit-learn serving image has installed and a model typically imports, plus the
#: executor itself. Importing these once is what makes a forked runner start in milliseconds.
PRELOADED_MODULES = (
    "numpy",
    "pyarrow",
    "pyarrow.csv",
    "pandas",
    "scipy",
    "joblib",
    "sklearn",
    "sklearn.pipeline",
    "sklearn.compose",
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.linear_model",
    "sklearn.tree",
    "sklearn.ensemble",
    "sklearn.svm",
    "sklearn.neighbors",
    "sklearn.naive_bayes",
    "sklearn.cluster",
    "sklearn.decomposition",
    "kedro_aws.local.transform_job",
    "kedro_aws.local.s3",
    "kedro_aws.local.sqlite_store",
    "kedro_aws.sagemaker.packaging",
)

#: Environment variables that change what (or how) the preloaded libraries import.
_FINGERPRINT_VARIABLES = (
    "PYTHONPATH",
    "PYTHONHOME",
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    *NATIVE_THREAD_VARIABLES,
    "OPENBLAS_THREAD_TIMEOUT",
    PRELOAD_VARIABLE,
)
#: Defaults for the runner's environment (a job or user setting wins). OpenBLAS threads spin
#: for ~0.1 s after each call by default (2^28 cycles), taking a core from the worker's
#: next step (pyarrow's CSV parsing threads, another worker); 2^4 cycles makes them sleep
#: at once. Read when OpenBLAS loads, so it is set before numpy is imported.
RUNNER_ENVIRONMENT_DEFAULTS = {"OPENBLAS_THREAD_TIMEOUT": "4"}
# A service still importing when a client connects answers once it is ready: allow for a slow
# disk. A client that gives up starts the runner cold; the runner's claim on the job (see
# ``transform_job``) makes sure only one of them runs it.
_CLIENT_TIMEOUT_SECONDS = 60.0
_REQUEST_READ_TIMEOUT_SECONDS = 5.0
_MAX_REQUEST_BYTES = 16 * 1024 * 1024
_UNIX_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS

# Runners started cold by this process, so their exit is reaped (a zombie would look alive).
_LAUNCHED: dict[int, subprocess.Popen] = {}


# --------------------------------------------------------------------------------------------
# Launching a runner (used by ``create_transform_job``) and watching it
# --------------------------------------------------------------------------------------------


def launch_runner(root: Path, job_name: str, log_path: Path) -> int:
    """Start the runner of ``job_name``; returns a pid that stays alive while the job runs.

    Through the transform service when it is enabled (starting it with this job as its first
    if none runs), else as a new interpreter.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if service_enabled():
        path = socket_path()
        if path is not None:
            reply = _request(path, _run_request(root, job_name))
            if reply is not None and "pid" in reply:
                return int(reply["pid"])
            if reply is not None:
                logger.warning(
                    "Transform job %s starts its runner without the transform service at %s "
                    "(%s): it takes about 1.5 s to start instead of 0.1 s.",
                    job_name,
                    path,
                    reply.get("error", reply),
                )
            else:
                # Nobody listens: start a service; it runs this job first.
                return _spawn(
                    "from kedro_aws.local.transform_service import main; main()",
                    [str(path), str(root), job_name],
                    log_path,
                )
    return _spawn(
        "from kedro_aws.local.transform_job import main; main()", [str(root), job_name], log_path
    )


def runner_is_alive(pid: int | None, heartbeat: float | None, timeout: float) -> bool:
    """Whether the runner with ``pid`` still runs (a job that never started counts as alive).

    ``heartbeat`` is the runner's last sign of life (epoch seconds); one older than ``timeout``
    means it is gone even if the pid exists (pid reuse).
    """
    if pid is None:
        return True
    launched = _LAUNCHED.get(pid)
    if launched is not None:
        if launched.poll() is not None:
            return False
    elif not _pid_running(pid):
        return False
    return heartbeat is None or time.time() - heartbeat < timeout


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else: pid reuse; the heartbeat decides
    # A zombie (exited, not yet reaped by its parent) still answers kill(0).
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    return True


def runner_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """The environment of a runner: the creating process's, plus our defaults it lacks.

    >>> runner_environment({"OPENBLAS_THREAD_TIMEOUT": "28"})["OPENBLAS_THREAD_TIMEOUT"]
    '28'
    """
    return {**RUNNER_ENVIRONMENT_DEFAULTS, **environment}


def _spawn(code: str, args: list[str], log_path: Path) -> int:
    with open(log_path, "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-c", code, *args],
            env=runner_environment(os.environ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C in the creating terminal does not kill the job, as
            # closing a notebook does not stop a SageMaker job.
            start_new_session=True,
        )
    _LAUNCHED[process.pid] = process
    return process.pid


def _run_request(root: Path, job_name: str) -> dict[str, Any]:
    return {
        "op": "run",
        "root": str(root),
        "job": job_name,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
    }


# --------------------------------------------------------------------------------------------
# Where the service listens, and whether it is used
# --------------------------------------------------------------------------------------------


def service_enabled() -> bool:
    """Whether runners start from the transform service (``KEDRO_AWS_TRANSFORM_SERVICE``)."""
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        # fork without exec is unsafe with macOS system frameworks; Windows has no fork.
        return False
    value = os.environ.get(ENABLE_VARIABLE, "1").strip().lower()
    return value not in {"0", "false", "no", "off"}


def service_dir() -> Path:
    """The private directory of this user's service sockets."""
    configured = os.environ.get(DIR_VARIABLE)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"kedro-aws-{os.getuid()}"


def socket_path() -> Path | None:
    """The socket of the service for this interpreter and environment; None if too long."""
    path = service_dir() / f"transform-{fingerprint()}.sock"
    if len(os.fsencode(path)) > _UNIX_SOCKET_PATH_MAX:
        logger.warning(
            "The transform service's socket path %s is too long for a Unix socket; set %s to a "
            "shorter directory. Runners start cold meanwhile.",
            path,
            DIR_VARIABLE,
        )
        return None
    return path


def fingerprint() -> str:
    """A short hash of what a service's preloaded state depends on.

    >>> len(fingerprint())
    16
    """
    digest = hashlib.sha256()
    for part in (sys.executable, sys.version, sys.prefix):
        digest.update(part.encode() + b"\0")
    for name in _FINGERPRINT_VARIABLES:
        digest.update(f"{name}={os.environ.get(name)}\0".encode())
    package_dir = Path(__file__).resolve().parents[1]
    for path in sorted(package_dir.rglob("*.py")):
        stat = path.stat()
        digest.update(
            f"{path.relative_to(package_dir)}:{stat.st_mtime_ns}:{stat.st_size}\0".encode()
        )
    for name in _preload_list():
        top = name.partition(".")[0]
        with contextlib.suppress(ImportError, ValueError):
            spec = importlib.util.find_spec(top)
            origin = spec.origin if spec else None
            if origin and os.path.exists(origin):
                stat = os.stat(origin)
                digest.update(f"{top}:{origin}:{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:16]


def _preload_list() -> list[str]:
    extra = [m.strip() for m in os.environ.get(PRELOAD_VARIABLE, "").split(",") if m.strip()]
    return [*PRELOADED_MODULES, *extra]


def _request(path: Path, message: dict[str, Any]) -> dict[str, Any] | None:
    """Send one request to the service at ``path``; None if none listens there."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(_CLIENT_TIMEOUT_SECONDS)
        try:
            conn.connect(os.fspath(path))
            conn.sendall(json.dumps(message).encode() + b"\n")
            reply = _read_line(conn)
        except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
            # Nobody listens, or the service exited as we connected (it closes its socket
            # first, so it took no request). A runner it did fork would own the job anyway.
            return None
        except OSError as exc:  # a timeout (busy or hung), or an unusable directory
            return {"error": str(exc) or type(exc).__name__}
    if not reply:
        return {"error": "the service closed the connection without answering"}
    return json.loads(reply)


def service_status() -> dict[str, Any] | None:
    """What the running service says of itself (pid, fingerprint, preloaded modules), or None.

    >>> status = service_status()
    >>> status is None or "pid" in status
    True
    """
    path = socket_path() if service_enabled() else None
    if path is None:
        return None
    reply = _request(path, {"op": "status"})
    return reply if reply and "pid" in reply else None


def stop_service() -> bool:
    """Ask the service of this environment to exit; returns whether one was running."""
    path = socket_path() if service_enabled() else None
    if path is None:
        return False
    return _request(path, {"op": "stop"}) is not None


def stop_all_services(directory: Path | None = None) -> int:
    """Ask every service listening in ``directory`` (default: this user's) to exit.

    Services of other environments or kedro-aws versions included. Returns how many answered.
    """
    directory = directory or service_dir()
    stopped = 0
    for path in sorted(directory.glob("transform-*.sock")) if directory.is_dir() else ():
        if _request(path, {"op": "stop"}) is not None:
            stopped += 1
    return stopped


def _read_line(conn: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if b"\n" in chunk:
            break
        if size > _MAX_REQUEST_BYTES:
            raise OSError("request too large")
    return b"".join(chunks).partition(b"\n")[0]


# --------------------------------------------------------------------------------------------
# The service process
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Entry point of the service: ``<socket> [<root> <job name>]`` (the job it runs first)."""
    path, *first_job = argv or sys.argv[1:]
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s [transform service pid %(process)d] %(message)s",
        stream=sys.stderr,
    )
    service = _Service(Path(path), _idle_seconds())
    try:
        bound = service.bind()
    except OSError as exc:  # e.g. a read-only or full temporary directory
        logger.warning("Cannot listen on %s (%s); running the job without a service.", path, exc)
        bound = False
    if not bound:
        # Another service took the socket first: be a plain runner for the job we were given.
        if first_job:
            run_job(first_job)
        return
    # The creating process's environment, before imports add to it (scikit-learn sets KMP_*).
    first_request = {"cwd": os.getcwd(), "env": dict(os.environ)}
    service.preload()
    if first_job:
        root, job_name = first_job
        service.fork_runner({**first_request, "root": root, "job": job_name})
    service.redirect_output()
    service.serve()


def _idle_seconds() -> float:
    try:
        return float(os.environ.get(IDLE_VARIABLE, DEFAULT_IDLE_SECONDS))
    except ValueError:
        return DEFAULT_IDLE_SECONDS


class _Service:
    def __init__(self, path: Path, idle_seconds: float) -> None:
        self.path = path
        self.idle_seconds = idle_seconds
        self.listener: socket.socket | None = None
        self.inode = -1
        self.children: set[int] = set()
        self.preloaded: list[str] = []
        self.last_activity = time.monotonic()
        self.stopping = False

    def bind(self) -> bool:
        """Listen on the socket; False if a live service already does."""
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if directory.stat().st_uid != os.getuid():
            logger.error("%s belongs to another user; not starting a service there.", directory)
            return False
        with open(directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.path.exists():
                if _request(self.path, {"op": "status"}) is not None:
                    return False
                self.path.unlink(missing_ok=True)  # left by a service that was killed
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(os.fspath(self.path))
            listener.listen(64)
        self.listener = listener
        self.inode = self.path.stat().st_ino
        _remove_stale_logs(directory)
        return True

    def preload(self) -> None:
        """Import the image's libraries once; forked runners and their workers inherit them."""
        start = time.perf_counter()
        for name in _preload_list():
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 - a library the environment lacks
                logger.info("Not preloading %s: %s", name, exc)
            else:
                self.preloaded.append(name)
        service_model("s3")  # botocore's S3 model, which every runner and worker validates with
        client_exceptions("s3")  # the error classes every local S3 client carries
        paginator_config("s3", "ListObjectsV2")  # each runner lists its input with it
        decode_csv(b"0,0\n0,0\n")  # pyarrow sets up its CSV reader on first use
        loaded_thread_pools()  # the BLAS/OpenMP pools that workers limit
        _warm_up_scikit_learn()
        # Out of the garbage collector's sight: a collection in a forked runner would otherwise
        # touch every preloaded object and copy the service's whole heap page by page.
        gc.freeze()
        logger.info(
            "Transform service listening on %s: %d module(s) preloaded in %.2f s.",
            self.path,
            len(self.preloaded),
            time.perf_counter() - start,
        )

    def redirect_output(self) -> None:
        """From now on, log to the service's own file instead of the first job's log."""
        log = os.open(self.path.with_suffix(".log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)

    def serve(self) -> None:
        assert self.listener is not None
        signal.signal(signal.SIGCHLD, self._reap)
        signal.signal(signal.SIGTERM, self._terminate)
        try:
            while not self.stopping:
                self._reap()
                idle_for = time.monotonic() - self.last_activity
                if not self.children and idle_for >= self.idle_seconds:
                    logger.info("Idle for %.0f s: exiting.", idle_for)
                    return
                readable, _, _ = select.select([self.listener], [], [], 1.0)
                if readable:
                    self._accept()
        finally:
            self.listener.close()
            with contextlib.suppress(OSError):
                # Only our own socket: a newer service may have replaced a stale one.
                if self.path.stat().st_ino == self.inode:
                    self.path.unlink()

    def _accept(self) -> None:
        assert self.listener is not None
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        with conn:
            conn.settimeout(_REQUEST_READ_TIMEOUT_SECONDS)
            try:
                message = json.loads(_read_line(conn) or b"{}")
                reply = self._handle(message, conn)
            except (OSError, ValueError) as exc:
                reply = {"error": f"bad request: {exc}"}
            except Exception as exc:  # a bug must not take the service down for everyone
                logger.exception("Request failed")
                reply = {"error": f"internal error: {type(exc).__name__}: {exc}"}
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(reply).encode() + b"\n")
        self.last_activity = time.monotonic()

    def _handle(self, message: Any, conn: socket.socket) -> dict[str, Any]:
        if not isinstance(message, dict):
            return {"error": f"a request is a JSON object, not {type(message).__name__}"}
        op = message.get("op")
        if op == "run":
            problem = _run_request_problem(message)
            if problem:
                return {"error": problem}
            return {"pid": self.fork_runner(message, inherited=(conn,))}
        if op == "status":
            return {
                "pid": os.getpid(),
                "fingerprint": self.path.stem.removeprefix("transform-"),
                "preloaded": self.preloaded,
                "runners": sorted(self.children),
            }
        if op == "stop":
            self.stopping = True
            return {"pid": os.getpid(), "stopping": True}
        return {"error": f"unknown op {op!r}"}

    def fork_runner(
        self, request: dict[str, Any], inherited: tuple[socket.socket, ...] = ()
    ) -> int:
        """Fork a fresh runner for one job; returns its pid.

        ``inherited`` are the service's sockets besides the listener, which the child closes.
        """
        log_path = job_log_path(Path(request["root"]), request["job"])
        log_path.parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; its work is observed through the job
            _run_forked_runner((self.listener, *inherited), request, log_path)
        self.children.add(pid)
        logger.info("Job %s: runner pid %d.", request["job"], pid)
        return pid

    def _reap(self, *_signal: Any) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                done, _status = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    continue
            self.children.discard(pid)
            self.last_activity = time.monotonic()

    def _terminate(self, *_signal: Any) -> None:
        self.stopping = True


def _remove_stale_logs(directory: Path, max_age_seconds: float = STALE_LOG_SECONDS) -> None:
    """Delete logs of services long gone (one per fingerprint: every upgrade leaves one)."""
    cutoff = time.time() - max_age_seconds
    for log in directory.glob("transform-*.log"):
        with contextlib.suppress(OSError):
            if not log.with_suffix(".sock").exists() and log.stat().st_mtime < cutoff:
                log.unlink()


def _run_request_problem(message: dict[str, Any]) -> str | None:
    """What is wrong with a ``run`` request, or None.

    >>> _run_request_problem({"op": "run", "root": 1, "job": "j", "cwd": "/", "env": {}})
    'run request field root must be a string'
    """
    for key in ("root", "job", "cwd"):
        if key not in message:
            return f"run request without {key}"
        if not isinstance(message[key], str):
            return f"run request field {key} must be a string"
    env = message.get("env")
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        return "run request field env must be an object of strings"
    return None


def _warm_up_scikit_learn() -> None:
    """Run scikit-learn's input validation once, on a trivial model and in-memory data.

    Its first call discovers dataframe plugins through package entry points (~20 ms), which
    every worker would otherwise repeat on its first prediction. No threads are started.
    """
    with contextlib.suppress(Exception):
        from sklearn.dummy import DummyClassifier  # noqa: PLC0415

        DummyClassifier().fit([[0.0]], [0]).predict([[0.0]])


def _run_forked_runner(
    sockets: tuple[socket.socket | None, ...], request: dict[str, Any], log: Path
) -> None:
    """In the forked child: become a detached runner for the job, then exit."""
    code = 1
    try:
        for inherited in sockets:
            if inherited is not None:
                inherited.close()
        os.setsid()  # its own session and process group, as a cold runner has
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        os.close(null_fd)
        os.environ.clear()
        os.environ.update(runner_environment(request["env"]))
        with contextlib.suppress(OSError):
            os.chdir(request["cwd"])
        reseed_random_state()
        run_job([request["root"], request["job"]])
        code = 0
    except BaseException:  # noqa: BLE001 - reported in the job's log; never back in the service
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
