"""Image URI resolution and the scikit-learn version check."""

from __future__ import annotations

import doctest
import json
import logging
import re
from importlib import resources

import pytest

from kedro_aws.sagemaker import images
from kedro_aws.sagemaker.images import (
    ImageResolutionError,
    SklearnVersionMismatchError,
    check_sklearn_compatibility,
    framework_version_for_sklearn,
    known_framework_versions,
    known_regions,
    sklearn_image_uri,
)


def test_docstring_examples_hold():
    assert doctest.testmod(images, raise_on_error=False).failed == 0


@pytest.mark.parametrize(
    ("region", "version", "expected"),
    [
        (
            "us-east-1",
            "1.9-0",
            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
        ),
        (
            "eu-west-1",
            "1.2-1",
            "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
        ),
        # The Python marker of 1.4-2-py312 is part of the version, then processor and py3 follow.
        (
            "ap-south-1",
            "1.4-2-py312",
            "720646828776.dkr.ecr.ap-south-1.amazonaws.com/"
            "sagemaker-scikit-learn:1.4-2-py312-cpu-py3",
        ),
        # Other partitions have their own DNS suffix.
        (
            "cn-north-1",
            "1.9-0",
            "450853457545.dkr.ecr.cn-north-1.amazonaws.com.cn/sagemaker-scikit-learn:1.9-0-cpu-py3",
        ),
        (
            "us-iso-east-1",
            "1.9-0",
            "833128469047.dkr.ecr.us-iso-east-1.c2s.ic.gov/sagemaker-scikit-learn:1.9-0-cpu-py3",
        ),
        (
            "us-gov-west-1",
            "0.23-1",
            "414596584902.dkr.ecr.us-gov-west-1.amazonaws.com/"
            "sagemaker-scikit-learn:0.23-1-cpu-py3",
        ),
    ],
)
def test_image_uri_from_table(region, version, expected):
    assert sklearn_image_uri(region, version) == expected


def test_cpu_instance_type_resolves_to_cpu_image():
    assert sklearn_image_uri("us-east-1", "1.9-0", instance="ml.m5.large") == sklearn_image_uri(
        "us-east-1", "1.9-0"
    )


@pytest.mark.parametrize("instance", ["ml.p3.2xlarge", "ml.g5.xlarge", "ml.m6g.large", "gpu"])
def test_unsupported_instance_is_refused(instance):
    with pytest.raises(ImageResolutionError, match=re.escape(instance)):
        sklearn_image_uri("us-east-1", "1.9-0", instance=instance)


def test_unknown_region_lists_known_regions():
    with pytest.raises(ImageResolutionError) as raised:
        sklearn_image_uri("mars-north-1", "1.9-0")
    message = str(raised.value)
    assert "mars-north-1" in message
    assert "eu-west-1" in message and "us-east-1" in message


def test_unknown_version_lists_published_versions():
    with pytest.raises(ImageResolutionError) as raised:
        sklearn_image_uri("us-east-1", "1.5-1")
    message = str(raised.value)
    assert "'1.5-1'" in message
    assert all(version in message for version in known_framework_versions())


def test_scikit_learn_version_passed_as_framework_version_gets_a_hint():
    with pytest.raises(ImageResolutionError, match="framework_version_for_sklearn"):
        sklearn_image_uri("us-east-1", "1.9.1")


def test_unknown_py_version_is_refused():
    with pytest.raises(ImageResolutionError, match="py2"):
        sklearn_image_uri("us-east-1", "1.9-0", py_version="py2")


@pytest.mark.parametrize(
    ("sklearn_version", "framework_version"),
    [
        ("1.9.1", "1.9-0"),
        ("1.9.0rc1", "1.9-0"),
        ("1.4.2", "1.4-2-py312"),
        ("1.2.2", "1.2-1"),
        ("1.0.2", "1.0-1"),
        ("0.23.2", "0.23-1"),
        ("0.20.3", "0.20.0"),
    ],
)
def test_framework_version_for_sklearn(sklearn_version, framework_version):
    assert framework_version_for_sklearn(sklearn_version) == framework_version


def test_sklearn_line_without_container_is_an_error_listing_lines():
    with pytest.raises(ImageResolutionError) as raised:
        framework_version_for_sklearn("1.5.2")
    message = str(raised.value)
    assert "1.5" in message
    assert "1.9 (1.9-0)" in message and "1.4 (1.4-2-py312)" in message


def test_matching_versions_pass():
    assert check_sklearn_compatibility("1.9.1", "1.9-0") is None
    assert check_sklearn_compatibility("1.4.2", "1.4-2-py312") is None


def test_mismatch_is_refused_with_both_versions_and_the_fix():
    with pytest.raises(SklearnVersionMismatchError) as raised:
        check_sklearn_compatibility("1.9.1", "1.4-2-py312")
    message = str(raised.value)
    assert "1.9.1" in message and "1.4-2-py312" in message
    assert "'1.9-0'" in message  # the container that would fit
    assert "allow_mismatch=True" in message


def test_mismatch_without_any_matching_container_says_so():
    with pytest.raises(SklearnVersionMismatchError, match="no published container ships"):
        check_sklearn_compatibility("1.5.0", "1.9-0")


def test_mismatch_allowed_with_override_logs_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="kedro_aws.sagemaker.images"):
        check_sklearn_compatibility("1.9.1", "1.4-2-py312", allow_mismatch=True)
    assert "overridden" in caplog.text
    assert "1.9.1" in caplog.text


def test_garbage_versions_are_explained():
    with pytest.raises(ImageResolutionError, match="not a scikit-learn version"):
        check_sklearn_compatibility("latest", "1.9-0")
    with pytest.raises(ImageResolutionError, match="not a scikit-learn container"):
        check_sklearn_compatibility("1.9.1", "1.9-0-gpu")


def test_table_records_its_source_and_is_consistent():
    raw = json.loads(
        resources.files("kedro_aws.sagemaker").joinpath("sklearn_images.json").read_text()
    )
    source = raw["source"]
    assert source["repository"] == "https://github.com/aws/sagemaker-python-sdk"
    assert source["path"].endswith("image_uri_config/sklearn.json")
    assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", source["transcribed_on"])
    assert len(known_regions()) == 37
    assert all(re.fullmatch(r"\d{12}", account) for account in raw["registries"].values())
    # Every published version must be parseable, and newest last (the mapping relies on it).
    assert known_framework_versions()[-1] == "1.9-0"
