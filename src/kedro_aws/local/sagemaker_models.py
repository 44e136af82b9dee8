"""The SageMaker model operations of the local SageMaker client: create/describe/delete/list.

A model names the container that serves predictions: either a versioned model package from the
(local) Model Registry (``ModelPackageName``, its ARN or ``group/version``) or an ``Image`` with
its ``ModelDataUrl`` and ``Environment``. Request and response shapes follow the SageMaker API
reference (botocore's ``sagemaker/2017-07-24/service-2.json``).

**The approval gate.** ``create_model`` refuses a model package whose ``ModelApprovalStatus`` is
not ``Approved``. A version must be approved to be deployed (API reference,
``ModelApprovalStatus``); the SageMaker Python SDK instead silently approves the package on the
caller's behalf before creating the model (``ModelPackage._create_sagemaker_model``, PR
aws/sagemaker-python-sdk#4134). We never approve for the user: approval is an explicit act.

When the model is created, what the package points at (image, model data, environment and the
archive's SHA-256 from the package metadata) is resolved and kept with the model, so that a
transform job runs exactly what was approved even if the package changes or goes away later.

Example::

    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    sm.create_model(
        ModelName="iris-v3",
        PrimaryContainer={"ModelPackageName": arn},
        ExecutionRoleArn="arn:aws:iam::123456789012:role/sagemaker",
    )

This module is a mixin of :class:`~kedro_aws.local.sagemaker.LocalSageMakerClient`, which
provides ``_store``, ``_validated``, ``_error``, ``_response`` and, from the registry mixin,
``_package_row``, ``_arn_prefix`` and ``_page``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from kedro_aws.local.sagemaker_registry import _BY_NAME_OR_TIME, _datetime, _listed
from kedro_aws.sagemaker.packaging import SHA256_METADATA_KEY

# Fields of CreateModel that DescribeModel returns as they were given.
_STORED_FIELDS = (
    "PrimaryContainer",
    "Containers",
    "InferenceExecutionConfig",
    "ExecutionRoleArn",
    "VpcConfig",
)


class ModelOperations:
    """create_model / describe_model / delete_model / list_models."""

    schema = (
        """CREATE TABLE IF NOT EXISTS models (
            name TEXT PRIMARY KEY,
            creation_time REAL NOT NULL,
            document TEXT NOT NULL,   -- the request fields DescribeModel returns
            resolved TEXT NOT NULL    -- the containers as a transform job runs them
        )""",
    )

    def create_model(self, **params: Any) -> dict[str, Any]:
        """Create a model from a model package (must be Approved) or an image + model data."""
        params = self._validated("CreateModel", params)
        name = params["ModelName"]
        containers = self._requested_containers(params)
        with self._store.write() as db:
            resolved = [self._resolve_container(db, container) for container in containers]
            document = {field: params[field] for field in _STORED_FIELDS if field in params}
            document["EnableNetworkIsolation"] = params.get("EnableNetworkIsolation", False)
            document["Tags"] = params.get("Tags", [])
            try:
                db.execute(
                    "INSERT INTO models (name, creation_time, document, resolved) "
                    "VALUES (?, ?, ?, ?)",
                    (name, time.time(), json.dumps(document), json.dumps(resolved)),
                )
            except sqlite3.IntegrityError:
                # SageMaker's answer to a duplicate model name.
                raise self._error(
                    "CreateModel",
                    "ValidationException",
                    f'Cannot create already existing model "{self._model_arn(name)}".',
                ) from None
        return self._response(ModelArn=self._model_arn(name))

    def describe_model(self, **params: Any) -> dict[str, Any]:
        """A model by name, with its containers as they were given."""
        params = self._validated("DescribeModel", params)
        with self._store.read() as db:
            row = self._model_row(db, "DescribeModel", params["ModelName"])
        document = json.loads(row["document"])
        document.pop("Tags", None)
        return self._response(
            ModelName=row["name"],
            **document,
            CreationTime=_datetime(row["creation_time"]),
            ModelArn=self._model_arn(row["name"]),
        )

    def delete_model(self, **params: Any) -> dict[str, Any]:
        """Delete a model; jobs already running keep the model they started with."""
        params = self._validated("DeleteModel", params)
        with self._store.write() as db:
            row = self._model_row(db, "DeleteModel", params["ModelName"])
            db.execute("DELETE FROM models WHERE name = ?", (row["name"],))
        return self._response()

    def list_models(self, **params: Any) -> dict[str, Any]:
        """Model summaries, newest first by default, filtered and paginated as the API does."""
        params = self._validated("ListModels", params)
        with self._store.read() as db:
            rows = db.execute("SELECT name, creation_time FROM models ORDER BY rowid").fetchall()
        rows = [row for row in rows if _listed(row, params)]
        # API reference, ListModels.SortOrder: "The default is Descending."
        page, token = self._sorted_page("ListModels", rows, params, _BY_NAME_OR_TIME, "Descending")
        models = [
            {
                "ModelName": row["name"],
                "ModelArn": self._model_arn(row["name"]),
                "CreationTime": _datetime(row["creation_time"]),
            }
            for row in page
        ]
        return self._response(Models=models, NextToken=token)

    # -- for transform jobs ------------------------------------------------------------------

    def _resolved_model(
        self, db: sqlite3.Connection, operation: str, name: str
    ) -> list[dict[str, Any]]:
        """The model's containers as a job runs them: ModelDataUrl, Environment, Sha256, Image."""
        return json.loads(self._model_row(db, operation, name)["resolved"])

    # -- helpers -----------------------------------------------------------------------------

    def _model_arn(self, name: str) -> str:
        return f"{self._arn_prefix()}:model/{name}"

    def _model_row(self, db: sqlite3.Connection, operation: str, name: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM models WHERE name = ?", (name,)).fetchone()
        if row is None:
            # SageMaker answers a missing model with a ValidationException in these words.
            raise self._error(
                operation, "ValidationException", f'Could not find model "{self._model_arn(name)}".'
            )
        return row

    def _requested_containers(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        primary, containers = params.get("PrimaryContainer"), params.get("Containers")
        if (primary is None) == (containers is None):
            raise self._error(
                "CreateModel",
                "ValidationException",
                "Specify exactly one of PrimaryContainer (a single container) and Containers "
                "(an inference pipeline).",
            )
        containers = [primary] if primary is not None else containers
        if not containers:
            raise self._error(
                "CreateModel", "ValidationException", "Containers must hold at least 1 container."
            )
        return containers

    def _resolve_container(self, db: sqlite3.Connection, container: dict[str, Any]) -> dict:
        package = container.get("ModelPackageName")
        if package is None:
            if not container.get("Image"):
                raise self._error(
                    "CreateModel",
                    "ValidationException",
                    "A container needs either ModelPackageName or Image.",
                )
            return {
                "Image": container["Image"],
                "ModelDataUrl": container.get("ModelDataUrl"),
                "Environment": dict(container.get("Environment", {})),
                "Sha256": None,
                "ModelPackageArn": None,
            }
        clashing = [field for field in ("Image", "ModelDataUrl") if field in container]
        if clashing:
            # The package already fixes image and model data; two sources would be ambiguous.
            raise self._error(
                "CreateModel",
                "ValidationException",
                f"A container with ModelPackageName takes its image and model data from the "
                f"package; do not also set {' and '.join(clashing)}.",
            )
        row = self._package_row(db, "CreateModel", package)
        if row["approval_status"] != "Approved":
            raise self._error(
                "CreateModel",
                "ValidationException",
                f"Model package {row['arn']} has ModelApprovalStatus "
                f"{row['approval_status'] or 'unset'}; only an Approved version can be deployed. "
                "Approve it explicitly first (update_model_package(ModelPackageArn=..., "
                "ModelApprovalStatus='Approved'), or `kedro aws registry approve`); the local "
                "backend never approves on your behalf.",
            )
        document = json.loads(row["document"])
        spec_containers = (document.get("InferenceSpecification") or {}).get("Containers") or []
        if len(spec_containers) != 1:
            raise self._error(
                "CreateModel",
                "ValidationException",
                f"Model package {row['arn']} has {len(spec_containers)} inference containers; "
                "the local backend deploys packages with exactly one.",
            )
        spec = spec_containers[0]
        return {
            "Image": spec.get("Image"),
            "ModelDataUrl": spec.get("ModelDataUrl"),
            # The model's own Environment is added to (and overrides) the package's.
            "Environment": {**spec.get("Environment", {}), **container.get("Environment", {})},
            "Sha256": _recorded_sha256(document.get("CustomerMetadataProperties") or {}),
            "ModelPackageArn": row["arn"],
        }


def _recorded_sha256(metadata: dict[str, str]) -> str | None:
    """The archive's SHA-256 from package metadata: ``sha256``, or the one key ending in it.

    ``kedro_aws.sagemaker.registry`` records it as ``model_sha256``.
    """
    lowered = {key.lower(): value for key, value in metadata.items()}
    if SHA256_METADATA_KEY in lowered:
        return lowered[SHA256_METADATA_KEY]
    candidates = [value for key, value in lowered.items() if key.endswith(SHA256_METADATA_KEY)]
    return candidates[0] if len(candidates) == 1 else None
