"""Nodes of the PySpark iris pipeline."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, classification_report

from kedro_aws.params import param
from kedro_aws.spark import repartition_by

logger = logging.getLogger(__name__)

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
LABEL = "species"


# The partition scheme is a parameter (defaulting to globals.yml's), resolved when the node
# runs, so `kedro run --params parse.repartition_columns=...` takes effect.
@repartition_by(
    param("parse.repartition_columns"),
    num_partitions=param("parse.num_partitions", default=None),
)
def parse_iris(iris_raw: DataFrame) -> DataFrame:
    """Type the raw measurements and derive the partition columns from the measurement date.

    Args:
        iris_raw: The raw CSV as read by Spark.

    Returns:
        Typed rows with ``year`` and ``month`` (integers) for partitioning.
    """
    measured_on = F.to_date(F.col("measured_on"))
    return iris_raw.select(
        *[F.col(c).cast("double").alias(c) for c in FEATURES],
        F.col(LABEL).cast("string").alias(LABEL),
        measured_on.alias("measured_on"),
        F.year(measured_on).alias("year"),
        F.month(measured_on).alias("month"),
    )


def split_data(iris_parsed: DataFrame, split: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split on Spark into train and test sets, then collect them (iris is small).

    Args:
        iris_parsed: The parsed rows.
        split: ``test_fraction`` and ``seed``.

    Returns:
        The train and test sets as pandas DataFrames with the features and the label.
    """
    fraction = float(split["test_fraction"])
    # Sort first: randomSplit's result depends on row order within partitions, and a Parquet
    # read does not promise one; sorting makes the split reproducible for a given seed.
    ordered = iris_parsed.select(*FEATURES, LABEL, "measured_on").orderBy("measured_on")
    train, test = ordered.randomSplit([1.0 - fraction, fraction], seed=int(split["seed"]))
    return train.toPandas(), test.toPandas()


def train_model(iris_train: pd.DataFrame, model: dict[str, Any]) -> LogisticRegression:
    """Fit a logistic regression on the four measurements."""
    classifier = LogisticRegression(max_iter=int(model["max_iter"]), C=float(model["C"]))
    classifier.fit(iris_train[FEATURES], iris_train[LABEL])
    return classifier


def evaluate_model(iris_classifier: LogisticRegression, iris_test: pd.DataFrame) -> dict[str, Any]:
    """Accuracy and a per-class report on the held-out rows; logs the accuracy."""
    predicted = iris_classifier.predict(iris_test[FEATURES])
    accuracy = float(accuracy_score(iris_test[LABEL], predicted))
    logger.info("Model accuracy on %d held-out rows: %.3f", len(iris_test), accuracy)
    return {
        "accuracy": accuracy,
        "test_rows": len(iris_test),
        "per_class": classification_report(iris_test[LABEL], predicted, output_dict=True),
    }
