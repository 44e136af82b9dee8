"""Local Glue Data Catalog: databases, tables and partitions in one SQLite file under the root.

A boto3-compatible subset of the Glue client, enough for Athena-style catalogs: the local Athena
engine resolves every table it reads through this catalog, exactly as Athena resolves them
through Glue. The catalog lives in ``<root>/.kedro-aws/glue.sqlite``, beside the local S3
metadata, in the hidden state directory that is never listed as a bucket.

Example:
>>> import tempfile
>>> glue = LocalGlueClient(tempfile.mkdtemp(), region="eu-west-1")
>>> _ = glue.create_database(DatabaseInput={"Name": "Sales"})
>>> [db["Name"] for db in glue.get_databases()["DatabaseList"]]
['sales']

As on Glue, database, table and column names are stored in lower case, timestamps are
tz-aware, and failures are ``ClientError`` with Glue's codes (``EntityNotFoundException``,
``AlreadyExistsException``, ``InvalidInputException``). ``get_partitions`` understands the
common subset of Glue's ``Expression`` syntax: comparisons, ``IN``, ``BETWEEN``, ``LIKE``,
``AND``/``OR``/``NOT`` over partition keys (compared as their declared type).
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlglot
from dateutil.tz import tzutc
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from kedro_aws.local import LocalClient
from kedro_aws.local.sqlite_store import SqliteStore as _SqliteStore

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS glue_databases ( name TEXT PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS glue_tables ("
    " database TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,"
    " PRIMARY KEY (database, name))",
    "CREATE TABLE IF NOT EXISTS glue_partitions ("
    " database TEXT NOT NULL, tbl TEXT NOT NULL, vals TEXT NOT NULL, body TEXT NOT NULL,"
    " PRIMARY KEY (database, tbl, vals))",
)
_DEFAULT_PAGE = 100  # Glue's page size when MaxResults is not given
# Glue: names are "lowercase letters, numbers and underscore" when used with Athena; Glue
# itself accepts up to 255 characters of the single-line string pattern (API reference,
# NameString). We refuse what could not be a path segment or an Athena identifier.
_NAME = re.compile(r"^[^\x00-\x1f`/\\]{1,255}$")
# BatchCreatePartition takes at most 100 partitions per call (Glue API reference).
_MAX_BATCH_PARTITIONS = 100


class LocalGlueClient(LocalClient):
    """The Glue Data Catalog, kept in SQLite under ``root`` (see the module docstring).

    Args:
        root: The local backend's root directory (shared with the local S3 client).
        region: Reported as ``meta.region_name``; also the region in catalog ARNs.
    """

    service_name = "glue"

    def __init__(self, root: str | Path, region: str) -> None:
        super().__init__(root, region)
        self._store = _SqliteStore(self.state_dir / "glue.sqlite", _SCHEMA)

    @property
    def catalog_id(self) -> str:
        # The local backend has one account; moto uses the same placeholder account id.
        return "123456789012"

    # -- databases --------------------------------------------------------------------------

    def create_database(self, **params: Any) -> dict[str, Any]:
        """Create a database from ``DatabaseInput`` (Name, Description, LocationUri, Parameters)."""
        params = self._validated("CreateDatabase", params)
        db_input = params["DatabaseInput"]
        name = self._name("CreateDatabase", db_input["Name"], "database")
        body = {
            **{k: copy.deepcopy(v) for k, v in db_input.items() if k != "Name"},
            "Name": name,
            "CreateTime": _now(),
            "CatalogId": self.catalog_id,
        }
        with self._store.write() as db:
            if _row(db, "SELECT 1 FROM glue_databases WHERE name = ?", name):
                raise self._error(
                    "CreateDatabase", "AlreadyExistsException", "Database already exists."
                )
            db.execute("INSERT INTO glue_databases VALUES (?, ?)", (name, _dump(body)))
        return self._response()

    def get_database(self, **params: Any) -> dict[str, Any]:
        """One database, or ``EntityNotFoundException``."""
        params = self._validated("GetDatabase", params)
        with self._store.read() as db:
            body = self._database(db, "GetDatabase", params["Name"])
        return self._response(Database=body)

    def get_databases(self, **params: Any) -> dict[str, Any]:
        """All databases by name, paginated with ``MaxResults``/``NextToken``."""
        params = self._validated("GetDatabases", params)
        with self._store.read() as db:
            rows = db.execute("SELECT name, body FROM glue_databases ORDER BY name").fetchall()
        page, token = self._page("GetDatabases", rows, params)
        return self._response(DatabaseList=[_load(r["body"]) for r in page], NextToken=token)

    def delete_database(self, **params: Any) -> dict[str, Any]:
        """Delete a database with its tables and partitions (Glue deletes them too)."""
        params = self._validated("DeleteDatabase", params)
        name = params["Name"].lower()
        with self._store.write() as db:
            self._database(db, "DeleteDatabase", name)
            db.execute("DELETE FROM glue_partitions WHERE database = ?", (name,))
            db.execute("DELETE FROM glue_tables WHERE database = ?", (name,))
            db.execute("DELETE FROM glue_databases WHERE name = ?", (name,))
        return self._response()

    # -- tables -----------------------------------------------------------------------------

    def create_table(self, **params: Any) -> dict[str, Any]:
        """Create a table from ``TableInput`` in an existing database.

        Example: ``glue.create_table(DatabaseName="sales", TableInput={"Name": "orders",
        "StorageDescriptor": {"Columns": [{"Name": "id", "Type": "bigint"}],
        "Location": "s3://bucket/orders/"}, "PartitionKeys": [{"Name": "dt", "Type": "string"}]})``
        """
        params = self._validated("CreateTable", params)
        database = params["DatabaseName"].lower()
        table_input = params["TableInput"]
        name = self._name("CreateTable", table_input["Name"], "table")
        with self._store.write() as db:
            self._database(db, "CreateTable", database)
            if self._table_or_none(db, database, name) is not None:
                raise self._error(
                    "CreateTable", "AlreadyExistsException", f"Table {name} already exists."
                )
            now = _now()
            body = self._table_body(
                "CreateTable", database, table_input, created=now, updated=now, version=0
            )
            db.execute("INSERT INTO glue_tables VALUES (?, ?, ?)", (database, name, _dump(body)))
        return self._response()

    def get_table(self, **params: Any) -> dict[str, Any]:
        """One table, or ``EntityNotFoundException`` naming the missing database or table."""
        params = self._validated("GetTable", params)
        with self._store.read() as db:
            body = self._table(db, "GetTable", params["DatabaseName"], params["Name"])
        return self._response(Table=body)

    def get_tables(self, **params: Any) -> dict[str, Any]:
        """Tables of a database; ``Expression`` is a name pattern (``*`` wildcard, ``|`` or)."""
        params = self._validated("GetTables", params)
        database = params["DatabaseName"].lower()
        with self._store.read() as db:
            self._database(db, "GetTables", database)
            rows = db.execute(
                "SELECT name, body FROM glue_tables WHERE database = ? ORDER BY name", (database,)
            ).fetchall()
        pattern = params.get("Expression")
        if pattern:
            # Glue documents the expression as a regex whose "*" matches any characters; the
            # "|" alternation is how the console combines names. Matching is on lower case.
            alternatives = [p.strip().lower() for p in pattern.split("|")]
            rows = [r for r in rows if any(fnmatch.fnmatchcase(r["name"], p) for p in alternatives)]
        page, token = self._page("GetTables", rows, params)
        return self._response(TableList=[_load(r["body"]) for r in page], NextToken=token)

    def update_table(self, **params: Any) -> dict[str, Any]:
        """Replace a table's definition with ``TableInput`` (partitions are kept)."""
        params = self._validated("UpdateTable", params)
        database = params["DatabaseName"].lower()
        table_input = params["TableInput"]
        name = table_input["Name"].lower()
        with self._store.write() as db:
            old = self._table(db, "UpdateTable", database, name)
            body = self._table_body(
                "UpdateTable",
                database,
                table_input,
                created=_parse_time(old["CreateTime"]),
                updated=_now(),
                version=int(old.get("VersionId", "0")) + 1,
            )
            db.execute(
                "UPDATE glue_tables SET body = ? WHERE database = ? AND name = ?",
                (_dump(body), database, name),
            )
        return self._response()

    def delete_table(self, **params: Any) -> dict[str, Any]:
        """Delete a table and its partitions (the data files are left alone, as on Glue)."""
        params = self._validated("DeleteTable", params)
        database, name = params["DatabaseName"].lower(), params["Name"].lower()
        with self._store.write() as db:
            self._table(db, "DeleteTable", database, name)
            db.execute(
                "DELETE FROM glue_partitions WHERE database = ? AND tbl = ?", (database, name)
            )
            db.execute("DELETE FROM glue_tables WHERE database = ? AND name = ?", (database, name))
        return self._response()

    # -- partitions -------------------------------------------------------------------------

    def batch_create_partition(self, **params: Any) -> dict[str, Any]:
        """Add up to 100 partitions; existing ones are reported in ``Errors``, not raised."""
        params = self._validated("BatchCreatePartition", params)
        database, name = params["DatabaseName"].lower(), params["TableName"].lower()
        inputs = params["PartitionInputList"]
        if len(inputs) > _MAX_BATCH_PARTITIONS:
            raise self._error(
                "BatchCreatePartition",
                "InvalidInputException",
                f"PartitionInputList may hold at most {_MAX_BATCH_PARTITIONS} partitions, "
                f"got {len(inputs)}.",
            )
        errors = []
        with self._store.write() as db:
            table = self._table(db, "BatchCreatePartition", database, name)
            keys = table.get("PartitionKeys", [])
            for partition_input in inputs:
                values = list(partition_input["Values"])
                if len(values) != len(keys):
                    errors.append(
                        _partition_error(
                            values,
                            "InvalidInputException",
                            f"The number of partition values ({len(values)}) does not match "
                            f"the number of partition keys ({len(keys)}) of table {name}.",
                        )
                    )
                    continue
                if _row(
                    db,
                    "SELECT 1 FROM glue_partitions WHERE database = ? AND tbl = ? AND vals = ?",
                    database,
                    name,
                    json.dumps(values),
                ):
                    errors.append(
                        _partition_error(
                            values, "AlreadyExistsException", "Partition already exists."
                        )
                    )
                    continue
                body = {
                    **copy.deepcopy(partition_input),
                    "Values": values,
                    "DatabaseName": database,
                    "TableName": name,
                    "CreationTime": _now(),
                    "CatalogId": self.catalog_id,
                }
                db.execute(
                    "INSERT INTO glue_partitions VALUES (?, ?, ?, ?)",
                    (database, name, json.dumps(values), _dump(body)),
                )
        return self._response(Errors=errors or None)

    def get_partition(self, **params: Any) -> dict[str, Any]:
        """One partition by its values, or ``EntityNotFoundException``."""
        params = self._validated("GetPartition", params)
        database, name = params["DatabaseName"].lower(), params["TableName"].lower()
        with self._store.read() as db:
            self._table(db, "GetPartition", database, name)
            row = _row(
                db,
                "SELECT body FROM glue_partitions WHERE database = ? AND tbl = ? AND vals = ?",
                database,
                name,
                json.dumps(list(params["PartitionValues"])),
            )
        if row is None:
            raise self._error("GetPartition", "EntityNotFoundException", "Partition not found.")
        return self._response(Partition=_load(row["body"]))

    def get_partitions(self, **params: Any) -> dict[str, Any]:
        """A table's partitions in value order, optionally filtered by ``Expression``.

        Example: ``glue.get_partitions(DatabaseName="eth", TableName="transactions",
        Expression="date >= '2024-01-02' AND date < '2024-01-05'")``
        """
        params = self._validated("GetPartitions", params)
        database, name = params["DatabaseName"].lower(), params["TableName"].lower()
        with self._store.read() as db:
            table = self._table(db, "GetPartitions", database, name)
            rows = db.execute(
                "SELECT vals, body FROM glue_partitions WHERE database = ? AND tbl = ?"
                " ORDER BY vals",
                (database, name),
            ).fetchall()
        expression = params.get("Expression")
        if expression:
            keys = [(k["Name"].lower(), k["Type"]) for k in table.get("PartitionKeys", [])]
            predicate = self._partition_predicate(expression, keys)
            rows = [r for r in rows if predicate(json.loads(r["vals"]))]
        page, token = self._page("GetPartitions", rows, params)
        partitions = [_load(r["body"]) for r in page]
        if params.get("ExcludeColumnSchema"):
            for partition in partitions:
                partition.get("StorageDescriptor", {}).pop("Columns", None)
        return self._response(Partitions=partitions, NextToken=token)

    def delete_partition(self, **params: Any) -> dict[str, Any]:
        """Remove one partition from the catalog (its files stay)."""
        params = self._validated("DeletePartition", params)
        database, name = params["DatabaseName"].lower(), params["TableName"].lower()
        with self._store.write() as db:
            self._table(db, "DeletePartition", database, name)
            deleted = db.execute(
                "DELETE FROM glue_partitions WHERE database = ? AND tbl = ? AND vals = ?",
                (database, name, json.dumps(list(params["PartitionValues"]))),
            ).rowcount
        if not deleted:
            raise self._error("DeletePartition", "EntityNotFoundException", "Partition not found.")
        return self._response()

    # -- helpers ----------------------------------------------------------------------------

    def _name(self, operation: str, name: str, what: str) -> str:
        if not _NAME.match(name):
            raise self._error(
                operation, "InvalidInputException", f"The {what} name {name!r} is not valid."
            )
        return name.lower()

    def _database(self, db: Any, operation: str, name: str) -> dict[str, Any]:
        row = _row(db, "SELECT body FROM glue_databases WHERE name = ?", name.lower())
        if row is None:
            raise self._error(
                operation, "EntityNotFoundException", f"Database {name.lower()} not found."
            )
        return _load(row["body"])

    @staticmethod
    def _table_or_none(db: Any, database: str, name: str) -> dict[str, Any] | None:
        row = _row(
            db,
            "SELECT body FROM glue_tables WHERE database = ? AND name = ?",
            database.lower(),
            name.lower(),
        )
        return None if row is None else _load(row["body"])

    def _table(self, db: Any, operation: str, database: str, name: str) -> dict[str, Any]:
        self._database(db, operation, database)
        table = self._table_or_none(db, database, name)
        if table is None:
            raise self._error(
                operation, "EntityNotFoundException", f"Table {name.lower()} not found."
            )
        return table

    def _table_body(
        self,
        operation: str,
        database: str,
        table_input: dict[str, Any],
        *,
        created: datetime,
        updated: datetime,
        version: int,
    ) -> dict[str, Any]:
        body = copy.deepcopy(table_input)
        body["Name"] = self._name(operation, table_input["Name"], "table")
        descriptor = body.setdefault("StorageDescriptor", {})
        # Glue keeps column names in lower case; Athena relies on it.
        for column in [*descriptor.get("Columns", []), *body.get("PartitionKeys", [])]:
            column["Name"] = column["Name"].lower()
        names = [
            c["Name"] for c in [*descriptor.get("Columns", []), *body.get("PartitionKeys", [])]
        ]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise self._error(
                operation,
                "InvalidInputException",
                f"Table {body['Name']} has duplicate column names: {', '.join(duplicates)}.",
            )
        body.setdefault("PartitionKeys", [])
        body.update(
            DatabaseName=database,
            CreateTime=created,
            UpdateTime=updated,
            Retention=body.get("Retention", 0),
            IsRegisteredWithLakeFormation=False,
            CatalogId=self.catalog_id,
            VersionId=str(version),
            CreatedBy=f"arn:aws:iam::{self.catalog_id}:user/local",
        )
        return body

    def _page(
        self, operation: str, rows: list[Any], params: dict[str, Any]
    ) -> tuple[list[Any], str | None]:
        limit = params.get("MaxResults") or _DEFAULT_PAGE
        start = 0
        if params.get("NextToken"):
            try:
                start = int(base64.urlsafe_b64decode(params["NextToken"].encode()).decode())
            except ValueError:
                raise self._error(
                    operation, "InvalidInputException", "Invalid pagination token."
                ) from None
        end = start + limit
        token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(rows) else None
        return rows[start:end], token

    def _partition_predicate(self, expression: str, keys: list[tuple[str, str]]) -> Any:
        try:
            tree = sqlglot.parse_one(expression, read="hive")
        except (ParseError, TokenError) as err:
            raise self._error(
                "GetPartitions",
                "InvalidInputException",
                f"Unsupported expression {expression!r}: {err}",
            ) from None
        names = [name for name, _ in keys]
        types = dict(keys)

        def evaluate(node: exp.Expression, values: dict[str, Any]) -> Any:  # noqa: PLR0911
            if isinstance(node, exp.Paren):
                return evaluate(node.this, values)
            if isinstance(node, exp.And):
                return evaluate(node.left, values) and evaluate(node.right, values)
            if isinstance(node, exp.Or):
                return evaluate(node.left, values) or evaluate(node.right, values)
            if isinstance(node, exp.Not):
                return not evaluate(node.this, values)
            if isinstance(node, exp.In):
                left = evaluate(node.this, values)
                return left in [evaluate(e, values) for e in node.expressions]
            if isinstance(node, exp.Between):
                left = evaluate(node.this, values)
                return (
                    evaluate(node.args["low"], values)
                    <= left
                    <= evaluate(node.args["high"], values)
                )
            if isinstance(node, exp.Like):
                pattern = re.escape(str(evaluate(node.expression, values)))
                pattern = pattern.replace("%", ".*").replace("_", ".")
                return re.fullmatch(pattern, str(evaluate(node.this, values))) is not None
            if type(node) in _COMPARISONS:
                return _COMPARISONS[type(node)](
                    evaluate(node.left, values), evaluate(node.right, values)
                )
            if isinstance(node, exp.Column):
                if node.name.lower() not in values:
                    raise self._error(
                        "GetPartitions",
                        "InvalidInputException",
                        f"Unknown partition key {node.name!r} in expression {expression!r}; "
                        f"partition keys are {names}.",
                    )
                return values[node.name.lower()]
            if isinstance(node, exp.Literal):
                return node.this if node.is_string else float(node.this)
            if isinstance(node, exp.Neg):
                return -evaluate(node.this, values)
            raise self._error(
                "GetPartitions",
                "InvalidInputException",
                f"Unsupported expression {expression!r}: {node.sql()!r} is not supported by "
                "the local Glue catalog.",
            )

        def predicate(values: list[str]) -> bool:
            typed = {
                name: _typed_partition_value(value, types[name])
                for name, value in zip(names, values, strict=True)
            }
            return bool(evaluate(tree, typed))

        return predicate


_COMPARISONS: dict[type, Any] = {
    exp.EQ: lambda a, b: a == b,
    exp.NEQ: lambda a, b: a != b,
    exp.GT: lambda a, b: a > b,
    exp.GTE: lambda a, b: a >= b,
    exp.LT: lambda a, b: a < b,
    exp.LTE: lambda a, b: a <= b,
}
_NUMERIC_TYPES = ("tinyint", "smallint", "int", "integer", "bigint", "float", "double", "decimal")


def _typed_partition_value(value: str, hive_type: str) -> Any:
    # Glue compares integer-typed keys numerically and everything else as strings (Glue API
    # reference, GetPartitions "Expression": string, date and timestamp keys compare as text).
    if hive_type.lower().startswith(_NUMERIC_TYPES):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _partition_error(values: list[str], code: str, message: str) -> dict[str, Any]:
    return {
        "PartitionValues": values,
        "ErrorDetail": {"ErrorCode": code, "ErrorMessage": message},
    }


def _row(db: Any, sql: str, *args: Any) -> Any:
    return db.execute(sql, args).fetchone()


def _now() -> datetime:
    return datetime.now(tz=tzutc())


def _dump(body: dict[str, Any]) -> str:
    return json.dumps(body, default=_encode_time, sort_keys=True)


def _encode_time(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    raise TypeError(f"Cannot store {type(value).__name__} in the Glue catalog: {value!r}")


def _load(text: str) -> dict[str, Any]:
    return json.loads(text, object_hook=_decode_time)


def _decode_time(obj: dict[str, Any]) -> Any:
    if set(obj) == {"__datetime__"}:
        return _parse_time(obj["__datetime__"])
    return obj


def _parse_time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
