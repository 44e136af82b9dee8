"""The SageMaker scikit-learn serving image: its URI, and whether a model can run in it.

The image URI is resolved from a small data table (``sklearn_images.json``: registry account per
region and the published inference framework versions, transcribed from the SageMaker Python
SDK's ``image_uri_config/sklearn.json``) instead of a per-region literal in the catalog, and
without depending on the SDK, whose image table now ships only with the heavy ``sagemaker-core``.

Example:
>>> sklearn_image_uri("eu-west-1", "1.9-0")
'141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3'
>>> framework_version_for_sklearn("1.9.1")
'1.9-0'
>>> check_sklearn_compatibility("1.9.1", "1.9-0")  # silent when compatible
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

logger = logging.getLogger(__name__)

_TABLE_FILE = "sklearn_images.json"
_DEFAULT_DNS_SUFFIX = "amazonaws.com"

# "1.9.1", "1.10.0rc1", "1.9.dev0": only major.minor matters for pickle compatibility.
_SKLEARN_VERSION = re.compile(r"^(\d+)\.(\d+)")
# Container framework versions: "0.20.0", "1.2-1", "1.4-2-py312" (scikit-learn major.minor, then
# the container release, then an optional Python marker that is part of the tag).
_FRAMEWORK_VERSION = re.compile(r"^(\d+)\.(\d+)(?:[.-]\d+)?(?:-py\d+)?$")
# Instance families that need an image the scikit-learn container does not publish: accelerated
# (p*, g*, inf*, trn*) and Graviton/ARM (m6g, c7gn, r6gd...). The sklearn image is x86 CPU only.
_ACCELERATED_FAMILY = re.compile(r"^(p|g|inf|trn)\d")
_GRAVITON_FAMILY = re.compile(r"^[a-z]+\d+g[a-z]*$")


class ImageResolutionError(ValueError):
    """No published scikit-learn serving image matches the request (region, version, ...)."""


class SklearnVersionMismatchError(ValueError):
    """The model's training scikit-learn differs from the serving container's."""


@dataclass(frozen=True)
class _ImageTable:
    repository: str
    framework_versions: tuple[str, ...]
    processors: tuple[str, ...]
    py_versions: tuple[str, ...]
    registries: dict[str, str]
    dns_suffixes: dict[str, str]
    source: dict


@lru_cache(maxsize=1)
def _table() -> _ImageTable:
    text = resources.files("kedro_aws.sagemaker").joinpath(_TABLE_FILE).read_text(encoding="utf-8")
    raw = json.loads(text)
    return _ImageTable(
        repository=raw["repository"],
        framework_versions=tuple(raw["framework_versions"]),
        processors=tuple(raw["processors"]),
        py_versions=tuple(raw["py_versions"]),
        registries=dict(raw["registries"]),
        dns_suffixes=dict(raw["dns_suffixes"]),
        source=dict(raw["source"]),
    )


def known_regions() -> tuple[str, ...]:
    """Regions that host the scikit-learn serving image, sorted."""
    return tuple(sorted(_table().registries))


def known_framework_versions() -> tuple[str, ...]:
    """Published inference framework versions, oldest first (e.g. ``'1.9-0'``)."""
    return _table().framework_versions


def sklearn_image_uri(
    region: str, framework_version: str, py_version: str = "py3", instance: str = "cpu"
) -> str:
    """The ECR URI of the SageMaker scikit-learn serving image.

    Args:
        region: AWS region of the model, e.g. ``"eu-west-1"``.
        framework_version: a published container version such as ``"1.9-0"`` or
            ``"1.4-2-py312"`` (see ``framework_version_for_sklearn``).
        py_version: Python marker of the tag; the table only publishes ``"py3"``.
        instance: ``"cpu"`` or the instance type the model will run on (``"ml.m5.large"``),
            checked because the image exists for x86 CPU instances only.

    Raises:
        ImageResolutionError: unknown region, version or Python version, or an instance type
            the image does not support; the message lists what is known.

    Example:
    >>> sklearn_image_uri("us-east-1", "1.4-2-py312", instance="ml.m5.xlarge")
    '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-py312-cpu-py3'
    """
    table = _table()
    if framework_version not in table.framework_versions:
        hint = ""
        if re.fullmatch(r"\d+\.\d+\.\d+", framework_version) and framework_version != "0.20.0":
            hint = (
                f" '{framework_version}' looks like a scikit-learn version: "
                "framework_version_for_sklearn() maps it to a container version."
            )
        raise ImageResolutionError(
            f"Unknown scikit-learn serving framework version '{framework_version}'. "
            f"Published versions: {', '.join(table.framework_versions)}.{hint}"
        )
    if py_version not in table.py_versions:
        raise ImageResolutionError(
            f"Unknown Python version '{py_version}' for sagemaker-scikit-learn "
            f"{framework_version}. Published: {', '.join(table.py_versions)}."
        )
    processor = _processor_for(instance)
    account = table.registries.get(region)
    if account is None:
        raise ImageResolutionError(
            f"No sagemaker-scikit-learn image registry is known for region '{region}'. "
            f"Known regions: {', '.join(known_regions())}."
        )
    host = f"{account}.dkr.ecr.{region}.{_dns_suffix(region)}"
    return f"{host}/{table.repository}:{framework_version}-{processor}-{py_version}"


def framework_version_for_sklearn(sklearn_version: str) -> str:
    """The newest published container version shipping the same scikit-learn major.minor.

    Raises:
        ImageResolutionError: no container ships that scikit-learn line; the message lists the
            lines that exist.

    Example:
    >>> framework_version_for_sklearn("1.4.2")
    '1.4-2-py312'
    """
    wanted = _sklearn_minor(sklearn_version)
    matches = [v for v in known_framework_versions() if _container_sklearn_minor(v) == wanted]
    if not matches:
        lines = ", ".join(
            f"{_format_minor(_container_sklearn_minor(v))} ({v})"
            for v in known_framework_versions()
        )
        raise ImageResolutionError(
            f"No published sagemaker-scikit-learn container ships scikit-learn "
            f"{_format_minor(wanted)} (needed by scikit-learn {sklearn_version}). "
            f"Published scikit-learn lines (container version): {lines}."
        )
    # The table lists versions oldest first; a later build of the same line carries fixes.
    return matches[-1]


def check_sklearn_compatibility(
    training_version: str, framework_version: str, allow_mismatch: bool = False
) -> None:
    """Refuse a model whose training scikit-learn major.minor differs from the container's.

    This is the most reported failure of scikit-learn deployments: a model pickled with one
    scikit-learn line fails to load, or silently misbehaves, in a container shipping another
    (aws/sagemaker-scikit-learn-container issues #181 and #95, PR #71; a wrong image picked by
    the SDK in aws/sagemaker-python-sdk#1828). Checking before registration turns a failed
    Batch Transform job into an immediate, explained error.

    Args:
        training_version: ``sklearn.__version__`` of the process that trained the model.
        framework_version: container framework version, e.g. ``"1.9-0"``.
        allow_mismatch: accept a mismatch (logged as a warning), e.g. when the package's
            ``requirements.txt`` installs a matching scikit-learn in the container.

    Raises:
        SklearnVersionMismatchError: the lines differ and ``allow_mismatch`` is false.
        ImageResolutionError: ``framework_version`` is not a container version string.

    Example (a mismatch: raises, or with ``allow_mismatch=True`` logs a warning):
    >>> check_sklearn_compatibility("1.9.1", "1.9-0")
    """
    trained = _sklearn_minor(training_version)
    served = _container_sklearn_minor(framework_version)
    if trained == served:
        return
    problem = (
        f"The model was trained with scikit-learn {training_version} but the serving container "
        f"sagemaker-scikit-learn:{framework_version} ships scikit-learn {_format_minor(served)}; "
        "models pickled with one scikit-learn minor version may fail to load or predict "
        "differently in another."
    )
    if allow_mismatch:
        logger.warning("%s Proceeding because the version check was overridden.", problem)
        return
    try:
        remedy = (
            f"use framework version '{framework_version_for_sklearn(training_version)}', "
            f"or retrain with scikit-learn {_format_minor(served)}.*"
        )
    except ImageResolutionError:
        remedy = (
            f"no published container ships scikit-learn {_format_minor(trained)}: retrain with "
            f"a published line ({', '.join(known_framework_versions())})"
        )
    raise SklearnVersionMismatchError(
        f"{problem} Fix: {remedy}; or pass allow_mismatch=True if you install a matching "
        "scikit-learn in the container yourself."
    )


def _processor_for(instance: str) -> str:
    processors = _table().processors
    if instance in processors:
        return instance
    if instance.startswith("ml."):
        family = instance.split(".")[1] if instance.count(".") >= 2 else ""
        if family and not _ACCELERATED_FAMILY.match(family) and not _GRAVITON_FAMILY.match(family):
            return "cpu"
        raise ImageResolutionError(
            f"Instance type '{instance}' is not supported by sagemaker-scikit-learn, which is "
            "published for x86 CPU instances only (e.g. ml.m5.large, ml.c5.xlarge)."
        )
    raise ImageResolutionError(
        f"Unknown processor or instance type '{instance}'. Use one of {', '.join(processors)} "
        "or an instance type such as 'ml.m5.large'."
    )


def _dns_suffix(region: str) -> str:
    for prefix, suffix in _table().dns_suffixes.items():
        if region.startswith(prefix):
            return suffix
    return _DEFAULT_DNS_SUFFIX


def _sklearn_minor(version: str) -> tuple[int, int]:
    match = _SKLEARN_VERSION.match(version.strip())
    if not match:
        raise ImageResolutionError(
            f"'{version}' is not a scikit-learn version (expected e.g. '1.9.1')."
        )
    return int(match[1]), int(match[2])


def _container_sklearn_minor(framework_version: str) -> tuple[int, int]:
    match = _FRAMEWORK_VERSION.match(framework_version.strip())
    if not match:
        raise ImageResolutionError(
            f"'{framework_version}' is not a scikit-learn container framework version "
            f"(expected e.g. '1.9-0'; published: {', '.join(known_framework_versions())})."
        )
    return int(match[1]), int(match[2])


def _format_minor(minor: tuple[int, int]) -> str:
    return f"{minor[0]}.{minor[1]}"
