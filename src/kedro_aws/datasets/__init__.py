"""Kedro datasets backed by AWS services (and their local stand-ins)."""

from kedro_aws.datasets.athena_query_dataset import AthenaQueryDataset
from kedro_aws.datasets.model_package_dataset import ModelPackageDataset

__all__ = ["AthenaQueryDataset", "ModelPackageDataset"]
