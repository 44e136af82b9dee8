"""Parameters outside node functions: a lazy reference and an eager loader.

Kedro hands parameters to nodes as inputs. Sometimes code outside a node needs them: a decorator
argument, a module-level constant. Copying parameters into module globals from a hook (the
0.18-era trick) goes stale: the value is read at import time, before ``--params`` or ``--env``
apply. Here the value is looked up when it is *used*:

- ``param("a.b", default=...)`` is a lazy reference. It resolves, at call time, from the running
  session's parameters (``--env`` and ``--params`` included), or, with no session (a unit test, a
  notebook, plain import), from the project's config on disk (``KEDRO_ENV`` picks the env).
- ``load_params(env=None, runtime_params=None)`` loads the parameters now, the way
  ``kedro run`` would, for module-level constants and scripts.

Example:
>>> ref = param("model.max_iter", default=200)
>>> ref.resolve({"model": {"max_iter": 50}})
50
>>> ref.resolve({})
200
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro_aws import run_state

_MISSING: Any = object()


class ParameterNotFoundError(KeyError):
    """A parameter key is not in the parameters of the session or of the config on disk."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it.
        return str(self.args[0])


class ProjectNotFoundError(RuntimeError):
    """Parameters were asked for outside a Kedro session and outside a Kedro project."""


def lookup(params: Mapping[str, Any], key: str) -> Any:
    """Find ``key`` ("a.b.c") in nested ``params``; a literal dotted top-level key also matches.

    Raises ``KeyError`` with the part of the key that was missing.

    Example:
    >>> lookup({"a": {"b": [1, 2]}}, "a.b")
    [1, 2]
    """
    if key in params:
        return params[key]
    node: Any = params
    walked: list[str] = []
    for part in key.split("."):
        walked.append(part)
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(".".join(walked))
        node = node[part]
    return node


@dataclass(frozen=True)
class ParamRef:
    """A lazy reference to a parameter, resolved when used. Create it with :func:`param`."""

    key: str
    default: Any = _MISSING

    def resolve(self, params: Mapping[str, Any] | None = None) -> Any:
        """The value from ``params`` if given, else from the session, else from disk."""
        if params is not None:
            return self._from(params, source=None)
        state = run_state.session_params()
        if state is not None:
            return self._from(state.params, source=state)
        loaded = _load_from_disk()
        return self._from(loaded.params, source=loaded)

    def _from(self, params: Mapping[str, Any], source: run_state.SessionParams | None) -> Any:
        try:
            return lookup(params, self.key)
        except KeyError as exc:
            if self.default is not _MISSING:
                return self.default
            raise ParameterNotFoundError(
                _not_found_message(self.key, exc.args[0], source)
            ) from None

    def __repr__(self) -> str:
        default = "" if self.default is _MISSING else f", default={self.default!r}"
        return f"param({self.key!r}{default})"


def param(key: str, default: Any = _MISSING) -> ParamRef:
    """A lazy reference to parameter ``key`` ("section.name"), with an optional default.

    Example:
    >>> param("partitions.parsed")
    param('partitions.parsed')
    """
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise ValueError(f"Parameter key must be a dotted name like 'a.b', got {key!r}.")
    return ParamRef(key, default)


def resolve(value: Any, params: Mapping[str, Any] | None = None) -> Any:
    """``value`` itself, unless it is a :class:`ParamRef`, which is resolved."""
    return value.resolve(params) if isinstance(value, ParamRef) else value


def load_params(
    env: str | None = None,
    runtime_params: Mapping[str, Any] | None = None,
    *,
    project_path: str | Path | None = None,
) -> dict[str, Any]:
    """Load the project's parameters now, as ``kedro run --env ENV --params ...`` would.

    Args:
        env: The run environment; default ``KEDRO_ENV``, then the project's ``default_run_env``.
        runtime_params: Overrides, like ``--params`` (nested dicts or dotted keys).
        project_path: The Kedro project; default: the one containing the working directory.

    Example:
    >>> load_params(env="local", runtime_params={"model.max_iter": 10})  # doctest: +SKIP
    {'model': {'max_iter': 10, ...}, ...}
    """
    return _load_from_disk(env, runtime_params, project_path).params


def _load_from_disk(
    env: str | None = None,
    runtime_params: Mapping[str, Any] | None = None,
    project_path: str | Path | None = None,
) -> run_state.SessionParams:
    from kedro.framework.project import settings  # noqa: PLC0415 - kedro import is slow
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415
    from kedro.utils import find_kedro_project  # noqa: PLC0415

    if project_path is None:
        project_path = find_kedro_project(Path.cwd())
        if project_path is None:
            raise ProjectNotFoundError(
                f"Cannot load parameters: no Kedro session is running and {Path.cwd()} is not "
                "inside a Kedro project (no pyproject.toml with [tool.kedro] above it). Run "
                "inside the project, pass project_path=..., or pass the parameters explicitly."
            )
    project_path = Path(project_path).resolve()
    bootstrap_project(project_path)
    parent_env, parent_runtime = run_state.inherited_session()
    env = env or parent_env or os.environ.get("KEDRO_ENV") or None
    if runtime_params is None:
        runtime_params = parent_runtime
    runtime = _nest(dict(runtime_params or {}))
    conf_source = str(project_path / settings.CONF_SOURCE)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=conf_source,
        env=env,
        runtime_params=runtime,
        **settings.CONFIG_LOADER_ARGS,
    )
    return run_state.SessionParams(
        params=dict(loader["parameters"]),
        env=env or getattr(loader, "default_run_env", None),
        runtime_params=runtime,
        project_path=project_path,
        conf_source=conf_source,
    )


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a.b": 1}`` → ``{"a": {"b": 1}}``, as ``kedro run --params a.b=1`` does."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        target = nested
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = _nest(value) if isinstance(value, dict) else value
    return nested


def _parameter_files(state: run_state.SessionParams) -> list[str]:
    """The parameter files a loader reads for ``state.env`` (for error messages)."""
    if not state.conf_source:
        return []
    from kedro.framework.project import settings  # noqa: PLC0415

    args = settings.CONFIG_LOADER_ARGS
    patterns = args.get("config_patterns", {}).get(
        "parameters", ["parameters*", "parameters*/**", "**/parameters*"]
    )
    conf = Path(state.conf_source)
    envs = [args.get("base_env", "base"), state.env or args.get("default_run_env", "local")]
    found: set[str] = set()
    for env in envs:
        for pattern in patterns:
            for path in (conf / env).glob(pattern):
                if path.is_file() and path.suffix in {".yml", ".yaml", ".json"}:
                    found.add(str(path.relative_to(conf.parent)))
    return sorted(found)


def _not_found_message(key: str, missing: str, source: run_state.SessionParams | None) -> str:
    if source is None:
        return f"Parameter '{key}' not found ('{missing}' is missing) in the parameters given."
    where = "the running Kedro session" if source is run_state.session_params() else "config"
    files = _parameter_files(source)
    listed = ", ".join(files) if files else "no parameter files found"
    runtime = f"; runtime params: {source.runtime_params}" if source.runtime_params else ""
    return (
        f"Parameter '{key}' not found ('{missing}' is missing) in the parameters of {where} "
        f"(env '{source.env}'; files read: {listed}{runtime})."
    )
