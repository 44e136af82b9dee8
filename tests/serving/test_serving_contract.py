"""The serving contract: our handlers against the scikit-learn container's.

The reference below re-implements, step by step, the container's default handlers so that the
fast paths in ``kedro_aws.local.serving`` can be compared byte for byte over generated inputs
(``sagemaker-containers`` is not installed in the test environment).
"""

from __future__ import annotations

import csv
import io
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from kedro_aws.local import serving
from kedro_aws.local.serving import (
    InvocationError,
    ModelLoadError,
    ServingModel,
    SingleRowBatchError,
    UnsupportedAcceptError,
    UnsupportedContentTypeError,
)

from .conftest import ENV

# The container warns on float32 overflow (1e400 -> inf) exactly as we do; keep output quiet.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

# --------------------------------------------------------------------------------------------
# REFERENCE: the container's algorithm, written out for comparison. Sources:
#   aws/sagemaker-containers 2.8.6.post2, src/sagemaker_containers/_encoders.py:
#     csv_to_numpy, json_to_numpy, npy_to_numpy, array_to_csv, array_to_json, array_to_npy
#   aws/sagemaker-scikit-learn-container, src/sagemaker_sklearn_container/serving.py:
#     default_input_fn (decode, then astype(float32) for text/csv and application/json)
#   src/sagemaker_containers/_worker.py Request.content (UTF-8 text for CSV/JSON bodies)
# Any exception means "the container answers 500"; the tests only compare success vs failure
# and, on success, the exact bytes, dtype and shape.
# --------------------------------------------------------------------------------------------


def reference_input_fn(body: bytes, content_type: str) -> np.ndarray:
    if content_type == "text/csv":
        text = body.decode("utf-8", errors="replace")
        reader = csv.reader(
            io.StringIO(text), delimiter=",", quotechar='"', doublequote=True, strict=True
        )
        array = np.array(list(reader)).squeeze()
        try:
            array = array.astype(None)  # csv_to_numpy(dtype=None): float64, ValueError ignored
        except ValueError:
            pass
        return array.astype(np.float32)
    if content_type == "application/json":
        return np.array(json.loads(body.decode("utf-8", errors="replace"))).astype(np.float32)
    if content_type == "application/x-npy":
        return np.load(io.BytesIO(body), allow_pickle=True)
    raise ValueError(f"unsupported {content_type}")


def reference_array_to_csv(prediction: object) -> bytes:
    array = np.array(prediction)
    if len(array.shape) == 1:
        array = np.reshape(array, (array.shape[0], 1))
    stream = io.StringIO()
    writer = csv.writer(
        stream, lineterminator="\n", delimiter=",", quotechar='"', doublequote=True, strict=True
    )
    writer.writerows(array)
    return stream.getvalue().encode("utf-8")


def reference_array_to_json(prediction: object) -> bytes:
    def default(value: object) -> object:
        if hasattr(value, "tolist"):
            return value.tolist()
        return json.JSONEncoder().default(value)

    return json.dumps(prediction, default=default).encode("utf-8")


def _outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - any failure is a 500 in the container
        return ("error", type(exc).__name__)


def assert_same_array(ours, reference, payload):
    assert ours[0] == reference[0], (payload, ours, reference)
    if ours[0] == "ok":
        a, b = ours[1], reference[1]
        assert (a.dtype, a.shape) == (b.dtype, b.shape), payload
        assert a.tobytes() == b.tobytes(), payload


# --------------------------------------------------------------------------------------------
# Generated inputs
# --------------------------------------------------------------------------------------------


def _number(rng: random.Random) -> str:  # noqa: PLR0911 - one branch per number shape
    choice = rng.randrange(9)
    if choice == 0:
        return repr(rng.uniform(-1e6, 1e6))  # up to 17 significant digits
    if choice == 1:
        return f"{rng.uniform(-1, 1) * 10 ** rng.uniform(-300, 300):.{rng.randrange(0, 20)}e}"
    if choice == 2:
        return str(rng.randint(-(10**20), 10**20))
    if choice == 3:
        return f"{rng.uniform(-1, 1):.25f}"
    if choice == 4:
        return rng.choice(["0", "-0", "+1", ".5", "5.", "-.25", "1E5", "1e-7", "007", "1e400"])
    if choice == 5:
        return f"{rng.uniform(-100, 100):.9g}"
    if choice == 6:
        return "".join(rng.choice("0123456789.eE+-") for _ in range(rng.randint(1, 6)))
    return repr(rng.uniform(0, 10))


def _odd_cell(rng: random.Random) -> str:
    return rng.choice(
        ['"1.5"', "", " 2.5", "nan", "inf", "-Infinity", "1_0", "abc", '"a,b"', "\u00e9", '"1""2"']
    )


def _csv_payload(rng: random.Random, odd: bool) -> bytes:
    rows = rng.choice([1, 1, 2, 3, 7, 40])
    cols = rng.choice([1, 2, 4, 5])
    lines = []
    for _ in range(rows):
        cells = [_number(rng) for _ in range(cols)]
        if odd and rng.random() < 0.3:
            cells[rng.randrange(cols)] = _odd_cell(rng)
        lines.append(",".join(cells))
    terminator = rng.choice(["\n", "\n", "\r\n"])
    text = terminator.join(lines)
    ending = rng.choice(
        ["", terminator, terminator, terminator + terminator] if odd else ["", terminator]
    )
    if odd and rng.random() < 0.1 and rows > 1:
        text = text.replace(terminator, terminator + terminator, 1)  # blank line in the middle
    if odd and rng.random() < 0.05:
        text = text.replace(terminator, "\r", 1)  # bare CR
    return (text + ending).encode("utf-8")


def test_csv_decode_matches_container_on_generated_numeric_payloads():
    rng = random.Random(20240601)
    fast_hits = 0
    for _ in range(1500):
        payload = _csv_payload(rng, odd=False)
        if serving._csv_to_float32_fast(payload) is not None:
            fast_hits += 1
        assert_same_array(
            _outcome(serving.decode, payload, "text/csv"),
            _outcome(reference_input_fn, payload, "text/csv"),
            payload,
        )
    # The equivalence is about the fast path: most numeric payloads must actually take it.
    assert fast_hits > 700


def test_csv_decode_matches_container_on_odd_payloads():
    rng = random.Random(7)
    for _ in range(1500):
        payload = _csv_payload(rng, odd=True)
        assert_same_array(
            _outcome(serving.decode, payload, "text/csv"),
            _outcome(reference_input_fn, payload, "text/csv"),
            payload,
        )


@pytest.fixture
def pyarrow_threads():
    """pyarrow's CPU pool set to N threads for the test (a transform worker sizes it)."""
    import pyarrow as pa

    before = pa.cpu_count()
    yield pa.set_cpu_count
    pa.set_cpu_count(before)


def _large_numeric_payload(rng: random.Random, rows: int, terminator: str = "\n") -> bytes:
    lines = (
        ",".join(
            rng.choice(["5.1", "0.30000000000000004", "-7e-3", "16777217", "1"]) for _ in "abcd"
        )
        for _ in range(rows)
    )
    return (terminator.join(lines) + terminator).encode()


def test_csv_decode_of_a_multi_block_payload_matches_container(pyarrow_threads):
    # Over 1 MiB with two threads: pyarrow parses 1 MiB blocks in parallel, and the blocks of
    # each column are stitched back in row order.
    pyarrow_threads(2)
    rng = random.Random(11)
    for terminator in ("\n", "\r\n"):
        payload = _large_numeric_payload(rng, 150_000, terminator)
        assert len(payload) > 3 * 2**20
        decoded = serving._csv_to_float32_fast(payload)
        assert decoded is not None  # the fast, multi-block path was taken
        assert_same_array(
            ("ok", decoded), _outcome(reference_input_fn, payload, "text/csv"), payload[:80]
        )


@pytest.mark.parametrize(
    ("damage", "position"),
    [("1,2\n", "first"), ("1,2,3,4,5\n", "last"), ("\n", "last"), ("1,,3,4\n", "last")],
)
def test_csv_decode_of_a_multi_block_payload_fails_like_the_container(
    pyarrow_threads, damage, position
):
    # A ragged row, blank line or empty cell in any block fails the whole request, as the
    # container's np.array(rows) / astype would.
    pyarrow_threads(2)
    payload = _large_numeric_payload(random.Random(3), 100_000)
    payload = damage.encode() + payload if position == "first" else payload + damage.encode()
    assert serving._csv_to_float32_fast(payload) is None
    assert _outcome(serving.decode, payload, "text/csv")[0] == "error"
    assert _outcome(reference_input_fn, payload, "text/csv")[0] == "error"


@pytest.mark.parametrize(
    "payload",
    [
        b"1,2,3\n2,3,4\n",
        b"1,2,3\r\n2,3,4\r\n",
        b"1,2,3\n2,3,4",
        b'"1","2","3"\n4,5,6\n',
        b"1,,3\n4,5,6\n",
        b"1,2\n\n3,4\n",
        b"1,2\n3,4\n\n",
        b"1\n\n2\n",  # a blank line in one column: pyarrow must not skip it
        b"\n1,2\n3,4\n",
        b"1\n2\n\n",
        b"1,2\r\n\r\n3,4\r\n",
        b"",
        b"\n",
        b"42\n6\n9\n",
        b"0.1,0.2\n1e-320,1e400\n",
        b"a\n",
        b'"a\nb"\nc\n',
        b"1,2\r3,4\n",
        b"\xff\xfe1,2\n",
        b"16777217,0.30000000000000004\n1.0000000596046448,3.4028235677973366e38\n",
    ],
)
def test_csv_decode_edge_cases_match_container(payload):
    assert_same_array(
        _outcome(serving.decode, payload, "text/csv"),
        _outcome(reference_input_fn, payload, "text/csv"),
        payload,
    )


def test_csv_decode_goes_through_float64_like_the_container():
    # 1.0000000596046448 is half-way between two float32 values only after rounding to
    # float64; parsing straight to float32 would pick the other neighbour.
    value = serving.decode(b"1.00000005960464477539062500001,2\n3,4\n", "text/csv")[0, 0]
    reference = np.float32(np.float64("1.00000005960464477539062500001"))
    assert value.tobytes() == reference.tobytes()


def test_json_and_npy_decode_match_container():
    rng = random.Random(3)
    payloads = [
        b"[[1, 2, 3]]",
        b"[1, 2, 3]",
        b'[["1.5", "2"]]',
        b"[[1, 2], [3]]",
        b"{}",
        b"not json",
        b"[[1e400, -0.0]]",
    ]
    for _ in range(200):
        rows = [[rng.uniform(-1e9, 1e9) for _ in range(3)] for _ in range(rng.randint(1, 5))]
        payloads.append(json.dumps(rows).encode())
    for payload in payloads:
        assert_same_array(
            _outcome(serving.decode, payload, "application/json"),
            _outcome(reference_input_fn, payload, "application/json"),
            payload,
        )
    for array in (np.arange(6, dtype=np.int16).reshape(2, 3), np.array([1.5, 2.5])):
        buffer = io.BytesIO()
        np.save(buffer, array)
        decoded = serving.decode(buffer.getvalue(), "application/x-npy")
        assert decoded.dtype == array.dtype  # NPY is returned as stored, no float32 cast
        assert_same_array(
            ("ok", decoded),
            _outcome(reference_input_fn, buffer.getvalue(), "application/x-npy"),
            array,
        )


def _predictions(rng: random.Random) -> list[object]:
    n = rng.choice([0, 1, 2, 5, 30])
    floats = [rng.uniform(-1e6, 1e6) * 10 ** rng.randint(-30, 30) for _ in range(n)]
    specials = [float("nan"), float("inf"), -0.0, 1e16, 1e-5, 123456789.0]
    labels = ["setosa", "versicolor", "a,b", 'say "hi"', "", "multi\nline", "caf\u00e9"]
    return [
        np.array(floats),
        np.array(floats, dtype=np.float32),
        np.array(floats + specials).reshape(-1, 2) if n % 2 == 0 else np.array(specials),
        np.array([rng.randint(-(10**12), 10**12) for _ in range(n)]),
        np.array([rng.random() < 0.5 for _ in range(n)]),
        np.array([rng.choice(labels[:2]) for _ in range(n)]),
        np.array([rng.choice(labels) for _ in range(n)]),
        np.array([rng.choice(labels) for _ in range(n)], dtype=object),
        np.array(floats, dtype=np.float16),
        np.arange(n * 3, dtype=np.uint8).reshape(n, 3),
        np.array([1.25, -2.5, 3.0]).reshape(1, 3),
        np.array(3.5),
        np.zeros((2, 2, 2)),
        [1.5, 2.5],
    ]


def test_csv_and_json_encode_match_container_byte_for_byte():
    rng = random.Random(11)
    for _ in range(150):
        for prediction in _predictions(rng):
            for ours, reference in (
                (serving.encode_csv, reference_array_to_csv),
                (serving.encode_json, reference_array_to_json),
            ):
                mine, theirs = _outcome(ours, prediction), _outcome(reference, prediction)
                assert mine[0] == theirs[0], (prediction, mine, theirs)
                if mine[0] == "ok":
                    assert mine[1] == theirs[1], prediction


def test_csv_encode_takes_the_fast_path_for_numeric_and_label_arrays():
    assert (
        serving._array_to_csv_fast(np.array([6.000000000000001, 9.0])) == "6.000000000000001\n9.0\n"
    )
    assert serving._array_to_csv_fast(np.array([[1, 2], [3, 4]])) == "1,2\n3,4\n"
    assert serving._array_to_csv_fast(np.array(["setosa", "virginica"])) == "setosa\nvirginica\n"
    assert serving._array_to_csv_fast(np.array(["a,b"])) is None  # needs quoting: exact path


def _label_arrays(rng: random.Random) -> list[np.ndarray]:
    """String predictions: the vectorised label path's cases and every reason to refuse it."""
    n = rng.choice([1, 2, 3, 17, 400])
    plain = ["setosa", "versicolor", "virginica", "a", "class_10", "x-y.z", "A B", "~!#$%&'()*"]
    refused = [
        "",
        "a,b",
        'say "hi"',
        "multi\nline",
        "cr\rhere",
        "caf\u00e9",
        "nul\x00mid",
        "\u20ac",
    ]
    labels = [rng.choice(plain) for _ in range(n)]
    spoiled = list(labels)
    spoiled[rng.randrange(n)] = rng.choice(refused)
    printable = [
        "".join(chr(rng.randrange(1, 128)) for _ in range(rng.randint(1, 12))) for _ in range(n)
    ]
    return [
        np.array(labels),
        np.array(labels).reshape(-1, 1),  # one column, 2-D
        np.array(labels)[::-1],  # not contiguous
        np.array(labels, dtype=np.dtype("U12").newbyteorder(">")),  # not native order
        np.array(spoiled),
        np.array(spoiled).reshape(-1, 1),
        np.array(printable),  # any ASCII, control characters included
        np.array(labels + ["", "b"])[: n + 1],  # an empty cell
        np.array(labels, dtype="U40"),  # wide padding
        np.array([labels, labels]).T,  # two columns: not the label path
    ]


def test_csv_encode_label_fast_path_matches_container_byte_for_byte():
    rng = random.Random(42)
    fast_hits = 0
    for _ in range(150):
        for prediction in _label_arrays(rng):
            expected = _outcome(reference_array_to_csv, prediction)
            assert _outcome(serving.encode_csv, prediction) == expected, prediction
            fast = serving._ascii_labels_to_csv(prediction)
            if fast is not None:
                fast_hits += 1
                assert ("ok", fast) == expected, prediction
    assert fast_hits > 500  # the common cases do take the vectorised path


def test_csv_encode_label_fast_path_refuses_what_it_cannot_write_exactly():
    for refused in (
        np.array(["setosa", ""]),  # csv.writer writes a lone empty field as ""
        np.array(["a,b"]),
        np.array(['q"']),
        np.array(["a\nb"]),
        np.array(["a\rb"]),
        np.array(["caf\u00e9"]),
        np.array(["nul\x00mid"]),
        np.array(["a", "b"], dtype=np.dtype("U1").newbyteorder(">")),
        np.array([], dtype="U3"),
        np.array("scalar"),
        np.array([1.5, 2.5]),
    ):
        assert serving._ascii_labels_to_csv(refused) is None, refused
    assert serving._ascii_labels_to_csv(np.array(["setosa", "virginica"])) == b"setosa\nvirginica\n"


# --------------------------------------------------------------------------------------------
# The handler chain, end to end through ServingModel (research section 1.4 table)
# --------------------------------------------------------------------------------------------


def test_default_handlers_answer_like_the_container(make_model_dir):
    model = ServingModel.load(make_model_dir(), ENV)
    csv_body = b"1,2,3\n2,3,4\n"
    expected = reference_array_to_csv(model.model.predict(reference_input_fn(csv_body, "text/csv")))
    assert expected.count(b"\n") == 2  # one prediction per line
    assert model.invoke(csv_body, "text/csv", "text/csv") == (expected, "text/csv")
    json_body = b"[[1,2,3]]"
    expected = reference_array_to_json(
        model.model.predict(reference_input_fn(json_body, "application/json"))
    )
    assert model.invoke(json_body, "application/json", None) == (expected, "application/json")
    # No Content-Type header means application/json (_worker.Request.content_type).
    assert model.invoke(b"[[1,2,3]]", None, "*/*")[1] == "application/json"
    body, content_type = model.invoke(b"[[1,2,3],[0,0,1]]", "application/json", "application/x-npy")
    assert content_type == "application/x-npy"
    assert np.load(io.BytesIO(body)).tolist() == pytest.approx([6.0, 1.0])


def test_missing_or_any_accept_uses_default_accept_env(make_model_dir):
    env = {**ENV, "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}
    model = ServingModel.load(make_model_dir(), env)
    prediction = model.model.predict(reference_input_fn(b"[[1,2,3]]", "application/json"))
    for accept in (None, "", "*/*"):
        assert model.invoke(b"[[1,2,3]]", "application/json", accept) == (
            reference_array_to_csv(prediction),
            "text/csv",
        )


def test_single_row_csv_fails_with_an_explanation(make_model_dir):
    model = ServingModel.load(make_model_dir(), ENV)
    with pytest.raises(SingleRowBatchError) as info:
        model.invoke(b"1,2,3\n", "text/csv", "text/csv")
    message = str(info.value)
    assert "shape (3,)" in message
    assert "SplitType Line" in message and "MultiRecord" in message and "input_fn" in message
    assert info.value.status_code == 500
    assert isinstance(info.value.__cause__, ValueError)  # sklearn's "Expected 2D array"


def test_one_column_csv_and_flat_json_fail_like_the_container(make_model_dir):
    model = ServingModel.load(make_model_dir(), ENV)
    for payload, content_type in ((b"1\n2\n", "text/csv"), (b"[1,2,3]", "application/json")):
        with pytest.raises(SingleRowBatchError):
            model.invoke(payload, content_type, "text/csv")


@pytest.mark.parametrize(
    "content_type",
    ["text/csv; charset=utf-8", "application/octet-stream", "application/jsonlines", "TEXT/CSV"],
)
def test_unsupported_content_type_is_refused(make_model_dir, content_type):
    model = ServingModel.load(make_model_dir(), ENV)
    with pytest.raises(UnsupportedContentTypeError) as info:
        model.invoke(b"1,2,3\n2,3,4\n", content_type, "text/csv")
    assert repr(content_type) in str(info.value)
    assert info.value.status_code == 500 and info.value.toolkit_status_code == 415


@pytest.mark.parametrize("accept", ["application/jsonlines", "text/csv, application/json"])
def test_unsupported_accept_is_refused(make_model_dir, accept):
    model = ServingModel.load(make_model_dir(), ENV)
    with pytest.raises(UnsupportedAcceptError) as info:
        model.invoke(b"1,2,3\n2,3,4\n", "text/csv", accept)
    assert repr(accept) in str(info.value)
    assert info.value.toolkit_status_code == 406


def test_npy_input_keeps_its_dtype(make_model_dir):
    code = """
    import os, joblib
    def model_fn(model_dir):
        return joblib.load(os.path.join(model_dir, "model.joblib"))
    def predict_fn(data, model):
        return [str(data.dtype)]
    """
    model = ServingModel.load(make_model_dir(code), ENV)
    buffer = io.BytesIO()
    np.save(buffer, np.ones((2, 3), dtype=np.float64))
    assert model.invoke(buffer.getvalue(), "application/x-npy", "application/json")[0] == (
        b'["float64"]'
    )
    assert model.invoke(b"1,2,3\n2,3,4\n", "text/csv", "application/json")[0] == b'["float32"]'


def test_custom_handlers_receive_text_for_csv_and_bytes_otherwise(make_model_dir):
    code = """
    def model_fn(model_dir):
        return "the-model"
    def input_fn(body, content_type):
        return (type(body).__name__, content_type)
    def predict_fn(data, model):
        return (*data, model)
    def output_fn(prediction, accept):
        return ",".join(prediction), "text/plain"
    """
    model = ServingModel.load(make_model_dir(code), ENV)
    assert model.invoke(b"1,2\n", "text/csv", "text/csv") == (
        b"str,text/csv,the-model",
        "text/plain",
    )
    assert model.invoke(b"\x00", "application/x-parquet", None) == (
        b"bytes,application/x-parquet,the-model",
        "text/plain",
    )


def test_transform_fn_replaces_the_chain(make_model_dir):
    code = """
    def model_fn(model_dir):
        return 2
    def transform_fn(model, body, content_type, accept):
        return (body * model, accept)
    """
    model = ServingModel.load(make_model_dir(code), ENV)
    assert model.invoke(b"ab", "text/csv", None) == (b"abab", "application/json")


def test_handler_return_values_are_sent_as_flask_would(make_model_dir):
    code = """
    def model_fn(model_dir):
        return None
    def transform_fn(model, body, content_type, accept):
        if content_type == "application/json":
            return {"b": 1, "a": [1.5]}
        if content_type == "text/csv":
            return "plain text"
        return None
    """
    model = ServingModel.load(make_model_dir(code), ENV)
    assert model.invoke(b"{}", "application/json", None) == (
        b'{"a":[1.5],"b":1}\n',
        "application/json",
    )
    assert model.invoke(b"x", "text/csv", None) == (b"plain text", "text/html")
    with pytest.raises(InvocationError, match="returned NoneType") as info:
        model.invoke(b"x", "application/x-npy", None)
    assert info.value.stage == "transform_fn"


def test_transform_fn_with_other_handlers_is_a_user_error(make_model_dir):
    code = """
    def model_fn(model_dir):
        return None
    def input_fn(body, content_type):
        return body
    def transform_fn(model, body, content_type, accept):
        return body
    """
    with pytest.raises(ModelLoadError, match="transform_fn together with input_fn"):
        ServingModel.load(make_model_dir(code), ENV)


def test_missing_model_fn_is_refused(make_model_dir):
    with pytest.raises(ModelLoadError, match="defines no model_fn"):
        ServingModel.load(make_model_dir("def predict_fn(data, model):\n    return data\n"), ENV)


def test_model_fn_and_import_errors_carry_the_cause(make_model_dir):
    failing = "def model_fn(model_dir):\n    raise RuntimeError('no weights here')\n"
    with pytest.raises(ModelLoadError, match="no weights here") as info:
        ServingModel.load(make_model_dir(failing, name="a"), ENV)
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(ModelLoadError, match="importing .*inference.py failed: ZeroDivisionError"):
        ServingModel.load(make_model_dir("x = 1 / 0\n", name="b"), ENV)


def test_raising_handler_is_reported_with_stage_and_cause(make_model_dir):
    code = """
    def model_fn(model_dir):
        return None
    def predict_fn(data, model):
        raise KeyError("petal_length")
    """
    model = ServingModel.load(make_model_dir(code), ENV)
    with pytest.raises(InvocationError, match="predict_fn in .*inference.py raised KeyError") as e:
        model.invoke(b"1,2\n3,4\n", "text/csv", "text/csv")
    assert e.value.stage == "predict_fn" and isinstance(e.value.__cause__, KeyError)


def test_output_fn_returning_an_array_is_reported(make_model_dir):
    code = """
    import numpy as np
    def model_fn(model_dir):
        return None
    def predict_fn(data, model):
        return data
    def output_fn(prediction, accept):
        return np.asarray(prediction)
    """
    model = ServingModel.load(make_model_dir(code), ENV)
    with pytest.raises(InvocationError, match="output_fn returned ndarray"):
        model.invoke(b"1,2\n3,4\n", "text/csv", "text/csv")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}, "SAGEMAKER_PROGRAM is not set"),
        ({"SAGEMAKER_PROGRAM": "inference.py"}, "SAGEMAKER_SUBMIT_DIRECTORY is not set"),
        (
            {**ENV, "SAGEMAKER_PROGRAM": "serve.py"},
            r"no serve.py in .*code \(contains: inference.py\)",
        ),
        ({**ENV, "SAGEMAKER_SUBMIT_DIRECTORY": "s3://bucket/sourcedir.tar.gz"}, "S3 URI"),
    ],
)
def test_module_location_errors(make_model_dir, env, message):
    with pytest.raises(ModelLoadError, match=message):
        ServingModel.load(make_model_dir(), env)


def test_submit_directory_may_be_a_local_path(make_model_dir, tmp_path):
    model_dir = make_model_dir()
    env = {
        "SAGEMAKER_PROGRAM": "inference",
        "SAGEMAKER_SUBMIT_DIRECTORY": f"file://{model_dir}/code",
    }
    assert (
        ServingModel.load(model_dir, env)
        .invoke(b"[[1,1,1],[0,0,0]]", None, None)[0]
        .startswith(b"[")
    )


def test_modules_are_isolated_between_models(make_model_dir):
    code = """
    from helpers import LABEL
    def model_fn(model_dir):
        return None
    def transform_fn(model, body, content_type, accept):
        return LABEL, "text/plain"
    """
    path_before = list(sys.path)
    first = make_model_dir(code, name="first", extra_files={"code/helpers.py": "LABEL = b'one'"})
    second = make_model_dir(code, name="second", extra_files={"code/helpers.py": "LABEL = b'two'"})
    model_one, model_two = ServingModel.load(first, ENV), ServingModel.load(second, ENV)
    assert model_one.invoke(b"", "text/csv", None)[0] == b"one"
    assert model_two.invoke(b"", "text/csv", None)[0] == b"two"
    assert "inference" not in sys.modules and "helpers" not in sys.modules
    assert sys.path == path_before


def test_model_fn_can_unpickle_classes_defined_in_the_module(make_model_dir, tmp_path):
    # In the container the module is installed under its own name, so pickles that reference
    # inference.Scaler load; they must load here too.
    code = """
    import os, pickle
    class Scaler:
        factor = 3
    def model_fn(model_dir):
        with open(os.path.join(model_dir, "scaler.pkl"), "rb") as f:
            return pickle.load(f)
    def transform_fn(model, body, content_type, accept):
        return str(model.factor), "text/plain"
    """
    model_dir = make_model_dir(code)
    pickled = (
        b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\tinference\x94\x8c\x06Scaler"
        b"\x94\x93\x94)\x81\x94."
    )
    (model_dir / "scaler.pkl").write_bytes(pickled)
    assert ServingModel.load(model_dir, ENV).invoke(b"", "text/csv", None)[0] == b"3"
    assert Path(model_dir / "code" / "inference.py").exists()
