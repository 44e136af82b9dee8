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
    from rich.table import Table  # noqa: PLC0415 - keep `kedro --help` fast

    from kedro_aws.config import load_aws_settings, optional_config  # noqa: PLC0415
    from kedro_aws.spark.session import build_spark_conf, uses_s3_paths  # noqa: PLC0415

    context = _load_context(metadata, env)
    loader = context.config_loader
    settings = load_aws_settings(loader, metadata.project_path)
    uses_s3 = uses_s3_paths(optional_config(loader, "catalog") or {})
    spark_conf = build_spark_conf(optional_config(loader, "spark"), settings, uses_s3=uses_s3)

    console = _console()
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


@aws.command(name="sample-data")
@click.argument("name", type=click.Choice(["eth"]))
@click.option("--rows", default=50_000, show_default=True, help="Number of transactions.")
@click.option("--days", default=90, show_default=True, help="Daily partitions, from --start.")
@click.option("--start", default="2024-01-01", show_default=True, help="First day (YYYY-MM-DD).")
@click.option("--seed", default=0, show_default=True, help="Random seed (same seed, same files).")
@env_option
@click.pass_obj
def sample_data(
    metadata: Any, *, name: str, rows: int, days: int, start: str, seed: int, env: str | None
) -> None:
    """Create a sample table in the local backend: eth.transactions (AWS Public Blockchain
    schema) as date= partitioned Parquet in s3://aws-public-blockchain/v1.0/eth/transactions/,
    registered in the local Glue catalog."""
    import datetime as dt  # noqa: PLC0415

    from kedro_aws.clients import client, current_settings  # noqa: PLC0415
    from kedro_aws.local.sample_data import write_eth_transactions  # noqa: PLC0415

    _load_context(metadata, env)
    settings = current_settings()
    if settings.backend != "local":
        raise click.ClickException(
            f"Sample data is generated into the local backend only; env "
            f"'{env or 'default'}' uses backend '{settings.backend}'. On AWS, create a Glue "
            "table over s3://aws-public-blockchain/v1.0/eth/transactions/ instead."
        )
    try:
        first_day = dt.date.fromisoformat(start)
    except ValueError as error:
        raise click.BadParameter(
            f"{start!r} is not a YYYY-MM-DD date.", param_hint="--start"
        ) from error
    table = write_eth_transactions(
        settings.local_root, client("glue"), rows=rows, days=days, start=first_day, seed=seed
    )
    click.echo(
        f"{table.database}.{table.table}: {table.rows:,} rows in {len(table.partitions)} "
        f"partitions ({table.partitions[0]} .. {table.partitions[-1]}) at {table.location}"
    )


@aws.group(name="transform-service")
def transform_service() -> None:
    """The local backend's warm starter of Batch Transform jobs (see docs/batch-transform-local.md)."""


@transform_service.command(name="status")
def transform_service_status() -> None:
    """Show whether a transform service runs for this Python environment."""
    from kedro_aws.local import transform_service as service  # noqa: PLC0415

    if not service.service_enabled():
        click.echo(
            f"The transform service is off ({service.ENABLE_VARIABLE}=0, or no fork on this "
            "platform): each local transform job starts its runner as a new interpreter."
        )
        return
    status = service.service_status()
    path = service.socket_path()
    if status is None:
        click.echo(f"No transform service runs at {path}; the next local transform job starts one.")
        return
    runners = ", ".join(map(str, status["runners"])) or "none"
    click.echo(
        f"Transform service pid {status['pid']} at {path}: {len(status['preloaded'])} "
        f"module(s) preloaded; runners in progress: {runners}."
    )


@transform_service.command(name="stop")
@click.option("--all", "everything", is_flag=True, help="Also services of other environments.")
def transform_service_stop(everything: bool) -> None:
    """Stop the transform service (jobs in progress go on; the next job starts a new one)."""
    from kedro_aws.local import transform_service as service  # noqa: PLC0415

    stopped = service.stop_all_services() if everything else int(service.stop_service())
    click.echo(f"Stopped {stopped} transform service(s).")


@aws.group(name="registry")
def registry() -> None:
    """Inspect the SageMaker Model Registry and approve or reject model packages."""


def _package_argument(func: Any) -> Any:
    func = click.argument("version", required=False)(func)
    return click.argument("group_or_arn")(func)


@registry.command(name="list")
@click.argument("group", required=False)
@click.option("--status", type=click.Choice(["Approved", "Rejected", "PendingManualApproval"]))
@env_option
@click.pass_obj
def registry_list(metadata: Any, group: str | None, status: str | None, env: str | None) -> None:
    """List model package groups, or the versions of GROUP (newest first)."""
    from rich.table import Table  # noqa: PLC0415

    from kedro_aws.sagemaker.registry import list_packages  # noqa: PLC0415

    sm = _sagemaker(metadata, env)
    if group is None:
        table = Table(title="Model package groups")
        for column in ("group", "created", "description"):
            table.add_column(column)
        for page in sm.get_paginator("list_model_package_groups").paginate():
            for item in page["ModelPackageGroupSummaryList"]:
                table.add_row(
                    item["ModelPackageGroupName"],
                    _when(item.get("CreationTime")),
                    item.get("ModelPackageGroupDescription", ""),
                )
    else:
        packages = _registry_call(lambda: list_packages(sm, group, status))
        table = Table(title=f"Model packages in {group}")
        for column in ("version", "status", "created", "description", "arn"):
            table.add_column(column)
        for package in packages:
            table.add_row(
                str(package.version),
                package.status,
                _when(package.created),
                package.description,
                package.arn,
            )
    _console().print(table)


@registry.command(name="describe")
@_package_argument
@env_option
@click.pass_obj
def registry_describe(
    metadata: Any, group_or_arn: str, version: str | None, env: str | None
) -> None:
    """Show a model package: GROUP VERSION, GROUP (latest Approved) or an ARN."""
    from rich.table import Table  # noqa: PLC0415

    package = _resolve(metadata, env, group_or_arn, version)
    table = Table(title=f"{package.group} version {package.version}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    rows = {
        "arn": package.arn,
        "status": package.status,
        "created": _when(package.created),
        "description": package.description,
        "model data": package.model_data_url or "",
        "image": package.image or "",
    }
    rows.update({f"env {k}": v for k, v in (package.environment or {}).items()})
    rows.update({f"metadata {k}": v for k, v in sorted((package.metadata or {}).items())})
    for key, value in rows.items():
        table.add_row(key, str(value))
    _console().print(table)


def _set_status(
    metadata: Any,
    env: str | None,
    group_or_arn: str,
    version: str | None,
    *,
    status: str,
    description: str | None,
) -> None:
    from kedro_aws.sagemaker.registry import set_approval  # noqa: PLC0415

    if version is None and not group_or_arn.startswith("arn:"):
        raise click.UsageError("Give GROUP VERSION or a model package ARN.")
    package = _resolve(metadata, env, group_or_arn, version)
    sm = _sagemaker(metadata, env)
    updated = _registry_call(lambda: set_approval(sm, package.arn, status, description))
    click.echo(f"{updated.arn}: {package.status} -> {updated.status}")


@registry.command(name="approve")
@_package_argument
@click.option("--description", "-d", help="Why it is approved (ApprovalDescription).")
@env_option
@click.pass_obj
def registry_approve(
    metadata: Any, group_or_arn: str, version: str | None, description: str | None, env: str | None
) -> None:
    """Approve a model package (GROUP VERSION or ARN): deploy_model can then use it.

    VERSION is a number or 'latest' (the newest version).
    """
    _set_status(metadata, env, group_or_arn, version, status="Approved", description=description)


@registry.command(name="reject")
@_package_argument
@click.option("--description", "-d", help="Why it is rejected (ApprovalDescription).")
@env_option
@click.pass_obj
def registry_reject(
    metadata: Any, group_or_arn: str, version: str | None, description: str | None, env: str | None
) -> None:
    """Reject a model package (GROUP VERSION or ARN)."""
    _set_status(metadata, env, group_or_arn, version, status="Rejected", description=description)


def _resolve(metadata: Any, env: str | None, group_or_arn: str, version: str | None) -> Any:
    from kedro_aws.sagemaker.registry import resolve_package  # noqa: PLC0415

    sm = _sagemaker(metadata, env)
    if group_or_arn.startswith("arn:"):
        return _registry_call(lambda: resolve_package(sm, arn=group_or_arn))
    return _registry_call(lambda: resolve_package(sm, group_or_arn, version))


def _registry_call(call: Any) -> Any:
    from kedro_aws.sagemaker.registry import RegistryError  # noqa: PLC0415

    try:
        return call()
    except RegistryError as error:
        # click's own error (not KedroCliError, whose message needs a live exception context):
        # prints "Error: <message>" and exits with status 1.
        raise click.ClickException(str(error)) from error


_clients: dict[tuple[Any, str | None], Any] = {}


def _sagemaker(metadata: Any, env: str | None) -> Any:
    key = (metadata.project_path, env)
    if key not in _clients:
        from kedro_aws.clients import client  # noqa: PLC0415

        _load_context(metadata, env)  # the plugin hook publishes the env's aws.yml
        _clients[key] = client("sagemaker")
    return _clients[key]


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip() if value else ""


def _console() -> Any:
    from rich.console import Console  # noqa: PLC0415

    return Console()


def _load_context(metadata: Any, env: str | None) -> Any:
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    bootstrap_project(metadata.project_path)
    session = KedroSession.create(project_path=metadata.project_path, env=env)
    return session.load_context()
