"""Fixtures shared by the whole suite.

Backends: ``make_client(service, region=...)`` returns a client obtained only through
``kedro_aws.clients.client``, on the test's ``backend``:

- ``local``: the offline backend, rooted in a fresh temporary directory;
- ``moto``: boto3 against moto's in-process mock (``mock_aws``);
- ``moto-server``: boto3 over HTTP against a moto server on loopback (``endpoint_url``), so the
  requests go through botocore's real serialisation and parsing.
"""

from __future__ import annotations

import doctest
import os
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from moto.server import ThreadedMotoServer

from kedro_aws.clients import client
from kedro_aws.local import transform_service

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PROJECT = REPO_ROOT / "examples" / "iris"

# No telemetry calls (and no network attempts) from any Kedro command the tests run.
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")


def copy_example_project(destination: Path) -> Path:
    """Copy the reference project without its run outputs; return the copy's path."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).relative_to(EXAMPLE_PROJECT)
        skipped = {n for n in names if n in {"__pycache__", ".telemetry", "spark-warehouse"}}
        if relative == Path("data"):
            skipped |= {n for n in names if n != "01_raw"}
        return skipped

    target = destination / "iris"
    shutil.copytree(EXAMPLE_PROJECT, target, ignore=ignore)
    return target


@pytest.fixture(autouse=True)
def _no_session_state_leaks():
    """A test that opens a Kedro session without running it leaves no session state behind."""
    yield
    from kedro_aws import run_state

    run_state.set_session_params(None)
    run_state.set_current_node(None)


@pytest.fixture
def iris_project(tmp_path: Path) -> Path:
    """A fresh copy of examples/iris in a temporary directory."""
    return copy_example_project(tmp_path)


@pytest.fixture(scope="session")
def make_iris_project(tmp_path_factory):
    """Make fresh copies of examples/iris from fixtures of any scope: ``make_iris_project("name")``."""
    return lambda name: copy_example_project(tmp_path_factory.mktemp(name))


@pytest.fixture(scope="session")
def spark():
    """A small local Spark session shared by the tests that need real DataFrames."""
    from pyspark.sql import SparkSession

    from kedro_aws.spark.session import build_spark_conf, create_spark_session

    conf = build_spark_conf({"spark.master": "local[1]", "spark.sql.shuffle.partitions": "4"})
    session = create_spark_session(conf, "kedro-aws-tests")
    assert isinstance(session, SparkSession)
    yield session
    session.stop()


# --- Backends for contract suites: one behaviour test, run against every backend. ---

BACKENDS = ("local", "moto", "moto-server")
MakeClient = Callable[..., Any]


@pytest.fixture(scope="session", autouse=True)
def transform_service_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The suite's own transform services (kedro_aws.local.transform_service).

    Kept apart from a developer's, with a short idle timeout, and all stopped at the end so no
    service outlives the test run.
    """
    directory = tmp_path_factory.mktemp("services")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(transform_service.DIR_VARIABLE, str(directory))
        patch.setenv(transform_service.IDLE_VARIABLE, "120")
        yield directory
        transform_service.stop_all_services(directory)


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and no user AWS configuration, so nothing can reach a real account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/kedro-aws-tests/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/kedro-aws-tests/credentials")


@pytest.fixture(scope="session")
def moto_server_url() -> Iterator[str]:
    """A moto server on a free loopback port, shared by the session (reset per test)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _reset_moto_server(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_client(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[MakeClient]:
    """Factory of clients on the test's backend: ``make_client("s3", region="eu-west-1")``."""
    if backend == "local":
        root = tmp_path / "aws"
        yield lambda service, region="us-east-1": client(
            service, backend="local", root=root, region=region
        )
    elif backend == "moto":
        with mock_aws():
            yield lambda service, region="us-east-1": client(service, backend="aws", region=region)
    else:
        url = request.getfixturevalue("moto_server_url")
        _reset_moto_server(url)
        yield lambda service, region="us-east-1": client(
            service, backend="aws", region=region, endpoint_url=url
        )


@pytest.fixture
def local_root(tmp_path: Path) -> Path:
    return tmp_path / "aws"


@pytest.fixture
def make_local_client(local_root: Path) -> MakeClient:
    """Factory of local clients sharing one root (for local-only behaviour)."""
    return lambda service, region="us-east-1": client(
        service, backend="local", root=local_root, region=region
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out docstrings whose examples only illustrate (every one marked ``+SKIP``).

    ``make test`` runs the examples in ``src/``'s docstrings (``--doctest-modules``). Those that
    need an AWS account, a Kedro session or a running job are marked ``# doctest: +SKIP``;
    a docstring made only of such examples is documentation, not a test, so it is deselected
    rather than reported as a skipped test.
    """
    illustrative = [
        item
        for item in items
        if isinstance(item, pytest.DoctestItem)
        and all(example.options.get(doctest.SKIP) for example in item.dtest.examples)
    ]
    if illustrative:
        config.hook.pytest_deselected(items=illustrative)
        items[:] = [item for item in items if item not in illustrative]
