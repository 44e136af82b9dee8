"""Fixtures for the SageMaker packaging tests: a tiny iris model and a moto S3 bucket."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import boto3
import pandas as pd
import pytest
from moto import mock_aws
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

REPO_ROOT = Path(__file__).resolve().parents[2]
INFERENCE_MODULE = REPO_ROOT / "examples/iris/src/iris_aws/serving/inference.py"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
BUCKET = "kedro-aws-test"


@pytest.fixture(scope="session")
def iris_frame() -> pd.DataFrame:
    """Iris with snake_case feature columns and a string ``species`` label."""
    iris = load_iris(as_frame=True)
    frame = iris.frame.drop(columns="target")
    frame.columns = FEATURES
    frame["species"] = iris.target_names[iris.target]
    return frame


@pytest.fixture(scope="session")
def iris_model(iris_frame):
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(
        iris_frame[FEATURES], iris_frame["species"]
    )


@pytest.fixture
def sample_rows(iris_frame) -> pd.DataFrame:
    """A few rows of every class, label included, as a user would send them."""
    return iris_frame.iloc[[0, 1, 50, 51, 100, 149]].reset_index(drop=True)


@pytest.fixture
def s3(monkeypatch):
    """A boto3 S3 client on moto, with dummy credentials and one bucket."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def import_module_from(path: Path, name: str):
    """Import a module from a file, as the container imports ``SAGEMAKER_PROGRAM``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(name, None)
    return module
