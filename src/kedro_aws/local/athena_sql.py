"""Run Athena (Trino) SQL on DuckDB with Athena's semantics.

The dialect core of the local Athena engine, free of S3 and Glue: it translates a query,
binds ``?`` execution parameters safely, resolves table names through a callback, runs the
query on a DuckDB connection and fails the way Athena fails (:class:`AthenaQueryError`)::

    >>> conn = duckdb.connect()
    >>> _ = conn.execute("CREATE VIEW sales AS SELECT 7 AS qty")
    >>> table = run_select(conn, "SELECT qty / 2 AS half, typeof(qty / 2) FROM db.sales",
    ...                    database="db", table_resolver=lambda db, name: name)
    >>> table.to_pylist(), athena_type_names(table.schema)
    ([{'half': 3, '_col1': 'integer'}], ['integer', 'varchar'])

The rules that keep Trino's semantics live in :mod:`kedro_aws.local.athena_sql_rules`, type
names and value rendering in :mod:`kedro_aws.local.athena_sql_types`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, ParseError, TokenError, UnsupportedError
from sqlglot.tokens import TokenType

from kedro_aws.local.athena_sql_errors import (
    AthenaQueryError,
    ErrorCategory,
    not_supported,
    offset_position,
    user_error,
)
from kedro_aws.local.athena_sql_rules import (
    SUPPORT_MACROS,
    AthenaQueryDialect,
    apply_dialect_rules,
)
from kedro_aws.local.athena_sql_types import (
    column_info,
    render_value,
    trino_type_name,
    varchar_of,
)

__all__ = [
    "AthenaQueryError",
    "ErrorCategory",
    "TableRef",
    "TableResolver",
    "TranslatedQuery",
    "athena_column_info",
    "athena_type_names",
    "bind_parameters",
    "classify",
    "prepare_connection",
    "render_rows",
    "render_value",
    "run_select",
    "translate",
]

DEFAULT_CATALOG = "awsdatacatalog"
ATHENA_TYPE_KEY = b"athena.type"

TableResolver = Callable[[str, str], "str | None"]
"""``(database, table) -> DuckDB FROM item`` (``read_parquet('…')``, a view name) or ``None``."""


@dataclass(frozen=True)
class TableRef:
    """A table a query reads, fully qualified the way Athena names it in errors."""

    catalog: str
    database: str
    table: str

    def __str__(self) -> str:
        return f"{self.catalog}.{self.database}.{self.table}"


@dataclass(frozen=True)
class TranslatedQuery:
    """One Athena statement, classified and (for queries) translated to DuckDB.

    Attributes:
        kind: ``SELECT`` (also WITH / VALUES / set operations), ``CREATE_TABLE_AS``,
            ``INSERT``, ``UNLOAD``, ``DDL`` or ``UTILITY`` (SHOW, DESCRIBE, EXPLAIN).
        statement_type: Athena's ``StatementType``: ``DML``, ``DDL`` or ``UTILITY``
            (CTAS is DDL, UNLOAD is DML).
        sql: DuckDB SQL of the query part (the SELECT of a CTAS/INSERT/UNLOAD); ``None`` for
            DDL/UTILITY statements, which the Athena client interprets itself.
        tables: tables the query reads (CTE names excluded).
        target: the table a CTAS/INSERT writes.
        location: the ``TO '…'`` of an UNLOAD.
        properties: the ``WITH (…)`` of a CTAS/UNLOAD as Python values
            (``{"format": "PARQUET", "partitioned_by": ["year"]}``).
        text: the Athena SQL after parameter binding.
    """

    kind: str
    statement_type: str
    sql: str | None
    tables: tuple[TableRef, ...] = ()
    target: TableRef | None = None
    location: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    text: str = ""


# --------------------------------------------------------------------------------------------
# Parameters


def bind_parameters(sql: str, parameters: Sequence[str] | None) -> str:
    """Replace each ``?`` with one ExecutionParameter, which must be a single SQL literal.

    Athena ExecutionParameters are strings holding literals (``'abc'``, ``42``,
    ``DATE '2024-01-01'``). Each is parsed, checked to be exactly one literal and re-generated
    from its syntax tree, so nothing but a literal ever reaches the query text::

        >>> bind_parameters("SELECT * FROM t WHERE d = ? AND n > ?", ["DATE '2024-01-01'", "2"])
        "SELECT * FROM t WHERE d = CAST('2024-01-01' AS DATE) AND n > 2"
    """
    parameters = list(parameters or [])
    try:
        tokens = AthenaQueryDialect().tokenize(sql)
    except TokenError as err:
        raise AthenaQueryError("SYNTAX_ERROR", f"line 1:1: {err}") from None
    marks = [t for t in tokens if t.token_type == TokenType.PLACEHOLDER and t.text == "?"]
    if len(marks) != len(parameters):
        raise AthenaQueryError(
            "INVALID_PARAMETER_USAGE",
            f"line 1:1: Incorrect number of parameters: expected {len(marks)} "
            f"but found {len(parameters)}",
        )
    out = sql
    for mark, value in reversed(list(zip(marks, parameters, strict=True))):
        literal = _parse_literal_parameter(value, parameters.index(value) + 1)
        out = out[: mark.start] + literal.sql(dialect=AthenaQueryDialect) + out[mark.end + 1 :]
    return out


_TYPED_LITERAL_TYPES = {
    exp.DataType.Type.DATE,
    exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIME,
    exp.DataType.Type.DECIMAL,
    exp.DataType.Type.DOUBLE,
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.INT,
    exp.DataType.Type.VARCHAR,
}


def _parse_literal_parameter(value: str, position: int) -> exp.Expression:
    def reject(why: str) -> AthenaQueryError:
        return AthenaQueryError(
            "INVALID_PARAMETER_USAGE",
            f"Execution parameter {position} must be a single SQL literal "
            f"('text', 42, DATE '2024-01-01'), {why}: {value!r}",
        )

    if not isinstance(value, str) or not value.strip():
        raise reject("got an empty value")
    try:
        statements = [s for s in sqlglot.parse(value, dialect=AthenaQueryDialect) if s]
    except (ParseError, TokenError):
        raise reject("it does not parse") from None
    if len(statements) != 1:
        raise reject("got several statements")
    node = statements[0]
    if _is_literal(node):
        return node
    raise reject(f"got {type(node).__name__.lower()} expression")


def _is_literal(node: exp.Expression) -> bool:
    if isinstance(node, (exp.Literal, exp.Boolean, exp.Null)):
        return True
    if isinstance(node, exp.Neg):
        return isinstance(node.this, exp.Literal) and not node.this.is_string
    if isinstance(node, exp.Cast):  # DATE '…', TIMESTAMP '…', DECIMAL '…'
        return (
            isinstance(node.this, exp.Literal)
            and node.this.is_string
            and node.to.this in _TYPED_LITERAL_TYPES
        )
    return False


# --------------------------------------------------------------------------------------------
# Translation

_UTILITY_WORDS = {"SHOW", "DESCRIBE", "DESC", "EXPLAIN", "USE"}
_DDL_WORDS = {"CREATE", "DROP", "ALTER", "MSCK"}


def translate(
    sql: str,
    *,
    database: str | None = None,
    catalog: str = DEFAULT_CATALOG,
    parameters: Sequence[str] | None = None,
    table_resolver: TableResolver | None = None,
) -> TranslatedQuery:
    """Classify one Athena statement and translate its query part to DuckDB SQL.

    Without ``table_resolver`` table names are left as written (useful to list what a query
    reads); with it each table becomes the DuckDB FROM item the resolver returns, and an
    unknown table fails with ``TABLE_NOT_FOUND``::

        >>> translate("SELECT 7 / 2 FROM t", database="db").tables
        (TableRef(catalog='awsdatacatalog', database='db', table='t'),)
    """
    text = bind_parameters(sql, parameters)
    first = _first_word(text)
    if first == "UNLOAD":
        return _translate_unload(text, database, catalog, table_resolver)
    if first in _UTILITY_WORDS:
        return TranslatedQuery("UTILITY", "UTILITY", None, text=text)
    if first in _DDL_WORDS and not _is_ctas(text):
        return TranslatedQuery("DDL", "DDL", None, text=text)

    tree = _parse(text)
    if isinstance(tree, exp.Create):
        query, kind, statement_type = tree.expression, "CREATE_TABLE_AS", "DDL"
        target = _table_ref(tree.this, database, catalog, text)
        properties = _properties(tree.args.get("properties"))
    elif isinstance(tree, exp.Insert):
        query, kind, statement_type = tree.expression, "INSERT", "DML"
        target = _table_ref(tree.this, database, catalog, text)
        properties = {}
    elif isinstance(tree, exp.Query):
        query, kind, statement_type, target, properties = tree, "SELECT", "DML", None, {}
    else:
        raise not_supported(text, tree, f"Statement {first}")
    duck_sql, tables = _translate_query(
        query, text, database, catalog, table_resolver, lowercase_names=kind != "SELECT"
    )
    return TranslatedQuery(
        kind, statement_type, duck_sql, tables, target, None, properties, text=text
    )


def classify(sql: str) -> tuple[str, str]:
    """``(kind, StatementType)`` of a statement without parsing it fully (see TranslatedQuery).

    Cheap enough for ``StartQueryExecution``, which reports ``StatementType`` from the start::

        >>> classify("CREATE TABLE t WITH (format = 'PARQUET') AS SELECT 1 AS x")
        ('CREATE_TABLE_AS', 'DDL')
    """
    first = _first_word(sql)
    if first == "UNLOAD":
        return "UNLOAD", "DML"
    if first in _UTILITY_WORDS:
        return "UTILITY", "UTILITY"
    if first in _DDL_WORDS:
        try:
            return ("CREATE_TABLE_AS", "DDL") if _is_ctas(sql) else ("DDL", "DDL")
        except TokenError:
            return "DDL", "DDL"
    if first == "INSERT":
        return "INSERT", "DML"
    return "SELECT", "DML"


def _first_word(text: str) -> str:
    match = re.match(
        r"\s*\(*\s*(\w+)", re.sub(r"^(\s*(--[^\n]*\n|/\*.*?\*/))*", "", text, flags=re.S)
    )
    return match[1].upper() if match else ""


def _is_ctas(text: str) -> bool:
    tokens = AthenaQueryDialect().tokenize(text)
    kinds = [t.token_type for t in tokens[:3]]
    return kinds[:2] == [TokenType.CREATE, TokenType.TABLE] and any(
        t.token_type == TokenType.ALIAS for t in tokens
    )


def _parse(text: str) -> exp.Expression:
    try:
        statements = sqlglot.parse(text, dialect=AthenaQueryDialect)
    except ParseError as err:
        raise _syntax_error(text, err) from None
    except TokenError as err:
        raise AthenaQueryError("SYNTAX_ERROR", f"line 1:1: {err}") from None
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise AthenaQueryError(
            "SYNTAX_ERROR", f"line 1:1: Only one sql statement is allowed. Got: {len(statements)}"
        )
    return statements[0]


def _syntax_error(text: str, err: ParseError) -> AthenaQueryError:
    # Trino: "line 1:8: mismatched input 'FROM'. Expecting: …". sqlglot reports the line and
    # the column where the offending token ends.
    info = err.errors[0] if err.errors else {}
    line, col, token = info.get("line", 1), info.get("col", 1), info.get("highlight", "")
    start = max(1, col - len(token) + 1) if token else col
    description = info.get("description", str(err)).split(". Line")[0]
    token_text = f"mismatched input '{token}'. " if token else ""
    return AthenaQueryError("SYNTAX_ERROR", f"line {line}:{start}: {token_text}{description}")


def _translate_query(
    query: exp.Expression,
    text: str,
    database: str | None,
    catalog: str,
    resolver: TableResolver | None,
    *,
    lowercase_names: bool = False,
) -> tuple[str, tuple[TableRef, ...]]:
    tables = _resolve_tables(query, text, database, catalog, resolver)
    query = apply_dialect_rules(query, text)
    _name_output_columns(query, lowercase=lowercase_names)
    try:
        duck_sql = query.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except UnsupportedError as err:
        raise not_supported(text, None, str(err).split("\n")[0]) from None
    return duck_sql, tables


def _cte_names(query: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}


def _table_ref(node: exp.Table, database: str | None, catalog: str, text: str) -> TableRef:
    db = node.db or database
    if not db:
        raise user_error(
            "MISSING_SCHEMA_NAME",
            text,
            node,
            "Schema must be specified when session schema is not set",
        )
    return TableRef((node.catalog or catalog).lower(), db.lower(), node.name.lower())


def _resolve_tables(
    query: exp.Expression,
    text: str,
    database: str | None,
    catalog: str,
    resolver: TableResolver | None,
) -> tuple[TableRef, ...]:
    ctes = _cte_names(query)
    refs: list[TableRef] = []
    for node in list(query.find_all(exp.Table)):
        if not isinstance(node.this, exp.Identifier) or (not node.db and node.name.lower() in ctes):
            continue  # CTE reference or table function
        ref = _table_ref(node, database, catalog, text)
        if ref not in refs:
            refs.append(ref)
        if resolver is None:
            continue
        source = resolver(ref.database, ref.table)
        if source is None:
            raise user_error("TABLE_NOT_FOUND", text, node, f"Table '{ref}' does not exist")
        node.replace(_from_item(source, node.alias or node.name))
    return tuple(refs)


def _from_item(source: str, alias: str) -> exp.Expression:
    select = sqlglot.parse_one(f"SELECT * FROM {source}", read="duckdb")
    item = select.args["from_"].this if "from_" in select.args else select.args["from"].this
    item.set("alias", exp.TableAlias(this=exp.to_identifier(alias)))
    return item


def _name_output_columns(query: exp.Expression, *, lowercase: bool) -> None:
    # Trino names an output column after a column reference, otherwise "_col<position>";
    # CTAS relies on these names ("Column name not specified" for _colN is the caller's check).
    # Identifiers are case-insensitive (DuckDB resolves `Id` to column `id` as Trino does),
    # but a SELECT's column heading keeps "the casing that you chose in the query", where
    # DuckDB reports the table's; tables written by CTAS/UNLOAD get lower-case names (Athena
    # user guide, "Names for tables, databases, and columns").
    select = query
    while isinstance(select, exp.SetOperation):
        select = select.this
    if not isinstance(select, exp.Select):
        return
    for position, projection in enumerate(select.expressions):
        if isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
        ):
            continue
        if isinstance(projection, exp.Alias):
            if lowercase and projection.alias != projection.alias.lower():
                projection.set("alias", exp.to_identifier(projection.alias.lower(), quoted=True))
            continue
        if isinstance(projection, exp.Column):
            name = projection.name.lower() if lowercase else projection.name
            if name != name.lower() or name != projection.name:
                projection.replace(exp.alias_(projection.copy(), name, quoted=True))
            continue
        projection.replace(exp.alias_(projection.copy(), f"_col{position}"))


def _properties(node: exp.Expression | None) -> dict[str, Any]:
    # sqlglot turns known keys (format, partitioned_by …) into dedicated Property classes.
    if node is None:
        return {}
    class_names = {cls: name for name, cls in exp.Properties.NAME_TO_PROPERTY.items()}
    result: dict[str, Any] = {}
    for prop in node.expressions:
        if type(prop) is exp.Property:
            name, value = prop.name, prop.args.get("value")
        else:
            name, value = class_names.get(type(prop), prop.key), prop.this
        result[str(name).lower()] = _python_value(value)
    return result


def _python_value(node: exp.Expression | None) -> Any:
    if node is None:
        return None
    if isinstance(node, exp.Literal):
        return node.this if node.is_string else int(node.this)
    if isinstance(node, (exp.Array, exp.Tuple, exp.Schema)):
        return [_python_value(e) for e in node.expressions]
    if isinstance(node, exp.Boolean):
        return node.this
    if isinstance(node, (exp.Var, exp.Identifier, exp.Column)):
        return node.name
    return node.sql(dialect=AthenaQueryDialect)


def _translate_unload(
    text: str, database: str | None, catalog: str, resolver: TableResolver | None
) -> TranslatedQuery:
    # UNLOAD (<query>) TO 's3://…' WITH (format = 'PARQUET', …); sqlglot has no UNLOAD node,
    # so the statement is split on its tokens and the parts parsed separately.
    tokens = AthenaQueryDialect().tokenize(text)
    if len(tokens) < 4 or tokens[1].token_type != TokenType.L_PAREN:
        raise AthenaQueryError("SYNTAX_ERROR", "line 1:8: mismatched input. Expecting: '('")
    depth, close = 0, None
    for i, token in enumerate(tokens[1:], start=1):
        depth += token.token_type == TokenType.L_PAREN
        depth -= token.token_type == TokenType.R_PAREN
        if depth == 0:
            close = i
            break
    rest = tokens[close + 1 :] if close else []
    if len(rest) < 2 or rest[0].text.upper() != "TO" or rest[1].token_type != TokenType.STRING:
        where = offset_position(text, rest[0].start) if rest else "1:1"
        raise AthenaQueryError("SYNTAX_ERROR", f"line {where}: mismatched input. Expecting: 'TO'")
    inner = text[tokens[1].end + 1 : tokens[close].start]
    query = _parse(inner)
    properties: dict[str, Any] = {}
    if len(rest) > 2:
        with_text = text[rest[2].start :]
        properties = _properties(
            _parse(f"CREATE TABLE x {with_text} AS SELECT 1").args.get("properties")
        )
    duck_sql, tables = _translate_query(
        query, inner, database, catalog, resolver, lowercase_names=True
    )
    return TranslatedQuery(
        "UNLOAD", "DML", duck_sql, tables, None, rest[1].text, properties, text=text
    )


# --------------------------------------------------------------------------------------------
# Execution


def prepare_connection(conn: duckdb.DuckDBPyConnection) -> None:
    """Configure ``conn`` for Athena semantics: settings, macros and the typeof mapping.

    Idempotent. ``integer_division`` makes ``/`` truncate for integers as Trino's does
    (math.md: "integer division performs truncation") while other types divide normally;
    the session time zone is UTC, as on Athena.
    """
    # Registering the functions and macros costs ~10 ms; the engine and run_select both call
    # this on the same connection, so the second call only checks they are there.
    if conn.execute("SELECT getvariable('kedro_aws_athena_prepared')").fetchall()[0][0]:
        return
    conn.execute("SET integer_division = true")
    conn.execute("SET TimeZone = 'UTC'")
    functions = (
        ("athena_typeof", trino_type_name, ["VARCHAR"], "VARCHAR"),
        ("athena_varchar_of", varchar_of, ["VARCHAR", "VARCHAR"], "VARCHAR"),
        (
            "athena_regexp_group_missing",
            _regexp_group_missing,
            ["VARCHAR", "VARCHAR", "BIGINT"],
            "BOOLEAN",
        ),
    )
    for name, function, parameters, result in functions:
        try:
            conn.create_function(name, function, parameters, result, side_effects=False)
        except (duckdb.CatalogException, duckdb.NotImplementedException):
            pass  # already registered on this connection
    for macro in SUPPORT_MACROS:
        conn.execute(macro)
    conn.execute("SET VARIABLE kedro_aws_athena_prepared = true")


def _regexp_group_missing(text: str, pattern: str, group: int) -> bool:
    # Whether group `group` took no part in the first match (Trino then returns NULL, DuckDB
    # ''). RE2 cannot tell, so the match is redone with Python's re, whose leftmost-first
    # matching gives the same groups for the syntax both accept.
    try:
        match = re.search(pattern, text)
    except re.error:
        raise ValueError(
            "ATHENA:NOT_SUPPORTED:regexp_extract of an empty group with the pattern "
            f"'{pattern}' is not supported by the local Athena engine"
        ) from None
    return match is not None and group <= (match.re.groups) and match.group(group) is None


def run_select(
    conn: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    database: str | None,
    table_resolver: TableResolver,
    parameters: Sequence[str] | None = None,
    catalog: str = DEFAULT_CATALOG,
) -> pa.Table:
    """Run one Athena query on ``conn`` and return its rows as Arrow.

    Each field carries its Trino type name in the metadata key ``athena.type``
    (read it with :func:`athena_type_names`). Failures raise :class:`AthenaQueryError`.
    """
    translated = translate(
        sql,
        database=database,
        catalog=catalog,
        parameters=parameters,
        table_resolver=table_resolver,
    )
    if translated.kind != "SELECT":
        raise AthenaQueryError(
            "NOT_SUPPORTED", f"line 1:1: run_select runs queries, got a {translated.kind} statement"
        )
    prepare_connection(conn)
    try:
        relation = conn.sql(translated.sql)
        types = [trino_type_name(str(t)) for t in relation.types]
        table = relation.to_arrow_table()
    except duckdb.Error as err:
        raise map_duckdb_error(err, translated.text) from None
    fields = [
        f.with_metadata({ATHENA_TYPE_KEY: trino_type.encode()})
        for f, trino_type in zip(table.schema, types, strict=True)
    ]
    return table.cast(pa.schema(fields)) if fields else table


def athena_type_names(schema: pa.Schema) -> list[str]:
    """Trino type names of a :func:`run_select` result (``integer``, ``array(varchar)`` …)."""
    names = []
    for f in schema:
        meta = f.metadata or {}
        names.append(
            meta[ATHENA_TYPE_KEY].decode() if ATHENA_TYPE_KEY in meta else _arrow_name(f.type)
        )
    return names


def _arrow_name(arrow_type: pa.DataType) -> str:
    # Fallback for tables that did not come from run_select: ask DuckDB to name the type.
    conn = duckdb.connect()
    empty = pa.table({"c": pa.array([], type=arrow_type)})
    return trino_type_name(str(conn.from_arrow(empty).types[0]))


def athena_column_info(schema: pa.Schema) -> list[dict[str, Any]]:
    """``ColumnInfo`` entries of ``GetQueryResults`` for a :func:`run_select` result."""
    return [column_info(f.name, t) for f, t in zip(schema, athena_type_names(schema), strict=True)]


def render_rows(table: pa.Table):
    """Yield each row as Athena renders it: a list of strings, ``None`` for NULL."""
    types = athena_type_names(table.schema)
    for row in table.to_pylist():
        yield [render_value(value, t) for value, t in zip(row.values(), types, strict=True)]


# --------------------------------------------------------------------------------------------
# Error mapping

_COLUMN_MISSING = (
    re.compile(r'Referenced column "([^"]+)" (?:not found|was not found)'),
    re.compile(r'Table "([^"]+)" does not have a column named "([^"]+)"'),
)


def map_duckdb_error(err: duckdb.Error, text: str) -> AthenaQueryError:  # noqa: PLR0911, PLR0912
    """Translate a DuckDB failure into Athena's error name and wording."""
    message = str(err)
    marker = re.search(r"ATHENA:([A-Z_]+):(.*)", message)
    if marker:
        return AthenaQueryError(marker[1], marker[2].strip())
    if isinstance(err, duckdb.ParserException):
        return AthenaQueryError("SYNTAX_ERROR", f"line 1:1: {_first_line(message)}")
    if "Division by zero" in message:
        return AthenaQueryError("DIVISION_BY_ZERO", "Division by zero")
    column = _missing_column(message)
    if column is not None:
        return AthenaQueryError(
            "COLUMN_NOT_FOUND",
            f"line {_word_position(text, column.split('.')[-1])}: Column '{column}' cannot be resolved",
        )
    function = re.search(
        r"(?:Scalar|Aggregate|Table) Function with name (\w+) does not exist", message
    )
    if function:
        return AthenaQueryError(
            "FUNCTION_NOT_FOUND",
            f"line {_word_position(text, function[1])}: Function '{function[1]}' not registered",
        )
    if isinstance(err, duckdb.CatalogException) and "Table with name" in message:
        name = re.search(r"Table with name (\S+) does not exist", message)
        return AthenaQueryError(
            "TABLE_NOT_FOUND", f"line 1:1: Table '{name[1] if name else '?'}' does not exist"
        )
    if isinstance(err, duckdb.ConversionException):
        cast = re.search(r"Could not convert string '(.*)' to (\w+)", message)
        detail = (
            f"Cannot cast '{cast[1]}' to {_DUCKDB_CAST_NAMES.get(cast[2], cast[2])}"
            if cast
            else _first_line(message)
        )
        return AthenaQueryError("INVALID_CAST_ARGUMENT", detail)
    if "UNNEST requires a single list or array" in message:
        # Trino unnests a map into key and value columns (unnest.md); DuckDB cannot.
        return AthenaQueryError(
            "NOT_SUPPORTED",
            f"line {_word_position(text, 'UNNEST')}: UNNEST of a map (or of a value that is not"
            " an array) is not supported by the local Athena engine",
        )
    if "No function matches" in message:
        return AthenaQueryError("FUNCTION_NOT_FOUND", _first_line(message))
    if isinstance(err, duckdb.BinderException):
        return AthenaQueryError("TYPE_MISMATCH", _first_line(message))
    if isinstance(err, duckdb.OutOfRangeException):
        return AthenaQueryError("NUMERIC_VALUE_OUT_OF_RANGE", _first_line(message))
    if isinstance(err, duckdb.InvalidInputException):
        return AthenaQueryError("INVALID_FUNCTION_ARGUMENT", _first_line(message))
    if isinstance(err, duckdb.IOException):
        return AthenaQueryError("HIVE_CURSOR_ERROR", _first_line(message), ErrorCategory.SYSTEM)
    return AthenaQueryError("GENERIC_INTERNAL_ERROR", _first_line(message), ErrorCategory.OTHER)


# DuckDB names physical types in cast errors; Trino names SQL types ("Cannot cast 'a' to INT").
_DUCKDB_CAST_NAMES = {"INT8": "TINYINT", "INT16": "SMALLINT", "INT32": "INT", "INT64": "BIGINT"}


def _missing_column(message: str) -> str | None:
    for pattern in _COLUMN_MISSING:
        match = pattern.search(message)
        if match:
            return ".".join(match.groups())
    return None


def _word_position(text: str, word: str) -> str:
    match = re.search(rf'(?<![\w."]){re.escape(word)}(?![\w"])', text, flags=re.IGNORECASE)
    return offset_position(text, match.start()) if match else "1:1"


def _first_line(message: str) -> str:
    return message.split("\n", maxsplit=1)[0].split(" Error: ", 1)[-1]
