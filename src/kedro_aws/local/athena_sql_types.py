"""Trino type names and Athena's text rendering of values.

Athena reports result columns with Trino type names (``ColumnInfo.Type``) and returns every
value as text (``VarCharValue`` in ``GetQueryResults``, fields of the results CSV)::

    >>> trino_type_name("MAP(VARCHAR, INTEGER[])")
    'map(varchar, array(integer))'
    >>> render_value([1, None], "array(integer)")
    '[1, null]'

Sources: the base names ``ColumnInfo.Type`` takes are the keys of PyAthena's converters
(pyathena/converter.py ``_DEFAULT_CONVERTERS``: boolean … varchar, timestamp, "timestamp with
time zone", date, time, varbinary (space-separated hex), array, map, row, decimal, json).
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import struct
from typing import Any

_SIMPLE = {
    "BOOLEAN": "boolean",
    "TINYINT": "tinyint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    # sum() of integers is HUGEINT in DuckDB, bigint in Trino (which fails on overflow).
    "HUGEINT": "bigint",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "bigint",
    "FLOAT": "real",
    "DOUBLE": "double",
    "VARCHAR": "varchar",
    "BLOB": "varbinary",
    "DATE": "date",
    "TIME": "time(3)",
    # Athena tables hold millisecond timestamps and its functions return timestamp(3).
    "TIMESTAMP": "timestamp(3)",
    "TIMESTAMP_MS": "timestamp(3)",
    "TIMESTAMP_S": "timestamp(0)",
    "TIMESTAMP_NS": "timestamp(9)",
    "TIMESTAMP WITH TIME ZONE": "timestamp(3) with time zone",
    "JSON": "json",
    "UUID": "uuid",
    "INTERVAL": "interval day to second",
    '"NULL"': "unknown",
    "NULL": "unknown",
}


def trino_type_name(duckdb_type: str) -> str:
    """Trino's name for a DuckDB type string (as ``typeof`` or ``DESCRIBE`` print it)."""
    text = duckdb_type.strip()
    if text.endswith("[]"):
        return f"array({trino_type_name(text[:-2])})"
    if re.fullmatch(r".+\[\d+\]", text):  # fixed-size ARRAY
        return f"array({trino_type_name(text[: text.rindex('[')])})"
    upper = text.upper()
    if upper.startswith("DECIMAL"):
        return upper.lower().replace(" ", "")
    if upper.startswith("MAP("):
        key, value = split_top_level(text[4:-1])
        return f"map({trino_type_name(key)}, {trino_type_name(value)})"
    if upper.startswith("STRUCT("):
        fields = []
        for field in split_top_level(text[7:-1]):
            match = re.fullmatch(r'("(?:[^"]|"")*"|\S+)\s+(.+)', field.strip(), re.DOTALL)
            name, ftype = (match[1], match[2]) if match else (field, "VARCHAR")
            fields.append(f"{name.strip(chr(34))} {trino_type_name(ftype)}")
        return f"row({', '.join(fields)})"
    return _SIMPLE.get(upper, upper.lower())


def split_top_level(text: str) -> list[str]:
    """Split a type's parameter list on its top-level commas, for Trino (``row(a integer,
    b array(x))``) and Hive (``map<string,decimal(10,2)>``) type syntax alike.

    Example:
    >>> split_top_level("string,decimal(10,2)")
    ['string', 'decimal(10,2)']
    """
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([<":
            depth += 1
        elif char in ")]>":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts


def column_info(name: str, trino_type: str) -> dict[str, Any]:
    """``GetQueryResults`` ``ColumnInfo`` for a column: base type name plus precision/scale.

    >>> column_info("price", "decimal(10,2)")["Type"], column_info("price", "decimal(10,2)")["Scale"]
    ('decimal', 2)
    """
    base = re.sub(r"\(.*?\)", "", trino_type.split("(", 1)[0] if "(" in trino_type else trino_type)
    if trino_type.startswith("timestamp") and "with time zone" in trino_type:
        base = "timestamp with time zone"
    precision, scale = 0, 0
    decimal_match = re.fullmatch(r"decimal\((\d+),(\d+)\)", trino_type)
    if decimal_match:
        precision, scale = int(decimal_match[1]), int(decimal_match[2])
    elif base == "varchar":
        precision = 2147483647
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": base.strip(),
        "Precision": precision,
        "Scale": scale,
        "Nullable": "UNKNOWN",
        "CaseSensitive": base == "varchar",
    }


def render_value(value: Any, trino_type: str) -> str | None:  # noqa: PLR0911
    """Render one value as Athena's results do; ``None`` stands for SQL NULL (no datum).

    Timestamps carry their precision (``timestamp(3)`` → ``2024-01-02 03:04:05.000``), doubles
    follow Java's ``Double.toString`` (``1.0E7``), nested values use Trino's ``[a, b]`` and
    ``{k=v}`` forms with ``null`` for NULL elements.
    """
    if value is None:
        return None
    return _render(value, trino_type, nested=False)


def _render(value: Any, trino_type: str, *, nested: bool) -> str:  # noqa: PLR0911, PLR0912
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if trino_type.startswith("array(") and isinstance(value, (list, tuple)):
        inner = trino_type[6:-1]
        return "[" + ", ".join(_render(v, inner, nested=True) for v in value) + "]"
    if trino_type.startswith("map("):
        key_type, value_type = split_top_level(trino_type[4:-1])
        items = value.items() if isinstance(value, dict) else value
        return (
            "{"
            + ", ".join(
                f"{_render(k, key_type, nested=True)}={_render(v, value_type, nested=True)}"
                for k, v in items
            )
            + "}"
        )
    if trino_type.startswith("row(") and isinstance(value, dict):
        types = [f.strip().partition(" ") for f in split_top_level(trino_type[4:-1])]
        by_name = {name: ftype for name, _, ftype in types}
        return (
            "{"
            + ", ".join(
                f"{k}={_render(v, by_name.get(k, 'varchar'), nested=True)}"
                for k, v in value.items()
            )
            + "}"
        )
    if isinstance(value, float):
        return java_double_string(value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return _render_timestamp(value, trino_type)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return " ".join(f"{b:02x}" for b in bytes(value))
    return str(value)


def _render_timestamp(value: dt.datetime, trino_type: str) -> str:
    match = re.match(r"timestamp\((\d+)\)", trino_type)
    precision = int(match[1]) if match else 3
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if precision:
        text += "." + f"{value.microsecond:06d}{'0' * 6}"[:precision]
    if value.tzinfo is not None:
        # Athena's session zone is UTC; DuckDB hands timestamptz values back in UTC.
        text += " UTC" if value.utcoffset() == dt.timedelta(0) else value.strftime(" %z")
    return text


def java_double_string(value: float) -> str:
    """Java ``Double.toString``: Trino's text for a double (``100.0``, ``1.0E7``, ``NaN``).

    Plain decimal notation for 1e-3 <= |x| < 1e7, otherwise ``<mantissa>E<exponent>``; always
    at least one fractional digit; shortest digits that round-trip (as Python's ``repr``).
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1, value) < 0 else "0.0"
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = format(value, "f") if "e" in repr(value) else repr(value)
        return text if "." in text else text + ".0"
    sign, digits, exponent = decimal.Decimal(repr(value)).as_tuple()
    significant = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) + int(exponent) - 1
    return f"{'-' if sign else ''}{significant[0]}.{significant[1:] or '0'}E{power}"


def java_scientific_string(value: float, max_fraction_digits: int = 20) -> str:
    """Trino's ``CAST(double AS varchar)``: Java ``DecimalFormat("0.0###…E0")``.

    Trino formats a double with ``0.0###################E0`` (20 fraction digits at most) and a
    real with ``0.0#####E0`` (6), after widening the real to a double; zero is ``0E0``
    (trinodb/trino ``core/trino-main/.../type/DoubleOperators.java`` and ``RealOperators.java``,
    ``castToVarchar``)::

        >>> java_scientific_string(1.5), java_scientific_string(0.001)
        ('1.5E0', '1.0E-3')
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0E0" if math.copysign(1, value) < 0 else "0E0"
    context = decimal.Context(prec=max_fraction_digits + 1, rounding=decimal.ROUND_HALF_EVEN)
    sign, digits, exponent = context.plus(decimal.Decimal(repr(value))).as_tuple()
    significant = "".join(map(str, digits)).rstrip("0")
    power = len(digits) + int(exponent) - 1
    return f"{'-' if sign else ''}{significant[0]}.{significant[1:] or '0'}E{power}"


def varchar_of(text: str, duckdb_type: str) -> str:
    """Trino's ``CAST(x AS varchar)`` for the DuckDB text of a double, real or timestamp.

    DuckDB prints doubles in their shortest round-trip form (``10000000.0``), Trino in Java's
    scientific form (``1.0E7``); DuckDB drops a zero fraction of a timestamp, Trino prints the
    ``timestamp(3)`` it reports for it (``2024-01-02 03:04:05.000``, ``… UTC`` with a zone).
    """
    if duckdb_type == "DOUBLE":
        return java_scientific_string(float(text))
    if duckdb_type == "FLOAT":
        widened = struct.unpack("f", struct.pack("f", float(text)))[0]
        return java_scientific_string(widened, 6)
    zone = ""
    if duckdb_type == "TIMESTAMP WITH TIME ZONE":
        match = re.fullmatch(r"(.*?)([+-]\d\d(?::?\d\d)?)", text)
        if match and re.fullmatch(r"[+-]00(:?00)?", match[2]):
            text, zone = match[1], " UTC"
        elif match:
            text, zone = match[1], " " + match[2]
    digits = 9 if duckdb_type == "TIMESTAMP_NS" else 3
    whole, _, fraction = text.partition(".")
    return f"{whole}.{(fraction + '0' * digits)[:digits]}{zone}"
