"""``kedro aws …`` commands, registered for every project through ``kedro.project_commands``."""

from __future__ import annotations

from typing import Any

import click
from kedro.framework.cli.utils import env_option


@click.group(name="kedro-aws")
def commands() -> None:
    """kedro-aws project commands."""


@commands.group(name="aws")
def aws() -> None:
    """Work with the project's AWS (or local stand-in) resources."""


@aws.command(name="settings")
@env_option
@click.pass_obj
def show_settings(metadata: Any, env: str | None) -> None:
    """Show the resolved aws.yml and the Spark properties a run would use."""
    from rich.console import Console  # noqa: PLC0415 - keep `kedro --help` fast
    from rich.table import Table  # noqa: PLC0415

    from kedro_aws.config import load_aws_settings, optional_config  # noqa: PLC0415
    from kedro_aws.spark.session import build_spark_conf, uses_s3_paths  # noqa: PLC0415

    context = _load_context(metadata, env)
    loader = context.config_loader
    settings = load_aws_settings(loader, metadata.project_path)
    uses_s3 = uses_s3_paths(optional_config(loader, "catalog") or {})
    spark_conf = build_spark_conf(optional_config(loader, "spark"), settings, uses_s3=uses_s3)

    console = Console()
    table = Table(title=f"AWS settings (env '{context.env or loader.default_run_env}')")
    table.add_column("setting")
    table.add_column("value")
    for field, value in vars(settings).items():
        table.add_row(field, "" if value is None else str(value))
    console.print(table)
    spark = Table(title="Spark properties" + (" (catalog uses s3a://)" if uses_s3 else ""))
    spark.add_column("property")
    spark.add_column("value")
    for key, value in sorted(spark_conf.items()):
        spark.add_row(key, value)
    console.print(spark)


def _load_context(metadata: Any, env: str | None) -> Any:
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    bootstrap_project(metadata.project_path)
    session = KedroSession.create(project_path=metadata.project_path, env=env)
    return session.load_context()
