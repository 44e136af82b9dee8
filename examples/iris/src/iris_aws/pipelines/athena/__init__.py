"""Athena as a data source: UNLOAD a query into partitioned Parquet, refine it with Spark."""

from iris_aws.pipelines.athena.pipeline import create_pipeline

__all__ = ["create_pipeline"]
