"""Dialect rules: rewrite a parsed Athena (Trino) query so DuckDB computes Trino's answer.

sqlglot translates most of Trino to DuckDB; the rules here fix what it leaves different, on the
AST (never on SQL text). Each rule cites the Trino documentation page it follows
(trinodb/trino ``docs/src/main/sphinx/functions/*.md``). What cannot be made faithful raises an
:class:`AthenaQueryError` naming the feature instead of returning a different answer.

Some rules call the ``athena_*`` macros in :data:`SUPPORT_MACROS`; DuckDB resolves their
overloads by argument type, which is how a rule can depend on a type unknown at translation
time (``date_add`` on a DATE stays a DATE). :func:`kedro_aws.local.athena_sql.prepare_connection`
installs them::

    >>> tree = parse_query("SELECT date_format(ts, '%Y %i') FROM t")
    >>> apply_dialect_rules(tree, "...").sql(dialect="duckdb")
    "SELECT STRFTIME(ts, '%Y %M') FROM t"
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.dialects.trino import Trino

from kedro_aws.local.athena_sql_errors import not_supported, user_error
from kedro_aws.local.athena_sql_patterns import (
    UnsupportedPattern,
    joda_to_strftime,
    mysql_to_strftime,
)

# Functions whose sqlglot parser rewrites arguments irreversibly (format strings converted,
# weights dropped): parse them as plain calls so the rules below see the original arguments.
_RAW_FUNCTIONS = frozenset(
    {"DATE_PARSE", "DATE_FORMAT", "FORMAT_DATETIME", "PARSE_DATETIME", "APPROX_PERCENTILE"}
)


class AthenaQueryDialect(Trino):
    """Athena engine v3 query syntax (Trino) with the raw functions above kept as written."""

    class Parser(Trino.Parser):
        FUNCTIONS = {k: v for k, v in Trino.Parser.FUNCTIONS.items() if k not in _RAW_FUNCTIONS}


def parse_query(sql: str) -> exp.Expression:
    """Parse one Athena query statement (SELECT / WITH / VALUES / CTAS / INSERT)."""
    return sqlglot.parse_one(sql, dialect=AthenaQueryDialect)


# Installed once per connection. DuckDB picks the overload from the argument types.
SUPPORT_MACROS = (
    # Trino: "date '2012-08-08' + interval '2' day" is the DATE 2012-08-10 and month arithmetic
    # clamps to the month end ("timestamp '2012-10-31 01:00' + interval '1' month" ->
    # 2012-11-30); DuckDB clamps too but returns a TIMESTAMP for a DATE. (datetime.md)
    "CREATE OR REPLACE TEMP MACRO athena_date_add(x DATE, iv INTERVAL) AS CAST(x + iv AS DATE),"
    " (x TIMESTAMP, iv INTERVAL) AS x + iv,"
    " (x TIMESTAMP WITH TIME ZONE, iv INTERVAL) AS x + iv,"
    " (x TIME, iv INTERVAL) AS x + iv",
    # Hours, minutes, seconds are not DATE fields in Trino: adding them to a DATE fails.
    "CREATE OR REPLACE TEMP MACRO athena_time_add(x DATE, iv INTERVAL, unit VARCHAR) AS"
    " error('ATHENA:INVALID_FUNCTION_ARGUMENT:''' || unit || ''' is not a valid DATE field'),"
    " (x TIMESTAMP, iv INTERVAL, unit VARCHAR) AS x + iv,"
    " (x TIMESTAMP WITH TIME ZONE, iv INTERVAL, unit VARCHAR) AS x + iv,"
    " (x TIME, iv INTERVAL, unit VARCHAR) AS x + iv",
    # regexp_extract: NULL when the pattern does not match, and NULL when the group did not
    # take part in the match (DuckDB gives '' for both). athena_regexp_group_missing (a
    # Python function, see prepare_connection) is only asked when DuckDB's answer is ''.
    # (regexp.md: "Finds the first occurrence ... and returns the capturing group number")
    "CREATE OR REPLACE TEMP MACRO athena_regexp_extract(s, p, g) AS"
    " CASE WHEN NOT regexp_matches(s, p) THEN NULL"
    " WHEN g = 0 OR regexp_extract(s, p, g) <> '' THEN regexp_extract(s, p, g)"
    " WHEN athena_regexp_group_missing(s, p, g) THEN NULL ELSE '' END",
    # a[i] on an array fails outside 1..cardinality(a), m[k] on a map fails for a missing key;
    # element_at returns NULL for both (array.md "The [] operator is used to access an element
    # of an array and is indexed starting from one"; map.md "subscript operator"; messages from
    # ArraySubscriptOperator.checkIndex and MapSubscriptOperator in trinodb/trino). The type of
    # `a` is only known to DuckDB: typeof() is constant for a query, and every branch binds for
    # lists and maps alike (TRY_CAST keeps a map key from being compared with a number; the
    # keys of a map are read through its JSON form, as contains(a, i) does not bind for a
    # list of lists).
    "CREATE OR REPLACE TEMP MACRO athena_subscript(a, i) AS CASE"
    " WHEN a IS NULL OR i IS NULL THEN NULL"
    " WHEN typeof(a) LIKE '%]' THEN CASE"
    " WHEN TRY_CAST(i AS BIGINT) = 0"
    " THEN error('ATHENA:INVALID_FUNCTION_ARGUMENT:SQL array indices start at 1')"
    " WHEN TRY_CAST(i AS BIGINT) < 0"
    " THEN error('ATHENA:INVALID_FUNCTION_ARGUMENT:Array subscript is negative: ' || i)"
    " WHEN TRY_CAST(i AS BIGINT) > cardinality(a) THEN error("
    "'ATHENA:INVALID_FUNCTION_ARGUMENT:Array subscript must be less than or equal to array"
    " length: ' || i || ' > ' || cardinality(a))"
    " ELSE a[i] END"
    " WHEN typeof(a) LIKE 'MAP(%'"
    " AND NOT list_contains(json_keys(to_json(a)), CAST(i AS VARCHAR))"
    " THEN error('ATHENA:INVALID_FUNCTION_ARGUMENT:Key not present in map: ' || i)"
    " ELSE a[i] END",
    "CREATE OR REPLACE TEMP MACRO athena_element_at(a, i) AS CASE"
    " WHEN typeof(a) LIKE '%]' AND TRY_CAST(i AS BIGINT) = 0"
    " THEN error('ATHENA:INVALID_FUNCTION_ARGUMENT:SQL array indices start at 1')"
    " ELSE a[i] END",
    # contains(array, x): NULL when x is not found and the array has NULL elements, or when x
    # is NULL (trinodb/trino operator/scalar/ArrayContains.java: "if (foundNull) return null").
    "CREATE OR REPLACE TEMP MACRO athena_contains(a, x) AS CASE"
    " WHEN a IS NULL OR x IS NULL THEN NULL WHEN list_contains(a, x) THEN true"
    " WHEN list_count(a) < len(a) THEN NULL ELSE false END",
    # Division: a double or real divisor of zero gives Infinity / -Infinity / NaN (Java's
    # IEEE division, DoubleOperators.divide); integer and decimal division by zero fail with
    # DIVISION_BY_ZERO (math.md). DuckDB's `//` fails for all types, so doubles and reals
    # divided by zero go through fdiv and back to their own type.
    "CREATE OR REPLACE TEMP MACRO athena_divide(a, b) AS CASE"
    " WHEN b = 0 AND typeof(a + b) IN ('DOUBLE', 'FLOAT')"
    " THEN cast_to_type(fdiv(a, b), a // b) ELSE a // b END",
    # CAST(x AS varchar): doubles and reals in Java's scientific form, timestamps with their
    # millisecond fraction (DoubleOperators/RealOperators.castToVarchar); other types cast as
    # DuckDB does. athena_varchar_of is athena_sql_types.varchar_of.
    "CREATE OR REPLACE TEMP MACRO athena_to_varchar(x) AS CASE"
    " WHEN typeof(x) IN ('DOUBLE', 'FLOAT', 'TIMESTAMP', 'TIMESTAMP_MS', 'TIMESTAMP_NS',"
    " 'TIMESTAMP WITH TIME ZONE')"
    " THEN athena_varchar_of(CAST(x AS VARCHAR), typeof(x)) ELSE CAST(x AS VARCHAR) END",
    # from_iso8601_timestamp keeps the zone it parsed ("2020-05-11 11:15:05.055 +01:00",
    # datetime.md); a DuckDB TIMESTAMPTZ holds only the instant, so a value that would be
    # shown, formatted or split into fields in another zone than UTC fails instead.
    "CREATE OR REPLACE TEMP MACRO athena_from_iso8601_timestamp(s) AS CASE"
    " WHEN regexp_matches(s, 'T.*[+-][0-9]{2}(:?[0-9]{2})?$')"
    " AND NOT regexp_matches(s, 'T.*[+-]00(:?00)?$')"
    " THEN error('ATHENA:NOT_SUPPORTED:from_iso8601_timestamp of a value with a zone other than"
    " UTC (' || s || ') is not supported by the local Athena engine: Athena keeps that zone in"
    " the value; compare it, or use to_unixtime, or give it in UTC')"
    " ELSE CAST(s AS TIMESTAMPTZ) END",
    # substr: positions start at 1, a negative start counts from the end; start 0 or before
    # the beginning selects nothing (DuckDB returns the whole string). (string.md)
    "CREATE OR REPLACE TEMP MACRO athena_substr(s, start) AS"
    " CASE WHEN start = 0 OR start < -length(s) THEN '' ELSE substring(s, start) END,"
    " (s, start, n) AS CASE WHEN n < 0 THEN"
    " error('ATHENA:INVALID_FUNCTION_ARGUMENT:Length must be greater than or equal to 0')"
    " WHEN start = 0 OR start < -length(s) THEN '' ELSE substring(s, start, n) END",
    # split_part: "If the index is larger than the number of fields, then null is returned";
    # field indexes start with 1 (DuckDB returns ''). (string.md)
    "CREATE OR REPLACE TEMP MACRO athena_split_part(s, d, i) AS CASE"
    " WHEN i < 1 THEN error('ATHENA:INVALID_FUNCTION_ARGUMENT:Index must be greater than zero')"
    " WHEN i > len(string_split(s, d)) THEN NULL ELSE split_part(s, d, i) END",
    # split(string, delimiter, limit): at most `limit` elements, the last one holds the rest;
    # limit must be positive. sqlglot drops the limit for DuckDB. (string.md)
    "CREATE OR REPLACE TEMP MACRO athena_split(s, d, lim) AS CASE"
    " WHEN lim < 1 THEN error('ATHENA:INVALID_FUNCTION_ARGUMENT:Limit must be positive')"
    " WHEN len(string_split(s, d)) <= lim THEN string_split(s, d)"
    " ELSE list_concat(string_split(s, d)[1:lim - 1],"
    " [array_to_string(string_split(s, d)[lim:], d)]) END",
    # json_extract_scalar: "The value referenced by json_path must be a scalar (boolean, number
    # or string)", otherwise NULL; DuckDB's ->> returns the JSON text of objects/arrays. (json.md)
    "CREATE OR REPLACE TEMP MACRO athena_json_extract_scalar(j, p) AS"
    " CASE WHEN json_type(j, p) IN ('OBJECT', 'ARRAY') THEN NULL ELSE j ->> p END",
)

# Trino functions DuckDB computes identically under another name or the same name, which
# sqlglot passes through untyped (exp.Anonymous). Anything else untyped is refused below.
_SAME_SEMANTICS = {
    "codepoint": "unicode",
    "map_values": "map_values",
    "map_entries": "map_entries",
    "every": "bool_and",
    "json_array_length": "json_array_length",
    "last_day_of_month": "last_day",
    "cardinality": "cardinality",
}

# Trino functions that exist in Athena but that the local engine does not emulate: refused
# with NOT_SUPPORTED rather than FUNCTION_NOT_FOUND so the message does not lie about Athena.
_KNOWN_TRINO_NOT_EMULATED = frozenset(
    """to_iso8601 from_iso8601_timestamp_nanos at_timezone with_timezone human_readable_seconds
    parse_duration regexp_position map_agg multimap_agg histogram zip zip_with array_union
    arrays_overlap json_size url_extract_host url_extract_path url_extract_parameter
    url_extract_protocol url_extract_query url_extract_fragment url_extract_port url_encode
    url_decode format approx_set merge numeric_histogram to_milliseconds word_stem
    luhn_check normalize hamming_distance translate soundex split_to_map
    split_to_multimap timezone_hour timezone_minute from_unixtime_nanos
    current_timezone to_base from_base width_bucket transform_keys transform_values map_filter
    map_concat map_zip_with ngrams combinations array_frequency all_match any_match none_match
    regexp_split""".split()
)

_SUB_DAY_UNITS = {"MILLISECOND", "SECOND", "MINUTE", "HOUR"}
# Interval units of Trino's date_add/date_diff (datetime.md, "Interval functions").
_INTERVAL_UNITS = {
    "MILLISECOND": ("to_milliseconds", 1),
    "SECOND": ("to_seconds", 1),
    "MINUTE": ("to_minutes", 1),
    "HOUR": ("to_hours", 1),
    "DAY": ("to_days", 1),
    "WEEK": ("to_weeks", 1),
    "MONTH": ("to_months", 1),
    "QUARTER": ("to_months", 3),
    "YEAR": ("to_years", 1),
}


def apply_dialect_rules(tree: exp.Expression, sql: str) -> exp.Expression:
    """Return ``tree`` rewritten so that DuckDB evaluates it with Trino's semantics.

    ``sql`` is the original text, used only to report positions in error messages.
    """
    # Children first (reversed pre-order), so a rule sees arguments the others already fixed.
    holder = exp.Paren(this=tree)
    for node in reversed(list(tree.walk(bfs=False))):
        new = _rewrite(node, sql)
        if new is not node:
            node.replace(new)
    return holder.this


def _rewrite(node: exp.Expression, sql: str) -> exp.Expression:  # noqa: PLR0911, PLR0912
    if isinstance(node, exp.Anonymous):
        return _rewrite_call(node, sql)
    if isinstance(node, exp.Extract):
        return _extract(node)
    if isinstance(node, exp.DateAdd):
        return _date_add(node, sql)
    if isinstance(node, exp.DateDiff):
        return _date_diff(node, sql)
    if isinstance(node, (exp.Add, exp.Sub)) and isinstance(node.expression, exp.Interval):
        return _interval_arithmetic(node, sql)
    if isinstance(node, exp.RegexpExtract):
        group = node.args.get("group") or exp.Literal.number(0)
        return _call("athena_regexp_extract", node.this, node.expression, group)
    if isinstance(node, exp.RegexpReplace):
        return _regexp_replace(node, sql)
    if isinstance(node, exp.JSONExtractScalar):
        return _call("athena_json_extract_scalar", node.this, node.expression)
    if isinstance(node, exp.Substring):
        args = [node.this, node.args.get("start") or exp.Literal.number(1)]
        if node.args.get("length") is not None:
            args.append(node.args["length"])
        return _call("athena_substr", *args)
    if isinstance(node, exp.SplitPart):
        return _call(
            "athena_split_part", node.this, node.args["delimiter"], node.args["part_index"]
        )
    if isinstance(node, exp.Split) and node.args.get("limit") is not None:
        return _call("athena_split", node.this, node.expression, node.args["limit"])
    if isinstance(node, exp.ArraySize):
        # cardinality() of arrays and maps; DuckDB's array_length rejects maps.
        return _call("cardinality", node.this)
    if isinstance(node, exp.Typeof):
        # Trino type names (integer, varchar, array(bigint) …), mapped in Python: see
        # athena_sql_types.trino_type_name and prepare_connection.
        return _call("athena_typeof", _call("typeof", node.this))
    if isinstance(node, exp.Bracket):
        return _subscript(node, sql)
    if isinstance(node, exp.ArrayContains):
        return _call("athena_contains", node.this, node.expression)
    if isinstance(node, exp.Div):
        return _divide(node)
    if isinstance(node, exp.Cast) and node.to.is_type(*_VARCHAR_TYPES):
        return _call("athena_to_varchar", node.this)
    if isinstance(node, exp.FromISO8601Timestamp):
        return _from_iso8601_timestamp(node)
    if isinstance(node, exp.Unnest):
        _check_unnest(node, sql)
    return node


_VARCHAR_TYPES = (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT)
_INSTANT_ONLY_PARENTS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.TimeToUnix)


def _subscript(node: exp.Bracket, sql: str) -> exp.Expression:
    if len(node.expressions) != 1:
        return node
    index = node.expressions[0]
    if node.args.get("safe"):  # element_at(a, i): sqlglot keeps the index as written
        _check_element_at_index(node, sql)
        return _call("athena_element_at", node.this, index)
    # a[i]: sqlglot stores integer literals 0-based (Trino's a[1] is Literal 0) and shifts
    # them back when it writes DuckDB's a[i]; the macro needs the index as written.
    (index,) = exp.apply_index_offset(node.this, [index], 1, dialect="duckdb")
    return _call("athena_subscript", node.this, index)


def _divide(node: exp.Div) -> exp.Expression:
    # A non-zero numeric literal divisor cannot divide by zero: keep DuckDB's `/` (which
    # prepare_connection makes integer division for integers), avoiding the macro's cost.
    divisor = node.expression
    if isinstance(divisor, exp.Literal) and not divisor.is_string and divisor.to_py() != 0:
        return node
    return _call("athena_divide", node.this, divisor)


def _from_iso8601_timestamp(node: exp.FromISO8601Timestamp) -> exp.Expression:
    # Comparisons and to_unixtime only see the instant, which DuckDB keeps whatever the zone.
    parent = node.parent
    while isinstance(parent, exp.Paren):
        parent = parent.parent
    if isinstance(parent, _INSTANT_ONLY_PARENTS):
        return node
    return _call("athena_from_iso8601_timestamp", node.this)


def _check_unnest(node: exp.Unnest, sql: str) -> None:
    if len(node.expressions) > 1:
        raise not_supported(sql, node, "UNNEST of several arrays at once")
    # UNNEST(map) AS t(k, v) and UNNEST(array(row(...))) AS t(a, b) expand into several
    # columns in Trino (unnest.md); DuckDB would give one column of structs.
    alias = node.args.get("alias")
    # (sqlglot moves the WITH ORDINALITY column to "offset", out of alias.columns.)
    if alias is not None and len(alias.columns) > 1:
        raise not_supported(
            sql, node, "UNNEST of a map or of an array of rows into several columns"
        )


def _call(name: str, *args: exp.Expression) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _literal_string(node: exp.Expression | None) -> str | None:
    return node.this if isinstance(node, exp.Literal) and node.is_string else None


def _rewrite_call(node: exp.Anonymous, sql: str) -> exp.Expression:
    name = node.name.lower()
    args = node.expressions
    if name in ("date_parse", "date_format", "format_datetime", "parse_datetime"):
        return _datetime_pattern_call(node, name, sql)
    if name == "approx_percentile":
        # approx_percentile(x, percentage[s]) only; the weighted forms have no DuckDB twin.
        if len(args) != 2:
            raise not_supported(sql, node, f"approx_percentile with {len(args)} arguments")
        return _call("approx_quantile", *args)
    if name in _SAME_SEMANTICS:
        return _call(_SAME_SEMANTICS[name], *args)
    if name.startswith("athena_") or name in ("strptime", "strftime", "typeof", "date_sub"):
        return node  # produced by the rules themselves
    if name in _KNOWN_TRINO_NOT_EMULATED:
        raise not_supported(sql, node, f"Function '{name}'")
    raise user_error("FUNCTION_NOT_FOUND", sql, node, f"Function '{name}' not registered")


def _datetime_pattern_call(node: exp.Anonymous, name: str, sql: str) -> exp.Expression:
    if len(node.expressions) != 2:
        raise user_error(
            "FUNCTION_NOT_FOUND",
            sql,
            node,
            f"Unexpected parameters for function {name}: expected 2, got {len(node.expressions)}",
        )
    value, pattern_node = node.expressions
    pattern = _literal_string(pattern_node)
    if pattern is None:
        raise not_supported(sql, node, f"{name} with a format that is not a string literal")
    convert = mysql_to_strftime if name in ("date_parse", "date_format") else joda_to_strftime
    try:
        duck_pattern = exp.Literal.string(convert(pattern))
    except UnsupportedPattern as err:
        raise not_supported(sql, pattern_node, f"{name} {err}") from None
    if name in ("date_format", "format_datetime"):
        return _call("strftime", value, duck_pattern)
    parsed = _call("strptime", value, duck_pattern)
    if name == "parse_datetime":
        # parse_datetime returns a timestamp with time zone, in the session zone (UTC on
        # Athena; prepare_connection sets TimeZone='UTC'). (datetime.md "Java date functions")
        return exp.cast(parsed, exp.DataType.build("TIMESTAMPTZ"))
    return parsed


def _extract(node: exp.Extract) -> exp.Expression:
    # Trino: EXTRACT(DOW/DAY_OF_WEEK) is day_of_week, ISO 1 (Monday)..7 (Sunday); YOW is the
    # ISO week year. DuckDB's DOW counts 0 (Sunday)..6. (datetime.md "Extraction function")
    field = node.this.name.upper() if isinstance(node.this, exp.Var) else ""
    if field in ("DOW", "DAY_OF_WEEK", "DAYOFWEEK"):
        node.set("this", exp.var("ISODOW"))
    elif field in ("YOW", "YEAR_OF_WEEK"):
        node.set("this", exp.var("ISOYEAR"))
    elif field in ("DOY", "DAY_OF_YEAR", "DAYOFYEAR"):
        node.set("this", exp.var("DOY"))
    return node


def _unit_name(node: exp.Expression, sql: str, unit: exp.Expression | None) -> str:
    name = (unit.name if unit is not None else "DAY").upper()
    name = name[:-1] if name.endswith("S") and name[:-1] in _INTERVAL_UNITS else name
    if name not in _INTERVAL_UNITS:
        raise user_error(
            "INVALID_FUNCTION_ARGUMENT", sql, node, f"'{name.lower()}' is not a valid unit"
        )
    return name


def _date_add(node: exp.DateAdd, sql: str) -> exp.Expression:
    # date_add(unit, value, timestamp) -> [same as input] (datetime.md "Interval functions").
    unit = _unit_name(node, sql, node.args.get("unit"))
    function, factor = _INTERVAL_UNITS[unit]
    amount = node.expression
    if factor != 1:
        amount = exp.Mul(this=exp.Literal.number(factor), expression=exp.paren(amount))
    return _add_interval(node.this, _call(function, amount), unit)


def _add_interval(value: exp.Expression, interval: exp.Expression, unit: str) -> exp.Expression:
    if unit in _SUB_DAY_UNITS:
        return _call("athena_time_add", value, interval, exp.Literal.string(unit.lower()))
    return _call("athena_date_add", value, interval)


def _interval_arithmetic(node: exp.Add | exp.Sub, sql: str) -> exp.Expression:
    interval = node.expression
    unit = _unit_name(node, sql, interval.args.get("unit"))
    if isinstance(node, exp.Sub):
        interval = exp.Neg(this=exp.paren(interval))
    return _add_interval(node.this, interval, unit)


def _date_diff(node: exp.DateDiff, sql: str) -> exp.Expression:
    # date_diff(unit, t1, t2) counts whole units elapsed from t1 to t2 (datetime.md:
    # date_diff('day', DATE '2020-03-01', DATE '2020-03-02') = 1); DuckDB's date_diff counts
    # unit boundaries crossed (Jan 31 -> Feb 1 is 1 month), its date_sub counts whole units.
    unit = _unit_name(node, sql, node.args.get("unit"))
    return _call("date_sub", exp.Literal.string(unit.lower()), node.expression, node.this)


_JAVA_GROUP = re.compile(r"\\(.)|\$(\d+)|\$\{(\w+)\}|(\$)|(.)", re.DOTALL)


def _regexp_replace(node: exp.RegexpReplace, sql: str) -> exp.Expression:
    # Trino replacement strings reference groups as $1 (Java); "\$" is a literal dollar.
    # RE2 (DuckDB) writes groups as \1 and a literal backslash as \\. (regexp.md)
    replacement = node.args.get("replacement")
    if replacement is None:
        replacement = exp.Literal.string("")
    text = _literal_string(replacement)
    if text is None:
        raise not_supported(sql, node, "regexp_replace with a replacement that is not a literal")
    out: list[str] = []
    for escaped, group, named, dollar, plain in _JAVA_GROUP.findall(text):
        if named:
            raise not_supported(sql, replacement, f"regexp_replace named group '${{{named}}}'")
        if dollar:
            raise user_error(
                "INVALID_FUNCTION_ARGUMENT", sql, replacement, "Illegal group reference"
            )
        if group:
            out.append(f"\\{group}")
        elif escaped:
            out.append("\\\\" if escaped == "\\" else escaped)
        else:
            out.append(plain)
    node.set("replacement", exp.Literal.string("".join(out)))
    node.set("modifiers", exp.Literal.string("g"))  # Trino replaces every match
    return node


def _check_element_at_index(node: exp.Bracket, sql: str) -> None:
    # element_at(array, 0) fails in Trino ("SQL array indices start at 1"); DuckDB gives NULL.
    # Only a literal index can be checked here; element_at keeps it as written (1-based).
    index = node.expressions[0] if node.expressions else None
    if isinstance(index, exp.Literal) and not index.is_string and index.to_py() == 0:
        raise user_error("INVALID_FUNCTION_ARGUMENT", sql, index, "SQL array indices start at 1")
