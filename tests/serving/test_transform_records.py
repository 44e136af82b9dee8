"""Batch Transform record rules for one input file: split, batch, limits, gzip, filters, join."""

from __future__ import annotations

import gzip
import io
import random

import pytest

from kedro_aws.local.transform_records import (
    MIB,
    DataProcessing,
    JsonPath,
    MiniBatch,
    RecordTooLargeError,
    TransformRecordError,
    assemble_response,
    iter_mini_batches,
    open_input,
)


class CountingReader(io.RawIOBase):
    """A stream that records the largest read, to prove the input is read in chunks."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert size is not None and size >= 0, "the whole file must never be requested"
        self.largest_read = max(self.largest_read, size)
        return self._data.read(size)


def batches(data: bytes, split="Line", strategy="MultiRecord", limit=6 * MIB, chunk=7):
    return list(iter_mini_batches(io.BytesIO(data), split, strategy, limit, read_chunk_bytes=chunk))


def test_split_none_sends_the_whole_object():
    assert batches(b"1,2\n3,4\n", split="None") == [MiniBatch(b"1,2\n3,4\n", 0, 1)]
    assert batches(b"", split="None") == [MiniBatch(b"", 0, 1)]
    with pytest.raises(RecordTooLargeError, match="record 1 "):
        batches(b"1,2\n3,4\n", split="None", limit=5)


def test_single_record_sends_each_line_with_its_terminator():
    data = b"1,2\n3,4\r\n\n5,6"
    assert batches(data, strategy="SingleRecord") == [
        MiniBatch(b"1,2\n", 0, 1),
        MiniBatch(b"3,4\r\n", 1, 1),
        MiniBatch(b"\n", 2, 1),  # a blank line is a record of its own
        MiniBatch(b"5,6", 3, 1),
    ]


def test_multi_record_packs_whole_records_up_to_the_limit():
    data = b"aa\nbbb\nc\ndddd\nee"
    result = batches(data, limit=8, chunk=3)
    assert [b.payload for b in result] == [b"aa\nbbb\n", b"c\ndddd\n", b"ee"]
    assert [(b.first_record_index, b.records) for b in result] == [(0, 2), (2, 2), (4, 1)]
    # A record of exactly the limit fits.
    assert [b.payload for b in batches(b"1234567\nab\n", limit=8)] == [b"1234567\n", b"ab\n"]


@pytest.mark.parametrize("strategy", ["MultiRecord", "SingleRecord"])
def test_oversize_record_fails_naming_its_position(strategy):
    data = b"1,2\n3,4\n" + b"9" * 20 + b"\n5,6\n"
    with pytest.raises(RecordTooLargeError) as info:
        batches(data, strategy=strategy, limit=10)
    assert info.value.record_index == 2
    assert "record 3 (0-based index 2)" in str(info.value) and "MaxPayloadInMB" in str(info.value)


def test_batching_keeps_every_byte_in_order_on_random_files():
    rng = random.Random(5)
    for _ in range(300):
        lines = [
            b"x" * rng.randint(0, 12) + rng.choice([b"\n", b"\r\n"])
            for _ in range(rng.randint(0, 40))
        ]
        data = b"".join(lines) + (b"tail" if rng.random() < 0.5 else b"")
        limit, chunk = rng.randint(15, 60), rng.randint(1, 50)
        for strategy in ("MultiRecord", "SingleRecord"):
            result = batches(data, strategy=strategy, limit=limit, chunk=chunk)
            assert b"".join(b.payload for b in result) == data
            assert all(len(b.payload) <= limit for b in result)
            expected_index = 0
            for batch in result:
                assert batch.first_record_index == expected_index
                assert batch.records == batch.payload.count(b"\n") + (
                    not batch.payload.endswith(b"\n")
                )
                expected_index += batch.records
            if strategy == "MultiRecord" and len(result) > 1:
                # Greedy: the next record would not have fitted into the previous batch.
                for first, second in zip(result, result[1:], strict=False):
                    next_record = second.payload.split(b"\n")[0] + b"\n"
                    assert len(first.payload) + len(next_record) > limit


def test_memory_is_bounded_by_the_payload_limit_not_the_file():
    data = b"1.0,2.0,3.0,4.0\n" * 200_000  # 3.2 MB
    reader = CountingReader(data)
    sizes = [len(b.payload) for b in iter_mini_batches(reader, "Line", "MultiRecord", 64 * 1024)]
    assert sum(sizes) == len(data)
    assert reader.largest_read <= 64 * 1024 + 1
    assert max(sizes) <= 64 * 1024


def test_gzip_input_is_decompressed_while_streaming():
    data = b"".join(b"%d,%d\n" % (i, i * 2) for i in range(10_000))
    stream = open_input(io.BytesIO(gzip.compress(data)), "Gzip")
    result = list(iter_mini_batches(stream, "Line", "MultiRecord", 4096))
    assert b"".join(b.payload for b in result) == data
    assert sum(b.records for b in result) == 10_000
    with pytest.raises(TransformRecordError, match="not a valid gzip stream"):
        list(iter_mini_batches(open_input(io.BytesIO(b"plain text"), "Gzip"), "Line"))
    assert open_input(io.BytesIO(b"x"), "None").read() == b"x"
    with pytest.raises(TransformRecordError, match="CompressionType"):
        open_input(io.BytesIO(b"x"), "Zip")


def test_settings_are_validated():
    with pytest.raises(TransformRecordError, match="SplitType"):
        batches(b"x", split="RecordIO")
    with pytest.raises(TransformRecordError, match="BatchStrategy"):
        batches(b"x", strategy="Multi")


def test_assemble_with_line_terminates_every_response_once():
    assert assemble_response(b"[0.5, 1.0]", "Line") == b"[0.5, 1.0]\n"
    assert assemble_response(b"0.5\n1.0\n", "Line") == b"0.5\n1.0\n"
    assert assemble_response(b"", "Line") == b"\n"
    assert assemble_response(b"[0.5]", "None") == b"[0.5]"
    with pytest.raises(TransformRecordError, match="AssembleWith"):
        assemble_response(b"", "Lines")


@pytest.mark.parametrize(
    ("split", "strategy", "assemble", "expected"),
    [
        ("None", "MultiRecord", "None", b"<3>"),
        ("None", "MultiRecord", "Line", b"<3>\n"),
        ("Line", "MultiRecord", "None", b"<2><1>"),
        ("Line", "MultiRecord", "Line", b"<2>\n<1>\n"),
        ("Line", "SingleRecord", "None", b"<1><1><1>"),
        ("Line", "SingleRecord", "Line", b"<1>\n<1>\n<1>\n"),
    ],
)
def test_each_split_strategy_assemble_combination(split, strategy, assemble, expected):
    # A fake model that answers "<number of records it received>".
    data = b"1,2\n3,4\n5,6\n"
    output = b"".join(
        assemble_response(b"<%d>" % batch.payload.count(b"\n"), assemble)
        for batch in iter_mini_batches(
            io.BytesIO(data), split, strategy, 8 if split == "Line" else 12
        )
    )
    assert output == expected


@pytest.mark.parametrize(
    ("path", "record", "expected"),
    [
        ("$", [1, 2], [1, 2]),
        ("$[0]", ["a", "b", "c"], "a"),
        ("$[-1]", ["a", "b", "c"], "c"),
        ("$[1:]", ["id", "a", "b", "c"], ["a", "b", "c"]),
        ("$[1:2]", ["id", "a", "b", "c"], ["a", "b"]),  # inclusive end
        ("$[:1]", ["id", "a", "b", "c"], ["id", "a"]),
        ("$[0,2:]", ["id", "a", "b", "c"], ["id", "b", "c"]),
        ("$[0, 3]", ["id", "a", "b", "c"], ["id", "c"]),
        ("$.features", {"id": 1, "features": [1, 2]}, [1, 2]),
        ("$['id']", {"id": 1, "features": [1, 2]}, 1),
        (
            "$['id','SageMakerOutput']",
            {"id": 1, "x": 0, "SageMakerOutput": 7},
            {"id": 1, "SageMakerOutput": 7},
        ),
        ("$.a.['b','c']", {"a": {"b": 1, "c": 2, "d": 3}}, {"b": 1, "c": 2}),
        ("$.a.*", {"a": {"b": 1, "c": 2}}, [1, 2]),
        ("$.a[1]", {"a": [5, 6]}, 6),
    ],
)
def test_jsonpath_subset(path, record, expected):
    assert JsonPath(path).apply(record) == expected


@pytest.mark.parametrize(
    ("path", "record", "message"),
    [
        ("$[4]", ["a", "b"], "outside a record of 2"),
        ("$[0:9]", ["a", "b"], "outside"),
        ("$.missing", {"a": 1}, "not in record"),
        ("$.a", [1], "not an object"),
        ("id", None, "must start with"),
        ("$..a", None, "unsupported syntax"),
        ("$[?(@.a)]", None, "unsupported selector"),
        ("$[" + "1," * 40 + "1]", None, "longer than 63"),
        ("$[1,2].a", None, "must be last"),
    ],
)
def test_jsonpath_errors(path, record, message):
    with pytest.raises(TransformRecordError, match=message):
        JsonPath(path).apply(record)


def test_csv_input_filter_join_and_output_filter():
    dp = DataProcessing.create("$[1:]", "Input", "$[0,-1]", "text/csv", "text/csv")
    batch = MiniBatch(b'id1,5.1,3.5\r\n"id,2",6.2,2.9\n', 10, 2)
    assert dp.filter_input(batch) == b"5.1,3.5\n6.2,2.9\n"
    assert dp.process_output(batch, b"0\n2\n") == b'id1,0\n"id,2",2\n'
    # A join without output filter appends all output fields to the raw input row.
    joined = DataProcessing.create("$[1:]", "Input", "$", "text/csv", "text/csv")
    assert joined.process_output(batch, b"0,0.9\n2,0.8\n") == (
        b'id1,5.1,3.5,0,0.9\n"id,2",6.2,2.9,2,0.8\n'
    )


def test_json_lines_join_adds_sagemaker_output():
    dp = DataProcessing.create(
        "$.features",
        "Input",
        "$['id','SageMakerOutput']",
        "application/jsonlines",
        "application/jsonlines",
    )
    batch = MiniBatch(b'{"id":1,"features":[1,2]}\n{"id":2,"features":[3,4]}\n', 0, 2)
    assert dp.filter_input(batch) == b"[1,2]\n[3,4]\n"
    assert dp.process_output(batch, b"[0.5]\n[0.7]\n") == (
        b'{"id":1,"SageMakerOutput":[0.5]}\n{"id":2,"SageMakerOutput":[0.7]}\n'
    )
    wrap = DataProcessing.create(
        "$", "Input", "$", "application/jsonlines", "application/jsonlines"
    )
    assert wrap.process_output(MiniBatch(b"[1,2]\n", 0, 1), b"3\n") == (
        b'{"SageMakerInput":[1,2],"SageMakerOutput":3}\n'
    )


def test_data_processing_errors_name_the_record():
    dp = DataProcessing.create("$[3]", "None", "$", "text/csv", "text/csv")
    with pytest.raises(TransformRecordError, match="record 6: .*index 3 is outside"):
        dp.filter_input(MiniBatch(b"1,2,3,4\n1,2\n", 4, 2))
    join = DataProcessing.create("$", "Input", "$", "text/csv", "text/csv")
    with pytest.raises(TransformRecordError, match="records 1-2: the response holds 1 line"):
        join.process_output(MiniBatch(b"1,2\n3,4\n", 0, 2), b"[0.5, 0.7]")
    with pytest.raises(TransformRecordError, match="CSV and JSON only"):
        DataProcessing.create("$[1:]", "None", "$", "application/x-npy", "text/csv")
    with pytest.raises(TransformRecordError, match="JoinSource"):
        DataProcessing.create("$", "Output", "$", "text/csv", "text/csv")


def test_default_data_processing_is_a_pass_through():
    dp = DataProcessing.create(None, None, None, "application/x-npy", "application/x-npy")
    batch = MiniBatch(b"\x93NUMPY", 0, 1)
    assert not dp.active
    assert dp.filter_input(batch) == b"\x93NUMPY"
    assert dp.process_output(batch, b"anything") == b"anything"
