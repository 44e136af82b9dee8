"""What every benchmark reports the same way: the machine, target checks, saved results."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "cpu": cpu_model(), "platform": platform.platform()}


def check(label: str, ratio: float, target: float, *, higher_is_better: bool = True) -> str:
    """One line saying whether ``ratio`` meets ``target``."""
    met = ratio >= target if higher_is_better else ratio <= target
    return f"{label}: {ratio:.2f}× — {'met' if met else 'NOT met'}"


def save(directory: Path, stem: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the machine) as ``<directory>/<stem>-<timestamp>.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps({**payload, "machine": machine()}, indent=2))
    return path
