"""``kedro aws transform-service status|stop``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kedro_aws.cli import commands
from kedro_aws.local import transform_service


@pytest.fixture
def service_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "svc"
    monkeypatch.setenv(transform_service.DIR_VARIABLE, str(directory))
    monkeypatch.delenv(transform_service.ENABLE_VARIABLE, raising=False)
    yield directory
    transform_service.stop_all_services(directory)


def aws(*args: str) -> str:
    result = CliRunner().invoke(commands, ["aws", "transform-service", *args])
    assert result.exit_code == 0, result.output
    return result.output


def start_service() -> int:
    """A service with no first job, as the first create_transform_job would start one."""
    subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-c",
            "from kedro_aws.local.transform_service import main; main()",
            str(transform_service.socket_path()),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = transform_service.service_status()
        if status is not None:
            return status["pid"]
        time.sleep(0.05)
    raise AssertionError("the transform service did not start within 60 s")


def test_status_and_stop_of_a_running_service(service_dir: Path):
    assert "No transform service runs" in aws("status")
    pid = start_service()

    shown = aws("status")
    assert f"Transform service pid {pid}" in shown
    assert "runners in progress: none" in shown

    assert aws("stop") == "Stopped 1 transform service(s).\n"
    deadline = time.monotonic() + 30
    while transform_service.service_status() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "No transform service runs" in aws("status")
    assert aws("stop", "--all") == "Stopped 0 transform service(s).\n"


def test_status_says_when_the_service_is_off(service_dir: Path, monkeypatch):
    monkeypatch.setenv(transform_service.ENABLE_VARIABLE, "0")
    assert "The transform service is off" in aws("status")
    assert aws("stop") == "Stopped 0 transform service(s).\n"
