"""``deploy_model``: score data with the latest approved model package via Batch Transform."""

from iris_aws.pipelines.deploy_model.pipeline import create_pipeline

__all__ = ["create_pipeline"]
