"""Project pipelines."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    ``__default__`` is the offline PySpark iris flow; the AWS-facing pipelines are run by name
    (``kedro run --pipelines train_and_register_model``).
    """
    pipelines = find_pipelines(raise_errors=True)
    # Kedro >= 1.5 imports only the pipelines a run asks for, so pyspark_iris may be absent.
    if "pyspark_iris" in pipelines:
        pipelines["__default__"] = pipelines["pyspark_iris"]
    return pipelines
