"""Transform jobs that fail or are stopped: a clear FailureReason and no partial ``.out``.

Each failing job has a good file next to the bad one, to show that the other files go on and
keep their output while the job ends Failed naming the bad file, the records and the cause.
"""

from __future__ import annotations

import sqlite3
import time

import pytest
from botocore.exceptions import ClientError

from kedro_aws.local.transform_job import job_log_path

from .conftest import BUCKET, job_request, wait

GOOD = b"1,2,3,4\n5,6,7,8\n"

RAISES_ON_666 = """
import numpy as np

class Model:
    def predict(self, data):
        if (np.asarray(data) == 666).any():
            raise ValueError("cannot score the devil's row")
        return np.atleast_2d(data).sum(axis=1)

def model_fn(model_dir):
    return Model()
"""

EXITS_ON_666 = """
import os
import numpy as np

class Model:
    def predict(self, data):
        if (np.asarray(data) == 666).any():
            os._exit(3)  # the worker dies as if killed mid-request
        return np.atleast_2d(data).sum(axis=1)

def model_fn(model_dir):
    return Model()
"""

SLOW_MODULE = """
import time
import numpy as np

class Model:
    def predict(self, data):
        time.sleep(float(np.asarray(data).ravel()[0]))
        return np.atleast_2d(data).sum(axis=1)

def model_fn(model_dir):
    return Model()
"""


def assert_failed(described: dict, *fragments: str) -> None:
    assert described["TransformJobStatus"] == "Failed"
    reason = described["FailureReason"]
    for fragment in fragments:
        assert fragment in reason, (fragment, reason)


def test_a_raising_module_fails_its_file_and_the_job_while_other_files_go_on(
    make_model, put_inputs, run_job, read_outputs
):
    uri = put_inputs("in", {"a-good.csv": GOOD, "b-bad.csv": b"1,1,1,1\n666,1,1,1\n"})
    described = run_job(
        "raises",
        make_model(RAISES_ON_666),
        uri,
        "out",
        ModelClientConfig={"InvocationsMaxRetries": 0, "InvocationsTimeoutInSeconds": 60},
    )
    assert_failed(
        described,
        f"s3://{BUCKET}/in/b-bad.csv",
        "(records 1-2)",
        "predict_fn",
        "ValueError: cannot score the devil's row",
    )
    assert read_outputs("out") == {"a-good.csv.out": b"10.0\n26.0\n"}


def test_single_record_names_the_exact_record(make_model, put_inputs, run_job, read_outputs):
    uri = put_inputs("in", {"bad.csv": b"1,1,1,1\n2,2,2,2\n666,1,1,1\n"})
    described = run_job(
        "exact", make_model(RAISES_ON_666), uri, "out", BatchStrategy="SingleRecord"
    )
    assert_failed(described, "bad.csv (record 3)", "devil")
    # Retried InvocationsMaxRetries (default 3) times before giving up, as SageMaker does.
    assert "failed 4 times" in described["FailureReason"]
    assert read_outputs("out") == {}


def test_a_module_without_model_fn_fails_the_job(make_model, put_inputs, run_job, read_outputs):
    uri = put_inputs("in", {"a.csv": GOOD})
    described = run_job(
        "no-model-fn", make_model("def predict_fn(data, model):\n    return data\n"), uri, "out"
    )
    assert_failed(
        described, f"s3://{BUCKET}/in/a.csv", "could not be loaded", "defines no model_fn"
    )
    assert read_outputs("out") == {}


@pytest.mark.parametrize(
    "case",
    [
        ({"ContentType": "text/csv; charset=utf-8"}, "is not supported by the default input_fn"),
        ({"Accept": "application/jsonlines"}, "is not supported by the default output_fn"),
    ],
    ids=["content-type", "accept"],
)
def test_unsupported_content_type_or_accept(make_model, put_inputs, run_job, read_outputs, case):
    overrides, fragment = case
    uri = put_inputs("in", {"a.csv": GOOD})
    described = run_job("unsupported", make_model(), uri, "out", **overrides)
    assert_failed(described, "a.csv (records 1-2)", fragment)
    assert read_outputs("out") == {}


def test_an_undecodable_record_is_named(make_model, put_inputs, run_job, read_outputs):
    uri = put_inputs("in", {"a.csv": b"1,2,3,4\n1,2,abc,4\n"})
    described = run_job("undecodable", make_model(), uri, "out", BatchStrategy="SingleRecord")
    assert_failed(described, "a.csv (record 2)", "input_fn", "abc")
    assert read_outputs("out") == {}


def test_a_record_over_max_payload_fails_its_file(make_model, put_inputs, run_job, read_outputs):
    huge = b"1," * (600 * 1024) + b"1\n"  # one 1.2 MB line
    uri = put_inputs("in", {"a.csv": GOOD, "b.csv": b"1,1,1,1\n" + huge})
    described = run_job("too-large", make_model(), uri, "out", MaxPayloadInMB=1)
    assert_failed(described, "b.csv", "record 2", "MaxPayloadInMB")
    assert read_outputs("out") == {"a.csv.out": b"10.0\n26.0\n"}


def test_a_killed_worker_fails_its_file_and_the_job_does_not_hang(
    make_model, put_inputs, run_job, read_outputs
):
    uri = put_inputs("in", {"a.csv": GOOD, "b.csv": b"1,1,1,1\n666,1,1,1\n", "c.csv": b"2,2,2,2\n"})
    described = run_job(
        "killed", make_model(EXITS_ON_666), uri, "out", BatchStrategy="SingleRecord"
    )
    assert_failed(described, "b.csv", "worker process", "exited with 3", "after 1 record")
    # A fresh worker took over: the file after the killed one was still transformed.
    assert read_outputs("out") == {"a.csv.out": b"10.0\n26.0\n", "c.csv.out": b"8.0\n"}


def test_an_invocation_over_the_timeout_fails(make_model, put_inputs, run_job, read_outputs):
    uri = put_inputs("in", {"a.csv": b"3,1,1,1\n0,1,1,1\n"})
    described = run_job(
        "timeout",
        make_model(SLOW_MODULE),
        uri,
        "out",
        ModelClientConfig={"InvocationsTimeoutInSeconds": 1, "InvocationsMaxRetries": 0},
    )
    assert_failed(described, "a.csv (records 1-2)", "InvocationsTimeoutInSeconds=1")
    assert read_outputs("out") == {}


def test_a_failed_invocation_is_retried(make_model, put_inputs, run_job, read_outputs):
    flaky = """
import numpy as np

calls = []

def model_fn(model_dir):
    return None

def predict_fn(data, model):
    calls.append(1)
    if len(calls) == 1:
        raise RuntimeError("transient")
    return np.atleast_2d(data).sum(axis=1)
"""
    name = make_model(flaky)
    uri = put_inputs("in", {"a.csv": GOOD})
    retried = run_job("retried", name, uri, "ok", ModelClientConfig={"InvocationsMaxRetries": 1})
    assert retried["TransformJobStatus"] == "Completed", retried.get("FailureReason")
    assert read_outputs("ok") == {"a.csv.out": b"10.0\n26.0\n"}
    not_retried = run_job(
        "not-retried", name, uri, "ko", ModelClientConfig={"InvocationsMaxRetries": 0}
    )
    assert_failed(not_retried, "RuntimeError: transient")
    assert read_outputs("ko") == {}


def test_a_tampered_model_archive_fails_the_checksum(make_model, put_inputs, run_job, s3):
    name = make_model()
    key = "models/v1/model.tar.gz"
    data = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=key, Body=data + b"\0")
    uri = put_inputs("in", {"a.csv": GOOD})
    described = run_job("tampered", name, uri, "out")
    assert_failed(described, "Checksum mismatch", f"s3://{BUCKET}/{key}")


def test_an_empty_input_prefix_fails(make_model, run_job):
    described = run_job("empty", make_model(), f"s3://{BUCKET}/nothing/", "out")
    assert_failed(described, "No S3 objects found under S3 URL")


def _wait_until_running(root, name: str) -> None:
    """Until a worker has taken its first file (the log says the job started its workers)."""
    for _ in range(600):
        log = job_log_path(root, name)
        if log.exists() and "input file(s) over" in log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never started")


def test_stop_ends_stopped_without_partial_output(sm, make_model, put_inputs, root, read_outputs):
    uri = put_inputs("in", {"slow.csv": b"1,1,1,1\n" * 60})
    sm.create_transform_job(
        **job_request("stop-me", make_model(SLOW_MODULE), uri, "out", BatchStrategy="SingleRecord")
    )
    _wait_until_running(root, "stop-me")
    sm.stop_transform_job(TransformJobName="stop-me")
    assert sm.describe_transform_job(TransformJobName="stop-me")["TransformJobStatus"] in (
        "Stopping",
        "Stopped",
    )
    wait(sm, "stop-me")
    described = sm.describe_transform_job(TransformJobName="stop-me")
    assert described["TransformJobStatus"] == "Stopped"
    assert "stop_transform_job" in described["FailureReason"]
    assert read_outputs("out") == {}
    with pytest.raises(ClientError, match="only an InProgress job can be stopped"):
        sm.stop_transform_job(TransformJobName="stop-me")


def test_a_killed_runner_ends_the_job_failed(sm, make_model, put_inputs, root, read_outputs):
    import os
    import signal

    uri = put_inputs("in", {"slow.csv": b"1,1,1,1\n" * 60})
    sm.create_transform_job(
        **job_request("orphan", make_model(SLOW_MODULE), uri, "out", BatchStrategy="SingleRecord")
    )
    _wait_until_running(root, "orphan")
    with sqlite3.connect(root / ".kedro-aws" / "sagemaker.sqlite") as db:
        (pid,) = db.execute("SELECT runner_pid FROM transform_jobs WHERE name='orphan'").fetchone()
    os.killpg(pid, signal.SIGKILL)  # the runner and its workers, as a crash would
    wait(sm, "orphan")
    described = sm.describe_transform_job(TransformJobName="orphan")
    assert_failed(described, f"runner (pid {pid}) exited without finishing")
    assert read_outputs("out") == {}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"MaxPayloadInMB": 101}, "cannot be greater than 100 MB"),
        ({"MaxPayloadInMB": 6, "MaxConcurrentTransforms": 20}, "20 x 6 = 120 MB"),
        ({"MaxConcurrentTransforms": 17}, "17 x 6 = 102 MB"),
        ({"TransformJobName": "bad_name"}, "regular expression pattern"),
        ({"TransformJobName": "x" * 64}, "length less than or equal to 63"),
        ({"SplitType": "RecordIO"}, "SplitType RecordIO is not supported"),
        ({"DataProcessing": {"InputFilter": "$[1:"}}, "DataProcessing"),
        ({"Environment": {f"K{i}": "v" for i in range(17)}}, "length less than or equal to 16"),
    ],
)
def test_create_refuses_requests_over_the_api_limits(sm, make_model, overrides, message):
    request = job_request("limits", make_model(), f"s3://{BUCKET}/in/", "out")
    for field in ("SplitType",):
        if field in overrides:
            request["TransformInput"][field] = overrides.pop(field)
    request.update(overrides)
    with pytest.raises(ClientError, match=message) as refused:
        sm.create_transform_job(**request)
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert sm.list_transform_jobs()["TransformJobSummaries"] == []


def test_create_refuses_a_duplicate_name_and_an_unknown_model(sm, make_model, put_inputs):
    uri = put_inputs("in", {"a.csv": GOOD})
    name = make_model()
    sm.create_transform_job(**job_request("twice", name, uri, "out"))
    with pytest.raises(ClientError, match="already exists") as duplicate:
        sm.create_transform_job(**job_request("twice", name, uri, "out2"))
    assert duplicate.value.response["Error"]["Code"] == "ResourceInUse"
    with pytest.raises(ClientError, match="Could not find model") as unknown:
        sm.create_transform_job(**job_request("other", "no-such-model", uri, "out3"))
    assert unknown.value.response["Error"]["Code"] == "ValidationException"
    wait(sm, "twice")


def test_describing_an_unknown_job_is_a_validation_error_the_waiter_stops_on(sm):
    from botocore.exceptions import WaiterError

    with pytest.raises(ClientError, match="Could not find transform job") as missing:
        sm.describe_transform_job(TransformJobName="ghost")
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(WaiterError, match="ValidationException"):
        sm.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName="ghost", WaiterConfig={"Delay": 0.01, "MaxAttempts": 2}
        )
    with pytest.raises(ValueError, match="Waiter does not exist"):
        sm.get_waiter("endpoint_in_service")
