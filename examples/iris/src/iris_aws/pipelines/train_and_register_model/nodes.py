"""Nodes of train_and_register_model."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report
from sklearn.model_selection import train_test_split

import kedro_aws
from iris_aws.serving import inference
from kedro_aws.clients import current_settings
from kedro_aws.lineage import current_save_version, run_lineage
from kedro_aws.sagemaker.registry import register_sklearn_model

logger = logging.getLogger(__name__)

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABEL = "species"


def split_dataset(iris: pd.DataFrame, split: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split of the labelled measurements."""
    train, test = train_test_split(
        iris[[*FEATURES, LABEL]],
        test_size=float(split["test_size"]),
        random_state=int(split["seed"]),
        stratify=iris[LABEL],
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def train_classifier(train: pd.DataFrame, model: dict[str, Any]) -> LogisticRegression:
    """Fit a logistic regression; feature names are kept, so serving can check columns."""
    classifier = LogisticRegression(C=float(model["C"]), max_iter=int(model["max_iter"]))
    return classifier.fit(train[FEATURES], train[LABEL])


def evaluate_classifier(classifier: LogisticRegression, test: pd.DataFrame) -> dict[str, Any]:
    """Accuracy and a per-class report on the held-out split."""
    predicted = classifier.predict(test[FEATURES])
    accuracy = float(accuracy_score(test[LABEL], predicted))
    logger.info("Held-out accuracy %.3f on %d rows.", accuracy, len(test))
    return {
        "accuracy": accuracy,
        "test_rows": len(test),
        "per_class": classification_report(test[LABEL], predicted, output_dict=True),
    }


def register_classifier(
    classifier: LogisticRegression,
    metrics: dict[str, Any],
    registry: dict[str, Any],
    model: dict[str, Any],
) -> dict[str, Any]:
    """Package the model with its inference module, upload it and register a new version.

    Returns what the versioned ``model_package`` dataset records, so each Kedro save version
    finds its package ARN (and the package's metadata finds the Kedro run).
    """
    settings = current_settings()
    if not settings.bucket:
        raise ValueError("Set `bucket` in conf/<env>/aws.yml: model artifacts are uploaded there.")
    save_version = current_save_version() or registry.get("save_version")
    if not save_version:
        raise ValueError("No Kedro save version: run this node inside `kedro run`.")
    package = register_sklearn_model(
        classifier,
        sm=kedro_aws.client("sagemaker"),
        s3=kedro_aws.client("s3"),
        group=registry["model_package_group"],
        bucket=settings.bucket,
        prefix=registry["s3_prefix"],
        save_version=save_version,
        inference_module=str(Path(inference.__file__)),
        region=settings.region,
        metrics=metrics,
        lineage=run_lineage(key_params={"model": model}),
        allow_version_mismatch=bool(registry.get("allow_sklearn_version_mismatch", False)),
        description=f"iris classifier, accuracy {metrics['accuracy']:.3f}",
    )
    return {
        "model_package_arn": package.arn,
        "model_package_group": package.group,
        "version": package.version,
        "approval_status": package.status,
        "model_data_url": package.model_data_url,
        "sha256": package.sha256,
        "kedro_save_version": save_version,
    }
