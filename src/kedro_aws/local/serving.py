"""The scikit-learn container's serving contract, run in-process.

SageMaker Batch Transform on the scikit-learn image serves the user's inference module through
the container's gunicorn path: ``sagemaker_sklearn_container.serving`` on top of the
``sagemaker-containers`` toolkit (``_transformer``, ``_worker``, ``_encoders``), not the
``sagemaker-inference`` toolkit, which only serves multi-model endpoints
(``shared/research/sagemaker.md`` section 1.1). This module reproduces that path, failure modes
included, so that a module that works here works on SageMaker:

- ``model_fn(model_dir)`` is required; ``transform_fn`` replaces ``input_fn``/``predict_fn``/
  ``output_fn`` and may not be combined with any of them;
- default ``input_fn``: content types matched exactly; CSV parsed with ``csv.reader``, squeezed,
  then cast to float32; JSON cast to float32; NPY returned as stored;
- default ``predict_fn``: ``model.predict(data)``;
- default ``output_fn``: JSON via ``json.dumps``, CSV via ``csv.writer`` (one row per line),
  NPY via ``np.save``; a missing or ``*/*`` Accept means ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT``.

The default CSV decoder and encoder have fast paths (pyarrow parsing, vectorised formatting) for
the common all-numeric case; they fall back to the container's exact algorithm for anything
else, and produce byte-identical results (``tests/serving/test_serving_contract.py``).

Example::

    model = ServingModel.load("/tmp/model", {"SAGEMAKER_PROGRAM": "inference.py",
                                             "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"})
    body, content_type = model.invoke(b"5.1,3.5,1.4,0.2\\n6.2,2.9,4.3,1.3\\n", "text/csv", "text/csv")
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

logger = logging.getLogger(__name__)

# Content types known to the toolkit (sagemaker_containers/_content_types.py). Matching is exact
# string equality: "text/csv; charset=utf-8" is *not* text/csv there, so it is not here either.
JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
ANY = "*/*"
# Bodies of these types reach input_fn/transform_fn as text, others as bytes (_worker.Request
# .content uses get_data(as_text=...) for _content_types.UTF8_TYPES).
TEXT_CONTENT_TYPES = (JSON, CSV)

PROGRAM_ENV = "SAGEMAKER_PROGRAM"
SUBMIT_DIR_ENV = "SAGEMAKER_SUBMIT_DIRECTORY"
DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
# Where SageMaker extracts model.tar.gz in the container (your-algorithms-batch-code.md); a submit
# directory below it is a directory of the extracted archive.
CONTAINER_MODEL_DIR = "/opt/ml/model"
# sagemaker_containers/_env.py: SUBMIT_DIRECTORY defaults to $SAGEMAKER_BASE_DIR/code.
CONTAINER_CODE_DIR = "/opt/ml/code"

_HANDLER_NAMES = ("input_fn", "predict_fn", "output_fn")
_LOAD_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ServingError(Exception):
    """A request or model load that the container would answer with a failure.

    ``status_code`` is what the scikit-learn container answers. It is 500 for every failure:
    the container wraps all handlers, its own defaults included, in ``error_wrapper``
    (sagemaker_containers/_functions.py), so even an unsupported content type surfaces as a
    500, not the bare toolkit's 415/406 (research section 1.5).
    """

    status_code = 500


class ModelLoadError(ServingError):
    """The inference module cannot be imported, is inconsistent, or its ``model_fn`` failed."""


class InvocationError(ServingError):
    """A handler raised or returned something the server cannot send; ``stage`` names it."""

    def __init__(self, message: str, stage: str) -> None:
        super().__init__(message)
        self.stage = stage


class UnsupportedContentTypeError(InvocationError):
    """The default ``input_fn`` knows no decoder for the request's content type.

    The bare toolkit would answer 415 (``_transformer._default_transform_fn``); the scikit-learn
    container answers 500 because its ``input_fn`` is wrapped (see ``ServingError``).
    """

    toolkit_status_code = 415


class UnsupportedAcceptError(InvocationError):
    """The default ``output_fn`` knows no encoder for the requested Accept type (toolkit: 406)."""

    toolkit_status_code = 406


class SingleRowBatchError(InvocationError):
    """The default decoder squeezed the payload to fewer than two dimensions and predict failed."""


# --------------------------------------------------------------------------------------------
# Default decoders (sagemaker_containers/_encoders.py: decode, csv_to_numpy, json_to_numpy,
# npy_to_numpy) and the scikit-learn container's default_input_fn (serving.py)
# --------------------------------------------------------------------------------------------

# Bytes a purely numeric CSV payload may contain. Anything else (quotes, spaces, letters such as
# nan/inf, non-ASCII) goes through the exact csv.reader path.
_NUMERIC_CSV_BYTES = b"0123456789.eE+-,\n\r"
# pyarrow parses a payload in blocks of 1 MiB on several threads, or in one block (<= 256 MiB).
_BLOCK_BYTES = 1 << 20
_MAX_BLOCK_BYTES = 1 << 28


def _csv_to_float32_exact(text: str) -> np.ndarray:
    """The container's CSV decoding, step by step.

    ``csv_to_numpy`` reads the rows with ``csv.reader`` (comma, ``"`` quotes, doubled quotes,
    strict), builds ``np.array(rows).squeeze()`` and casts it with ``astype(None)``, i.e. to
    float64; the scikit-learn ``default_input_fn`` then casts to float32. The float64 step
    matters: string -> float64 -> float32 can round differently from string -> float32.
    """
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=",", quotechar='"', strict=True))
    except csv.Error as exc:
        raise ValueError(f"malformed CSV: {exc}") from exc
    widths = {len(row) for row in rows}
    if len(widths) > 1:
        # The toolkit's np.array(rows) raises here (ragged rows, including blank lines, which
        # csv.reader yields as empty rows); the request fails either way.
        raise ValueError(
            f"rows have different numbers of fields ({sorted(widths)}); blank lines and ragged "
            "rows cannot be decoded to an array"
        )
    strings = np.array(rows).squeeze()
    return strings.astype(np.float64).astype(np.float32)


def _csv_to_float32_fast(payload: bytes) -> np.ndarray | None:
    """Parse an all-numeric CSV payload with pyarrow, or return None to use the exact path.

    Only payloads made of digits, signs, dots, exponents, commas and newlines qualify; for those
    csv.reader splits on commas and newlines only, and pyarrow's float64 conversion accepts and
    rounds exactly the strings numpy's does (checked over generated inputs in the tests).
    Structural differences are excluded: blank lines are parsed as rows (``ignore_empty_lines``
    off), so they fail to convert like the container's ragged rows and take the exact path;
    empty cells are not nulls (``null_values=[]``), so they fail too. Each column's float64
    blocks are cast straight into the float32 result (the same float64 -> float32 rounding as
    ``astype``).
    """
    if not payload or payload.translate(None, _NUMERIC_CSV_BYTES):
        return None
    if b"\r" in payload:
        if payload.count(b"\r") != payload.count(b"\r\n"):
            return None  # a bare CR ends a row or fails in csv.reader: leave it to the exact path
        payload = payload.replace(b"\r\n", b"\n")
    first_row_end = payload.find(b"\n")
    first_row = payload if first_row_end < 0 else payload[:first_row_end]
    n_columns = first_row.count(b",") + 1

    names = [f"c{i}" for i in range(n_columns)]
    # With more than one thread in pyarrow's pool (the transform worker sizes it to its share
    # of the cores), 1 MiB blocks are parsed in parallel; small blocks keep the memory of the
    # blocks in flight low. Otherwise the payload is one block, parsed on this thread.
    threads = max(1, min(pa.cpu_count(), len(payload) // _BLOCK_BYTES))
    if threads > 1:
        block_size = _BLOCK_BYTES
    else:
        block_size = min(max(len(payload) + 1, _BLOCK_BYTES), _MAX_BLOCK_BYTES)
    try:
        table = pa_csv.read_csv(
            pa.BufferReader(payload),
            read_options=pa_csv.ReadOptions(
                column_names=names,
                use_threads=threads > 1,
                block_size=block_size,
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=",", quote_char=False, ignore_empty_lines=False
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.float64()),
                null_values=[],
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None  # ragged rows or a non-number: the exact path reports the failure
    if any(column.null_count for column in table.columns):
        return None
    values = np.empty((table.num_rows, n_columns), dtype=np.float32)
    for index, column in enumerate(table.columns):
        row = 0
        for chunk in column.chunks:  # one per block, in row order
            values[row : row + len(chunk), index] = chunk.to_numpy()
            row += len(chunk)
    return values.squeeze()


def decode_csv(payload: bytes | str) -> np.ndarray:
    """Decode a ``text/csv`` body as the scikit-learn container's default ``input_fn`` does.

    >>> decode_csv(b"1,2\\n3,4\\n").shape
    (2, 2)
    >>> decode_csv(b"1,2,3\\n").shape  # one row: squeezed to 1-D, as in the container
    (3,)
    """
    if isinstance(payload, bytes):
        fast = _csv_to_float32_fast(payload)
        if fast is not None:
            return fast
        payload = _request_text(payload)
    return _csv_to_float32_exact(payload)


def decode(payload: bytes | str, content_type: str) -> np.ndarray:
    """The scikit-learn container's ``default_input_fn``: decode, then float32 for CSV/JSON.

    Raises ``UnsupportedContentTypeError`` for any content type other than exactly ``text/csv``,
    ``application/json`` or ``application/x-npy``.
    """
    if content_type == CSV:
        return decode_csv(payload)
    if content_type == JSON:
        text = _request_text(payload) if isinstance(payload, bytes) else payload
        # json_to_numpy: np.array(json.loads(s)); the container then casts to float32.
        return np.array(json.loads(text)).astype(np.float32)
    if content_type == NPY:
        data = payload.encode() if isinstance(payload, str) else payload
        # npy_to_numpy loads with allow_pickle=True on this path (the MMS path's patched decoder
        # uses False); mirrored because the payload comes from the job's own input files.
        return np.load(io.BytesIO(data), allow_pickle=True)
    raise UnsupportedContentTypeError(
        f"content type {content_type!r} is not supported by the default input_fn, which accepts "
        f"exactly {CSV!r}, {JSON!r} or {NPY!r} (no parameters such as '; charset=utf-8'). "
        "Set the transform job's ContentType to one of these, or define input_fn in the "
        "inference module to decode this type.",
        stage="input_fn",
    )


def _request_text(payload: bytes) -> str:
    # Werkzeug's get_data(as_text=True) decodes UTF-8 with errors="replace".
    return payload.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------------------------
# Default encoders (sagemaker_containers/_encoders.py: encode, array_to_json, array_to_csv,
# array_to_npy)
# --------------------------------------------------------------------------------------------

# Characters that make csv.writer (QUOTE_MINIMAL, lineterminator "\n") quote a field.
_CSV_SPECIAL = (",", '"', "\n", "\r")


def _csv_cells(column: np.ndarray) -> list[str] | None:
    """``str()`` of every element, as csv.writer would write it, or None if quoting may apply."""
    kind = column.dtype.kind
    if kind == "f" and column.dtype == np.float64:
        # str(np.float64) is Python's shortest repr (tested), and tolist() is far faster than
        # formatting numpy scalars one by one.
        return list(map(repr, column.tolist()))
    if kind in "iub":
        return list(map(str, column.tolist()))
    if kind == "f":
        return column.astype(str).tolist()  # float16/32: numpy's own shortest repr per dtype
    if kind == "U":
        cells = column.tolist()
        # One C-level scan of the joined text instead of a Python loop per cell; an empty
        # cell is written as "" when it is alone on its row, so it also takes the exact path.
        joined = "\x00".join(cells)
        if "" in cells or any(ch in joined for ch in _CSV_SPECIAL):
            return None
        return cells
    return None


def _array_to_csv_fast(array: np.ndarray) -> str | None:
    if array.ndim == 1:
        cells = _csv_cells(array)
        if cells is None:
            return None
        return "\n".join(cells) + "\n" if cells else ""
    if array.ndim == 2 and array.shape[1] > 0:
        columns = [_csv_cells(array[:, j]) for j in range(array.shape[1])]
        if any(column is None for column in columns):
            return None
        if array.shape[0] == 0:
            return ""
        return "\n".join(map(",".join, zip(*columns, strict=True))) + "\n"
    return None


# ASCII codes csv.writer may quote for (see _CSV_SPECIAL); all below _QUOTE_CANDIDATE_BELOW.
_CSV_SPECIAL_CODES = np.array([ord(ch) for ch in _CSV_SPECIAL], dtype=np.uint8)
_QUOTE_CANDIDATE_BELOW = 45


def _ascii_labels_to_csv(array: np.ndarray) -> bytes | None:
    """One ASCII string per line, built with array operations, or None for the other paths.

    The common classifier answer (``predict`` returning a 1-D array of string labels) costs a
    Python object per row on the generic path. For a native-order ``str_`` array of one column
    whose cells are non-empty ASCII with no character csv.writer could quote and no NUL, each
    line is exactly the cell's characters and ``\n``: numpy stores the cells as zero-padded
    UTF-32 rows, so the output is that character matrix, as bytes, with a newline after each
    cell and the padding dropped.
    """
    if array.dtype.kind != "U" or not array.dtype.isnative or array.size == 0:
        return None
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]  # one field per row: written exactly like the 1-D case
    width = array.dtype.itemsize // 4
    if array.ndim != 1 or width == 0:
        return None
    codes = np.ascontiguousarray(array).view(np.uint32).reshape(-1, width)
    if codes.max() >= 0x80:
        return None  # non-ASCII: UTF-8 has several bytes per character
    chars = codes.astype(np.uint8)
    # str_len counts up to the last character, a NUL inside a cell included: every cell is
    # non-empty (an empty one is written as "", quoted) and NUL-free iff these agree.
    lengths = np.char.str_len(array)
    if lengths.min() == 0 or np.count_nonzero(chars) != int(lengths.sum(dtype=np.int64)):
        return None
    filled = chars != 0
    low = chars[(chars < _QUOTE_CANDIDATE_BELOW) & filled]
    if low.size and np.isin(low, _CSV_SPECIAL_CODES).any():
        return None
    # Each row: its characters, the zero padding, then "\n"; keeping the non-padding bytes in
    # row order gives "cell\n" for every cell.
    lines = np.empty((len(chars), width + 1), dtype=np.uint8)
    lines[:, :width] = chars
    lines[:, width] = 0x0A
    keep = np.empty(lines.shape, dtype=bool)
    keep[:, :width] = filled
    keep[:, width] = True
    return lines[keep].tobytes()


def _array_to_csv_exact(array: np.ndarray) -> str:
    """``array_to_csv``: 1-D becomes one value per line; rows written by ``csv.writer``."""
    if array.ndim == 1:
        array = array.reshape(array.shape[0], 1)
    stream = io.StringIO()
    writer = csv.writer(stream, lineterminator="\n", delimiter=",", quotechar='"', strict=True)
    writer.writerows(array)
    return stream.getvalue()


def encode_csv(prediction: Any) -> bytes:
    """Encode a prediction as the container's CSV encoder does.

    >>> encode_csv(np.array([6.000000000000001, 9.0]))
    b'6.000000000000001\\n9.0\\n'
    """
    array = np.asarray(prediction)
    labels = _ascii_labels_to_csv(array)
    if labels is not None:
        return labels
    text = _array_to_csv_fast(array)
    if text is None:
        text = _array_to_csv_exact(array)
    return text.encode("utf-8")


def encode_json(prediction: Any) -> bytes:
    """``array_to_json``: ``json.dumps`` with ``tolist()`` for numpy values.

    >>> encode_json(np.array([6.0, 9.0]))
    b'[6.0, 9.0]'
    """
    if isinstance(prediction, np.ndarray):
        # Same bytes as json.dumps(array, default=tolist): the default hook would return exactly
        # this list, and numpy scalars inside tolist() output are already Python numbers.
        prediction = prediction.tolist()
    return json.dumps(prediction, default=_json_default).encode("utf-8")


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode_npy(prediction: Any) -> bytes:
    """``array_to_npy``: ``np.save`` into a buffer."""
    buffer = io.BytesIO()
    np.save(buffer, prediction)
    return buffer.getvalue()


_ENCODERS: dict[str, Callable[[Any], bytes]] = {
    JSON: encode_json,
    CSV: encode_csv,
    NPY: encode_npy,
}


def encode(prediction: Any, accept: str) -> bytes:
    """The container's ``default_output_fn`` body; ``UnsupportedAcceptError`` for other types."""
    encoder = _ENCODERS.get(accept)
    if encoder is None:
        raise UnsupportedAcceptError(
            f"Accept {accept!r} is not supported by the default output_fn, which encodes "
            f"exactly {JSON!r}, {CSV!r} or {NPY!r} (no list of types, no parameters). Set the "
            "transform job's Accept to one of these, or define output_fn in the inference "
            "module.",
            stage="output_fn",
        )
    return encoder(prediction)


# --------------------------------------------------------------------------------------------
# Handler results -> (body, content type), as Flask turns a view's return value into a response
# --------------------------------------------------------------------------------------------


def _body_bytes(body: Any, stage: str) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, (list, tuple)) or isinstance(body, Iterator):
        # werkzeug accepts an iterable of str/bytes chunks as a response body.
        parts = list(body)
        if all(isinstance(part, (str, bytes)) for part in parts):
            return b"".join(p.encode("utf-8") if isinstance(p, str) else p for p in parts)
    raise InvocationError(
        f"{stage} returned a body of type {type(body).__name__}, which the server cannot send; "
        "return bytes or str, optionally as a (body, content_type) tuple",
        stage=stage,
    )


def _to_response(result: Any, stage: str) -> tuple[bytes, str]:
    """Turn what a handler returned into (body, content type) the way the server would."""
    if isinstance(result, tuple):
        # _transformer.Transformer.transform: a tuple is (response, mimetype).
        if len(result) != 2:
            raise InvocationError(
                f"{stage} returned a tuple of {len(result)} items; expected (body, content_type)",
                stage=stage,
            )
        return _body_bytes(result[0], stage), str(result[1])
    if hasattr(result, "get_data") and hasattr(result, "status_code"):
        # A Flask/werkzeug Response (e.g. the container's worker.Response). Batch Transform fails
        # the file on any non-200 answer.
        if result.status_code != 200:
            detail = result.get_data(as_text=True)[:500]
            raise InvocationError(
                f"{stage} returned an HTTP {result.status_code} response: {detail}", stage=stage
            )
        return result.get_data(), result.mimetype or JSON
    if isinstance(result, (dict, list)):
        # Flask's make_response serialises dicts/lists with its JSON provider (compact,
        # sorted keys, ASCII, trailing newline).
        try:
            text = json.dumps(result, separators=(",", ":"), sort_keys=True, ensure_ascii=True)
        except TypeError as exc:
            raise InvocationError(
                f"{stage} returned a {type(result).__name__} that is not JSON serialisable: {exc}",
                stage=stage,
            ) from exc
        return (text + "\n").encode("utf-8"), JSON
    if isinstance(result, (str, bytes, bytearray, memoryview)):
        return _body_bytes(result, stage), "text/html"  # Flask's default response mimetype
    raise InvocationError(
        f"{stage} returned {type(result).__name__}, which the server cannot send as a response; "
        "return bytes or str, a (body, content_type) tuple, or a Flask Response",
        stage=stage,
    )


# --------------------------------------------------------------------------------------------
# Loading the inference module
# --------------------------------------------------------------------------------------------


def module_name_from_program(program: str) -> str:
    """``_env._parse_module_name``: ``inference.py`` -> ``inference``; other names unchanged."""
    return program[:-3] if program.endswith(".py") else program


def resolve_submit_dir(value: str | None, model_dir: Path) -> Path:
    """Map ``SAGEMAKER_SUBMIT_DIRECTORY`` to a local directory.

    ``/opt/ml/model/<sub>`` maps to ``<model_dir>/<sub>`` (the SDK sets ``/opt/ml/model/code``
    when it repacked the code into model.tar.gz); ``file://`` URIs and local directories are
    used as they are. An S3 URI must be downloaded and extracted by the caller first.
    """
    if not value:
        raise ModelLoadError(
            f"{SUBMIT_DIR_ENV} is not set: the container would import the module from "
            f"{CONTAINER_CODE_DIR}, which a model package does not populate. Set it to "
            f"{CONTAINER_MODEL_DIR}/code for code packed into model.tar.gz"
        )
    if value.startswith("s3://"):
        raise ModelLoadError(
            f"{SUBMIT_DIR_ENV}={value} is an S3 URI: download and extract that source archive "
            "first and pass its local directory"
        )
    if value == CONTAINER_MODEL_DIR or value.startswith(CONTAINER_MODEL_DIR + "/"):
        return model_dir / value[len(CONTAINER_MODEL_DIR) :].lstrip("/")
    if value.startswith("file://"):
        value = value[len("file://") :]
    return Path(value)


@contextlib.contextmanager
def _user_code_importable(code_dir: Path, name: str, module: ModuleType) -> Iterator[None]:
    """Make ``code_dir`` importable and ``module`` known as ``name``, only for the block.

    In the container the module is pip-installed under its own name, so model_fn may unpickle
    objects whose classes live in it (``inference.MyTransformer``). Afterwards every module
    imported from ``code_dir`` leaves ``sys.modules`` again, so the next model with a module of
    the same name (or its own ``utils.py``) gets its own code.
    """
    before = set(sys.modules)
    previous = sys.modules.get(name)
    sys.modules[name] = module
    sys.path.insert(0, str(code_dir))
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(code_dir))
        for loaded in set(sys.modules) - before:
            origin = getattr(sys.modules[loaded], "__file__", None) or ""
            if origin and _is_within(Path(origin), code_dir):
                del sys.modules[loaded]
        if previous is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = previous


def _is_within(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
    except ValueError:
        return False
    return True


def _find_module_file(code_dir: Path, name: str) -> Path:
    for candidate in (code_dir / f"{name}.py", code_dir / name / "__init__.py"):
        if candidate.is_file():
            return candidate
    listing = sorted(p.name for p in code_dir.iterdir()) if code_dir.is_dir() else None
    where = (
        f"{code_dir} (contains: {', '.join(listing) or 'nothing'})"
        if listing is not None
        else (f"{code_dir}, which does not exist")
    )
    raise ModelLoadError(
        f"{PROGRAM_ENV} names module {name!r}, but there is no {name}.py in {where}"
    )


def _import_user_module(code_dir: Path, name: str) -> ModuleType:
    path = _find_module_file(code_dir, name)
    unique = f"_kedro_aws_serving_{name.replace('.', '_')}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(
        unique,
        path,
        submodule_search_locations=[str(path.parent)] if path.name == "__init__.py" else None,
    )
    assert spec is not None and spec.loader is not None  # a .py file always has a loader
    module = importlib.util.module_from_spec(spec)
    with _user_code_importable(code_dir, name, module):
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ModelLoadError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


# --------------------------------------------------------------------------------------------
# The served model
# --------------------------------------------------------------------------------------------


@dataclass
class ServingModel:
    """A loaded inference module and model, answering invocations like the container.

    Build it with ``ServingModel.load``. ``invoke`` is the ``POST /invocations`` handler.
    """

    model: Any
    module: ModuleType
    model_dir: Path
    module_path: Path
    default_accept: str
    transform_fn: Callable[..., Any] | None
    input_fn: Callable[..., Any] | None
    predict_fn: Callable[..., Any] | None
    output_fn: Callable[..., Any] | None

    @classmethod
    def load(cls, model_dir: str | Path, env: Mapping[str, str]) -> ServingModel:
        """Import the module named by ``SAGEMAKER_PROGRAM`` and call its ``model_fn``.

        ``model_dir`` is an extracted model.tar.gz; ``env`` is the model container's
        Environment. The process environment is not read: a worker serves the model's
        environment, not its own. Loading is serialised by a lock because it briefly touches
        ``sys.path`` and ``sys.modules``.

        >>> model = ServingModel.load(tmp / "model", {"SAGEMAKER_PROGRAM": "inference.py",
        ...     "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"})  # doctest: +SKIP
        """
        model_dir = Path(model_dir)
        program = env.get(PROGRAM_ENV)
        if not program:
            # _server.start imports nothing without SAGEMAKER_PROGRAM, and the scikit-learn
            # container has no default model_fn, so no request could ever succeed.
            raise ModelLoadError(
                f"{PROGRAM_ENV} is not set: name the inference module (e.g. inference.py) in "
                "the model's Environment"
            )
        name = module_name_from_program(program)
        code_dir = resolve_submit_dir(env.get(SUBMIT_DIR_ENV), model_dir)
        with _LOAD_LOCK:
            module = _import_user_module(code_dir, name)
            module_path = Path(module.__file__ or code_dir / f"{name}.py")
            handlers = {h: getattr(module, h, None) for h in (*_HANDLER_NAMES, "transform_fn")}
            defined = [h for h in _HANDLER_NAMES if handlers[h]]
            if handlers["transform_fn"] and defined:
                # serving._user_module_transformer raises UserError for exactly this.
                raise ModelLoadError(
                    f"{module_path} defines transform_fn together with {', '.join(defined)}: "
                    "transform_fn replaces input_fn, predict_fn and output_fn, so the "
                    "container refuses the combination. Keep transform_fn alone, or remove it."
                )
            model_fn = getattr(module, "model_fn", None)
            if model_fn is None:
                raise ModelLoadError(
                    f"{module_path} defines no model_fn(model_dir): the scikit-learn container "
                    "has no default way to load a model, so the inference module must provide "
                    "one (e.g. return joblib.load(os.path.join(model_dir, 'model.joblib')))"
                )
            with _user_code_importable(code_dir, name, module):
                try:
                    # _transformer.Transformer.initialize: model_fn(_env.model_dir).
                    model = model_fn(str(model_dir))
                except Exception as exc:
                    raise ModelLoadError(
                        f"model_fn in {module_path} raised {type(exc).__name__}: {exc}"
                    ) from exc
        return cls(
            model=model,
            module=module,
            model_dir=model_dir,
            module_path=module_path,
            # _env.ServingEnv: os.environ.get(DEFAULT_INVOCATIONS_ACCEPT_ENV, JSON).
            default_accept=env.get(DEFAULT_ACCEPT_ENV, JSON),
            transform_fn=handlers["transform_fn"],
            input_fn=handlers["input_fn"],
            predict_fn=handlers["predict_fn"],
            output_fn=handlers["output_fn"],
        )

    def resolve_accept(self, accept: str | None) -> str:
        """``_worker.Request.accept``: missing or ``*/*`` means the default Accept."""
        return self.default_accept if not accept or accept == ANY else accept

    def invoke(
        self, payload: bytes, content_type: str | None, accept: str | None
    ) -> tuple[bytes, str]:
        """Answer one ``/invocations`` request: returns (body, content type) or raises.

        >>> model.invoke(b"[[1, 2, 3]]", "application/json", None)  # doctest: +SKIP
        (b'[6.000000000000001]', 'application/json')
        """
        # _worker.Request.content_type: no header means application/json.
        content_type = content_type or JSON
        accept = self.resolve_accept(accept)
        if self.transform_fn is not None:
            result = self._call(
                "transform_fn",
                self.transform_fn,
                self.model,
                self._content(payload, content_type),
                content_type,
                accept,
            )
            return _to_response(result, "transform_fn")

        if self.input_fn is not None:
            data = self._call(
                "input_fn", self.input_fn, self._content(payload, content_type), content_type
            )
        else:
            data = self._call("input_fn", decode, payload, content_type)

        if self.predict_fn is not None:
            prediction = self._call("predict_fn", self.predict_fn, data, self.model)
        else:
            prediction = self._default_predict(data, content_type, custom_input=self.input_fn)

        if self.output_fn is not None:
            result = self._call("output_fn", self.output_fn, prediction, accept)
            return _to_response(result, "output_fn")
        return self._call("output_fn", encode, prediction, accept), accept

    @staticmethod
    def _content(payload: bytes, content_type: str) -> bytes | str:
        return _request_text(payload) if content_type in TEXT_CONTENT_TYPES else payload

    def _call(self, stage: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except InvocationError:
            raise
        except Exception as exc:
            where = (
                "the default " + stage
                if fn in (decode, encode)
                else f"{stage} in {self.module_path}"
            )
            raise InvocationError(
                f"{where} raised {type(exc).__name__}: {exc}", stage=stage
            ) from exc

    def _default_predict(self, data: Any, content_type: str, custom_input: Any) -> Any:
        try:
            return self.model.predict(data)
        except Exception as exc:
            ndim = getattr(data, "ndim", None)
            if custom_input is None and ndim is not None and ndim < 2:
                raise SingleRowBatchError(
                    _squeeze_explanation(data, content_type, exc), stage="predict_fn"
                ) from exc
            raise InvocationError(
                f"the default predict_fn (model.predict) raised {type(exc).__name__}: {exc}",
                stage="predict_fn",
            ) from exc


def _squeeze_explanation(data: np.ndarray, content_type: str, exc: Exception) -> str:
    return (
        f"model.predict failed on a {data.ndim}-D array of shape {data.shape}: "
        f"{type(exc).__name__}: {exc}. The container's default input_fn decoded the "
        f"{content_type} payload to fewer than two dimensions (for CSV it squeezes the rows, "
        "np.array(rows).squeeze(), so a payload holding a single row or a single column loses "
        "a dimension; an empty payload gives shape (0,)) and scikit-learn refuses it; "
        "SageMaker fails the same way. This happens with BatchStrategy SingleRecord, and with "
        "MultiRecord when a file (or its last mini-batch) holds one row. Fix: use SplitType Line "
        "with BatchStrategy MultiRecord and a MaxPayloadInMB large enough for several rows, or "
        "define input_fn in the inference module to keep two dimensions, e.g. "
        "np.atleast_2d(...) or array.reshape(-1, n_features)."
    )
