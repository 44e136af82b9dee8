"""repartition_by: literal and parameter-driven schemes, in and out of a session, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from pyspark.sql import DataFrame

from kedro_aws import run_state
from kedro_aws.params import param
from kedro_aws.spark import RepartitionError, repartition_by

ROWS = [(y, m, i) for y in (2024, 2025) for m in (1, 2, 3) for i in range(5)]


@pytest.fixture(autouse=True)
def _no_session_leaks():
    run_state.set_session_params(None)
    yield
    run_state.set_session_params(None)
    run_state.set_current_node(None)


@pytest.fixture
def frame(spark) -> DataFrame:
    return spark.createDataFrame(ROWS, ["year", "month", "value"]).repartition(3)


def partition_keys(df: DataFrame, columns: list[str]) -> list[set[tuple]]:
    """The set of distinct column values held by each non-empty partition."""
    keyed = df.rdd.mapPartitions(lambda rows: [{tuple(r[c] for c in columns) for r in rows}])
    return [keys for keys in keyed.collect() if keys]


def test_keeps_the_function_name_for_kedro_node_names():
    @repartition_by("year")
    def parse(df):
        """Doc."""
        return df

    assert parse.__name__ == "parse" and parse.__doc__ == "Doc."


def test_literal_columns_put_each_key_in_exactly_one_partition(frame):
    out = repartition_by("year", "month")(lambda df: df)(frame)
    keys = partition_keys(out, ["year", "month"])
    seen = [k for part in keys for k in part]
    assert len(seen) == len(set(seen)) == 6  # no (year, month) is split across partitions
    assert out.count() == len(ROWS)


def test_num_partitions_alone_and_with_columns(frame):
    assert repartition_by(num_partitions=4)(lambda df: df)(frame).rdd.getNumPartitions() == 4
    out = repartition_by(["year"], num_partitions=2)(lambda df: df)(frame)
    assert out.rdd.getNumPartitions() == 2
    years = [k for part in partition_keys(out, ["year"]) for k in part]
    assert len(years) == len(set(years))


def test_parameter_reference_resolves_from_the_config_on_disk(frame, iris_project, monkeypatch):
    monkeypatch.chdir(iris_project)
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    (iris_project / "conf" / "local" / "parameters.yml").write_text(
        "parse:\n  repartition_columns: year\n  num_partitions: 5\n"
    )
    node = repartition_by(
        param("parse.repartition_columns"), num_partitions=param("parse.num_partitions")
    )(lambda df: df)
    out = node(frame)
    assert out.rdd.getNumPartitions() == 5
    years = [k for part in partition_keys(out, ["year"]) for k in part]
    assert sorted(years) == [(2024,), (2025,)]


def test_parameter_reference_resolves_when_called_not_when_decorated(frame, iris_project):
    # Decorated before any session exists; the session's --params must still apply.
    node = repartition_by(
        param("parse.repartition_columns"), num_partitions=param("parse.num_partitions")
    )(lambda df: df)
    bootstrap_project(iris_project)
    with KedroSession.create(
        project_path=iris_project,
        runtime_params={"parse.repartition_columns": "month", "parse.num_partitions": 7},
    ) as session:
        session.load_context()
        out = node(frame)
    assert out.rdd.getNumPartitions() == 7
    months = [k for part in partition_keys(out, ["month"]) for k in part]
    assert len(months) == len(set(months)) == 3


def test_missing_column_fails_before_writing_and_names_node_columns_and_parameter(frame):
    run_state.set_session_params(
        run_state.SessionParams(params={"parse": {"cols": ["year", "mnth"]}}, env="local")
    )
    run_state.set_current_node("parse_iris_node")
    calls = []

    @repartition_by(param("parse.cols"))
    def parse(df):
        calls.append(df)
        return df

    with pytest.raises(RepartitionError) as error:
        parse(frame)
    message = str(error.value)
    assert "node 'parse_iris_node'" in message
    assert "['mnth']" in message
    assert "parameter 'parse.cols' (env 'local')" in message
    assert "Nothing was written" in message
    assert len(calls) == 1  # the node ran; its result never reached Kedro


@pytest.mark.parametrize(
    "value", [{"year": 1}, [], 3, ["year", 4], ""], ids=["dict", "empty", "int", "mixed", "blank"]
)
def test_malformed_scheme_fails_before_the_node_runs(value, frame):
    run_state.set_session_params(run_state.SessionParams(params={"scheme": value}, env="dev"))
    calls = []

    @repartition_by(param("scheme"))
    def parse(df):
        calls.append(df)
        return df

    with pytest.raises(
        RepartitionError, match=r"parameter 'scheme' \(env 'dev'\) must be a column name"
    ):
        parse(frame)
    assert calls == []  # fails before any work is done


@pytest.mark.parametrize("value", [0, -1, "4", True])
def test_bad_num_partitions(value, frame):
    with pytest.raises(RepartitionError, match="must be a positive integer"):
        repartition_by("year", num_partitions=value)(lambda df: df)(frame)


def test_no_scheme_at_all_is_rejected_at_decoration():
    with pytest.raises(RepartitionError, match="at least one column or num_partitions"):
        repartition_by()


def test_non_dataframe_output_is_rejected():
    with pytest.raises(RepartitionError, match="must return a Spark DataFrame, got dict"):
        repartition_by("year")(lambda: {"year": 1})()


def test_outside_a_run_the_error_names_the_function(frame):
    def my_node(df):
        return df

    with pytest.raises(RepartitionError, match=r"function '.*my_node' \(outside a Kedro run\)"):
        repartition_by("nope")(my_node)(frame)


def test_unknown_parameter_key_propagates_clearly(frame, iris_project: Path, monkeypatch):
    monkeypatch.chdir(iris_project)
    with pytest.raises(KeyError, match="Parameter 'parse.nope' not found"):
        repartition_by(param("parse.nope"))(lambda df: df)(frame)
