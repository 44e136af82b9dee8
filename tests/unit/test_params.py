"""Parameters outside nodes: lazy references and the eager loader, in and out of a session."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from kedro_aws import run_state
from kedro_aws.params import (
    ParameterNotFoundError,
    ProjectNotFoundError,
    load_params,
    lookup,
    param,
    resolve,
)

# Created at import time, like a decorator argument in a node module: it must still see the
# values of whatever session or config is current when it is resolved.
MODULE_LEVEL_SEED = param("split.seed")


@pytest.fixture(autouse=True)
def _no_session_leaks():
    run_state.set_session_params(None)
    yield
    run_state.set_session_params(None)


@pytest.fixture
def in_project(iris_project: Path, monkeypatch) -> Path:
    monkeypatch.chdir(iris_project)
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    return iris_project


def add_env(project: Path, env: str, text: str) -> None:
    (project / "conf" / env).mkdir(exist_ok=True)
    (project / "conf" / env / "parameters.yml").write_text(text)


def test_lookup_walks_nested_keys_and_accepts_dotted_top_level_keys():
    params = {"a": {"b": {"c": 1}}, "x.y": 2}
    assert lookup(params, "a.b.c") == 1
    assert lookup(params, "a.b") == {"c": 1}
    assert lookup(params, "x.y") == 2
    with pytest.raises(KeyError) as missing:
        lookup(params, "a.z.c")
    assert missing.value.args[0] == "a.z"


@pytest.mark.parametrize("key", ["", "a..b", ".a", None, 3])
def test_param_rejects_malformed_keys(key):
    with pytest.raises(ValueError, match="dotted name"):
        param(key)


def test_explicit_params_and_defaults():
    assert param("m.k").resolve({"m": {"k": 3}}) == 3
    assert param("m.k", default=None).resolve({}) is None
    assert resolve(7) == 7
    assert resolve(param("m.k"), {"m": {"k": "v"}}) == "v"
    with pytest.raises(ParameterNotFoundError, match="Parameter 'm.k' not found"):
        param("m.k").resolve({"m": {}})


def test_outside_a_session_resolves_from_the_config_on_disk(in_project):
    assert MODULE_LEVEL_SEED.resolve() == 42
    # globals-driven parameter: the partition scheme from globals.yml
    assert param("parse.repartition_columns").resolve() == ["year", "month"]


def test_outside_a_session_kedro_env_selects_the_env(in_project, monkeypatch):
    add_env(in_project, "backfill", "split:\n  seed: 7\n")
    monkeypatch.setenv("KEDRO_ENV", "backfill")
    assert MODULE_LEVEL_SEED.resolve() == 7
    assert load_params(env="local")["split"]["seed"] == 42


def test_load_params_applies_runtime_params_like_kedro_run(in_project):
    params = load_params(runtime_params={"split.seed": 5, "parse": {"num_partitions": 3}})
    assert params["split"] == {"test_fraction": 0.2, "seed": 5}
    assert params["parse"]["num_partitions"] == 3
    assert params["parse"]["repartition_columns"] == ["year", "month"]


def test_load_params_by_project_path_from_anywhere(iris_project, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_params(project_path=iris_project)["model"]["max_iter"] == 500


def test_unknown_key_names_key_env_and_files(in_project):
    with pytest.raises(ParameterNotFoundError) as error:
        param("split.sede").resolve()
    message = str(error.value)
    assert "Parameter 'split.sede' not found" in message
    assert "env 'local'" in message
    assert "conf/base/parameters_pyspark_iris.yml" in message


def test_outside_any_project_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ProjectNotFoundError, match="not inside a Kedro project"):
        param("split.seed").resolve()


def test_in_a_session_the_session_params_win_including_runtime_params(in_project):
    add_env(in_project, "staging", "split:\n  seed: 11\n")
    bootstrap_project(in_project)
    with KedroSession.create(
        project_path=in_project, env="staging", runtime_params={"model.C": 0.5}
    ) as session:
        session.load_context()  # fires the plugin's after_context_created hook
        state = run_state.session_params()
        assert state is not None and state.env == "staging"
        assert MODULE_LEVEL_SEED.resolve() == 11
        assert param("model.C").resolve() == 0.5
        with pytest.raises(ParameterNotFoundError, match="running Kedro session.*env 'staging'"):
            param("nope").resolve()


def _resolve_in_child(project: str, key: str, queue) -> None:
    import os as child_os

    child_os.chdir(project)
    from kedro_aws.params import param as child_param

    queue.put(child_param(key).resolve())


def test_spawned_worker_processes_see_the_session_env_and_runtime_params(in_project):
    """ParallelRunner with KEDRO_MP_CONTEXT=spawn (or macOS) starts fresh interpreters."""
    import multiprocessing

    add_env(in_project, "staging", "split:\n  seed: 11\n  test_fraction: 0.3\n")
    run_state.set_session_params(
        run_state.SessionParams(
            params={},
            env="staging",
            runtime_params={"split": {"seed": 99}},
            project_path=in_project,
        )
    )
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    for key in ("split.seed", "split.test_fraction"):
        child = context.Process(target=_resolve_in_child, args=(str(in_project), key, queue))
        child.start()
        child.join(120)
        assert child.exitcode == 0
    assert [queue.get(timeout=5), queue.get(timeout=5)] == [99, 0.3]  # --params, then --env
    run_state.set_session_params(None)
    assert "KEDRO_AWS_SESSION_ENV" not in __import__("os").environ
