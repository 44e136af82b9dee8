"""The local Athena SQL engine answers like Athena (Trino): each expected value below is the
result the Trino documentation gives (trinodb/trino docs/src/main/sphinx/functions/<page>.md,
cited per test), or Athena's documented error wording."""

from __future__ import annotations

import datetime as dt

import pytest

from kedro_aws.local.athena_sql import (
    AthenaQueryError,
    ErrorCategory,
    TableRef,
    athena_column_info,
    athena_type_names,
    bind_parameters,
    render_rows,
    render_value,
    run_select,
    translate,
)
from kedro_aws.local.athena_sql_types import java_double_string, trino_type_name

from .conftest import resolver


def failure(query, sql, parameters=None) -> AthenaQueryError:
    with pytest.raises(AthenaQueryError) as info:
        query(sql, parameters)
    return info.value


# --- translation and API ----------------------------------------------------------------------


def test_translate_lists_tables_and_excludes_ctes():
    translated = translate(
        "WITH c AS (SELECT * FROM other.t2) SELECT * FROM sales JOIN c ON true", database="db"
    )
    assert translated.kind == "SELECT" and translated.statement_type == "DML"
    assert set(translated.tables) == {
        TableRef("awsdatacatalog", "other", "t2"),
        TableRef("awsdatacatalog", "db", "sales"),
    }


def test_translate_ctas_and_unload_expose_query_target_and_properties():
    ctas = translate(
        "CREATE TABLE db.out WITH (format = 'PARQUET', partitioned_by = ARRAY['region'])"
        " AS SELECT id, region FROM sales",
        database="db",
    )
    # Athena reports CTAS as DDL, UNLOAD as DML (research/athena.md, engine fact 3).
    assert (ctas.kind, ctas.statement_type) == ("CREATE_TABLE_AS", "DDL")
    assert ctas.target == TableRef("awsdatacatalog", "db", "out")
    assert ctas.properties == {"format": "PARQUET", "partitioned_by": ["region"]}
    assert ctas.sql == "SELECT id, region FROM sales"

    unload = translate(
        "UNLOAD (SELECT id FROM sales) TO 's3://bucket/out/' WITH (format = 'PARQUET')",
        database="db",
    )
    assert (unload.kind, unload.statement_type) == ("UNLOAD", "DML")
    assert unload.location == "s3://bucket/out/"
    assert unload.properties == {"format": "PARQUET"}
    assert unload.tables == (TableRef("awsdatacatalog", "db", "sales"),)


def test_ddl_and_utility_statements_are_classified_not_translated():
    assert translate("SHOW TABLES").statement_type == "UTILITY"
    ddl = translate("CREATE EXTERNAL TABLE t (a int) STORED AS PARQUET LOCATION 's3://b/t/'")
    assert (ddl.kind, ddl.sql) == ("DDL", None)


def test_unnamed_columns_are_named_like_trino(query):
    # Trino names expressions _col<position>; column references keep their name.
    assert query("SELECT id, id + 1, region AS r FROM sales WHERE id = 1") == [
        {"id": 1, "_col1": 2, "r": "north"}
    ]


def test_result_schema_carries_trino_type_names(conn):
    table = run_select(
        conn,
        "SELECT id, region, day, ts, items, 1.5 AS d, CAST(1 AS bigint) AS b FROM sales",
        database="db",
        table_resolver=resolver,
    )
    assert athena_type_names(table.schema) == [
        "integer",
        "varchar",
        "date",
        "timestamp(3)",
        "array(integer)",
        "decimal(2,1)",
        "bigint",
    ]
    info = athena_column_info(table.schema)
    assert [c["Type"] for c in info] == [
        "integer",
        "varchar",
        "date",
        "timestamp",
        "array",
        "decimal",
        "bigint",
    ]
    assert (info[5]["Precision"], info[5]["Scale"]) == (2, 1)


# --- errors -------------------------------------------------------------------------------------


def test_syntax_error_names_position(query):
    err = failure(query, "SELECT id FROM sales WHERE (")
    assert err.error_type == "SYNTAX_ERROR"
    assert err.message.startswith("line 1:28:")
    assert err.category == ErrorCategory.USER


def test_table_not_found_is_worded_like_athena(query):
    err = failure(query, "SELECT * FROM missing")
    assert (
        str(err) == "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.db.missing' does not exist"
    )


def test_column_not_found_is_worded_like_athena(query):
    err = failure(query, "SELECT nope FROM sales")
    assert str(err) == "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved"


def test_unknown_function_is_function_not_found(query):
    err = failure(query, "SELECT foo(id) FROM sales")
    assert str(err) == "FUNCTION_NOT_FOUND: line 1:8: Function 'foo' not registered"


def test_trino_function_not_emulated_is_not_supported(query):
    err = failure(query, "SELECT to_iso8601(day) FROM sales")
    assert err.error_type == "NOT_SUPPORTED"
    assert "Function 'to_iso8601'" in err.message and err.message.startswith("line 1:8:")


def test_invalid_cast_argument(query):
    err = failure(query, "SELECT CAST('abc' AS integer)")
    assert str(err) == "INVALID_CAST_ARGUMENT: Cannot cast 'abc' to INT"


def test_missing_schema(conn):
    with pytest.raises(AthenaQueryError, match="MISSING_SCHEMA_NAME"):
        run_select(conn, "SELECT * FROM sales", database=None, table_resolver=resolver)


# --- parameters ---------------------------------------------------------------------------------


def test_parameters_bind_literals_in_order(query):
    rows = query(
        "SELECT id FROM sales WHERE region = ? AND day >= ? AND id < ?",
        ["'south'", "DATE '2024-03-01'", "10"],
    )
    assert rows == [{"id": 2}]


@pytest.mark.parametrize(
    "value", ["1; DROP TABLE x", "1 OR 1=1", "id", "(SELECT 1)", "", "'a' || 'b'"]
)
def test_parameters_that_are_not_one_literal_are_rejected(value):
    with pytest.raises(AthenaQueryError) as info:
        bind_parameters("SELECT * FROM t WHERE a = ?", [value])
    assert info.value.error_type == "INVALID_PARAMETER_USAGE"
    assert "single SQL literal" in info.value.message


def test_parameter_count_must_match():
    with pytest.raises(AthenaQueryError, match="expected 1 but found 2"):
        bind_parameters("SELECT ?", ["1", "2"])


def test_parameter_string_cannot_escape_its_quotes(query):
    # The literal is re-generated from its syntax tree: quotes stay inside the string.
    assert query("SELECT id FROM sales WHERE region = ?", ["'x'' OR ''1''=''1'"]) == []


# --- arithmetic (math.md: "/ Division (integer division performs truncation)") ---------------


def test_integer_division_truncates_toward_zero(scalar):
    assert scalar("SELECT 7 / 2") == 3
    assert scalar("SELECT -7 / 2") == -3
    assert scalar("SELECT typeof(7 / 2)") == "integer"
    assert scalar("SELECT 7e0 / 2") == 3.5


def test_modulus_sign_follows_dividend(scalar):
    assert scalar("SELECT -7 % 3") == -1
    assert scalar("SELECT 7 % -3") == 1


def test_division_by_zero_fails(query):
    assert failure(query, "SELECT id / 0 FROM sales").error_type == "DIVISION_BY_ZERO"
    assert failure(query, "SELECT id % 0 FROM sales").error_type == "DIVISION_BY_ZERO"


# --- date and time (datetime.md) ---------------------------------------------------------------


def test_date_parse_uses_mysql_specifiers(scalar):
    # datetime.md: date_parse('2022/10/20/05', '%Y/%m/%d/%H') -> 2022-10-20 05:00:00.000
    assert scalar("SELECT date_parse('2022/10/20/05', '%Y/%m/%d/%H')") == dt.datetime(
        2022, 10, 20, 5
    )
    # %i is minutes, %s seconds in MySQL patterns
    assert scalar("SELECT date_parse('2022-10-20 05:10:07', '%Y-%m-%d %H:%i:%s')") == (
        dt.datetime(2022, 10, 20, 5, 10, 7)
    )


def test_date_format_uses_mysql_specifiers(scalar):
    # datetime.md: date_format(TIMESTAMP '2022-10-20 05:10:00', '%m-%d-%Y %H') -> 10-20-2022 05
    assert scalar("SELECT date_format(TIMESTAMP '2022-10-20 05:10:00', '%m-%d-%Y %H')") == (
        "10-20-2022 05"
    )
    assert scalar("SELECT date_format(TIMESTAMP '2022-10-20 05:10:00', '%i %W %M')") == (
        "10 Thursday October"
    )


def test_date_format_specifier_trino_does_not_support_fails(query):
    err = failure(query, "SELECT date_format(ts, '%U') FROM sales")
    assert err.error_type == "NOT_SUPPORTED" and "'%U'" in err.message


def test_format_and_parse_datetime_use_joda_patterns(scalar):
    assert (
        scalar(
            "SELECT format_datetime(TIMESTAMP '2022-10-20 05:10:00.123', 'yyyy-MM-dd HH:mm:ss.SSS')"
        )
        == "2022-10-20 05:10:00.123"
    )
    assert scalar("SELECT format_datetime(DATE '2024-01-07', 'EEEE d MMMM yy')") == (
        "Sunday 7 January 24"
    )
    # parse_datetime -> timestamp with time zone (session zone UTC on Athena)
    assert scalar("SELECT parse_datetime('20/10/2022', 'dd/MM/yyyy')") == dt.datetime(
        2022, 10, 20, tzinfo=dt.timezone.utc
    )
    assert scalar("SELECT typeof(parse_datetime('2022', 'yyyy'))") == "timestamp(3) with time zone"


def test_unsupported_joda_letter_fails(query):
    err = failure(query, "SELECT format_datetime(ts, 'yyyy G') FROM sales")
    assert err.error_type == "NOT_SUPPORTED" and "'G'" in err.message


def test_day_of_week_is_iso(scalar):
    # datetime.md: day_of_week "ranges from 1 (Monday) to 7 (Sunday)"; 2024-01-07 is a Sunday
    assert scalar("SELECT day_of_week(DATE '2024-01-07')") == 7
    assert scalar("SELECT dow(DATE '2024-01-08')") == 1
    assert scalar("SELECT extract(DOW FROM DATE '2024-01-07')") == 7


def test_date_add_units_and_month_end_clamping(scalar):
    # datetime.md: date_add('second', 86, TIMESTAMP '2020-03-01 00:00:00') -> 2020-03-01 00:01:26
    assert scalar("SELECT date_add('second', 86, TIMESTAMP '2020-03-01 00:00:00')") == (
        dt.datetime(2020, 3, 1, 0, 1, 26)
    )
    # datetime.md: timestamp '2012-10-31 01:00' + interval '1' month -> 2012-11-30 01:00:00.000
    assert scalar("SELECT TIMESTAMP '2012-10-31 01:00' + INTERVAL '1' MONTH") == dt.datetime(
        2012, 11, 30, 1
    )
    # date_add returns [same as input]: a DATE stays a DATE
    assert scalar("SELECT date_add('month', 1, DATE '2024-01-31')") == dt.date(2024, 2, 29)
    assert scalar("SELECT typeof(date_add('day', 1, DATE '2024-01-31'))") == "date"
    assert scalar("SELECT date_add('quarter', 1, DATE '2024-11-30')") == dt.date(2025, 2, 28)
    # datetime.md: date '2012-08-08' - interval '2' day -> 2012-08-06
    assert scalar("SELECT DATE '2012-08-08' - INTERVAL '2' DAY") == dt.date(2012, 8, 6)


def test_date_add_of_hours_to_a_date_fails(query):
    err = failure(query, "SELECT date_add('hour', 1, day) FROM sales")
    assert str(err) == "INVALID_FUNCTION_ARGUMENT: 'hour' is not a valid DATE field"


def test_date_diff_counts_whole_units(scalar):
    # datetime.md: date_diff('day', DATE '2020-03-01', DATE '2020-03-02') -> 1
    assert scalar("SELECT date_diff('day', DATE '2020-03-01', DATE '2020-03-02')") == 1
    # datetime.md: date_diff('second', ..'2020-06-01 12:30:45.000', ..'2020-06-02 12:30:45.123') -> 86400
    assert (
        scalar(
            "SELECT date_diff('second', TIMESTAMP '2020-06-01 12:30:45.000',"
            " TIMESTAMP '2020-06-02 12:30:45.123')"
        )
        == 86400
    )
    # Jan 31 -> Feb 1 is not a whole month (DuckDB's date_diff would say 1)
    assert scalar("SELECT date_diff('month', DATE '2024-01-31', DATE '2024-02-01')") == 0


def test_from_iso8601(scalar):
    value = scalar("SELECT from_iso8601_timestamp('2020-05-11T11:15:05.055Z')")
    assert value == dt.datetime(2020, 5, 11, 11, 15, 5, 55000, tzinfo=dt.timezone.utc)
    assert scalar("SELECT from_iso8601_date('2020-05-11')") == dt.date(2020, 5, 11)
    assert scalar("SELECT typeof(from_iso8601_timestamp('2020-05-11'))") == (
        "timestamp(3) with time zone"
    )


# --- regular expressions (regexp.md) ------------------------------------------------------------


def test_regexp_extract_group_and_no_match(scalar):
    # regexp.md: regexp_extract('1a 2b 14m', '(\d+)([a-z]+)', 2) -> 'a'
    assert scalar(r"SELECT regexp_extract('1a 2b 14m', '(\d+)([a-z]+)', 2)") == "a"
    assert scalar(r"SELECT regexp_extract('1a 2b 14m', '\d+')") == "1"
    assert scalar("SELECT regexp_extract('abc', 'x')") is None


def test_regexp_extract_all(scalar):
    # regexp.md: regexp_extract_all('1a 2b 14m', '(\d+)([a-z]+)', 2) -> ['a', 'b', 'm']
    assert scalar(r"SELECT regexp_extract_all('1a 2b 14m', '(\d+)([a-z]+)', 2)") == ["a", "b", "m"]
    assert scalar(r"SELECT regexp_extract_all('1a 2b 14m', '\d+')") == ["1", "2", "14"]


def test_regexp_like_is_contains(scalar):
    # regexp.md: regexp_like('1a 2b 14m', '\d+b') -> true
    assert scalar(r"SELECT regexp_like('1a 2b 14m', '\d+b')") is True


def test_regexp_replace_dollar_group_references(scalar):
    # regexp.md: regexp_replace('1a 2b 14m', '(\d+)([ab]) ', '3c$2 ') -> '3ca 3cb 14m'
    assert scalar(r"SELECT regexp_replace('1a 2b 14m', '(\d+)([ab]) ', '3c$2 ')") == "3ca 3cb 14m"
    # regexp.md: regexp_replace('1a 2b 14m', '\d+[ab] ') -> '14m'
    assert scalar(r"SELECT regexp_replace('1a 2b 14m', '\d+[ab] ')") == "14m"
    # "\$" is a literal dollar sign
    assert scalar(r"SELECT regexp_replace('a1', '(\d)', '\$$1')") == "a$1"


# --- aggregates, arrays, maps, unnest ----------------------------------------------------------


def test_approx_functions(query):
    (row,) = query(
        "SELECT approx_distinct(region) AS d, approx_percentile(id, 0.5) AS p FROM sales"
    )
    assert row["d"] == 2 and row["p"] in (1, 2)


def test_weighted_approx_percentile_is_refused(query):
    err = failure(query, "SELECT approx_percentile(id, 1, 0.5) FROM sales")
    assert err.error_type == "NOT_SUPPORTED" and "approx_percentile" in err.message


def test_arrays_are_one_based(scalar, query):
    # array.md: subscripts and element_at start at 1; element_at counts negatives from the end
    assert scalar("SELECT ARRAY[10, 20, 30][1]") == 10
    assert scalar("SELECT element_at(ARRAY[10, 20, 30], -1)") == 30
    assert scalar("SELECT element_at(ARRAY[10, 20, 30], 5)") is None
    assert scalar("SELECT cardinality(ARRAY[10, 20, 30])") == 3
    assert scalar("SELECT contains(ARRAY[10, 20, 30], 20)") is True
    err = failure(query, "SELECT element_at(ARRAY[1], 0)")
    assert str(err) == "INVALID_FUNCTION_ARGUMENT: line 1:29: SQL array indices start at 1"


def test_maps(scalar):
    assert scalar("SELECT element_at(MAP(ARRAY['a'], ARRAY[1]), 'a')") == 1
    assert scalar("SELECT element_at(MAP(ARRAY['a'], ARRAY[1]), 'b')") is None
    assert scalar("SELECT cardinality(MAP(ARRAY['a', 'b'], ARRAY[1, 2]))") == 2
    assert scalar("SELECT typeof(MAP(ARRAY['a'], ARRAY[1]))") == "map(varchar, integer)"


def test_unnest_with_ordinality(query):
    rows = query(
        "SELECT id, x, n FROM sales CROSS JOIN UNNEST(items) WITH ORDINALITY AS u(x, n)"
        " ORDER BY id, n"
    )
    assert rows == [
        {"id": 1, "x": 1, "n": 1},
        {"id": 1, "x": 2, "n": 2},
        {"id": 1, "x": 3, "n": 3},
        {"id": 2, "x": 4, "n": 1},
    ]


def test_unnest_of_several_arrays_is_refused(query):
    err = failure(query, "SELECT * FROM sales CROSS JOIN UNNEST(items, items) AS u(a, b)")
    assert err.error_type == "NOT_SUPPORTED" and "UNNEST" in err.message


# --- casts, json, strings, types, NULLs --------------------------------------------------------


def test_try_cast(scalar):
    assert scalar("SELECT try_cast('abc' AS integer)") is None
    assert scalar("SELECT try_cast('42' AS integer)") == 42


def test_json_extract_and_scalar(scalar):
    assert scalar("""SELECT json_extract('{"a": {"b": 1}}', '$.a')""") == '{"b":1}'
    assert scalar("""SELECT typeof(json_extract('{"a": 1}', '$.a'))""") == "json"
    assert scalar("""SELECT json_extract_scalar('{"a": "x"}', '$.a')""") == "x"
    # json.md: the value must be a scalar, otherwise NULL
    assert scalar("""SELECT json_extract_scalar('{"a": {"b": 1}}', '$.a')""") is None


def test_string_functions(scalar):
    # string.md: strpos is 1-based, 0 when not found
    assert scalar("SELECT strpos('abc', 'c')") == 3
    assert scalar("SELECT strpos('abc', 'x')") == 0
    assert scalar("SELECT substr('abcde', 2, 3)") == "bcd"
    assert scalar("SELECT substr('abcde', -2)") == "de"
    assert scalar("SELECT substr('abcde', 0)") == ""
    assert scalar("SELECT split('a,b,c', ',')") == ["a", "b", "c"]
    # string.md: split with limit, "The last element in the array always contain everything left"
    assert scalar("SELECT split('a,b,c', ',', 2)") == ["a", "b,c"]
    # string.md: split_part "If the index is larger than the number of fields, then null"
    assert scalar("SELECT split_part('a,b', ',', 2)") == "b"
    assert scalar("SELECT split_part('a,b', ',', 3)") is None
    assert scalar("SELECT length('héllo')") == 5
    # string.md: lpad/rpad truncate when size is less than the length
    assert scalar("SELECT lpad('abc', 5, 'x')") == "xxabc"
    assert scalar("SELECT rpad('abc', 2, 'x')") == "ab"


def test_typeof_returns_trino_names(scalar):
    assert scalar("SELECT typeof(1)") == "integer"
    assert scalar("SELECT typeof(CAST(1 AS bigint))") == "bigint"
    assert scalar("SELECT typeof(1e0)") == "double"
    assert scalar("SELECT typeof('a')") == "varchar"
    assert scalar("SELECT typeof(DATE '2024-01-01')") == "date"
    assert scalar("SELECT typeof(date_parse('2024', '%Y'))") == "timestamp(3)"
    assert scalar("SELECT typeof(ARRAY[1, 2])") == "array(integer)"
    assert scalar("SELECT typeof(CAST(ROW(1, 'a') AS ROW(x integer, y varchar)))") == (
        "row(x integer, y varchar)"
    )


def test_null_handling(query, scalar):
    assert scalar("SELECT concat('a', NULL)") is None
    assert scalar("SELECT 'a' || NULL") is None
    assert scalar("SELECT NULL = NULL") is None
    # Trino sorts NULLs last in both directions by default
    assert [r["qty"] for r in query("SELECT qty FROM sales ORDER BY qty DESC")] == [7, None]
    assert [r["qty"] for r in query("SELECT qty FROM sales ORDER BY qty")] == [7, None]


# --- rendering -----------------------------------------------------------------------------------


def test_render_values_as_athena_does():
    assert render_value(None, "varchar") is None
    assert render_value(True, "boolean") == "true"
    assert render_value(dt.datetime(2024, 1, 2, 3, 4, 5), "timestamp(3)") == (
        "2024-01-02 03:04:05.000"
    )
    assert render_value(dt.date(2024, 1, 2), "date") == "2024-01-02"
    assert render_value([1, None], "array(integer)") == "[1, null]"
    assert render_value([("a", 1)], "map(varchar, integer)") == "{a=1}"
    assert render_value({"x": 1, "y": "b"}, "row(x integer, y varchar)") == "{x=1, y=b}"
    assert render_value(b"ab", "varbinary") == "61 62"


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.5, "1.5"), (100.0, "100.0"), (1e7, "1.0E7"), (1.2345e-5, "1.2345E-5"), (0.001, "0.001")],
)
def test_doubles_render_like_java(value, text):
    assert java_double_string(value) == text


def test_render_rows_of_a_result(conn):
    table = run_select(
        conn,
        "SELECT id, ts, items, qty FROM sales ORDER BY id",
        database="db",
        table_resolver=resolver,
    )
    assert list(render_rows(table)) == [
        ["1", "2024-01-02 03:04:05.123", "[1, 2, 3]", "7"],
        ["2", "2024-02-29 23:59:59.000", "[4]", None],
    ]


def test_trino_type_name_of_nested_duckdb_types():
    assert trino_type_name("MAP(VARCHAR, INTEGER[])") == "map(varchar, array(integer))"
    assert trino_type_name("HUGEINT") == "bigint"
    assert trino_type_name("TIMESTAMP WITH TIME ZONE") == "timestamp(3) with time zone"


# --- rules that used to give a silently different answer ---------------------------------------


def test_from_iso8601_timestamp_with_another_zone_fails_unless_only_the_instant_is_used(
    query, scalar
):
    # datetime.md: from_iso8601_timestamp('2020-05-11T11:15:05.055+01:00') ->
    # 2020-05-11 11:15:05.055 +01:00. The local value cannot carry +01:00, so showing it fails.
    err = failure(query, "SELECT from_iso8601_timestamp('2020-05-11T11:15:05.055+01:00')")
    assert err.error_type == "NOT_SUPPORTED"
    assert "from_iso8601_timestamp" in err.message and "+01:00" in err.message
    err = failure(query, "SELECT hour(from_iso8601_timestamp('2020-05-11T11:15:05+01:00'))")
    assert err.error_type == "NOT_SUPPORTED"  # Trino: 11, the hour in the parsed zone
    # The instant is the same in both engines: comparisons and to_unixtime are kept.
    assert scalar(
        "SELECT from_iso8601_timestamp('2020-05-11T11:15:05+01:00')"
        " = from_iso8601_timestamp('2020-05-11T10:15:05Z')"
    )
    assert scalar("SELECT to_unixtime(from_iso8601_timestamp('1970-01-01T01:00:00+01:00'))") == 0
    assert scalar("SELECT from_iso8601_timestamp('2020-05-11T11:15:05+00:00')") == dt.datetime(
        2020, 5, 11, 11, 15, 5, tzinfo=dt.timezone.utc
    )


def test_array_subscript_out_of_range_fails(query, scalar):
    # array.md, element_at: "the function returns NULL when accessing an index larger than
    # array length, whereas the subscript operator would fail in such a case". Messages and
    # error type from trinodb/trino operator/scalar/ArraySubscriptOperator.java (checkIndex).
    assert scalar("SELECT items[3] FROM sales WHERE id = 1") == 3
    err = failure(query, "SELECT items[5] FROM sales WHERE id = 1")
    assert str(err) == (
        "INVALID_FUNCTION_ARGUMENT: Array subscript must be less than or equal to array"
        " length: 5 > 3"
    )
    assert str(failure(query, "SELECT ARRAY[1, 2][0]")) == (
        "INVALID_FUNCTION_ARGUMENT: SQL array indices start at 1"
    )
    assert str(failure(query, "SELECT ARRAY[1, 2][-1]")) == (
        "INVALID_FUNCTION_ARGUMENT: Array subscript is negative: -1"
    )
    assert scalar("SELECT ARRAY[ARRAY[1, 2]][1][2]") == 2
    assert scalar("SELECT element_at(items, 5) FROM sales WHERE id = 1") is None
    # element_at with index 0 fails (ArrayElementAtFunction), also when the index is computed
    err = failure(query, "SELECT element_at(items, id - 1) FROM sales WHERE id = 1")
    assert str(err) == "INVALID_FUNCTION_ARGUMENT: SQL array indices start at 1"


def test_map_subscript_of_missing_key_fails(query, scalar):
    # map.md: "The [] operator is used to retrieve the value corresponding to a given key
    # from a map"; element_at returns NULL for a missing key. Message from MapSubscriptOperator.
    assert scalar("SELECT MAP(ARRAY['a'], ARRAY[1])['a']") == 1
    assert scalar("SELECT MAP(ARRAY['a'], ARRAY[NULL])['a']") is None
    err = failure(query, "SELECT MAP(ARRAY['a'], ARRAY[1])['missing']")
    assert str(err) == "INVALID_FUNCTION_ARGUMENT: Key not present in map: missing"
    err = failure(query, "SELECT MAP(ARRAY[1], ARRAY['x'])[2]")
    assert str(err) == "INVALID_FUNCTION_ARGUMENT: Key not present in map: 2"
    assert scalar("SELECT element_at(MAP(ARRAY['a'], ARRAY[1]), 'missing')") is None


def test_double_division_by_zero_is_ieee(query):
    # math.md lists `/` for all numeric types; Trino divides doubles and reals with Java's IEEE
    # division (type/DoubleOperators.java: divide returns left / right), so x / 0 is Infinity,
    # -Infinity or NaN; integer and decimal division by zero fail (DIVISION_BY_ZERO).
    (row,) = query(
        "SELECT 1e0 / 0 AS p, -1e0 / 0 AS n, 0e0 / 0 AS z, CAST(1 AS real) / 0 AS r,"
        " 5e0 % 0 AS m, typeof(CAST(1 AS real) / 0) AS t"
    )
    assert row["p"] == float("inf") and row["n"] == float("-inf")
    assert row["z"] != row["z"] and row["m"] != row["m"]  # NaN
    assert row["r"] == float("inf") and row["t"] == "real"
    # 0.0 is a DECIMAL literal in Trino: decimal division by zero fails
    assert failure(query, "SELECT 0.0 / 0").error_type == "DIVISION_BY_ZERO"
    assert failure(query, "SELECT qty / (id - 1) FROM sales").error_type == "DIVISION_BY_ZERO"
    assert [r["q"] for r in query("SELECT qty / (id * 2) AS q FROM sales ORDER BY id")] == [
        3,
        None,
    ]


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("1.5e0", "1.5E0"),
        ("1e7", "1.0E7"),
        ("0.001e0", "1.0E-3"),
        ("-123.456e0", "-1.23456E2"),
        ("0e0", "0E0"),
        ("1e0 / 0", "Infinity"),
        ("CAST(0.1 AS real)", "1.0E-1"),
        ("TIMESTAMP '2024-01-02 03:04:05.120'", "2024-01-02 03:04:05.120"),
        ("DATE '2024-01-02'", "2024-01-02"),
        ("42", "42"),
        ("1.50", "1.50"),
    ],
)
def test_cast_to_varchar_like_trino(scalar, expression, text):
    # trinodb/trino type/DoubleOperators.java castToVarchar: DecimalFormat("0.0###…E0"), zero is
    # "0E0"; RealOperators: "0.0#####E0". Timestamps keep their fraction (timestamp(3)).
    assert scalar(f"SELECT CAST({expression} AS varchar)") == text


def test_cast_of_a_double_column_to_varchar(scalar, conn):
    assert scalar("SELECT CAST(id * 1.5e0 AS varchar) FROM sales WHERE id = 2") == "3.0E0"
    assert scalar("SELECT try_cast(ts AS varchar) FROM sales WHERE id = 2") == (
        "2024-02-29 23:59:59.000"
    )


def test_regexp_extract_of_a_group_that_did_not_match_is_null(scalar):
    # regexp.md: regexp_extract returns the capturing group; Java's Matcher.group gives null for
    # a group that did not take part in the match, which Trino returns as NULL.
    assert scalar("SELECT regexp_extract('ab', 'a(x)?b', 1)") is None
    assert scalar("SELECT regexp_extract('axb', 'a(x)?b', 1)") == "x"
    assert scalar("SELECT regexp_extract('ab', 'a()b', 1)") == ""  # took part, matched ''


def test_contains_with_null_elements(scalar):
    # trinodb/trino operator/scalar/ArrayContains.java: not found and a NULL element -> NULL
    assert scalar("SELECT contains(ARRAY[1, NULL], 3)") is None
    assert scalar("SELECT contains(ARRAY[1, NULL], 1)") is True
    assert scalar("SELECT contains(ARRAY[1, 2], 3)") is False
    assert scalar("SELECT contains(ARRAY[1, 2], NULL)") is None


def test_identifiers_are_case_insensitive_and_headings_keep_the_query_case(query):
    # Athena user guide, "Names for tables, databases, and columns": Athena lower-cases names
    # to run the query "but display the column heading using the casing that you chose".
    assert query("SELECT Id, REGION AS MyRegion FROM sales WHERE ID = 1") == [
        {"Id": 1, "MyRegion": "north"}
    ]
    ctas = translate(
        "CREATE TABLE db.out WITH (format = 'PARQUET') AS SELECT Id, region AS MyRegion FROM sales",
        database="db",
    )
    assert ctas.sql == 'SELECT Id AS "id", region AS "myregion" FROM sales'


def test_unnest_of_a_map_or_rows_into_columns_is_refused(query):
    # unnest.md: a map unnests into two columns (key, value), an array of rows into one
    # column per field; DuckDB gives one column of structs.
    err = failure(
        query, "SELECT * FROM sales CROSS JOIN UNNEST(MAP(ARRAY['a'], ARRAY[1])) AS u(k, v)"
    )
    assert err.error_type == "NOT_SUPPORTED" and "UNNEST of a map" in err.message
    err = failure(query, "SELECT * FROM sales CROSS JOIN UNNEST(ARRAY[ROW(1, 'a')]) AS u(x, y)")
    assert err.error_type == "NOT_SUPPORTED"
    err = failure(query, "SELECT k FROM sales CROSS JOIN UNNEST(MAP(ARRAY['a'], ARRAY[1])) AS u(k)")
    assert err.error_type == "NOT_SUPPORTED" and "UNNEST of a map" in err.message
