"""One way to get an AWS client, whichever backend the project runs on.

Pipeline code asks for ``client("s3")`` and gets a boto3 client on ``backend="aws"`` or a local,
boto3-compatible one on ``backend="local"``; request and response shapes, and the botocore
``ClientError`` codes, are the same on both.

Example:
>>> from kedro_aws.clients import client
>>> s3 = client("s3", backend="local", root="/tmp/kedro-aws-doc-clients")
>>> _ = s3.create_bucket(Bucket="demo")
>>> [b["Name"] for b in s3.list_buckets()["Buckets"]]
['demo']

Settings are resolved per field: explicit argument, then ``settings`` (an :class:`AwsSettings`,
usually read from ``conf/<env>/aws.yml``), then the AWS environment variables, then defaults.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from kedro_aws.config import AwsSettings

# Local implementations, by boto3 service name: "module:class" under kedro_aws.local. Adding a
# service is one entry here (imported lazily, so unused backends cost nothing).
LOCAL_CLIENTS: dict[str, str] = {
    "s3": "kedro_aws.local.s3:LocalS3Client",
    "sagemaker": "kedro_aws.local.sagemaker:LocalSageMakerClient",
    "glue": "kedro_aws.local.glue:LocalGlueClient",
    "athena": "kedro_aws.local.athena:LocalAthenaClient",
}


_SETTING_KEYS = {"backend", "root", "region", "profile", "endpoint_url"}
_SECRET_KEYS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def client(
    service: str,
    *,
    backend: str | None = None,
    root: str | Path | None = None,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    settings: AwsSettings | None = None,
    credentials: dict[str, Any] | None = None,
) -> Any:
    """Return a client for ``service`` on the chosen backend.

    Args:
        service: A boto3 service name (``"s3"``, ``"sagemaker"``).
        backend: ``"aws"`` or ``"local"``.
        root: Directory of the local backend's state (``local_root`` in ``aws.yml``).
        region: AWS region; also what the local backend puts into ARNs.
        profile: AWS named profile (``aws`` backend only).
        endpoint_url: Alternative endpoint, e.g. moto or LocalStack (``aws`` backend only).
        settings: Resolved project settings; when omitted they are read from the current
            Kedro project's ``aws.yml`` if there is one, else from the environment.
        credentials: A Kedro credentials entry: any of the arguments above, and/or
            ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``
            (``aws`` backend only). Explicit arguments win over it.

    Raises:
        ValueError: ``service`` has no local implementation (``backend="local"``).
        kedro_aws.config.AwsSettingsError: ``backend`` is not ``"aws"`` or ``"local"``.
    """
    given = dict(credentials or {})
    keys = {k: given.pop(k) for k in _SECRET_KEYS if k in given}
    unknown = sorted(set(given) - _SETTING_KEYS)
    if unknown:
        raise ValueError(
            f"Unknown credentials key(s) {unknown}; use {sorted(_SETTING_KEYS | set(_SECRET_KEYS))}."
        )
    base = settings if settings is not None else current_settings()
    resolved = base.with_overrides(
        backend=backend or given.get("backend"),
        local_root=root or given.get("root"),
        region=region or given.get("region"),
        profile=profile or given.get("profile"),
        endpoint_url=endpoint_url or given.get("endpoint_url"),
    )
    if resolved.backend == "aws":
        import boto3  # noqa: PLC0415 - the local backend never needs boto3's session machinery

        session = boto3.Session(profile_name=resolved.profile, region_name=resolved.region, **keys)
        return session.client(service, endpoint_url=resolved.endpoint_url)
    return _local_client(service, resolved)


def _local_client(service: str, settings: AwsSettings) -> Any:
    if service not in LOCAL_CLIENTS:
        raise ValueError(
            f"The local backend has no {service!r} client; supported services are "
            f"{sorted(LOCAL_CLIENTS)}. Use backend='aws' for other services."
        )
    module_name, _, class_name = LOCAL_CLIENTS[service].partition(":")
    client_class = getattr(importlib.import_module(module_name), class_name)
    return client_class(root=settings.local_root, region=settings.region)


def current_settings() -> AwsSettings:
    """The running session's ``aws.yml`` (so ``--env`` applies), else the project's on disk
    (``KEDRO_ENV`` picks the env), else the environment only."""
    from kedro_aws import run_state  # noqa: PLC0415

    state = run_state.session_params()
    if state is not None and state.aws_settings is not None:
        return state.aws_settings
    project_path = _kedro_project_path()
    if project_path is None:
        return AwsSettings.from_mapping({}, base_dir=Path.cwd())
    from kedro_aws.config import load_aws_settings  # noqa: PLC0415

    return load_aws_settings(_config_loader(project_path), project_path)


def _kedro_project_path() -> Path | None:
    try:
        from kedro.utils import find_kedro_project  # noqa: PLC0415
    except ImportError:  # pragma: no cover - kedro is a dependency, but keep this usable without
        return None
    return find_kedro_project(Path.cwd())


def _config_loader(project_path: Path) -> Any:
    """The project's own config loader class and arguments (see DESIGN.md, Kedro facts)."""
    from kedro.framework.project import settings  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    from kedro_aws import run_state  # noqa: PLC0415

    bootstrap_project(project_path)
    parent_env, parent_runtime = run_state.inherited_session()
    return settings.CONFIG_LOADER_CLASS(
        conf_source=str(project_path / settings.CONF_SOURCE),
        env=parent_env or os.environ.get("KEDRO_ENV"),
        runtime_params=parent_runtime or None,
        **settings.CONFIG_LOADER_ARGS,
    )


def provision_local_bucket(settings: AwsSettings) -> None:
    """Create the ``bucket`` of ``aws.yml`` in the local backend if it is missing.

    On AWS the bucket is provisioned beforehand (and a missing one is a ``NoSuchBucket``
    error, as it should be); the local backend stands in for that account, so the configured
    bucket is made to exist the first time a session uses it.
    """
    if settings.backend != "local" or not settings.bucket:
        return
    s3 = _local_client("s3", settings)
    try:
        s3.head_bucket(Bucket=settings.bucket)
    except s3.exceptions.ClientError:
        request: dict[str, Any] = {"Bucket": settings.bucket}
        if settings.region != "us-east-1":  # as on AWS, other regions need the constraint
            request["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
        s3.create_bucket(**request)
