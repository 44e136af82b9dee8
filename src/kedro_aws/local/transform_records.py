"""Batch Transform's record handling for one input file: split, batch, filter, join, assemble.

A transform job reads each input object as a stream, splits it into records (``SplitType``),
packs records into mini-batches (``BatchStrategy``, ``MaxPayloadInMB``), sends each mini-batch
to the container, and writes the responses to the ``.out`` object (``AssembleWith``), with the
optional ``DataProcessing`` filters and join around the call. This module holds those rules;
the job orchestrator owns the S3 I/O, the worker processes and the calls to the model.

Memory stays bounded by about twice ``MaxPayloadInMB`` whatever the file size: the input is
read in chunks and a mini-batch is a contiguous slice of it cut at a record boundary.

Example::

    with open("data.csv", "rb") as raw, open_input(raw, "Gzip") as stream:
        for batch in iter_mini_batches(stream, "Line", "MultiRecord", 6 * MIB):
            response = model.invoke(batch.payload, "text/csv", "text/csv")[0]
            out.write(assemble_response(response, "Line"))

Facts and choices (sources: ``shared/research/sagemaker.md`` section 2; AWS API reference
``TransformInput``, ``TransformOutput``, ``CreateTransformJob``, ``DataProcessing``; developer
guide ``batch-transform-data-processing.md``):

- ``SplitType=Line`` splits after every ``\\n``; a record keeps its line terminator (``\\n`` or
  ``\\r\\n``), as the SageMaker SDK's local mode sends it, so a MultiRecord payload is the exact
  bytes of its lines. A blank line is a record of its own (the scikit-learn container fails on
  it, like SageMaker). ``SplitType=None`` sends the whole object as one record.
- ``MultiRecord`` packs as many whole records as fit in ``MaxPayloadInMB`` (MiB);
  ``SingleRecord`` sends one record per request. A single record larger than the limit fails,
  naming its position. ``MaxPayloadInMB=0`` means no limit (SageMaker streams such payloads
  with chunked encoding); memory is then bounded by the file, not the limit.
- ``AssembleWith=Line`` ends every response with a newline; a response that already ends with
  one (a multi-row CSV answer) gets none added, so records are never separated by blank lines.
  ``None`` concatenates the responses' bytes.
- ``DataProcessing`` works per record on CSV and JSON (Lines): the JSONPath subset documented
  by AWS, with inclusive slices (see ``JsonPath``).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

MIB = 1024 * 1024
#: SageMaker's default ``MaxPayloadInMB`` (API ``CreateTransformJob``).
DEFAULT_MAX_PAYLOAD_BYTES = 6 * MIB
#: Read size for streaming input; independent of the payload limit.
READ_CHUNK_BYTES = 1 * MIB

SPLIT_TYPES = ("None", "Line")
BATCH_STRATEGIES = ("MultiRecord", "SingleRecord")
ASSEMBLE_WITH = ("None", "Line")
COMPRESSION_TYPES = ("None", "Gzip")
JOIN_SOURCES = ("None", "Input")
#: ``DataProcessing`` filters are at most 63 characters long (API ``DataProcessing``).
MAX_JSONPATH_LENGTH = 63

CSV_CONTENT_TYPE = "text/csv"
JSON_CONTENT_TYPES = ("application/json", "application/jsonlines")


class TransformRecordError(ValueError):
    """A record or a setting that makes Batch Transform fail the file; the message says where."""


class RecordTooLargeError(TransformRecordError):
    """A single record is larger than ``MaxPayloadInMB``."""

    def __init__(self, record_index: int, size: int, limit: int) -> None:
        super().__init__(
            f"record {record_index + 1} (0-based index {record_index}) is at least {size} bytes, "
            f"more than MaxPayloadInMB allows ({limit} bytes = {limit / MIB:g} MiB); raise "
            "MaxPayloadInMB (at most 100) or split the record"
        )
        self.record_index = record_index
        self.size = size
        self.limit = limit


@dataclass(frozen=True)
class MiniBatch:
    """One request's payload and the records it holds (``first_record_index`` is 0-based)."""

    payload: bytes
    first_record_index: int
    records: int

    def describe(self) -> str:
        """Human-readable record range, for error messages: ``records 1-500``."""
        first = self.first_record_index + 1
        last = self.first_record_index + self.records
        return f"record {first}" if first >= last else f"records {first}-{last}"


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise TransformRecordError(f"{name} must be one of {', '.join(choices)}; got {value!r}")


# --------------------------------------------------------------------------------------------
# Input: decompression and splitting
# --------------------------------------------------------------------------------------------


def open_input(stream: BinaryIO, compression_type: str = "None") -> BinaryIO:
    """Wrap ``stream`` so that reads return decompressed bytes (``CompressionType``).

    Gzip is decompressed while reading, chunk by chunk; a corrupt stream fails on ``read`` with
    a ``TransformRecordError``.

    >>> open_input(io.BytesIO(gzip.compress(b"1,2\\n")), "Gzip").read()
    b'1,2\\n'
    """
    _check_choice("CompressionType", compression_type, COMPRESSION_TYPES)
    if compression_type == "None":
        return stream
    return _CheckedGzipReader(stream)


class _CheckedGzipReader(io.RawIOBase):
    """A gzip reader whose corruption errors name the problem instead of a zlib code."""

    def __init__(self, stream: BinaryIO) -> None:
        self._gzip = gzip.GzipFile(fileobj=stream, mode="rb")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return self._gzip.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise TransformRecordError(
                f"CompressionType is Gzip but the input is not a valid gzip stream: {exc}"
            ) from exc

    def readinto(self, buffer: Any) -> int:  # pragma: no cover - read() is what we use
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._gzip.close()
        super().close()


def _count_records(data: bytes | bytearray, end: int) -> int:
    """Records in ``data[:end]``: one per ``\\n``, plus an unterminated last line."""
    newlines = data.count(b"\n", 0, end)
    return newlines + (1 if end and data[end - 1] != 0x0A else 0)


def iter_mini_batches(
    stream: BinaryIO,
    split_type: str = "None",
    batch_strategy: str = "MultiRecord",
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    read_chunk_bytes: int = READ_CHUNK_BYTES,
) -> Iterator[MiniBatch]:
    """Split one (decompressed) input file into the requests Batch Transform would send.

    ``max_payload_bytes`` is ``MaxPayloadInMB * MIB``; 0 means unlimited. Payloads are exact
    slices of the input, so records keep their order and bytes.

    >>> [b.payload for b in iter_mini_batches(io.BytesIO(b"1\\n2\\n3\\n"), "Line", "MultiRecord", 4)]
    [b'1\\n2\\n', b'3\\n']
    """
    _check_choice("SplitType", split_type, SPLIT_TYPES)
    _check_choice("BatchStrategy", batch_strategy, BATCH_STRATEGIES)
    if max_payload_bytes < 0:
        raise TransformRecordError(f"MaxPayloadInMB must be >= 0; got {max_payload_bytes} bytes")
    if split_type == "None":
        yield from _whole_object(stream, max_payload_bytes, read_chunk_bytes)
    elif batch_strategy == "SingleRecord":
        yield from _single_records(stream, max_payload_bytes, read_chunk_bytes)
    else:
        yield from _multi_records(stream, max_payload_bytes, read_chunk_bytes)


def _whole_object(stream: BinaryIO, limit: int, chunk: int) -> Iterator[MiniBatch]:
    # SplitType None: "request payloads contain the entire contents of an input object"
    # (API TransformInput). Read at most limit + 1 bytes so an oversized object fails early.
    data = bytearray()
    while True:
        want = chunk if not limit else min(chunk, limit + 1 - len(data))
        piece = stream.read(want) if want > 0 else b""
        if not piece:
            break
        data += piece
        if limit and len(data) > limit:
            raise RecordTooLargeError(0, len(data), limit)
    yield MiniBatch(bytes(data), 0, 1)


def _multi_records(stream: BinaryIO, limit: int, chunk: int) -> Iterator[MiniBatch]:
    buffer = bytearray()
    record_index = 0
    eof = False
    while True:
        # Fill to the payload limit (plus one byte, to tell "fits exactly" from "too large").
        target = limit + 1 if limit else None
        while not eof and (target is None or len(buffer) < target):
            piece = stream.read(chunk if target is None else min(chunk, target - len(buffer)))
            if not piece:
                eof = True
            else:
                buffer += piece
        if not buffer:
            return
        if eof and (not limit or len(buffer) <= limit):
            cut = len(buffer)  # the rest fits: send it all, terminated or not
        else:
            cut = buffer.rfind(b"\n", 0, limit) + 1
            if cut == 0:
                raise RecordTooLargeError(record_index, len(buffer), limit)
        records = _count_records(buffer, cut)
        with memoryview(buffer) as view:  # one copy into the payload, not two
            payload = bytes(view[:cut])
        yield MiniBatch(payload, record_index, records)
        record_index += records
        del buffer[:cut]


def _single_records(stream: BinaryIO, limit: int, chunk: int) -> Iterator[MiniBatch]:
    buffer = bytearray()
    record_index = 0
    start = 0
    eof = False
    while True:
        end = buffer.find(b"\n", start)
        if end >= 0:
            size = end + 1 - start
            if limit and size > limit:
                raise RecordTooLargeError(record_index, size, limit)
            yield MiniBatch(bytes(buffer[start : end + 1]), record_index, 1)
            record_index += 1
            start = end + 1
            continue
        # No complete record buffered: drop what was consumed, then read more.
        del buffer[:start]
        start = 0
        if limit and len(buffer) > limit:
            raise RecordTooLargeError(record_index, len(buffer), limit)
        if eof:
            if buffer:
                yield MiniBatch(bytes(buffer), record_index, 1)
            return
        piece = stream.read(chunk)
        if piece:
            buffer += piece
        else:
            eof = True


# --------------------------------------------------------------------------------------------
# Output assembly
# --------------------------------------------------------------------------------------------


def assemble_response(response: bytes, assemble_with: str) -> bytes:
    """The bytes one response contributes to the ``.out`` object.

    >>> assemble_response(b"[0.5, 1.0]", "Line")
    b'[0.5, 1.0]\\n'
    >>> assemble_response(b"0.5\\n1.0\\n", "Line")  # already line-terminated
    b'0.5\\n1.0\\n'
    """
    _check_choice("AssembleWith", assemble_with, ASSEMBLE_WITH)
    if assemble_with == "Line" and not response.endswith(b"\n"):
        return response + b"\n"
    return response


def split_response_records(response: bytes, expected: int, batch: MiniBatch) -> list[bytes]:
    """Split a line-oriented response into one record per input record (for join/filter)."""
    text = response[:-1] if response.endswith(b"\n") else response
    lines = text.split(b"\n") if text or expected == 1 else []
    lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    if len(lines) != expected:
        raise TransformRecordError(
            f"{batch.describe()}: the response holds {len(lines)} line(s) for {expected} input "
            "record(s); JoinSource/OutputFilter need one response line per input record "
            "(use SplitType Line, AssembleWith Line and a line-oriented Accept such as text/csv "
            "or application/jsonlines)"
        )
    return lines


# --------------------------------------------------------------------------------------------
# JSONPath subset (batch-transform-data-processing.md, "Supported JSONPath Operators")
# --------------------------------------------------------------------------------------------

_NAME = r"[A-Za-z_$][\w$-]*"
_STEP = re.compile(
    rf"""
    \.(?P<dot>{_NAME}|\*)            # .name or .*
    | \.?\[(?P<bracket>[^\]]*)\]     # [...] or .[...] (the guide writes $.field1.['a','b'])
    """,
    re.VERBOSE,
)
_QUOTED = re.compile(r"""\s*'([^']*)'\s*""")
_INDEX = re.compile(r"\s*(-?\d+)\s*")
_SLICE = re.compile(r"\s*(-?\d+)?\s*:\s*(-?\d+)?\s*")


@dataclass(frozen=True)
class _Step:
    kind: str  # "key", "keys", "index", "indexes", "wildcard"
    values: tuple[Any, ...] = ()


class JsonPath:
    """A compiled ``DataProcessing`` JSONPath.

    Supported, as documented by AWS: ``$``; ``.name``; ``['name']`` and ``['a','b']`` (several
    names select an object holding those keys); ``[i]`` with negative indexes from the end;
    ``[i,j]`` and ``[i:j]`` (slices **include** ``j``: ``$[1:4]`` is columns 2 to 5, ``$[:5]``
    columns 1 to 6, ``$[2:]`` from column 3 on), mixable as ``[0,5:]``; ``*`` and ``[*]``. A
    step that selects several values must be the last one. Indexes outside the record fail.

    >>> JsonPath("$[1:2]").apply(["id", "a", "b", "c"])
    ['a', 'b']
    >>> JsonPath("$['id','SageMakerOutput']").apply({"id": 1, "x": 2, "SageMakerOutput": 3})
    {'id': 1, 'SageMakerOutput': 3}
    """

    def __init__(self, expression: str) -> None:
        expression = expression.strip() or "$"
        if len(expression) > MAX_JSONPATH_LENGTH:
            raise TransformRecordError(
                f"JSONPath {expression!r} is longer than {MAX_JSONPATH_LENGTH} characters"
            )
        if not expression.startswith("$"):
            raise TransformRecordError(f"JSONPath {expression!r} must start with '$'")
        self.expression = expression
        self.steps = self._parse(expression[1:])

    @property
    def is_root(self) -> bool:
        return not self.steps

    def _parse(self, rest: str) -> tuple[_Step, ...]:
        steps: list[_Step] = []
        position = 0
        while position < len(rest):
            match = _STEP.match(rest, position)
            if not match:
                raise TransformRecordError(
                    f"JSONPath {self.expression!r}: unsupported syntax at {rest[position:]!r}"
                )
            position = match.end()
            if steps and steps[-1].kind in ("keys", "indexes", "wildcard"):
                raise TransformRecordError(
                    f"JSONPath {self.expression!r}: a step selecting several values must be last"
                )
            if match.group("dot") is not None:
                name = match.group("dot")
                steps.append(_Step("wildcard") if name == "*" else _Step("key", (name,)))
            else:
                steps.append(self._parse_bracket(match.group("bracket")))
        return tuple(steps)

    def _parse_bracket(self, inner: str) -> _Step:
        if inner.strip() == "*":
            return _Step("wildcard")
        parts = inner.split(",")
        if all(_QUOTED.fullmatch(part) for part in parts):
            names = tuple(_QUOTED.fullmatch(part).group(1) for part in parts)  # type: ignore[union-attr]
            return _Step("key", names) if len(names) == 1 else _Step("keys", names)
        selectors: list[Any] = []
        for part in parts:
            if index := _INDEX.fullmatch(part):
                selectors.append(int(index.group(1)))
            elif slice_ := _SLICE.fullmatch(part):
                start, end = slice_.groups()
                selectors.append((_int_or_none(start), _int_or_none(end)))
            else:
                raise TransformRecordError(
                    f"JSONPath {self.expression!r}: unsupported selector [{inner}]"
                )
        if len(selectors) == 1 and isinstance(selectors[0], int):
            return _Step("index", (selectors[0],))
        return _Step("indexes", tuple(selectors))

    def apply(self, value: Any) -> Any:
        """Select from one record (a parsed JSON value, or a CSV row as a list of strings)."""
        for step in self.steps:
            value = self._apply_step(step, value)
        return value

    def _apply_step(self, step: _Step, value: Any) -> Any:
        if step.kind == "wildcard":
            if isinstance(value, dict):
                return list(value.values())
            if isinstance(value, list):
                return list(value)
            raise TransformRecordError(f"{self.expression}: '*' applied to a scalar")
        if step.kind in ("key", "keys"):
            if not isinstance(value, dict):
                raise TransformRecordError(
                    f"{self.expression}: selects a key from a {type(value).__name__}, not an object"
                )
            missing = [k for k in step.values if k not in value]
            if missing:
                raise TransformRecordError(f"{self.expression}: key(s) {missing} not in record")
            if step.kind == "key":
                return value[step.values[0]]
            return {k: value[k] for k in step.values}
        if not isinstance(value, list):
            raise TransformRecordError(
                f"{self.expression}: selects an index from a {type(value).__name__}, not an array"
            )
        if step.kind == "index":
            return value[self._index(step.values[0], len(value))]
        selected: list[Any] = []
        for selector in step.values:
            if isinstance(selector, int):
                selected.append(value[self._index(selector, len(value))])
            else:
                start, end = selector
                first = 0 if start is None else self._index(start, len(value))
                # Inclusive end, unlike Python slicing (batch-transform-data-processing.md).
                last = len(value) - 1 if end is None else self._index(end, len(value))
                selected.extend(value[first : last + 1])
        return selected

    def _index(self, index: int, length: int) -> int:
        resolved = index + length if index < 0 else index
        if not 0 <= resolved < length:
            raise TransformRecordError(
                f"{self.expression}: index {index} is outside a record of {length} element(s)"
            )
        return resolved


def _int_or_none(text: str | None) -> int | None:
    return None if text is None else int(text)


# --------------------------------------------------------------------------------------------
# DataProcessing: InputFilter -> invoke -> JoinSource -> OutputFilter, per record
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataProcessing:
    """``DataProcessing`` of a transform job, applied around each mini-batch.

    CSV records are rows (lists of strings; only index paths apply); JSON records are one JSON
    value per line (JSON Lines) or the whole object when ``SplitType`` is None. The join appends
    the output fields to the CSV input row, or puts the output under ``SageMakerOutput`` of a
    JSON object (a non-object input becomes ``{"SageMakerInput": ..., "SageMakerOutput": ...}``).

    >>> dp = DataProcessing.create("$[1:]", "Input", "$[0,-1]", "text/csv", "text/csv")
    >>> batch = MiniBatch(b"id7,1.0,2.0\\n", 0, 1)
    >>> dp.filter_input(batch)
    b'1.0,2.0\\n'
    >>> dp.process_output(batch, b"0.5\\n")
    b'id7,0.5\\n'
    """

    input_filter: JsonPath
    join_source: str
    output_filter: JsonPath
    content_type: str
    accept: str

    @classmethod
    def create(
        cls,
        input_filter: str | None = "$",
        join_source: str | None = "None",
        output_filter: str | None = "$",
        content_type: str | None = None,
        accept: str | None = None,
    ) -> DataProcessing:
        join_source = join_source or "None"
        _check_choice("JoinSource", join_source, JOIN_SOURCES)
        processing = cls(
            JsonPath(input_filter or "$"),
            join_source,
            JsonPath(output_filter or "$"),
            content_type or "",
            accept or "",
        )
        if processing.active:
            for name, value in (("ContentType", processing.content_type), ("Accept", accept)):
                if value != CSV_CONTENT_TYPE and value not in JSON_CONTENT_TYPES:
                    raise TransformRecordError(
                        f"DataProcessing works on CSV and JSON only: {name} must be text/csv, "
                        f"application/json or application/jsonlines; got {value!r}"
                    )
        return processing

    @property
    def active(self) -> bool:
        """False when the settings are the defaults and records pass through untouched."""
        return not (
            self.input_filter.is_root and self.join_source == "None" and self.output_filter.is_root
        )

    @property
    def needs_response_records(self) -> bool:
        return self.join_source == "Input" or not self.output_filter.is_root

    def filter_input(self, batch: MiniBatch) -> bytes:
        """The payload to send for ``batch`` after ``InputFilter``."""
        if self.input_filter.is_root:
            return batch.payload
        records = self._input_records(batch)
        out = [
            self._serialise(self._select(self.input_filter, rec, batch, i), self.content_type)
            for i, rec in enumerate(records)
        ]
        return b"".join(line + b"\n" for line in out)

    def process_output(self, batch: MiniBatch, response: bytes) -> bytes:
        """Join ``response`` with ``batch``'s input records and apply ``OutputFilter``.

        Returns line-terminated records; without a join or output filter, the response itself.
        """
        if not self.needs_response_records:
            return response
        inputs = self._input_records(batch)
        outputs = split_response_records(response, len(inputs), batch)
        lines = []
        for i, (record, line) in enumerate(zip(inputs, outputs, strict=True)):
            output = self._parse(line, self.accept, batch, i)
            joined = self._join(record, output) if self.join_source == "Input" else output
            selected = self._select(self.output_filter, joined, batch, i)
            lines.append(self._serialise(selected, self.accept) + b"\n")
        return b"".join(lines)

    def _input_records(self, batch: MiniBatch) -> list[Any]:
        payload = batch.payload
        lines = payload[:-1].split(b"\n") if payload.endswith(b"\n") else payload.split(b"\n")
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        return [self._parse(line, self.content_type, batch, i) for i, line in enumerate(lines)]

    @staticmethod
    def _parse(line: bytes, content_type: str, batch: MiniBatch, offset: int) -> Any:
        try:
            text = line.decode("utf-8")
            if content_type == CSV_CONTENT_TYPE:
                rows = list(csv.reader([text], strict=True))
                return rows[0] if rows else []
            return json.loads(text)
        except (UnicodeDecodeError, csv.Error, json.JSONDecodeError) as exc:
            raise TransformRecordError(
                f"record {batch.first_record_index + offset + 1}: cannot parse as "
                f"{content_type}: {exc}"
            ) from exc

    def _join(self, record: Any, output: Any) -> Any:
        if self.content_type == CSV_CONTENT_TYPE:
            # CSV: the input row's fields followed by the output's fields.
            return record + (output if isinstance(output, list) else [output])
        if isinstance(record, dict):
            return {**record, "SageMakerOutput": output}
        return {"SageMakerInput": record, "SageMakerOutput": output}

    @staticmethod
    def _select(path: JsonPath, record: Any, batch: MiniBatch, offset: int) -> Any:
        try:
            return path.apply(record)
        except TransformRecordError as exc:
            raise TransformRecordError(
                f"record {batch.first_record_index + offset + 1}: {exc}"
            ) from exc

    @staticmethod
    def _serialise(value: Any, content_type: str) -> bytes:
        if content_type == CSV_CONTENT_TYPE:
            stream = io.StringIO()
            row = value if isinstance(value, list) else [value]
            csv.writer(stream, lineterminator="").writerow(row)
            return stream.getvalue().encode("utf-8")
        return json.dumps(value, separators=(",", ":")).encode("utf-8")
