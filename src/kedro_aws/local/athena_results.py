"""Athena's query result files: the results CSV, its metadata, and paging through them.

A SELECT's rows go to ``<OutputLocation>/<QueryExecutionId>.csv``; DDL and utility statements
(SHOW, DESCRIBE) to ``<QueryExecutionId>.txt`` (Athena user guide, "Identifying query output
files"). ``GetQueryResults`` reads the rows back from that file, so what a client pages
through is exactly what the file holds::

    >>> write_results(path, ["id", "name"], [["1", "a"], ["2", None]], column_info)  # doctest: +SKIP
    >>> read_page(path, offset=0, limit=2)   # -> ([["id", "name"], ["1", "a"]], <next offset>)  # doctest: +SKIP

CSV: every field double-quoted (inner quotes doubled), NULL an empty *unquoted* field, so NULL
and ``''`` stay distinct (PyAthena docs, "NULL and Empty String Handling": ``,,`` is NULL,
``,"",`` the empty string). Text results (``.txt``) hold one unquoted value per line (a single
column, as Athena returns SHOW and DESCRIBE output).

The ``.csv.metadata`` file is Athena's binary (protobuf) column description; the local engine
writes the same information as JSON (``{"ColumnInfo": [...]}``), which only this module reads.
"""

from __future__ import annotations

import json
import mmap
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# One CSV field: a quoted value (with "" for a quote) or nothing (NULL), then its terminator.
_FIELD = re.compile(rb'(?:"((?:[^"]|"")*)"|)(,|\r?\n|$)')


def _quote(value: str | None) -> str:
    return "" if value is None else '"' + value.replace('"', '""') + '"'


def write_results(
    path: Path,
    rows: Iterable[Sequence[str | None]],
    column_info: list[dict[str, Any]],
    *,
    header: Sequence[str] | None,
    text: bool = False,
) -> int:
    """Write a result file (and its metadata) atomically; returns the number of data rows.

    Args:
        path: The ``.csv`` (or ``.txt``) file.
        rows: Rendered rows (``None`` for NULL).
        column_info: ``ColumnInfo`` entries, stored in ``<path>.metadata``.
        header: Column names written as the first row (SELECT), or ``None`` (DDL/utility).
        text: Write the unquoted one-value-per-line form used for DDL/utility results.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    count = 0
    with tmp.open("w", encoding="utf-8", newline="") as out:
        if header is not None:
            out.write(",".join(_quote(name) for name in header) + "\n")
        for row in rows:
            if text:  # one value per line: DDL and utility results have a single column
                out.write("\t".join("" if v is None else v for v in row) + "\n")
            else:
                out.write(",".join(_quote(v) for v in row) + "\n")
            count += 1
    meta_tmp = path.with_name(f".{path.name}.metadata.tmp")
    meta_tmp.write_text(json.dumps({"ColumnInfo": column_info}), encoding="utf-8")
    os.replace(meta_tmp, path.with_name(path.name + ".metadata"))
    os.replace(tmp, path)
    return count


def read_column_info(path: Path) -> list[dict[str, Any]]:
    """The ``ColumnInfo`` stored beside a result file by :func:`write_results`."""
    meta = path.with_name(path.name + ".metadata")
    if not meta.exists():
        return []
    return json.loads(meta.read_text(encoding="utf-8"))["ColumnInfo"]


def read_page(path: Path, offset: int, limit: int, *, text: bool = False):
    """Up to ``limit`` rows from byte ``offset``; returns ``(rows, next_offset or None)``.

    Paging by byte offset keeps every page O(page size), however large the result is.
    """
    if not path.exists() or path.stat().st_size == 0:
        return [], None
    with path.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
        size = len(data)
        rows: list[list[str | None]] = []
        position = offset
        while position < size and len(rows) < limit:
            if text:
                end = data.find(b"\n", position)
                end = size if end < 0 else end
                line = data[position:end].decode("utf-8")
                rows.append([line])
                position = end + 1
                continue
            row, position = _parse_row(data, position, path)
            rows.append(row)
    return rows, (position if position < size else None)


def _parse_row(data: mmap.mmap, position: int, path: Path) -> tuple[list[str | None], int]:
    row: list[str | None] = []
    while True:
        match = _FIELD.match(data, position)
        if match is None or match.end() == position and position < len(data):
            raise ValueError(f"Malformed results file {path} at byte {position}")
        quoted, terminator = match.groups()
        row.append(None if quoted is None else quoted.replace(b'""', b'"').decode("utf-8"))
        position = match.end()
        if terminator != b",":
            return row, position
