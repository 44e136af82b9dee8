"""PySpark iris: parse into partitioned Parquet, split on Spark, train and evaluate a classifier."""

from iris_aws.pipelines.pyspark_iris.pipeline import create_pipeline

__all__ = ["create_pipeline"]
