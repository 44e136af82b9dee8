"""Turn a user's Athena SELECT into the statements a dataset runs: UNLOAD, CTAS, batches.

The query is parsed with sqlglot (Athena dialect), never edited as text, so rewriting keeps
its meaning:

- ``ORDER BY`` survives a multi-file UNLOAD/CTAS through an extra row-number column that the
  reader sorts on and drops (Athena writes files in parallel, with no global order);
- partition columns are moved to the end of the SELECT list, as UNLOAD/CTAS require;
- ``ExecutionParameters`` are rendered from Python values as single SQL literals.

Example:
>>> prepared = prepare_select("SELECT id, day FROM t ORDER BY id DESC", ["day"])
>>> prepared.order_column
'__kedro_aws_order'
>>> unload_statement(prepared.sql, "s3://b/tmp/1/", ["day"])[:7]
'UNLOAD '
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

DIALECT = "athena"
ORDER_COLUMN = "__kedro_aws_order"


class QueryRewriteError(ValueError):
    """The query cannot be run the way the dataset was asked to run it."""


@dataclass(frozen=True)
class PreparedSelect:
    """A SELECT ready to be wrapped in UNLOAD/CTAS."""

    sql: str
    columns: tuple[str, ...] | None  # output columns in order, None for SELECT *
    order_column: str | None  # sort on it after reading, then drop it


def parse_select(sql: str) -> exp.Query:
    """Parse exactly one SELECT (or WITH … SELECT, or set operation)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except ParseError as error:
        raise QueryRewriteError(f"Cannot parse the query: {error}") from error
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise QueryRewriteError(
            "The query must be a single SELECT statement (the dataset wraps it in UNLOAD or "
            f"CREATE TABLE AS itself); got {len(statements)} statement(s) starting with "
            f"{sql.strip().split(None, 1)[0]!r}."
        )
    return statements[0]


def output_columns(query: exp.Query) -> tuple[str, ...] | None:
    """Names of the query's output columns, or ``None`` when it selects ``*``."""
    if any(
        isinstance(s, exp.Star) or (isinstance(s, exp.Column) and s.is_star) for s in query.selects
    ):
        return None
    names = tuple(s.alias_or_name for s in query.selects)
    unnamed = [i + 1 for i, n in enumerate(names) if not n]
    if unnamed:
        # Athena: CTAS/UNLOAD need every column named ("Column name not specified").
        raise QueryRewriteError(
            f"Column(s) at position {unnamed} have no name; give them an alias (AS name): "
            "UNLOAD and CREATE TABLE AS need every column named."
        )
    return names


def prepare_select(sql: str, partition_cols: Sequence[str] = ()) -> PreparedSelect:
    """Keep ORDER BY through a multi-file write, and put partition columns last."""
    query = parse_select(sql)
    columns = output_columns(query)
    order = query.args.get("order")
    partition_cols = list(partition_cols)
    if columns is not None:
        missing = [c for c in partition_cols if c not in columns]
        if missing:
            raise QueryRewriteError(
                f"Partition column(s) {missing} are not in the query's output columns {list(columns)}."
            )
    if order is None:
        if (
            columns is None
            or not partition_cols
            or list(columns[-len(partition_cols) :]) == partition_cols
        ):
            return PreparedSelect(query.sql(dialect=DIALECT), columns, None)
        return PreparedSelect(_reselect(query, columns, partition_cols, None), columns, None)

    if columns is None and partition_cols:
        raise QueryRewriteError(
            "A partitioned query with ORDER BY must list its columns instead of SELECT *, so "
            "the order column can be placed before the partition columns."
        )
    keys = [_order_key(ordered, columns) for ordered in order.expressions]
    inner = query.copy()
    if inner.args.get("limit") is None and inner.args.get("offset") is None:
        inner.set("order", None)  # ORDER BY without LIMIT is meaningless in a subquery
    window = exp.Window(
        this=exp.RowNumber(),
        order=exp.Order(expressions=keys),
    )
    order_column = exp.alias_(window, ORDER_COLUMN, quoted=True)
    return PreparedSelect(
        _reselect(inner, columns, partition_cols, order_column), columns, ORDER_COLUMN
    )


def _order_key(ordered: exp.Ordered, columns: tuple[str, ...] | None) -> exp.Ordered:
    key = ordered.this
    if isinstance(key, exp.Literal) and key.is_int:
        if columns is None:
            raise QueryRewriteError("ORDER BY <position> needs the columns listed, not SELECT *.")
        position = int(key.name)
        if not 1 <= position <= len(columns):
            raise QueryRewriteError(f"ORDER BY position {position} is not a column of the query.")
        name = columns[position - 1]
    elif isinstance(key, exp.Column) and not key.table and (columns is None or key.name in columns):
        name = key.name
    else:
        raise QueryRewriteError(
            f"ORDER BY {key.sql(dialect=DIALECT)} is not an output column: to keep the order "
            "through UNLOAD/CTAS, order by output columns (add the expression to the SELECT "
            "list with an alias and order by that alias)."
        )
    return exp.Ordered(
        this=exp.column(name, table="q", quoted=True),
        desc=ordered.args.get("desc"),
        nulls_first=ordered.args.get("nulls_first"),
    )


def _reselect(
    inner: exp.Query,
    columns: tuple[str, ...] | None,
    partition_cols: list[str],
    extra: exp.Expression | None,
) -> str:
    if columns is None:
        selects: list[exp.Expression] = [exp.Star()]
    else:
        selects = [
            exp.column(c, table="q", quoted=True) for c in columns if c not in partition_cols
        ]
    if extra is not None:
        selects.append(extra)
    selects.extend(exp.column(c, table="q", quoted=True) for c in partition_cols)
    outer = exp.select(*selects).from_(exp.alias_(exp.Subquery(this=inner), "q", table=True))
    return outer.sql(dialect=DIALECT)


def unload_statement(
    select_sql: str, location: str, partition_cols: Sequence[str] = (), compression: str = "SNAPPY"
) -> str:
    """``UNLOAD (<select>) TO '<location>' WITH (format = 'PARQUET', ...)``."""
    options = ["format = 'PARQUET'", f"compression = {_string(compression)}"]
    if partition_cols:
        options.append(f"partitioned_by = {_array(partition_cols)}")
    return f"UNLOAD ({select_sql}) TO {_string(location)} WITH ({', '.join(options)})"


def ctas_statement(
    table: str,
    select_sql: str,
    location: str,
    partition_cols: Sequence[str] = (),
    compression: str = "SNAPPY",
) -> str:
    """``CREATE TABLE <table> WITH (format = 'PARQUET', external_location = ...) AS <select>``."""
    options = [
        "format = 'PARQUET'",
        f"external_location = {_string(location)}",
        f"write_compression = {_string(compression)}",
    ]
    if partition_cols:
        options.append(f"partitioned_by = {_array(partition_cols)}")
    return f"CREATE TABLE {table} WITH ({', '.join(options)}) AS {select_sql}"


def partition_values_query(select_sql: str, partition_cols: Sequence[str]) -> str:
    """``SELECT DISTINCT <partition cols> FROM (<select>)``, to plan write batches."""
    cols = ", ".join(_identifier(c) for c in partition_cols)
    return f"SELECT DISTINCT {cols} FROM ({select_sql}) AS q ORDER BY {cols}"


def restrict_to_partitions(
    select_sql: str, partition_cols: Sequence[str], values: Sequence[Sequence[Any]]
) -> str:
    """The query limited to the given partition value combinations (one write batch)."""
    columns = [exp.column(c, table="q", quoted=True) for c in partition_cols]
    conditions = []
    for combo in values:
        parts = [
            exp.Is(this=col, expression=exp.Null())
            if value is None
            else exp.EQ(this=col, expression=_literal(value))
            for col, value in zip(columns, combo, strict=True)
        ]
        conditions.append(exp.and_(*parts) if len(parts) > 1 else parts[0])
    where = exp.or_(*conditions) if len(conditions) > 1 else conditions[0]
    outer = (
        exp.select(exp.Star())
        .from_(exp.alias_(exp.Subquery(this=parse_select(select_sql)), "q", table=True))
        .where(where)
    )
    return outer.sql(dialect=DIALECT)


def execution_parameter(value: Any) -> str:
    """A Python value as the single SQL literal Athena's ``ExecutionParameters`` expect.

    Example:
    >>> [execution_parameter(v) for v in ("it's", 3, 2.5, True, None, dt.date(2024, 1, 31))]
    ["'it''s'", '3', '2.5', 'TRUE', 'NULL', "DATE '2024-01-31'"]
    """
    # Typed literals as Athena documents them for prepared statements (DATE 'YYYY-MM-DD'),
    # not the CAST(...) that sqlglot would render.
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ', timespec='milliseconds')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    return _literal(value).sql(dialect=DIALECT)


def _literal(value: Any) -> exp.Expression:  # noqa: PLR0911 - one return per SQL type
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, decimal.Decimal)):
        return exp.Literal.number(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise QueryRewriteError(f"Parameter {value!r} has no SQL literal.")
        return exp.Literal.number(repr(value))
    if isinstance(value, dt.datetime):
        return exp.cast(
            exp.Literal.string(value.isoformat(sep=" ", timespec="milliseconds")), "TIMESTAMP"
        )
    if isinstance(value, dt.date):
        return exp.cast(exp.Literal.string(value.isoformat()), "DATE")
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise QueryRewriteError(
        f"Parameter {value!r} of type {type(value).__name__} has no SQL literal; use str, int, "
        "float, bool, date, datetime, Decimal or None."
    )


def _string(value: str) -> str:
    return exp.Literal.string(value).sql(dialect=DIALECT)


def _array(names: Sequence[str]) -> str:
    return "ARRAY[" + ", ".join(_string(n) for n in names) + "]"


def _identifier(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect=DIALECT)
