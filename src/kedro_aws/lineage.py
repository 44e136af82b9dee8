"""Lineage of a Kedro run, as flat string properties for registries and job tags.

Links an artifact to the run that made it: the session id (which is also the Kedro save
version of every versioned dataset the run wrote), env, pipelines, project, git commit, and
chosen parameters. Values are strings, as SageMaker's ``CustomerMetadataProperties`` require.

Example:
>>> run_lineage(key_params={"model": {"C": 1.0}}, session=None)["param.model.C"]
'1.0'
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro_aws import run_state


def run_lineage(
    key_params: Mapping[str, Any] | None = None,
    *,
    session: run_state.SessionParams | None | bool = True,
) -> dict[str, str]:
    """Lineage properties of the running session (``session=None`` for none at all).

    ``key_params`` are flattened to ``param.<dotted.key>`` entries.
    """
    state = run_state.session_params() if session is True else session or None
    properties: dict[str, str] = {}
    if state is not None:
        run_params = state.run_params or {}
        session_id = run_params.get("run_id") or run_params.get("session_id")
        pipelines = run_params.get("pipeline_names") or ["__default__"]
        properties.update(
            {
                "kedro_session_id": session_id,
                "kedro_save_version": session_id,
                "kedro_env": state.env,
                "kedro_pipelines": ",".join(pipelines),
                "kedro_project": _package_name()
                or (state.project_path.name if state.project_path else None),
                "git_commit": git_commit(state.project_path) if state.project_path else None,
            }
        )
    properties.update(_flatten(key_params or {}, "param."))
    return {k: str(v) for k, v in properties.items() if v is not None}


def current_save_version() -> str | None:
    """The running session's save version (its id), or ``None`` outside a run."""
    state = run_state.session_params()
    if state is None:
        return None
    return state.run_params.get("run_id") or state.run_params.get("session_id")


def git_commit(path: Path) -> str | None:
    """The commit checked out at ``path`` (``+dirty`` if tracked files changed), if any."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit


def _package_name() -> str | None:
    from kedro.framework.project import PACKAGE_NAME  # noqa: PLC0415

    return PACKAGE_NAME


def _flatten(params: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
