"""The kedro-aws plugin hooks, registered for every project through the ``kedro.hooks`` entry point.

They:

- register the ``spark`` and ``aws`` config patterns (``spark*.yml``, ``aws*.yml``), so
  ``config_loader["spark"]`` and ``config_loader["aws"]`` work without touching ``settings.py``;
- publish the session's parameters (``--env`` and ``--params`` included) to
  :mod:`kedro_aws.params`, and the running node's name for error messages;
- make the ``bucket`` of ``aws.yml`` exist on the local backend (on AWS it must exist already);
- start the Spark session from ``spark.yml`` (plus S3A settings from ``aws.yml`` when the
  catalog uses ``s3a://``) before a pipeline that reads or writes Spark datasets, and stop it
  when the run ends.

A project that wants none of this sets ``DISABLE_HOOKS_FOR_PLUGINS = ("kedro-aws",)``.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

from kedro_aws import run_state
from kedro_aws.clients import provision_local_bucket
from kedro_aws.config import (
    AWS_CONFIG_PATTERNS,
    SPARK_CONFIG_PATTERNS,
    load_aws_settings,
    optional_config,
)
from kedro_aws.spark.session import build_spark_conf, create_spark_session, uses_s3_paths

logger = logging.getLogger(__name__)


def _show_progress_logs() -> None:
    """Let kedro-aws's INFO progress (queries, transform jobs, registry) through.

    Kedro's default logging config puts third-party loggers at WARNING; long work must show
    progress, so the ``kedro_aws`` logger is set to INFO unless the project configured it.
    """
    package_logger = logging.getLogger("kedro_aws")
    if package_logger.level == logging.NOTSET:
        package_logger.setLevel(logging.INFO)


def is_spark_dataset_type(type_name: str | None) -> bool:
    """Whether a catalog type string names a Spark dataset (kedro-datasets' or a custom one).

    Example:
    >>> is_spark_dataset_type("kedro_datasets.spark.spark_dataset.SparkDataset")
    True
    """
    return bool(type_name) and (".spark." in type_name or "Spark" in type_name.rsplit(".", 1)[-1])


class KedroAwsHooks:
    """The plugin's hook implementations (one instance: :data:`hooks`)."""

    def __init__(self) -> None:
        self._context: Any = None
        self._uses_s3 = False
        self._spark: Any = None  # the session this plugin started, and so must stop

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        _show_progress_logs()
        loader = context.config_loader
        for key, patterns in (("spark", SPARK_CONFIG_PATTERNS), ("aws", AWS_CONFIG_PATTERNS)):
            loader.config_patterns.setdefault(key, list(patterns))
        self._context = context
        # config_loader["parameters"], not context.params: the latter imports every pipeline to
        # validate type hints, which breaks node modules that read parameters at import time.
        params = optional_config(loader, "parameters") or {}
        aws_settings = load_aws_settings(loader, context.project_path)
        provision_local_bucket(aws_settings)
        run_state.set_session_params(
            run_state.SessionParams(
                params=params,
                env=context.env or getattr(loader, "default_run_env", None),
                runtime_params=dict(getattr(loader, "runtime_params", None) or {}),
                project_path=context.project_path,
                conf_source=str(getattr(loader, "conf_source", "")) or None,
                aws_settings=aws_settings,
            )
        )

    @hook_impl
    def after_catalog_created(self, conf_catalog: dict[str, Any]) -> None:
        self._uses_s3 = uses_s3_paths(conf_catalog)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        run_state.update_session(run_params=dict(run_params))
        if self._context is None or not self._needs_spark(pipeline, catalog):
            return
        self._spark = self.start_spark()

    def start_spark(self) -> Any:
        """Start (or reuse) the Spark session configured by the project's ``spark.yml``."""
        from pyspark.sql import SparkSession  # noqa: PLC0415

        loader = self._context.config_loader
        existed = SparkSession.getActiveSession() is not None
        state = run_state.session_params()
        aws = state.aws_settings if state else load_aws_settings(loader, self._context.project_path)
        conf = build_spark_conf(optional_config(loader, "spark"), aws, uses_s3=self._uses_s3)
        app_name = self._context.project_path.name
        session = create_spark_session(conf, app_name)
        logger.info("Spark session ready (master %s).", session.sparkContext.master)
        return None if existed else session

    @staticmethod
    def _needs_spark(pipeline: Any, catalog: Any) -> bool:
        return any(is_spark_dataset_type(catalog.get_type(name)) for name in pipeline.datasets())

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        run_state.set_current_node(node.name)

    @hook_impl
    def after_node_run(self) -> None:
        run_state.set_current_node(None)

    @hook_impl
    def on_node_error(self) -> None:
        run_state.set_current_node(None)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._finish()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._finish()

    def _finish(self) -> None:
        run_state.set_session_params(None)
        if self._spark is not None:
            self._spark.stop()
            self._spark = None


hooks = KedroAwsHooks()
