"""What the running Kedro session tells kedro-aws: its parameters and the node being run.

The plugin hooks (:mod:`kedro_aws.hooks`) fill this in; :mod:`kedro_aws.params` and the Spark
decorators read it. Outside a session it is empty and readers fall back to the config on disk.
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SessionParams:
    """The parameters of the running session and where they came from (for error messages)."""

    params: dict[str, Any]
    env: str | None
    runtime_params: dict[str, Any] = field(default_factory=dict)
    project_path: Path | None = None
    conf_source: str | None = None
    # The session's aws.yml, so kedro_aws.client() inside a node follows `--env`.
    aws_settings: Any = None
    # From before_pipeline_run: session_id, pipeline_names, ... (for lineage metadata).
    run_params: dict[str, Any] = field(default_factory=dict)


# Worker processes started with "spawn" (Kedro's ParallelRunner with KEDRO_MP_CONTEXT=spawn, or
# macOS) inherit the environment but not this module's state: the session's env and runtime
# parameters travel to them through these variables, so lookups there still see --env/--params.
ENV_VARIABLE = "KEDRO_AWS_SESSION_ENV"
RUNTIME_PARAMS_VARIABLE = "KEDRO_AWS_SESSION_RUNTIME_PARAMS"

_lock = threading.Lock()
_session_params: SessionParams | None = None
# A ContextVar, not a global: ThreadRunner runs nodes concurrently in threads, and each thread
# must see its own node.
_current_node: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "kedro_aws_current_node", default=None
)


def set_session_params(state: SessionParams | None) -> None:
    """Install (or with ``None`` clear) the running session's parameters."""
    global _session_params  # noqa: PLW0603 - one session runs per process at a time
    with _lock:
        _session_params = state
        if state is None:
            os.environ.pop(ENV_VARIABLE, None)
            os.environ.pop(RUNTIME_PARAMS_VARIABLE, None)
        else:
            if state.env:
                os.environ[ENV_VARIABLE] = state.env
            os.environ[RUNTIME_PARAMS_VARIABLE] = json.dumps(state.runtime_params, default=str)


def inherited_session() -> tuple[str | None, dict[str, Any]]:
    """The env and runtime parameters of a session running in a parent process, if any."""
    runtime = os.environ.get(RUNTIME_PARAMS_VARIABLE)
    return os.environ.get(ENV_VARIABLE), json.loads(runtime) if runtime else {}


def update_session(**changes: Any) -> None:
    """Replace fields of the running session's state (no-op outside a session)."""
    global _session_params  # noqa: PLW0603
    with _lock:
        if _session_params is not None:
            _session_params = replace(_session_params, **changes)


def session_params() -> SessionParams | None:
    """The running session's parameters, or ``None`` outside a session."""
    return _session_params


def set_current_node(name: str | None) -> None:
    """Record the node about to run in this thread (``None`` once it has finished)."""
    _current_node.set(name)


def current_node() -> str | None:
    """Name of the node running in this thread, if any."""
    return _current_node.get()
