"""Kedro datasets backed by AWS services (and their local stand-ins)."""

from kedro_aws.datasets.model_package_dataset import ModelPackageDataset

__all__ = ["ModelPackageDataset"]
