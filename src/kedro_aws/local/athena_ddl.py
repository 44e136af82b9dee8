"""Athena's Hive DDL and utility statements, run against the local Glue catalog.

Athena runs ``CREATE EXTERNAL TABLE``, ``ALTER TABLE``, ``DROP`` and ``MSCK`` on its Hive
engine: they only change the catalog, never data files. So does :class:`DdlRunner`::

    >>> runner = DdlRunner(glue, s3_root)  # doctest: +SKIP
    >>> runner.run("CREATE DATABASE IF NOT EXISTS sales", database=None).rows  # doctest: +SKIP
    []
    >>> runner.run("SHOW TABLES IN sales", database=None).column  # doctest: +SKIP
    'tab_name'

Supported: CREATE DATABASE|SCHEMA, CREATE EXTERNAL TABLE (columns, PARTITIONED BY, ROW FORMAT
DELIMITED / SERDE … WITH SERDEPROPERTIES, STORED AS PARQUET|TEXTFILE|JSON|INPUTFORMAT …,
LOCATION, TBLPROPERTIES), DROP TABLE, DROP DATABASE [CASCADE], ALTER TABLE ADD|DROP PARTITION,
MSCK REPAIR TABLE, SHOW DATABASES|SCHEMAS, SHOW TABLES, SHOW PARTITIONS, DESCRIBE. Anything else
fails with ``NOT_SUPPORTED`` naming the statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import sqlglot
from botocore.exceptions import ClientError
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from kedro_aws.local.athena_sql_errors import AthenaQueryError
from kedro_aws.local.athena_tables import s3_uri_to_path

_IDENT = r"`?(\w+)`?"
_TABLE = rf"{_IDENT}(?:\s*\.\s*{_IDENT})?"
_PARTITION_SPEC = re.compile(r"PARTITION\s*\(([^)]*)\)(?:\s*LOCATION\s*'([^']*)')?", re.I)
_FORMATS = {
    "PARQUET": {
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerdeInfo": {
            "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            "Parameters": {"serialization.format": "1"},
        },
    },
    "TEXTFILE": {
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
        "SerdeInfo": {
            "SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
            "Parameters": {"serialization.format": "1"},
        },
    },
}


@dataclass
class DdlResult:
    """Rows of a DDL/utility statement: one text column (``column``), as Athena returns them."""

    rows: list[str] = field(default_factory=list)
    column: str | None = None


class DdlRunner:
    """Runs DDL and utility statements on a Glue client (local or boto3).

    Args:
        glue: A Glue client (``LocalGlueClient`` or a boto3 Glue client).
        s3_root: Root of the local S3 client, for MSCK REPAIR's folder scan.
    """

    def __init__(self, glue: Any, s3_root: Path) -> None:
        self.glue = glue
        self.s3_root = s3_root

    def run(self, text: str, database: str | None) -> DdlResult:
        """Run one statement; failures raise :class:`AthenaQueryError`."""
        statement = re.sub(r"^(\s*(--[^\n]*\n|/\*.*?\*/))*", "", text, flags=re.S).strip()
        statement = statement.rstrip(";").strip()
        words = statement.split()
        head = " ".join(w.upper() for w in words[:3])
        handler = next((h for pattern, h in self._handlers() if re.match(pattern, head)), None)
        if handler is None:
            raise AthenaQueryError(
                "NOT_SUPPORTED",
                f"Statement '{' '.join(words[:3])}' is not supported by the local Athena engine",
            )
        try:
            return handler(statement, database)
        except ClientError as err:
            raise _from_glue(err) from None

    def _handlers(self) -> list[tuple[str, Any]]:
        return [
            (r"CREATE (DATABASE|SCHEMA)\b", lambda s, _db: self._create_database(s)),
            (r"CREATE EXTERNAL TABLE\b", self._create_table),
            (r"CREATE TABLE\b", _managed_table_refused),
            (r"DROP TABLE\b", self._drop_table),
            (r"DROP (DATABASE|SCHEMA)\b", lambda s, _db: self._drop_database(s)),
            (r"ALTER TABLE\b", self._alter_table),
            (r"MSCK REPAIR TABLE\b", self._msck_repair),
            (r"SHOW (DATABASES|SCHEMAS)\b", lambda s, _db: self._show_databases(s)),
            (r"SHOW TABLES\b", self._show_tables),
            (r"SHOW PARTITIONS\b", self._show_partitions),
            (r"DESC(RIBE)?\b", self._describe),
        ]

    # -- databases --------------------------------------------------------------------------

    def _create_database(self, statement: str) -> DdlResult:
        match = re.match(
            rf"CREATE\s+(?:DATABASE|SCHEMA)\s+(IF\s+NOT\s+EXISTS\s+)?{_IDENT}"
            r"(?:\s+COMMENT\s+'([^']*)')?(?:\s+LOCATION\s+'([^']*)')?",
            statement,
            re.I,
        )
        if match is None:
            raise _syntax(statement)
        if_not_exists, name, comment, location = match.groups()
        db_input: dict[str, Any] = {"Name": name}
        if comment:
            db_input["Description"] = comment
        if location:
            db_input["LocationUri"] = location
        try:
            self.glue.create_database(DatabaseInput=db_input)
        except ClientError as err:
            if _code(err) != "AlreadyExistsException":
                raise
            if not if_not_exists:
                raise AthenaQueryError(
                    "SCHEMA_ALREADY_EXISTS", f"Schema '{name.lower()}' already exists"
                ) from None
        return DdlResult()

    def _drop_database(self, statement: str) -> DdlResult:
        match = re.match(
            rf"DROP\s+(?:DATABASE|SCHEMA)\s+(IF\s+EXISTS\s+)?{_IDENT}(\s+CASCADE)?\s*$",
            statement,
            re.I,
        )
        if match is None:
            raise _syntax(statement)
        if_exists, name, cascade = match.groups()
        try:
            tables = self.glue.get_tables(DatabaseName=name)["TableList"]
        except ClientError as err:
            if _code(err) == "EntityNotFoundException" and if_exists:
                return DdlResult()
            raise
        if tables and not cascade:
            raise AthenaQueryError(
                "SCHEMA_NOT_EMPTY",
                f"Database {name.lower()} is not empty. One or more tables exist.",
            )
        self.glue.delete_database(Name=name)
        return DdlResult()

    def _show_databases(self, statement: str) -> DdlResult:
        pattern = _trailing_pattern(statement)
        names = [
            d["Name"]
            for page in self.glue.get_paginator("get_databases").paginate()
            for d in page["DatabaseList"]
        ]
        return DdlResult([n for n in names if _like(n, pattern)], "database_name")

    # -- tables -----------------------------------------------------------------------------

    def _create_table(self, statement: str, database: str | None) -> DdlResult:
        try:
            tree = sqlglot.parse_one(statement, read="athena")
        except (ParseError, TokenError) as err:
            raise AthenaQueryError(
                "SYNTAX_ERROR", f"line 1:1: {str(err).splitlines()[0]}"
            ) from None
        if not isinstance(tree, exp.Create) or not isinstance(tree.this, exp.Schema):
            raise _syntax(statement)
        db, name = _qualified(tree.this.this, database)
        columns = [_column(c) for c in tree.this.expressions if isinstance(c, exp.ColumnDef)]
        table_input: dict[str, Any] = {
            "Name": name,
            "TableType": "EXTERNAL_TABLE",
            "Parameters": {"EXTERNAL": "TRUE"},
            "PartitionKeys": [],
        }
        descriptor: dict[str, Any] = {"Columns": columns, **_FORMATS["TEXTFILE"]}
        descriptor["SerdeInfo"] = dict(descriptor["SerdeInfo"])
        properties = tree.args.get("properties")
        for prop in properties.expressions if properties else []:
            _apply_property(prop, table_input, descriptor)
        if "Location" not in descriptor:
            raise AthenaQueryError(
                "INVALID_TABLE_PROPERTY",
                f"CREATE EXTERNAL TABLE {db}.{name} needs a LOCATION 's3://…'",
            )
        table_input["StorageDescriptor"] = descriptor
        try:
            self.glue.create_table(DatabaseName=db, TableInput=table_input)
        except ClientError as err:
            if _code(err) == "AlreadyExistsException" and tree.args.get("exists"):
                return DdlResult()
            raise
        return DdlResult()

    def _drop_table(self, statement: str, database: str | None) -> DdlResult:
        match = re.match(rf"DROP\s+TABLE\s+(IF\s+EXISTS\s+)?{_TABLE}\s*$", statement, re.I)
        if match is None:
            raise _syntax(statement)
        if_exists = match.group(1)
        db, name = _names(match.group(2), match.group(3), database)
        try:
            self.glue.delete_table(DatabaseName=db, Name=name)
        except ClientError as err:
            if not (if_exists and _code(err) == "EntityNotFoundException"):
                raise
        return DdlResult()

    def _show_tables(self, statement: str, database: str | None) -> DdlResult:
        match = re.match(rf"SHOW\s+TABLES(?:\s+(?:IN|FROM)\s+{_IDENT})?", statement, re.I)
        db = (match.group(1) if match and match.group(1) else database) or "default"
        pattern = _trailing_pattern(statement)
        names = [
            t["Name"]
            for page in self.glue.get_paginator("get_tables").paginate(DatabaseName=db)
            for t in page["TableList"]
        ]
        return DdlResult([n for n in names if _like(n, pattern)], "tab_name")

    def _describe(self, statement: str, database: str | None) -> DdlResult:
        match = re.match(
            rf"DESC(?:RIBE)?\s+(?:FORMATTED\s+|EXTENDED\s+)?{_TABLE}\s*$", statement, re.I
        )
        if match is None:
            raise _syntax(statement)
        db, name = _names(match.group(1), match.group(2), database)
        table = self.glue.get_table(DatabaseName=db, Name=name)["Table"]

        # Hive's DESCRIBE layout: name, type and comment padded to 20 characters, tab-separated.
        def line(column: dict[str, Any]) -> str:
            return "\t".join(
                v.ljust(20) for v in (column["Name"], column["Type"], column.get("Comment", ""))
            )

        rows = [line(c) for c in table["StorageDescriptor"].get("Columns", [])]
        keys = table.get("PartitionKeys", [])
        if keys:
            rows += [
                "",
                "# Partition Information",
                "\t".join(v.ljust(20) for v in ("# col_name", "data_type", "comment")),
                "",
            ]
            rows += [line(k) for k in keys]
        return DdlResult(rows, "col_name")

    # -- partitions -------------------------------------------------------------------------

    def _alter_table(self, statement: str, database: str | None) -> DdlResult:
        match = re.match(
            rf"ALTER\s+TABLE\s+{_TABLE}\s+(ADD|DROP)\s+(IF\s+(?:NOT\s+)?EXISTS\s+)?(.*)$",
            statement,
            re.I | re.S,
        )
        if match is None:
            raise AthenaQueryError(
                "NOT_SUPPORTED",
                "Only ALTER TABLE … ADD PARTITION and DROP PARTITION are supported by the local "
                "Athena engine",
            )
        db, name = _names(match.group(1), match.group(2), database)
        action, guard, rest = match.group(3).upper(), match.group(4), match.group(5)
        table = self.glue.get_table(DatabaseName=db, Name=name)["Table"]
        keys = [k["Name"] for k in table.get("PartitionKeys", [])]
        specs = []
        for spec in _PARTITION_SPEC.finditer(rest):
            values = _partition_values(spec.group(1), keys, f"{db}.{name}")
            location = spec.group(2) or _partition_location(table, keys, values)
            specs.append((values, location))
        if not specs:
            raise _syntax(statement)
        if action == "DROP":
            for values, _ in specs:
                try:
                    self.glue.delete_partition(
                        DatabaseName=db, TableName=name, PartitionValues=values
                    )
                except ClientError as err:
                    if not (guard and _code(err) == "EntityNotFoundException"):
                        raise AthenaQueryError(
                            "PARTITION_NOT_FOUND", f"Partition {values} of {db}.{name} not found"
                        ) from None
            return DdlResult()
        errors = self._add_partitions(db, name, table, specs)
        if errors and not guard:
            raise AthenaQueryError(
                "ALREADY_EXISTS", f"Partition already exists: {errors[0]['PartitionValues']}"
            )
        return DdlResult()

    def _add_partitions(
        self, db: str, name: str, table: dict[str, Any], specs: list[tuple[list[str], str]]
    ) -> list[dict[str, Any]]:
        descriptor = table["StorageDescriptor"]
        errors: list[dict[str, Any]] = []
        for start in range(0, len(specs), 100):  # BatchCreatePartition takes 100 at a time
            inputs = [
                {"Values": values, "StorageDescriptor": {**descriptor, "Location": location}}
                for values, location in specs[start : start + 100]
            ]
            response = self.glue.batch_create_partition(
                DatabaseName=db, TableName=name, PartitionInputList=inputs
            )
            errors += response.get("Errors", [])
        return errors

    def _msck_repair(self, statement: str, database: str | None) -> DdlResult:
        match = re.match(rf"MSCK\s+REPAIR\s+TABLE\s+{_TABLE}\s*$", statement, re.I)
        if match is None:
            raise _syntax(statement)
        db, name = _names(match.group(1), match.group(2), database)
        table = self.glue.get_table(DatabaseName=db, Name=name)["Table"]
        keys = [k["Name"] for k in table.get("PartitionKeys", [])]
        if not keys:
            return DdlResult()
        location = table["StorageDescriptor"]["Location"].rstrip("/")
        root = s3_uri_to_path(location, self.s3_root)
        known = {
            tuple(p["Values"])
            for page in self.glue.get_paginator("get_partitions").paginate(
                DatabaseName=db, TableName=name
            )
            for p in page["Partitions"]
        }
        found = []
        # Only folders named key=value for every key, in order, are partitions (as Hive's MSCK).
        pattern = "/".join(f"{k}=*" for k in keys)
        for folder in sorted(root.glob(pattern)) if root.is_dir() else []:
            relative = folder.relative_to(root)
            values = [part.split("=", 1)[1] for part in relative.parts]
            if folder.is_dir() and tuple(values) not in known:
                found.append((values, f"{location}/{relative.as_posix()}/"))
        self._add_partitions(db, name, table, found)
        rows = []
        if found:
            listed = "\t".join(
                f"{name}:{'/'.join(f'{k}={v}' for k, v in zip(keys, vals, strict=True))}"
                for vals, _ in found
            )
            rows.append(f"Partitions not in metastore:\t{listed}")
            rows += [
                f"Repair: Added partition to metastore {name}:"
                + "/".join(f"{k}={v}" for k, v in zip(keys, vals, strict=True))
                for vals, _ in found
            ]
        return DdlResult(rows, "_col0" if rows else None)

    def _show_partitions(self, statement: str, database: str | None) -> DdlResult:
        match = re.match(rf"SHOW\s+PARTITIONS\s+{_TABLE}\s*$", statement, re.I)
        if match is None:
            raise _syntax(statement)
        db, name = _names(match.group(1), match.group(2), database)
        table = self.glue.get_table(DatabaseName=db, Name=name)["Table"]
        keys = [k["Name"] for k in table.get("PartitionKeys", [])]
        rows = [
            "/".join(f"{k}={v}" for k, v in zip(keys, p["Values"], strict=True))
            for page in self.glue.get_paginator("get_partitions").paginate(
                DatabaseName=db, TableName=name
            )
            for p in page["Partitions"]
        ]
        return DdlResult(sorted(rows), "partition")


def _managed_table_refused(statement: str, database: str | None) -> DdlResult:
    raise AthenaQueryError(
        "NOT_SUPPORTED",
        "Only external table creation is supported: use CREATE EXTERNAL TABLE with a LOCATION, "
        "or CREATE TABLE … AS SELECT",
    )


def _apply_property(  # noqa: PLR0912 - one branch per clause of Hive's CREATE TABLE
    prop: exp.Expression, table_input: dict[str, Any], descriptor: dict[str, Any]
) -> None:
    serde = descriptor["SerdeInfo"]
    if isinstance(prop, exp.PartitionedByProperty):
        table_input["PartitionKeys"] = [
            _column(c) for c in prop.this.expressions if isinstance(c, exp.ColumnDef)
        ]
    elif isinstance(prop, exp.LocationProperty):
        descriptor["Location"] = prop.this.name
    elif isinstance(prop, exp.FileFormatProperty):
        if isinstance(prop.this, exp.InputOutputFormat):
            descriptor["InputFormat"] = prop.this.args["input_format"].name
            descriptor["OutputFormat"] = prop.this.args["output_format"].name
        else:
            fmt = prop.this.name.upper()
            if fmt not in _FORMATS and fmt != "JSON":
                raise AthenaQueryError(
                    "NOT_SUPPORTED", f"STORED AS {fmt} is not supported by the local Athena engine"
                )
            if fmt == "JSON":
                serde["SerializationLibrary"] = "org.openx.data.jsonserde.JsonSerDe"
            else:
                descriptor.update({k: v for k, v in _FORMATS[fmt].items() if k != "SerdeInfo"})
                if fmt == "PARQUET":
                    descriptor["SerdeInfo"] = dict(_FORMATS["PARQUET"]["SerdeInfo"])
    elif isinstance(prop, exp.RowFormatSerdeProperty):
        serde["SerializationLibrary"] = prop.this.name
        params = prop.args.get("serde_properties")
        serde["Parameters"] = {
            p.this.name: p.args["value"].name for p in (params.expressions if params else [])
        }
    elif isinstance(prop, exp.RowFormatDelimitedProperty):
        params = serde.setdefault("Parameters", {})
        for arg, key in (
            ("fields", "field.delim"),
            ("escaped", "escape.delim"),
            ("lines", "line.delim"),
            ("collection_items", "collection.delim"),
            ("map_keys", "mapkey.delim"),
        ):
            if prop.args.get(arg) is not None:
                params[key] = prop.args[arg].name
        params["serialization.format"] = params.get("field.delim", "1")
    elif type(prop) is exp.Property:  # TBLPROPERTIES ('k'='v')
        table_input["Parameters"][prop.name] = prop.args["value"].name
    # ExternalProperty and COMMENT need nothing more.


def _column(node: exp.ColumnDef) -> dict[str, Any]:
    hive_type = node.args["kind"].sql(dialect="hive").lower().replace(", ", ",")
    column = {"Name": node.name.lower(), "Type": hive_type.replace("text", "string")}
    for constraint in node.args.get("constraints") or []:
        if isinstance(constraint.kind, exp.CommentColumnConstraint):
            column["Comment"] = constraint.kind.this.name
    return column


def _qualified(table: exp.Table, database: str | None) -> tuple[str, str]:
    return _names(table.db or None, table.name, database)


def _names(first: str | None, second: str | None, database: str | None) -> tuple[str, str]:
    """``(database, table)`` from ``db.t`` or ``t`` (with the session database)."""
    if second is None:
        first, second = None, first
    db = first or database
    if not db:
        raise AthenaQueryError(
            "MISSING_SCHEMA_NAME",
            "line 1:1: Schema must be specified when session schema is not set",
        )
    return db.lower(), str(second).lower()


def _partition_values(text: str, keys: list[str], table: str) -> list[str]:
    pairs = {}
    for item in re.finditer(r"`?(\w+)`?\s*=\s*(?:'((?:[^']|'')*)'|\"([^\"]*)\"|([^,\s]+))", text):
        key = item.group(1).lower()
        value = next(g for g in item.groups()[1:] if g is not None)
        pairs[key] = value.replace("''", "'")
    if sorted(pairs) != sorted(keys):
        raise AthenaQueryError(
            "INVALID_PARTITION_VALUE",
            f"Partition spec {{{text.strip()}}} does not match the partition keys {keys} of {table}",
        )
    return [pairs[k] for k in keys]


def _partition_location(table: dict[str, Any], keys: list[str], values: list[str]) -> str:
    base = table["StorageDescriptor"]["Location"].rstrip("/")
    return base + "/" + "/".join(f"{k}={v}" for k, v in zip(keys, values, strict=True)) + "/"


def _trailing_pattern(statement: str) -> str | None:
    # SHOW TABLES/DATABASES [LIKE] 'regex': Hive patterns use * as wildcard and | for "or".
    match = re.search(r"'([^']*)'\s*$", statement)
    return match.group(1) if match else None


def _like(name: str, pattern: str | None) -> bool:
    if pattern is None:
        return True
    return any(fnmatchcase(name, p.strip().lower()) for p in pattern.split("|"))


def _syntax(statement: str) -> AthenaQueryError:
    return AthenaQueryError(
        "SYNTAX_ERROR", f"line 1:1: Could not parse DDL statement: {statement[:120]}"
    )


def _code(err: ClientError) -> str:
    return err.response.get("Error", {}).get("Code", "")


def _from_glue(err: ClientError) -> AthenaQueryError:
    code, message = _code(err), err.response.get("Error", {}).get("Message", str(err))
    if code == "EntityNotFoundException":
        kind = "SCHEMA_NOT_FOUND" if message.startswith("Database") else "TABLE_NOT_FOUND"
        return AthenaQueryError(kind, message)
    if code == "AlreadyExistsException":
        return AthenaQueryError("ALREADY_EXISTS", message)
    return AthenaQueryError("INVALID_INPUT", f"{code}: {message}")
