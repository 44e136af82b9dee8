"""``ModelPackageDataset`` loads the model of a SageMaker Model Registry package."""

from __future__ import annotations

import tempfile
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from kedro_aws.clients import client
from kedro_aws.sagemaker.packaging import (
    ModelArtifactError,
    download_model_archive,
    extract_model_archive,
    load_model,
)
from kedro_aws.sagemaker.registry import ModelPackageRef, RegistryError, resolve_package

LATEST_APPROVED = "latest-approved"


class ModelPackageDataset(AbstractDataset[Any, Any]):
    """Load-only dataset returning the model object of a model package: a pinned version of a
    group, a package ARN, or (by default) the group's latest ``Approved`` version.

    The archive is downloaded, its SHA-256 checked against the one recorded at registration,
    safely extracted and ``model.joblib`` loaded. Saving is not supported: models enter the
    registry through ``kedro_aws.sagemaker.registry`` (the ``train_and_register_model``
    pipeline) and are approved explicitly.

    The backend (AWS or local), region and root come from the session's ``aws.yml``; the
    optional ``client_args`` override them (``backend``, ``region``, ``profile``,
    ``endpoint_url``, ``root``).

    Examples:
        Using the [YAML API](https://docs.kedro.org/en/stable/catalog-data/data_catalog_yaml_examples/):

        ```yaml
        approved_iris_classifier:
          type: kedro_aws.datasets.ModelPackageDataset
          model_package_group: iris-classifier      # latest Approved version

        iris_classifier_v3:
          type: kedro_aws.datasets.ModelPackageDataset
          model_package_group: iris-classifier
          version: 3
        ```

        Using the [Python API](https://docs.kedro.org/en/stable/catalog-data/advanced_data_catalog_usage/):

        >>> from kedro_aws.datasets import ModelPackageDataset
        >>> dataset = ModelPackageDataset(
        ...     model_package_group="iris-classifier",
        ...     client_args={"backend": "local", "root": "data/aws"},
        ... )
        >>> model = dataset.load()  # doctest: +SKIP
        >>> dataset.last_package.version  # doctest: +SKIP
        3
    """

    def __init__(
        self,
        *,
        model_package_group: str | None = None,
        version: int | str | None = None,
        arn: str | None = None,
        client_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Create a dataset for one model package.

        Args:
            model_package_group: The model package group.
            version: A version number of the group, or ``"latest-approved"`` (the default).
            arn: A model package ARN, instead of group and version.
            client_args: Overrides of the session's AWS settings for the clients.
            metadata: Free-form metadata, ignored by Kedro.

        Raises:
            DatasetError: Neither a group nor an ARN, or both a version and an ARN.
        """
        if not model_package_group and not arn:
            raise DatasetError("ModelPackageDataset needs model_package_group or arn.")
        if arn and version not in (None, LATEST_APPROVED):
            raise DatasetError("ModelPackageDataset takes a version or an arn, not both.")
        self._group = model_package_group
        self._version = version if version is not None else (None if arn else LATEST_APPROVED)
        self._arn = arn
        self._client_args = dict(client_args or {})
        self.metadata = metadata
        self.last_package: ModelPackageRef | None = None

    def load(self) -> Any:
        sm = client("sagemaker", **self._client_args)
        try:
            package = resolve_package(sm, self._group, self._version, self._arn)
        except RegistryError as error:
            raise DatasetError(str(error)) from error
        if not package.model_data_url or not package.sha256:
            raise DatasetError(
                f"Model package {package.arn} has no model archive with a recorded SHA-256 "
                "(it was not registered by kedro-aws); refusing to load an unverified model."
            )
        s3 = client("s3", **self._client_args)
        with tempfile.TemporaryDirectory(prefix="kedro-aws-package-") as workdir:
            try:
                archive = download_model_archive(
                    s3,
                    package.model_data_url,
                    expected_sha256=package.sha256,
                    destination_dir=workdir,
                )
                model_dir = extract_model_archive(archive, f"{workdir}/model")
            except ModelArtifactError as error:
                raise DatasetError(f"Model package {package.arn}: {error}") from error
            model = load_model(model_dir)
        self.last_package = package
        return model

    def save(self, data: Any) -> None:
        raise DatasetError(
            "'save' is not supported on ModelPackageDataset: register models with "
            "kedro_aws.sagemaker.registry.register_sklearn_model and approve them explicitly."
        )

    def _describe(self) -> dict[str, Any]:
        return {
            "model_package_group": self._group,
            "version": self._version,
            "arn": self._arn,
            "client_args": {k: v for k, v in self._client_args.items() if k != "profile"},
        }
