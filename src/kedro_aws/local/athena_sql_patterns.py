"""Date/time format patterns: Trino's MySQL-style and Joda-style patterns → DuckDB strftime.

Trino's ``date_parse``/``date_format`` take MySQL specifiers (``%i`` is minutes) and
``format_datetime``/``parse_datetime`` take Joda patterns (``yyyy-MM-dd HH:mm``); DuckDB's
``strptime``/``strftime`` take C-style specifiers (``%M`` is minutes)::

    >>> mysql_to_strftime("%Y-%m-%d %H:%i:%s")
    '%Y-%m-%d %H:%M:%S'
    >>> joda_to_strftime("yyyy-MM-dd'T'HH:mm:ss.SSS")
    '%Y-%m-%dT%H:%M:%S.%g'

A specifier with no faithful DuckDB equivalent raises :class:`UnsupportedPattern` naming it,
so a query never formats or parses dates differently from Athena without saying so.
"""

from __future__ import annotations


class UnsupportedPattern(ValueError):
    """A format specifier the local engine cannot reproduce exactly."""


# MySQL specifiers as documented for Trino's date_parse/date_format:
# trinodb/trino docs/src/main/sphinx/functions/datetime.md, section "MySQL date functions".
# %D %U %u %V %w %X are listed there as "not currently supported" by Trino itself.
_MYSQL = {
    "a": "%a",
    "b": "%b",
    "c": "%-m",
    "d": "%d",
    "e": "%-d",
    "f": "%f",
    "H": "%H",
    "h": "%I",
    "I": "%I",
    "i": "%M",
    "j": "%j",
    "k": "%-H",
    "l": "%-I",
    "M": "%B",
    "m": "%m",
    "p": "%p",
    "r": "%I:%M:%S %p",
    "S": "%S",
    "s": "%S",
    "T": "%H:%M:%S",
    "v": "%V",
    "W": "%A",
    "x": "%G",
    "Y": "%Y",
    "%": "%%",
}
_MYSQL_UNSUPPORTED_BY_TRINO = set("DUuVwX")
# Trino reads "%y" with the pivot 1970..2069, DuckDB with 1969..2068 (POSIX): they differ on
# "69", so two-digit years are refused rather than parsed differently.
_MYSQL_DIFFERENT = {"y": "two-digit year '%y'"}


def mysql_to_strftime(pattern: str) -> str:
    """Translate a Trino ``date_parse``/``date_format`` pattern to DuckDB's strftime syntax."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char != "%" or i + 1 == len(pattern):
            out.append("%%" if char == "%" else char)
            i += 1
            continue
        spec = pattern[i + 1]
        if spec in _MYSQL_UNSUPPORTED_BY_TRINO:
            raise UnsupportedPattern(f"date format specifier '%{spec}'")
        if spec in _MYSQL_DIFFERENT:
            raise UnsupportedPattern(_MYSQL_DIFFERENT[spec])
        # "%x, for any x not listed above" is the literal x (same doc table).
        out.append(_MYSQL.get(spec, "%%" if spec == "%" else spec))
        i += 2
    return "".join(out)


# Joda DateTimeFormat letters (joda-time.sourceforge.net/apidocs/org/joda/time/format/
# DateTimeFormat.html, linked from Trino's "Java date functions"), by letter and run length.
def _joda_letter(letter: str, count: int) -> str | None:  # noqa: PLR0911, PLR0912
    if letter in "yY":
        return "%y" if count == 2 else "%Y"
    if letter == "x":
        return None if count == 2 else "%G"
    if letter == "M":
        return {1: "%-m", 2: "%m", 3: "%b"}.get(count, "%B")
    if letter == "d":
        return "%-d" if count == 1 else "%d"
    if letter == "D":
        return "%-j" if count == 1 else "%j"
    if letter == "H":
        return "%-H" if count == 1 else "%H"
    if letter == "h":
        return "%-I" if count == 1 else "%I"
    if letter == "m":
        return "%-M" if count == 1 else "%M"
    if letter == "s":
        return "%-S" if count == 1 else "%S"
    if letter == "S":
        return {3: "%g", 6: "%f", 9: "%n"}.get(count)
    if letter == "a":
        return "%p"
    if letter == "E":
        return "%a" if count <= 3 else "%A"
    if letter == "e":
        return "%u"
    if letter == "w":
        return "%V" if count == 2 else None
    return None


def joda_to_strftime(pattern: str) -> str:
    """Translate a Joda pattern (``format_datetime``/``parse_datetime``) to DuckDB strftime."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            end = pattern.find("'", i + 1)
            if end == -1:
                raise UnsupportedPattern(f"unterminated quote in datetime pattern '{pattern}'")
            literal = pattern[i + 1 : end] or "'"  # '' is an escaped single quote
            out.append(literal.replace("%", "%%"))
            i = end + 1
            continue
        if not char.isalpha():
            out.append("%%" if char == "%" else char)
            i += 1
            continue
        run = i
        while run < len(pattern) and pattern[run] == char:
            run += 1
        spec = _joda_letter(char, run - i)
        if spec is None:
            raise UnsupportedPattern(f"datetime pattern letter '{pattern[i:run]}'")
        out.append(spec)
        i = run
    return "".join(out)
