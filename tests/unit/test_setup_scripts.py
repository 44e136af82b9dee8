"""The setup scripts make runs: Java detection and the Python version check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def fake_java(directory: Path, version_line: str) -> Path:
    """A `java` that prints `version_line` for `java -version`, as the JDK does (on stderr)."""
    directory.mkdir(parents=True, exist_ok=True)
    java = directory / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    return java


def run_ensure_java(tmp_path: Path, path_dirs: list[Path]) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"]),
        "KEDRO_AWS_INSTALL_JAVA": "0",  # never apt-get install from a test
        "HOME": str(tmp_path),
    }
    return subprocess.run(
        ["bash", str(SCRIPTS / "ensure-java.sh")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    "line",
    [
        'openjdk version "17.0.15" 2025-04-15',
        'openjdk version "21" 2023-09-19',
        'java version "25.0.1"',
    ],
)
def test_java_17_or_newer_is_accepted(tmp_path, line):
    bin_dir = tmp_path / "jdk" / "bin"
    fake_java(bin_dir, line)
    done = run_ensure_java(tmp_path, [bin_dir])
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("line", "major"), [('java version "1.8.0_392"', "8"), ('openjdk version "11.0.2"', "11")]
)
def test_old_java_is_named_and_the_fix_is_given(tmp_path, line, major):
    bin_dir = tmp_path / "jdk" / "bin"
    fake_java(bin_dir, line)
    done = run_ensure_java(tmp_path, [bin_dir])
    assert done.returncode == 1
    assert f"Found Java {major}" in done.stderr and "needs Java 17 or newer" in done.stderr
    assert "apt-get install openjdk-17-jre-headless" in done.stderr


def test_missing_java_says_what_to_install(tmp_path, monkeypatch):
    # A PATH with the tools the script uses but no java (the machine may have one in /usr/bin).
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in ("bash", "cat", "awk", "cut", "id"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    done = subprocess.run(
        [str(tools / "bash"), str(SCRIPTS / "ensure-java.sh")],
        env={"PATH": str(tools), "KEDRO_AWS_INSTALL_JAVA": "0", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "none was found on PATH or in JAVA_HOME" in done.stderr
    assert "brew install openjdk@17" in done.stderr


def test_python_check_refuses_an_old_interpreter(tmp_path):
    old = tmp_path / "python-old"
    old.write_text(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Python 3.9.18'; exit 0; fi\nexit 1\n"
    )
    old.chmod(0o755)
    done = subprocess.run(
        ["bash", str(SCRIPTS / "check-python.sh"), str(old)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "Python 3.9.18 is too old; kedro-aws needs Python >= 3.10" in done.stderr
    ok = subprocess.run(
        ["bash", str(SCRIPTS / "check-python.sh"), sys.executable],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
