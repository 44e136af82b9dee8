"""Local SageMaker: a boto3-compatible SageMaker client whose state lives under the local root.

The client is assembled from one mixin per feature, each in its own ``sagemaker_*`` module with
the SQLite tables it needs (its ``schema``): the Model Registry, models, and Batch Transform
jobs (run by :mod:`kedro_aws.local.transform_job`). A feature is added by writing its mixin and
listing it in the class bases below.

Example::

    sm = LocalSageMakerClient("data/aws", region="eu-west-1")
    sm.create_model_package_group(ModelPackageGroupName="iris")
    arn = sm.create_model_package(
        ModelPackageGroupName="iris",
        InferenceSpecification={"Containers": [{"Image": "...", "ModelDataUrl": "s3://b/m.tar.gz"}]},
    )["ModelPackageArn"]  # arn:aws:sagemaker:eu-west-1:123456789012:model-package/iris/1
    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro_aws.local import LocalClient
from kedro_aws.local.s3 import LocalS3Client
from kedro_aws.local.sagemaker_models import ModelOperations
from kedro_aws.local.sagemaker_registry import ModelRegistryOperations
from kedro_aws.local.sagemaker_transform import TransformJobOperations
from kedro_aws.local.sqlite_store import SqliteStore


class LocalSageMakerClient(
    ModelRegistryOperations, ModelOperations, TransformJobOperations, LocalClient
):
    """SageMaker on the local machine: Model Registry, models and Batch Transform jobs.

    Args:
        root: The local backend's root; state goes to ``<root>/.kedro-aws/sagemaker.sqlite``.
        region: Region used in ARNs and reported as ``meta.region_name``.
        s3: The local S3 client holding model artifacts and metrics, for features that read
            them (transform jobs); default: local S3 on the same root. The registry itself only
            stores S3 URIs, as SageMaker does.
    """

    service_name = "sagemaker"
    # SageMaker checks enums, lengths and patterns server-side; so do we (see LocalClient).
    check_constraints = True

    def __init__(self, root: str | Path, region: str, s3: Any = None) -> None:
        super().__init__(root, region)
        self.s3 = s3 if s3 is not None else LocalS3Client(root, region)
        schema = [statement for base in type(self).__mro__ for statement in _schema_of(base)]
        self._store = SqliteStore(self.state_dir / "sagemaker.sqlite", schema)


def _schema_of(feature: type) -> tuple[str, ...]:
    # Only a class's own ``schema``, so a feature's tables are created once.
    return feature.__dict__.get("schema", ())
