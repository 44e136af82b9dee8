"""Machinery shared by the local clients: botocore metadata, validation, AWS-shaped errors."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import botocore.session
from botocore import xform_name
from botocore.client import ClientMeta
from botocore.config import Config
from botocore.errorfactory import ClientExceptionsFactory
from botocore.exceptions import ClientError
from botocore.hooks import HierarchicalEmitter
from botocore.model import ServiceModel, Shape
from botocore.paginate import Paginator
from botocore.validate import validate_parameters

# Local state that is not an object or a bucket (SQLite databases, locks) lives here. S3 bucket
# names must start with a letter or a digit, so this directory can never be taken for a bucket.
STATE_DIR_NAME = ".kedro-aws"


@functools.cache
def botocore_session() -> botocore.session.Session:
    """One botocore session per process, for its data loader only (no credentials are read).

    Creating a session registers ~120 event handlers (~10 ms), and its loader caches the JSON
    models it has read, so the local clients share this one.
    """
    return botocore.session.get_session()


@functools.cache
def service_model(service: str) -> ServiceModel:
    """botocore's model of ``service`` (loaded once per process; the sagemaker one is large)."""
    return botocore_session().get_service_model(service)


# It caches the exception classes per service, as the one factory of a botocore session does:
# clients of a service share them, and a new client does not rebuild ~100 classes.
_EXCEPTIONS_FACTORY = ClientExceptionsFactory()


def client_exceptions(service: str) -> Any:
    """``client.exceptions`` of ``service``: the modeled error classes, built once per process.

    >>> client_exceptions("s3").NoSuchKey.__name__
    'NoSuchKey'
    """
    return _EXCEPTIONS_FACTORY.create_client_exceptions(service_model(service))


class LocalClient:
    """Base of the local clients: ``meta``, ``exceptions``, validation and AWS-shaped errors.

    Subclasses set ``service_name`` and implement operations as ``def op(self, **params)``
    methods, which start with ``params = self._validated("OperationName", params)``.
    """

    service_name: str = ""
    # Also enforce the model's enum, maximum-length and pattern constraints, which botocore
    # leaves to the service. Services whose servers enforce them (SageMaker) switch this on.
    check_constraints: bool = False

    def __init__(self, root: str | Path, region: str) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        model = service_model(self.service_name)
        # The same ClientMeta a boto3 client carries, so ``client.meta.region_name`` and
        # ``client.meta.service_model`` work unchanged on both backends.
        self.meta = ClientMeta(
            events=HierarchicalEmitter(),
            client_config=Config(region_name=region),
            endpoint_url=self.root.as_uri(),
            service_model=model,
            method_to_api_mapping={},
            partition="aws",
        )
        self.exceptions = client_exceptions(self.service_name)

    @property
    def region(self) -> str:
        return self.meta.region_name

    @property
    def state_dir(self) -> Path:
        """Where the client keeps its databases (created on first use)."""
        path = self.root / STATE_DIR_NAME
        path.mkdir(parents=True, exist_ok=True)
        return path

    def can_paginate(self, operation_name: str) -> bool:
        """Whether ``get_paginator(operation_name)`` works (same answer as boto3's)."""
        api_name = self._api_name(operation_name)
        return api_name is not None and paginator_config(self.service_name, api_name) is not None

    def get_paginator(self, operation_name: str) -> Paginator:
        """botocore's own ``Paginator`` driving this client's method, as on a boto3 client.

        Example: ``client.get_paginator("list_objects_v2").paginate(Bucket="b")``.
        """
        if not self.can_paginate(operation_name):
            raise ValueError(
                f"Operation {operation_name!r} cannot be paginated on the local "
                f"{self.service_name} client (or is not implemented by it)."
            )
        api_name = self._api_name(operation_name)
        return Paginator(
            getattr(self, operation_name),
            paginator_config(self.service_name, api_name),
            self.meta.service_model.operation_model(api_name),
        )

    def _api_name(self, operation_name: str) -> str | None:
        if not callable(getattr(self, operation_name, None)):
            return None
        for api_name in self.meta.service_model.operation_names:
            if xform_name(api_name) == operation_name:
                return api_name
        return None

    def _validated(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Check ``params`` as botocore checks them before sending a request.

        Raises botocore's ``ParamValidationError`` for unknown or missing parameters and wrong
        types, just like a boto3 client does.
        """
        shape = self.meta.service_model.operation_model(operation).input_shape
        validate_parameters(params, shape)
        if self.check_constraints:
            problems = list(_constraint_violations(shape, params, ""))
            if problems:
                count = len(problems)
                raise self._error(
                    operation,
                    "ValidationException",
                    f"{count} validation error{'s' if count > 1 else ''} detected: "
                    + "; ".join(problems),
                )
        return params

    def _error(
        self,
        operation: str,
        code: str,
        message: str,
        *,
        status: int = 400,
        **details: Any,
    ) -> ClientError:
        """Build the ``ClientError`` AWS would return (modeled subclass when there is one)."""
        response = {
            "Error": {"Code": code, "Message": message, **details},
            "ResponseMetadata": _response_metadata(status),
        }
        return self.exceptions.from_code(code)(response, operation)

    @staticmethod
    def _response(status: int = 200, **fields: Any) -> dict[str, Any]:
        """A response dict with AWS-like ``ResponseMetadata``; ``None`` fields are left out."""
        body = {key: value for key, value in fields.items() if value is not None}
        body["ResponseMetadata"] = _response_metadata(status)
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, region={self.region!r})"


def _constraint_violations(shape: Shape, value: Any, path: str) -> Iterator[str]:
    """AWS-worded messages for ``value``'s breaches of the model's server-side constraints.

    Message format as the service words it, e.g. "Value 'x' at 'modelApprovalStatus' failed to
    satisfy constraint: Member must satisfy enum value set: [...]".
    """
    meta = shape.metadata
    where = f"Value {_abbreviated(value)!r} at {path!r} failed to satisfy constraint: Member must"
    if shape.type_name in ("string", "list", "map") and "max" in meta and len(value) > meta["max"]:
        yield f"{where} have length less than or equal to {meta['max']}"
    if shape.type_name == "string":
        if shape.enum and value not in shape.enum:
            yield f"{where} satisfy enum value set: [{', '.join(shape.enum)}]"
        pattern = _compiled(meta.get("pattern"))
        if pattern is not None and not pattern.fullmatch(value):
            yield f"{where} satisfy regular expression pattern: {meta['pattern']}"
    elif shape.type_name == "structure":
        for name, member in shape.members.items():
            if name in value:
                yield from _constraint_violations(member, value[name], _join(path, name))
    elif shape.type_name == "list":
        for index, item in enumerate(value, start=1):
            yield from _constraint_violations(shape.member, item, f"{path}.{index}.member")
    elif shape.type_name == "map":
        for key, item in value.items():
            yield from _constraint_violations(shape.key, key, f"{path}.key")
            yield from _constraint_violations(shape.value, item, f"{path}.value")


def _join(path: str, member: str) -> str:
    camel = member[:1].lower() + member[1:]  # AWS names members in lowerCamelCase in messages
    return f"{path}.{camel}" if path else camel


def _abbreviated(value: Any) -> Any:
    return value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."


@functools.cache
def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    # The models hold Java regular expressions; the few Python cannot compile (\p{L} classes)
    # are left unchecked rather than approximated.
    if not pattern:
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


@functools.cache
def paginator_config(service: str, api_name: str) -> dict[str, Any] | None:
    """botocore's pagination settings of an operation, or None if it does not paginate.

    >>> paginator_config("s3", "ListObjectsV2")["result_key"]
    ['Contents', 'CommonPrefixes']
    """
    try:
        return botocore_session().get_paginator_model(service).get_paginator(api_name)
    except (ValueError, botocore.exceptions.UnknownServiceError):
        return None


def _response_metadata(status: int) -> dict[str, Any]:
    return {
        "RequestId": uuid.uuid4().hex.upper(),
        "HTTPStatusCode": status,
        "HTTPHeaders": {},
        "RetryAttempts": 0,
    }
