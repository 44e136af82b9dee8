"""Transform jobs on the local backend: lifecycle, record handling, inputs, instances.

Every job here really runs: the local executor loads the inference module from the registered
``model.tar.gz`` in worker processes and writes ``.out`` objects to local S3.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from kedro_aws.local.serving import encode_csv
from kedro_aws.local.transform_job import NATIVE_THREAD_VARIABLES, native_threads_per_worker

from .conftest import ANSWERS_WITH_REPORT, BUCKET, LocalBackend, job_request, wait

ROWS = [[1, 2, 3, 4], [5, 6, 7, 8], [0, 0, 0, 1]]
CSV = b"".join(b",".join(str(v).encode() for v in row) + b"\n" for row in ROWS)
SUMS = [float(sum(row)) for row in ROWS]

SKLEARN_MODULE = """
import os
import joblib

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
"""


def csv_lines(values) -> bytes:
    return b"".join(f"{v}\n".encode() for v in values)


def test_full_job_scores_iris_in_input_order(make_model, put_inputs, run_job, read_outputs, sm):
    iris = load_iris()
    model = LogisticRegression(max_iter=500).fit(iris.data, iris.target)
    name = make_model(SKLEARN_MODULE, model=model)
    order = np.random.default_rng(7).permutation(len(iris.data))
    features = iris.data[order]
    body = "".join(",".join(repr(float(v)) for v in row) + "\n" for row in features).encode()
    uri = put_inputs("iris", {"features.csv": body})

    described = run_job("score-iris", name, uri, "scores")

    assert described["TransformJobStatus"] == "Completed"
    assert "FailureReason" not in described
    assert described["TransformStartTime"] <= described["TransformEndTime"]
    expected = encode_csv(model.predict(features.astype(np.float32)))
    assert read_outputs("scores") == {"features.csv.out": expected}
    summary = sm.list_transform_jobs()["TransformJobSummaries"][0]
    assert (summary["TransformJobName"], summary["TransformJobStatus"]) == (
        "score-iris",
        "Completed",
    )


# (SplitType, BatchStrategy, Accept, AssembleWith) -> expected .out bytes for ROWS
COMBINATIONS = [
    ("Line", "MultiRecord", "text/csv", "Line", csv_lines(SUMS)),
    ("Line", "MultiRecord", "text/csv", "None", csv_lines(SUMS)),
    ("Line", "MultiRecord", "application/json", "Line", json.dumps(SUMS).encode() + b"\n"),
    ("Line", "MultiRecord", "application/json", "None", json.dumps(SUMS).encode()),
    ("Line", "SingleRecord", "text/csv", "Line", csv_lines(SUMS)),
    ("Line", "SingleRecord", "application/json", "Line", csv_lines(f"[{s}]" for s in SUMS)),
    ("Line", "SingleRecord", "application/json", "None", "".join(f"[{s}]" for s in SUMS).encode()),
    ("None", "MultiRecord", "application/json", "Line", json.dumps(SUMS).encode() + b"\n"),
    ("None", "SingleRecord", "text/csv", "None", csv_lines(SUMS)),
]


@pytest.fixture(scope="module")
def combination_jobs(tmp_path_factory):
    """All combinations as jobs of one backend, started together so they run in parallel."""
    backend = LocalBackend(tmp_path_factory.mktemp("combinations") / "aws")
    model = backend.make_model()
    uri = backend.put_inputs("in", {"rows.csv": CSV})
    for index, (split, strategy, accept, assemble, _) in enumerate(COMBINATIONS):
        backend.sm.create_transform_job(
            **job_request(
                f"combo-{index}",
                model,
                uri,
                f"out-{index}",
                SplitType=split,
                BatchStrategy=strategy,
                Accept=accept,
                AssembleWith=assemble,
            )
        )
    return backend


@pytest.mark.parametrize(
    "index", range(len(COMBINATIONS)), ids=["-".join(c[:4]) for c in COMBINATIONS]
)
def test_split_strategy_and_assembly(combination_jobs, index):
    split, strategy, _accept, _assemble, expected = COMBINATIONS[index]
    wait(combination_jobs.sm, f"combo-{index}")
    described = combination_jobs.sm.describe_transform_job(TransformJobName=f"combo-{index}")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert (described["BatchStrategy"], described["TransformInput"]["SplitType"]) == (
        strategy,
        split,
    )
    assert combination_jobs.read_outputs(f"out-{index}") == {"rows.csv.out": expected}


def test_multirecord_splits_large_files_into_ordered_mini_batches(
    make_model, put_inputs, run_job, read_outputs, s3
):
    # ~2.6 MB with MaxPayloadInMB=1: at least three requests, answers concatenated in order.
    rows = [[i, i % 7, 1, 0] for i in range(150_000)]
    body = "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows).encode()
    uri = put_inputs("big", {"rows.csv": body})
    described = run_job("big", make_model(), uri, "out", MaxPayloadInMB=1)
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    expected = encode_csv(np.asarray(rows, dtype=np.float32).sum(axis=1))
    assert read_outputs("out")["rows.csv.out"] == expected
    # The worker hashes each response as it writes it: the ETag covers every mini-batch.
    head = s3.head_object(Bucket=BUCKET, Key="out/rows.csv.out")
    assert head["ETag"] == f'"{hashlib.md5(expected).hexdigest()}"'


def test_join_and_filters_keep_an_id_column(make_model, put_inputs, run_job, read_outputs):
    uri = put_inputs("in", {"ids.csv": b"id-1,1,2,3,4\nid-2,5,6,7,8\n"})
    described = run_job(
        "join",
        make_model(),
        uri,
        "out",
        DataProcessing={"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"},
    )
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert read_outputs("out") == {"ids.csv.out": b"id-1,10.0\nid-2,26.0\n"}


def test_gzip_input_is_decompressed(make_model, put_inputs, run_job, read_outputs):
    uri = put_inputs("in", {"rows.csv.gz": gzip.compress(CSV)})
    described = run_job("gzip", make_model(), uri, "out", CompressionType="Gzip")
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert read_outputs("out") == {"rows.csv.gz.out": csv_lines(SUMS)}


def test_manifest_lists_the_input_objects(make_model, put_inputs, run_job, read_outputs, s3):
    put_inputs("data", {"a/one.csv": b"1,1,1,1\n", "two.csv": b"2,2,2,2\n", "skip.csv": b"x\n"})
    manifest = [{"prefix": f"s3://{BUCKET}/data/"}, "a/one.csv", "two.csv"]
    s3.put_object(Bucket=BUCKET, Key="manifests/m.json", Body=json.dumps(manifest).encode())
    described = run_job(
        "manifest",
        make_model(),
        None,
        "out",
        DataSource={
            "S3DataSource": {
                "S3DataType": "ManifestFile",
                "S3Uri": f"s3://{BUCKET}/manifests/m.json",
            }
        },
    )
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert read_outputs("out") == {"a/one.csv.out": b"4.0\n", "two.csv.out": b"8.0\n"}


def test_instances_and_concurrency_give_the_same_output_as_one_worker(
    make_model, put_inputs, run_job, read_outputs
):
    files = {f"part-{i}.csv": csv_lines([]) + f"{i},1,1,1\n{i},2,2,2\n".encode() for i in range(6)}
    uri = put_inputs("parts", files)
    name = make_model()
    single = run_job("one-by-one", name, uri, "single")
    spread = run_job(
        "two-by-two",
        name,
        uri,
        "spread",
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 2},
        MaxConcurrentTransforms=2,
    )
    assert single["TransformJobStatus"] == spread["TransformJobStatus"] == "Completed"
    assert read_outputs("single") == read_outputs("spread")
    assert len(read_outputs("spread")) == 6


def test_job_environment_reaches_the_inference_module(
    make_model, put_inputs, run_job, read_outputs
):
    module = """
import os

def model_fn(model_dir):
    return None

def transform_fn(model, body, content_type, accept):
    keys = ("FROM_MODEL", "FROM_JOB", "SAGEMAKER_BATCH", "SAGEMAKER_MAX_PAYLOAD_IN_MB")
    return ",".join(os.environ.get(k, "-") for k in keys) + "\\n", accept
"""
    name = make_model(module, environment={"FROM_MODEL": "model", "FROM_JOB": "model"})
    uri = put_inputs("in", {"x.csv": b"1\n"})
    described = run_job("env", name, uri, "out", Environment={"FROM_JOB": "job"}, MaxPayloadInMB=2)
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert read_outputs("out") == {"x.csv.out": b"model,job,true,2\n"}


THREADS_MODULE = (
    """
import os
import pyarrow
from threadpoolctl import threadpool_info

def report():
    blas = sorted({p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"})
    keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    parsing = pyarrow.cpu_count()  # the threads the default input_fn parses CSV with
    return "|".join([*(os.environ.get(k, "-") for k in keys), str(blas), str(parsing)])
"""
    + ANSWERS_WITH_REPORT
)


def test_instances_share_the_cores_between_their_native_thread_pools(
    make_model, put_inputs, run_job, read_outputs, monkeypatch
):
    for variable in NATIVE_THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)  # the runner inherits this environment
    name = make_model(THREADS_MODULE)
    uri = put_inputs("in", {"a.csv": b"1\n", "b.csv": b"2\n"})
    two = {"InstanceType": "ml.m5.large", "InstanceCount": 2}

    described = run_job("threads", name, uri, "shared", TransformResources=two)

    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    threads = native_threads_per_worker(2)
    line = f"{threads}|{threads}|[{threads}]|{threads}\n".encode()
    assert read_outputs("shared") == {"a.csv.out": line, "b.csv.out": line}


def test_a_job_environment_sizing_thread_pools_is_left_alone(
    make_model, put_inputs, run_job, read_outputs, monkeypatch
):
    for variable in NATIVE_THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    name = make_model(THREADS_MODULE)
    uri = put_inputs("in", {"a.csv": b"1\n"})
    described = run_job("own-threads", name, uri, "own", Environment={"OMP_NUM_THREADS": "3"})
    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    assert read_outputs("own")["a.csv.out"].startswith(b"3|-|")


POOLS_REPORT = """
import json
import numpy, scipy.linalg, sklearn.ensemble, pyarrow
from threadpoolctl import threadpool_info

def report():
    pools = {}
    for pool in threadpool_info():
        if pool["internal_api"] in ("openblas", "openmp"):
            pools.setdefault(pool["internal_api"], set()).add(pool["num_threads"])
    sizes = {api: sorted(counts) for api, counts in pools.items()}
    return json.dumps({"pools": sizes, "arrow": pyarrow.cpu_count()}, sort_keys=True)
"""

POOLS_MODULE = POOLS_REPORT + ANSWERS_WITH_REPORT

THREAD_SETTINGS = [
    {"OMP_NUM_THREADS": "3"},
    {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "2"},
    {"GOTO_NUM_THREADS": "1"},
    {"OMP_THREAD_LIMIT": "1", "OMP_NUM_THREADS": "2,1"},
]


@pytest.mark.parametrize(
    "setting", THREAD_SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items())
)
def test_a_job_environment_sizes_preloaded_pools_as_a_new_process_would(
    backend: LocalBackend, monkeypatch, setting
):
    # The worker's libraries were loaded (and their pools sized) by the transform service,
    # before the job's Environment existed; a container process reads it at start-up.
    for variable in (*NATIVE_THREAD_VARIABLES, "GOTO_NUM_THREADS", "OMP_THREAD_LIMIT"):
        monkeypatch.delenv(variable, raising=False)
    fresh = subprocess.run(
        [sys.executable, "-c", POOLS_REPORT + "\nprint(report())"],
        env={**os.environ, **setting},
        capture_output=True,
        text=True,
        check=True,
    )
    uri = backend.put_inputs("in", {"a.csv": b"1\n"})
    model = backend.make_model(POOLS_MODULE)

    described = backend.run_job("pools", model, uri, "pools", Environment=setting)

    assert described["TransformJobStatus"] == "Completed", described.get("FailureReason")
    in_job = json.loads(backend.read_outputs("pools")["a.csv.out"])
    assert in_job == json.loads(fresh.stdout)
    assert in_job["pools"]  # OpenBLAS and OpenMP are loaded: the comparison covered them


def test_native_threads_per_worker_shares_the_cores():
    assert native_threads_per_worker(1, cpus=2) == 2
    assert native_threads_per_worker(2, cpus=2) == 1
    assert native_threads_per_worker(3, cpus=2) == 1  # never zero
    assert native_threads_per_worker(4, cpus=16) == 4


def test_job_response_shapes_match_moto(make_model, put_inputs, sm, moto_sm):
    uri = put_inputs("in", {"a.csv": CSV})
    request = job_request(
        "shape",
        make_model(),
        uri,
        "out",
        MaxConcurrentTransforms=2,
        MaxPayloadInMB=6,
        ModelClientConfig={"InvocationsTimeoutInSeconds": 60, "InvocationsMaxRetries": 1},
        Environment={"A": "1"},
        DataProcessing={"InputFilter": "$", "JoinSource": "None", "OutputFilter": "$"},
    )
    shapes = {}
    for backend, api in (("local", sm), ("moto", moto_sm)):
        created = api.create_transform_job(**request)
        wait(api, "shape")
        described = api.describe_transform_job(TransformJobName="shape")
        summaries = api.list_transform_jobs()["TransformJobSummaries"]
        # moto fills fields of jobs it never ran with empty strings; AWS leaves them out.
        described_keys = {k for k, v in described.items() if v != ""} - {"ResponseMetadata"}
        shapes[backend] = (
            set(created) - {"ResponseMetadata"},
            described_keys,
            {field: described[field] for field in request if field != "Tags"},
            [set(summary) for summary in summaries],
            described["TransformJobStatus"],
        )
    assert shapes["local"] == shapes["moto"]
