"""The SageMaker Model Registry operations of the local SageMaker client.

Model package groups hold versioned model packages, numbered 1, 2, 3, ... in order of
registration, each with an approval status (``PendingManualApproval`` until someone approves
or rejects it). The rules and response shapes follow the SageMaker API reference (botocore's
``sagemaker/2017-07-24/service-2.json``) and, where the reference is silent, what the service
is seen to do; each such place says where it comes from.

This module is a mixin: :class:`~kedro_aws.local.sagemaker.LocalSageMakerClient` combines it
with the other feature mixins and provides ``_store``, ``_validated``, ``_error`` and
``_response``.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import time
from datetime import datetime
from typing import Any

from botocore.utils import parse_timestamp
from dateutil.tz import tzlocal, tzutc

from kedro_aws.config import LOCAL_ACCOUNT_ID

APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
# Versioned packages start unapproved: registration never approves (SageMaker developer guide,
# "Register a model version": the status defaults to PendingManualApproval).
DEFAULT_APPROVAL_STATUS = "PendingManualApproval"
_DEFAULT_MAX_RESULTS = 100  # as moto; the API reference gives no default

# Fields of CreateModelPackage that describe_model_package returns as they were given.
_STORED_FIELDS = (
    "ModelPackageDescription",
    "InferenceSpecification",
    "SourceAlgorithmSpecification",
    "ValidationSpecification",
    "MetadataProperties",
    "ModelMetrics",
    "CustomerMetadataProperties",
    "DriftCheckBaselines",
    "Domain",
    "Task",
    "SamplePayloadUrl",
    "AdditionalInferenceSpecifications",
    "SkipModelValidation",
    "ModelCard",
    "ModelLifeCycle",
    "SourceUri",
    "SecurityConfig",
)


class ModelRegistryOperations:
    """create/describe/list/delete model package groups and model packages, and approval."""

    schema = (
        """CREATE TABLE IF NOT EXISTS model_package_groups (
            name TEXT PRIMARY KEY,
            creation_time REAL NOT NULL,
            last_version INTEGER NOT NULL DEFAULT 0,  -- versions are never reused
            document TEXT NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS model_packages (
            arn TEXT PRIMARY KEY,
            group_name TEXT,                          -- NULL for unversioned packages
            version INTEGER,
            name TEXT NOT NULL,                       -- group name, or the unversioned name
            approval_status TEXT,
            creation_time REAL NOT NULL,
            client_token TEXT UNIQUE,
            document TEXT NOT NULL,
            UNIQUE (group_name, version)
        )""",
    )

    # -- groups ------------------------------------------------------------------------------

    def create_model_package_group(self, **params: Any) -> dict[str, Any]:
        """Create a group; its name must be new. Groups (unlike versions) take ``Tags``."""
        params = self._validated("CreateModelPackageGroup", params)
        name = params["ModelPackageGroupName"]
        arn = self._group_arn(name)
        document = {
            "ModelPackageGroupDescription": params.get("ModelPackageGroupDescription"),
            "Tags": params.get("Tags", []),
        }
        try:
            with self._store.write() as db:
                db.execute(
                    "INSERT INTO model_package_groups (name, creation_time, document) "
                    "VALUES (?, ?, ?)",
                    (name, time.time(), json.dumps(document)),
                )
        except sqlite3.IntegrityError:
            # SageMaker answers a duplicate with a ValidationException worded like this (seen
            # in public code that catches it, e.g. "Model Package Group already exists").
            raise self._error(
                "CreateModelPackageGroup",
                "ValidationException",
                f"Model Package Group already exists: {arn}",
            ) from None
        return self._response(ModelPackageGroupArn=arn)

    def describe_model_package_group(self, **params: Any) -> dict[str, Any]:
        """A group by name or ARN."""
        params = self._validated("DescribeModelPackageGroup", params)
        with self._store.read() as db:
            row = self._group_row(db, "DescribeModelPackageGroup", params["ModelPackageGroupName"])
        return self._response(**self._group_summary(row), CreatedBy={})

    def list_model_package_groups(self, **params: Any) -> dict[str, Any]:
        """Groups, filtered by ``NameContains``/creation time, sorted, paginated."""
        params = self._validated("ListModelPackageGroups", params)
        with self._store.read() as db:
            rows = db.execute("SELECT * FROM model_package_groups ORDER BY rowid").fetchall()
        rows = [row for row in rows if _listed(row, params)]
        page, token = self._sorted_page(
            "ListModelPackageGroups", rows, params, _BY_NAME_OR_TIME, "Ascending"
        )
        return self._response(
            ModelPackageGroupSummaryList=[self._group_summary(r) for r in page], NextToken=token
        )

    def delete_model_package_group(self, **params: Any) -> dict[str, Any]:
        """Delete a group that holds no model packages (``ConflictException`` otherwise)."""
        params = self._validated("DeleteModelPackageGroup", params)
        with self._store.write() as db:
            row = self._group_row(db, "DeleteModelPackageGroup", params["ModelPackageGroupName"])
            (count,) = db.execute(
                "SELECT count(*) FROM model_packages WHERE group_name = ?", (row["name"],)
            ).fetchone()
            if count:
                # ConflictException is DeleteModelPackageGroup's only modeled error.
                raise self._error(
                    "DeleteModelPackageGroup",
                    "ConflictException",
                    f"Model Package Group {self._group_arn(row['name'])} still holds {count} "
                    "model package(s); delete them first.",
                )
            db.execute("DELETE FROM model_package_groups WHERE name = ?", (row["name"],))
        return self._response()

    def list_tags(self, **params: Any) -> dict[str, Any]:
        """Tags of a model package group (versions cannot carry tags)."""
        params = self._validated("ListTags", params)
        arn = params["ResourceArn"]
        tags: list[dict[str, str]] = []
        if ":model-package-group/" in arn:
            with self._store.read() as db:
                row = self._group_row(db, "ListTags", arn)
            tags = json.loads(row["document"])["Tags"]
        return self._response(Tags=tags)

    # -- model packages ----------------------------------------------------------------------

    def create_model_package(self, **params: Any) -> dict[str, Any]:
        """Register a new version in ``ModelPackageGroupName`` (or an unversioned package).

        ``ClientToken`` makes the call idempotent: repeating it returns the first ARN.
        """
        params = self._validated("CreateModelPackage", params)
        group = params.get("ModelPackageGroupName")
        name = params.get("ModelPackageName")
        if bool(group) == bool(name):
            raise self._error(
                "CreateModelPackage",
                "ValidationException",
                "Specify exactly one of ModelPackageGroupName (a versioned package) and "
                "ModelPackageName (an unversioned package).",
            )
        if group and params.get("Tags"):
            # API reference, CreateModelPackage.Tags: a versioned package "uses the tags
            # associated with the model group. In this case, you cannot supply a tag argument."
            # (Also why the SageMaker SDK drops them: sagemaker-python-sdk#4032.)
            raise self._error(
                "CreateModelPackage",
                "ValidationException",
                "Tags cannot be set on a versioned model package; tag its model package group "
                "or use CustomerMetadataProperties.",
            )
        document = {field: params[field] for field in _STORED_FIELDS if field in params}
        document["CertifyForMarketplace"] = params.get("CertifyForMarketplace", False)
        approval = params.get("ModelApprovalStatus")
        if group:
            approval = approval or DEFAULT_APPROVAL_STATUS
        token = params.get("ClientToken")
        with self._store.write() as db:
            if token:
                existing = db.execute(
                    "SELECT arn FROM model_packages WHERE client_token = ?", (token,)
                ).fetchone()
                if existing:
                    return self._response(ModelPackageArn=existing["arn"])
            if group:
                group_name = self._group_row(db, "CreateModelPackage", group)["name"]
                # Inside BEGIN IMMEDIATE: no other process can read the same last_version.
                (version,) = db.execute(
                    "UPDATE model_package_groups SET last_version = last_version + 1 "
                    "WHERE name = ? RETURNING last_version",
                    (group_name,),
                ).fetchone()
                arn = self._package_arn(f"{group_name}/{version}")
                package_name = group_name
            else:
                group_name, version, package_name = None, None, name
                arn = self._package_arn(name)
                if db.execute("SELECT 1 FROM model_packages WHERE arn = ?", (arn,)).fetchone():
                    raise self._error(
                        "CreateModelPackage",
                        "ConflictException",
                        f"Model package {arn} already exists.",
                    )
            db.execute(
                "INSERT INTO model_packages (arn, group_name, version, name, approval_status, "
                "creation_time, client_token, document) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    arn,
                    group_name,
                    version,
                    package_name,
                    approval,
                    time.time(),
                    token,
                    json.dumps(document),
                ),
            )
        return self._response(ModelPackageArn=arn)

    def describe_model_package(self, **params: Any) -> dict[str, Any]:
        """A model package by ARN (or by name, for unversioned packages)."""
        params = self._validated("DescribeModelPackage", params)
        with self._store.read() as db:
            row = self._package_row(db, "DescribeModelPackage", params["ModelPackageName"])
        document = json.loads(row["document"])
        last_modified = document.pop("LastModifiedTime", None)
        return self._response(
            **{**self._package_summary(row), **document},
            ModelPackageStatusDetails={"ValidationStatuses": [], "ImageScanStatuses": []},
            CreatedBy={},
            LastModifiedTime=_datetime(last_modified) if last_modified else None,
            LastModifiedBy={} if last_modified else None,
        )

    def list_model_packages(self, **params: Any) -> dict[str, Any]:
        """Packages of a group (or unversioned ones), filtered, sorted and paginated.

        ``SortBy="CreationTime", SortOrder="Descending"`` with ``ModelApprovalStatus="Approved"``
        gives the latest approved version first.
        """
        params = self._validated("ListModelPackages", params)
        group = params.get("ModelPackageGroupName")
        # Without a group the API lists only unversioned packages unless told otherwise
        # (API reference, ListModelPackages: ModelPackageType defaults to UNVERSIONED).
        kind = "Versioned" if group else params.get("ModelPackageType", "Unversioned")
        with self._store.read() as db:
            if group:
                group = self._group_row(db, "ListModelPackages", group)["name"]
            rows = db.execute("SELECT * FROM model_packages ORDER BY rowid").fetchall()
        status = params.get("ModelApprovalStatus")
        rows = [
            row
            for row in rows
            if (group is None or row["group_name"] == group)
            and (kind == "Both" or (row["group_name"] is not None) == (kind == "Versioned"))
            and (status is None or row["approval_status"] == status)
            and _listed(row, params)
        ]
        # Registration order breaks creation-time ties, so versions never appear out of order.
        sort_keys = {
            "Name": lambda r: (r["name"], r["version"] or 0),
            "CreationTime": lambda r: (r["creation_time"], r["version"] or 0),
        }
        page, token = self._sorted_page("ListModelPackages", rows, params, sort_keys, "Ascending")
        return self._response(
            ModelPackageSummaryList=[self._package_summary(r) for r in page], NextToken=token
        )

    def update_model_package(self, **params: Any) -> dict[str, Any]:
        """Approve or reject a package, and add, change or remove customer metadata.

        ``CustomerMetadataProperties`` are merged into the existing ones (the API has a separate
        ``CustomerMetadataPropertiesToRemove`` for removals, so an update does not replace).
        """
        params = self._validated("UpdateModelPackage", params)
        with self._store.write() as db:
            row = self._package_row(db, "UpdateModelPackage", params["ModelPackageArn"])
            document = json.loads(row["document"])
            approval = params.get("ModelApprovalStatus", row["approval_status"])
            if "ApprovalDescription" in params:
                document["ApprovalDescription"] = params["ApprovalDescription"]
            metadata = dict(document.get("CustomerMetadataProperties", {}))
            metadata.update(params.get("CustomerMetadataProperties", {}))
            for key in params.get("CustomerMetadataPropertiesToRemove", []):
                metadata.pop(key, None)
            if len(metadata) > 50:
                raise self._error(
                    "UpdateModelPackage",
                    "ValidationException",
                    f"A model package can have at most 50 CustomerMetadataProperties; this "
                    f"update would leave {len(metadata)} on {row['arn']}.",
                )
            if metadata:
                document["CustomerMetadataProperties"] = metadata
            else:
                document.pop("CustomerMetadataProperties", None)
            document["LastModifiedTime"] = time.time()
            db.execute(
                "UPDATE model_packages SET approval_status = ?, document = ? WHERE arn = ?",
                (approval, json.dumps(document), row["arn"]),
            )
        return self._response(ModelPackageArn=row["arn"])

    def delete_model_package(self, **params: Any) -> dict[str, Any]:
        """Delete a package; its version number is not given out again."""
        params = self._validated("DeleteModelPackage", params)
        with self._store.write() as db:
            row = self._package_row(db, "DeleteModelPackage", params["ModelPackageName"])
            db.execute("DELETE FROM model_packages WHERE arn = ?", (row["arn"],))
        return self._response()

    # -- helpers -----------------------------------------------------------------------------

    def _arn_prefix(self) -> str:
        return f"arn:aws:sagemaker:{self.region}:{LOCAL_ACCOUNT_ID}"

    def _group_arn(self, name: str) -> str:
        return f"{self._arn_prefix()}:model-package-group/{name}"

    def _package_arn(self, resource: str) -> str:
        # The group name keeps its case: IAM policies must match it exactly
        # (aws-samples/ml-edge-getting-started#18, fixed by dropping a .lower() in #19).
        # moto lowercases it (moto/sagemaker/models.py ModelPackage).
        return f"{self._arn_prefix()}:model-package/{resource}"

    def _group_row(self, db: sqlite3.Connection, operation: str, name_or_arn: str) -> sqlite3.Row:
        name = name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn
        row = db.execute("SELECT * FROM model_package_groups WHERE name = ?", (name,)).fetchone()
        if row is None:
            # SageMaker's wording and code for a missing group (shared by moto).
            raise self._error(
                operation,
                "ValidationException",
                f"ModelPackageGroup {self._group_arn(name)} does not exist.",
            )
        return row

    def _package_row(self, db: sqlite3.Connection, operation: str, name_or_arn: str) -> sqlite3.Row:
        arn = name_or_arn if name_or_arn.startswith("arn:") else self._package_arn(name_or_arn)
        row = db.execute("SELECT * FROM model_packages WHERE arn = ?", (arn,)).fetchone()
        if row is None:
            # As SageMaker words it: "ModelPackage arn:aws:sagemaker:...:model-package/x does not
            # exist." (a ValidationException, not ResourceNotFound).
            raise self._error(
                operation, "ValidationException", f"ModelPackage {arn} does not exist."
            )
        return row

    def _group_summary(self, row: sqlite3.Row) -> dict[str, Any]:
        document = json.loads(row["document"])
        summary = {
            "ModelPackageGroupName": row["name"],
            "ModelPackageGroupArn": self._group_arn(row["name"]),
            "ModelPackageGroupDescription": document.get("ModelPackageGroupDescription"),
            "CreationTime": _datetime(row["creation_time"]),
            "ModelPackageGroupStatus": "Completed",
        }
        return {key: value for key, value in summary.items() if value is not None}

    def _package_summary(self, row: sqlite3.Row) -> dict[str, Any]:
        document = json.loads(row["document"])
        summary = {
            "ModelPackageGroupName": row["group_name"],
            "ModelPackageVersion": row["version"],
            "ModelPackageArn": row["arn"],
            "ModelPackageDescription": document.get("ModelPackageDescription"),
            "CreationTime": _datetime(row["creation_time"]),
            "ModelPackageStatus": "Completed",
            "ModelApprovalStatus": row["approval_status"],
        }
        if row["group_name"] is None:
            summary["ModelPackageName"] = row["name"]
        return {key: value for key, value in summary.items() if value is not None}

    def _sorted_page(
        self,
        operation: str,
        rows: list,
        params: dict[str, Any],
        sort_keys: dict[str, Any],
        default_order: str,
    ) -> tuple[list, str | None]:
        """Sort by ``SortBy`` (default CreationTime) in ``SortOrder``, then one page."""
        rows = sorted(
            rows,
            key=sort_keys[params.get("SortBy", "CreationTime")],
            reverse=params.get("SortOrder", default_order) == "Descending",
        )
        return self._page(operation, rows, params)

    def _page(self, operation: str, rows: list, params: dict[str, Any]) -> tuple[list, str | None]:
        start = 0
        if params.get("NextToken"):
            try:
                start = json.loads(base64.urlsafe_b64decode(params["NextToken"]))["start"]
            except (ValueError, KeyError, TypeError):
                raise self._error(
                    operation, "ValidationException", "The NextToken is invalid."
                ) from None
        end = start + params.get("MaxResults", _DEFAULT_MAX_RESULTS)
        token = None
        if end < len(rows):
            token = base64.urlsafe_b64encode(json.dumps({"start": end}).encode()).decode()
        return rows[start:end], token


_BY_NAME_OR_TIME = {"Name": lambda r: r["name"], "CreationTime": lambda r: r["creation_time"]}


def _datetime(epoch: float) -> datetime:
    # What botocore's parser makes of SageMaker's epoch timestamps: tz-aware, local zone.
    return datetime.fromtimestamp(epoch, tz=tzlocal())


def _listed(row: Any, params: dict[str, Any]) -> bool:
    """The filters SageMaker's List* calls share: ``NameContains`` and the creation window."""
    return params.get("NameContains", "") in row["name"] and _in_time_window(
        row["creation_time"], params
    )


def _in_time_window(epoch: float, params: dict[str, Any]) -> bool:
    after, before = params.get("CreationTimeAfter"), params.get("CreationTimeBefore")
    return (after is None or epoch > _epoch(after)) and (before is None or epoch < _epoch(before))


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        # botocore sends a naive datetime as UTC.
        return (value if value.tzinfo else value.replace(tzinfo=tzutc())).timestamp()
    return parse_timestamp(value).timestamp()
