"""Train a scikit-learn classifier on iris and register it in the SageMaker Model Registry."""

from iris_aws.pipelines.train_and_register_model.pipeline import create_pipeline

__all__ = ["create_pipeline"]
