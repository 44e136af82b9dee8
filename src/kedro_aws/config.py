"""AWS settings of a Kedro project: which backend, where, and as whom.

A project keeps them in ``conf/<env>/aws.yml`` so that switching ``--env`` switches between the
offline backend and a real account with no code change::

    # conf/local/aws.yml                      # conf/aws/aws.yml
    backend: local                            backend: aws
    region: eu-west-1                         region: eu-west-1
    bucket: iris-aws-demo                     bucket: my-company-ml-artifacts
    local_root: data/aws                      profile: ml-dev
                                              role_arn: arn:aws:iam::123456789012:role/SageMakerExec

Precedence, for every field: explicit argument > ``aws.yml`` > the standard AWS environment
variables (``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_PROFILE``, ``AWS_ENDPOINT_URL``) > default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

BACKENDS = ("local", "aws")
DEFAULT_REGION = "us-east-1"
DEFAULT_LOCAL_ROOT = "data/aws"
# The account id the local backend puts in ARNs; moto uses the same one, so ARNs look alike.
LOCAL_ACCOUNT_ID = "123456789012"


class AwsSettingsError(ValueError):
    """``aws.yml`` (or an argument) holds a value kedro-aws cannot use."""


@dataclass(frozen=True)
class AwsSettings:
    """Resolved AWS settings.

    Example:
    >>> s = AwsSettings.from_mapping({"backend": "local", "region": "eu-west-1"}, base_dir="/p")
    >>> s.backend, s.region, str(s.local_root)
    ('local', 'eu-west-1', '/p/data/aws')
    """

    backend: str = "local"
    region: str = DEFAULT_REGION
    profile: str | None = None
    endpoint_url: str | None = None
    local_root: Path = Path(DEFAULT_LOCAL_ROOT)
    bucket: str | None = None
    role_arn: str | None = None

    @classmethod
    def from_mapping(
        cls,
        config: Mapping[str, Any] | None,
        *,
        base_dir: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        source: str = "aws.yml",
    ) -> AwsSettings:
        """Build settings from an ``aws.yml`` mapping, filling gaps from the environment.

        Args:
            config: The parsed ``aws.yml`` (``None`` or empty for "all defaults").
            base_dir: What a relative ``local_root`` is relative to (the project path).
            environ: Environment variables to fall back on (default ``os.environ``).
            source: Named in error messages, e.g. ``conf/local/aws.yml``.

        Raises:
            AwsSettingsError: An unknown key or an invalid backend.
        """
        config = dict(config or {})
        environ = os.environ if environ is None else environ
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise AwsSettingsError(
                f"Unknown key(s) {unknown} in {source}; valid keys are {sorted(known)}."
            )
        backend = config.get("backend") or "local"
        if backend not in BACKENDS:
            raise AwsSettingsError(
                f"backend: {backend!r} in {source} is not one of {list(BACKENDS)}."
            )
        region = (
            config.get("region")
            or environ.get("AWS_REGION")
            or environ.get("AWS_DEFAULT_REGION")
            or DEFAULT_REGION
        )
        local_root = Path(config.get("local_root") or DEFAULT_LOCAL_ROOT).expanduser()
        if not local_root.is_absolute() and base_dir is not None:
            local_root = Path(base_dir) / local_root
        return cls(
            backend=backend,
            region=region,
            profile=config.get("profile") or environ.get("AWS_PROFILE") or None,
            endpoint_url=config.get("endpoint_url") or environ.get("AWS_ENDPOINT_URL") or None,
            local_root=local_root,
            bucket=config.get("bucket"),
            role_arn=config.get("role_arn"),
        )

    def with_overrides(self, **overrides: Any) -> AwsSettings:
        """Return a copy where every non-``None`` override replaces the setting."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "local_root" in given:
            given["local_root"] = Path(given["local_root"])
        if given.get("backend", self.backend) not in BACKENDS:
            raise AwsSettingsError(f"backend={given['backend']!r} is not one of {list(BACKENDS)}.")
        return replace(self, **given)


def load_aws_settings(config_loader: Any, project_path: str | Path | None = None) -> AwsSettings:
    """Read ``aws.yml`` through a Kedro config loader (missing file: all defaults).

    The ``aws`` config pattern is registered by the kedro-aws plugin hook; a loader built by
    hand without it is given the pattern here.
    """
    patterns = getattr(config_loader, "config_patterns", None)
    if patterns is not None and "aws" not in patterns:
        patterns["aws"] = list(AWS_CONFIG_PATTERNS)
    return AwsSettings.from_mapping(
        optional_config(config_loader, "aws"), base_dir=project_path, source="aws.yml"
    )


def optional_config(config_loader: Any, key: str) -> dict[str, Any] | None:
    """``config_loader[key]`` as a dict, or ``None`` when no file matches the key's patterns."""
    from kedro.config import MissingConfigException  # noqa: PLC0415 - keep import light

    try:
        return dict(config_loader[key])
    except MissingConfigException:
        return None


AWS_CONFIG_PATTERNS = ("aws*", "aws*/**")
SPARK_CONFIG_PATTERNS = ("spark*", "spark*/**")
