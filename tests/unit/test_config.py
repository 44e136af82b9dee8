"""AwsSettings: aws.yml values, environment fallbacks, overrides and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from kedro_aws.config import DEFAULT_REGION, AwsSettings, AwsSettingsError, load_aws_settings


def test_defaults_are_the_offline_backend():
    settings = AwsSettings.from_mapping(None, environ={})
    assert settings.backend == "local"
    assert settings.region == DEFAULT_REGION
    assert settings.profile is None and settings.endpoint_url is None


def test_yaml_wins_over_environment_which_wins_over_defaults():
    env = {"AWS_REGION": "ap-southeast-1", "AWS_PROFILE": "envprof", "AWS_ENDPOINT_URL": "http://e"}
    from_env = AwsSettings.from_mapping({}, environ=env)
    assert (from_env.region, from_env.profile, from_env.endpoint_url) == (
        "ap-southeast-1",
        "envprof",
        "http://e",
    )
    from_yaml = AwsSettings.from_mapping({"region": "eu-west-1", "profile": "p"}, environ=env)
    assert (from_yaml.region, from_yaml.profile) == ("eu-west-1", "p")
    assert (
        AwsSettings.from_mapping({}, environ={"AWS_DEFAULT_REGION": "us-west-2"}).region
        == "us-west-2"
    )


def test_relative_local_root_is_relative_to_the_project():
    settings = AwsSettings.from_mapping({"local_root": "data/aws"}, base_dir="/proj", environ={})
    assert settings.local_root == Path("/proj/data/aws")
    absolute = AwsSettings.from_mapping({"local_root": "/srv/aws"}, base_dir="/proj", environ={})
    assert absolute.local_root == Path("/srv/aws")


def test_unknown_key_and_bad_backend_name_the_file():
    with pytest.raises(
        AwsSettingsError, match=r"Unknown key\(s\) \['regoin'\] in conf/local/aws.yml"
    ):
        AwsSettings.from_mapping({"regoin": "x"}, source="conf/local/aws.yml", environ={})
    with pytest.raises(AwsSettingsError, match="backend: 'gcp' in aws.yml is not one of"):
        AwsSettings.from_mapping({"backend": "gcp"}, environ={})


def test_overrides_replace_only_given_values():
    base = AwsSettings.from_mapping({"region": "eu-west-1", "bucket": "b"}, environ={})
    changed = base.with_overrides(region="us-east-2", profile=None, local_root="/tmp/x")
    assert (changed.region, changed.bucket, changed.local_root) == (
        "us-east-2",
        "b",
        Path("/tmp/x"),
    )
    with pytest.raises(AwsSettingsError, match="backend='azure'"):
        base.with_overrides(backend="azure")


def test_example_project_envs(iris_project, monkeypatch):
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project

    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(var, raising=False)
    bootstrap_project(iris_project)

    def load(env):
        loader = settings.CONFIG_LOADER_CLASS(
            conf_source=str(iris_project / "conf"), env=env, **settings.CONFIG_LOADER_ARGS
        )
        return load_aws_settings(loader, iris_project)

    local, aws = load("local"), load("aws")
    assert local.backend == "local" and local.local_root == iris_project / "data" / "aws"
    assert aws.backend == "aws"
    assert local.region == aws.region == "eu-west-1"  # shared through conf/base/aws.yml
