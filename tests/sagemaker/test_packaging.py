"""Model archives: layout, reproducibility, S3 round trip, checksums and safe extraction."""

from __future__ import annotations

import doctest
import gzip
import hashlib
import io
import logging
import tarfile
from importlib import metadata

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from sklearn.tree import DecisionTreeClassifier

from kedro_aws.sagemaker import packaging
from kedro_aws.sagemaker.packaging import (
    ArtifactChecksumError,
    ArtifactUploadError,
    ModelArtifactError,
    UnsafeArchiveError,
    build_model_archive,
    download_model_archive,
    extract_model_archive,
    load_model,
    pin_requirements,
    sha256_file,
    upload_model_archive,
)

from .conftest import BUCKET, FEATURES, INFERENCE_MODULE, import_module_from

SAVE_VERSION = "2026-11-26T02.26.36.123Z"


@pytest.fixture
def serving_requirements():
    inference = import_module_from(INFERENCE_MODULE, "inference_under_test")
    return pin_requirements(inference.REQUIREMENTS)


@pytest.fixture
def archive(tmp_path, iris_model, serving_requirements):
    return build_model_archive(
        iris_model, INFERENCE_MODULE, tmp_path / "build", requirements=serving_requirements
    )


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue()


def test_docstring_examples_hold():
    assert doctest.testmod(packaging, raise_on_error=False).failed == 0


def test_archive_layout_is_what_the_container_expects(archive, serving_requirements):
    with tarfile.open(archive.path) as tar:
        names = tar.getnames()
        requirements = tar.extractfile("code/requirements.txt").read().decode()
        module = tar.extractfile("code/inference.py").read()
    assert names == ["code", "code/inference.py", "code/requirements.txt", "model.joblib"]
    assert archive.members == tuple(names)
    assert archive.program == "inference.py"
    assert requirements == f"pyarrow=={metadata.version('pyarrow')}\n"
    assert serving_requirements == (f"pyarrow=={metadata.version('pyarrow')}",)
    assert module == INFERENCE_MODULE.read_bytes()
    assert archive.sha256 == hashlib.sha256(archive.path.read_bytes()).hexdigest()
    assert archive.size == archive.path.stat().st_size


def test_round_trip_through_s3_serves_parquet_and_csv(
    s3, archive, tmp_path, iris_model, sample_rows
):
    artifact = upload_model_archive(
        s3, archive, bucket=BUCKET, prefix="iris/models/", save_version=SAVE_VERSION
    )
    assert artifact.s3_uri == f"s3://{BUCKET}/iris/models/{SAVE_VERSION}/model.tar.gz"
    assert (artifact.sha256, artifact.size) == (archive.sha256, archive.size)
    head = s3.head_object(Bucket=BUCKET, Key=f"iris/models/{SAVE_VERSION}/model.tar.gz")
    assert head["Metadata"]["sha256"] == archive.sha256

    downloaded = download_model_archive(
        s3, artifact.s3_uri, expected_sha256=artifact.sha256, destination_dir=tmp_path / "dl"
    )
    model_dir = extract_model_archive(downloaded, tmp_path / "opt/ml/model")
    assert sha256_file(downloaded) == archive.sha256
    assert load_model(model_dir).get_params() == iris_model.get_params()

    # Import the module from the extracted code/ directory, as the container does.
    inference = import_module_from(model_dir / "code" / artifact.program, "packed_inference")
    model = inference.model_fn(str(model_dir))
    expected = iris_model.predict(sample_rows[FEATURES]).tolist()

    parquet_in = inference.input_fn(_parquet_bytes(sample_rows), "application/x-parquet")
    parquet_out = inference.output_fn(
        inference.predict_fn(parquet_in, model), "application/x-parquet"
    )
    assert pq.read_table(io.BytesIO(parquet_out)).column("prediction").to_pylist() == expected

    with_header = sample_rows.to_csv(index=False)  # label column included, dropped by name
    headerless = sample_rows[FEATURES].to_csv(index=False, header=False)
    for body in (with_header, headerless, headerless.encode()):
        csv_out = inference.output_fn(
            inference.predict_fn(inference.input_fn(body, "text/csv"), model), "text/csv"
        )
        assert csv_out == "".join(f"{label}\n" for label in expected)


def test_container_environment_points_at_the_packed_code(archive, s3):
    artifact = upload_model_archive(
        s3, archive, bucket=BUCKET, prefix="m", save_version=SAVE_VERSION
    )
    assert artifact.container_environment("eu-west-1", log_level=logging.DEBUG) == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "10",
        "SAGEMAKER_REGION": "eu-west-1",
    }


def test_same_inputs_give_the_same_sha256(tmp_path, iris_model, serving_requirements):
    first = build_model_archive(
        iris_model, INFERENCE_MODULE, tmp_path / "a", requirements=serving_requirements
    )
    second = build_model_archive(
        iris_model, INFERENCE_MODULE, tmp_path / "elsewhere/b", requirements=serving_requirements
    )
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()
    with gzip.open(first.path) as gz:
        gz.read()
    # No build time or build path leaks into the gzip header or the members.
    header = first.path.read_bytes()[:10]
    assert header[4:8] == b"\0\0\0\0"  # gzip mtime
    with tarfile.open(first.path) as tar:
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in tar} == {
            (packaging._MEMBER_MTIME, 0, 0, "", "")
        }


def test_different_model_gives_a_different_sha256(tmp_path, iris_model, iris_frame):
    other = DecisionTreeClassifier(max_depth=1, random_state=0).fit(
        iris_frame[FEATURES], iris_frame["species"]
    )
    first = build_model_archive(iris_model, INFERENCE_MODULE, tmp_path / "a")
    second = build_model_archive(other, INFERENCE_MODULE, tmp_path / "b")
    assert first.sha256 != second.sha256
    with tarfile.open(first.path) as tar:
        assert "code/requirements.txt" not in tar.getnames()  # omitted when empty


def test_tampered_artifact_fails_the_checksum(s3, archive, tmp_path):
    artifact = upload_model_archive(
        s3, archive, bucket=BUCKET, prefix="m", save_version=SAVE_VERSION
    )
    tampered = bytearray(archive.path.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    s3.put_object(Bucket=BUCKET, Key=f"m/{SAVE_VERSION}/model.tar.gz", Body=bytes(tampered))

    destination = tmp_path / "dl"
    with pytest.raises(ArtifactChecksumError) as raised:
        download_model_archive(
            s3, artifact.s3_uri, expected_sha256=artifact.sha256, destination_dir=destination
        )
    message = str(raised.value)
    assert artifact.s3_uri in message
    assert artifact.sha256 in message
    assert hashlib.sha256(bytes(tampered)).hexdigest() in message
    assert list(destination.iterdir()) == []  # nothing unverified is left behind


def test_upload_never_overwrites_a_different_artifact(s3, archive, tmp_path, iris_frame):
    upload_model_archive(s3, archive, bucket=BUCKET, prefix="m", save_version=SAVE_VERSION)
    # Re-uploading the same bytes (a retried run) is accepted.
    again = upload_model_archive(s3, archive, bucket=BUCKET, prefix="m", save_version=SAVE_VERSION)
    assert again.sha256 == archive.sha256

    other_model = DecisionTreeClassifier(max_depth=1).fit(iris_frame[FEATURES], iris_frame.species)
    other = build_model_archive(other_model, INFERENCE_MODULE, tmp_path / "other")
    with pytest.raises(ArtifactUploadError, match="already exists with a different artifact"):
        upload_model_archive(s3, other, bucket=BUCKET, prefix="m", save_version=SAVE_VERSION)
    head = s3.head_object(Bucket=BUCKET, Key=f"m/{SAVE_VERSION}/model.tar.gz")
    assert head["Metadata"]["sha256"] == archive.sha256


class _LossyS3:
    """Wraps a client; stores a truncated body, as an interrupted transfer might."""

    def __init__(self, client):
        self._client = client
        self.deleted = []

    def put_object(self, **kwargs):
        kwargs["Body"] = kwargs["Body"].read()[:-10]
        return self._client.put_object(**kwargs)

    def head_object(self, **kwargs):
        return self._client.head_object(**kwargs)

    def delete_object(self, **kwargs):
        self.deleted.append(kwargs["Key"])
        return self._client.delete_object(**kwargs)


def test_unverified_upload_is_removed_and_raises(s3, archive):
    lossy = _LossyS3(s3)
    with pytest.raises(ArtifactUploadError, match="not verified: size"):
        upload_model_archive(lossy, archive, bucket=BUCKET, prefix="m", save_version=SAVE_VERSION)
    key = f"m/{SAVE_VERSION}/model.tar.gz"
    assert lossy.deleted == [key]
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key=key)


def test_boto3_uploads_carry_a_sha256_checksum_for_s3_to_verify(s3, archive, mocker):
    spy = mocker.spy(s3, "put_object")
    upload_model_archive(s3, archive, bucket=BUCKET, prefix="m", save_version=SAVE_VERSION)
    sent = spy.call_args.kwargs["ChecksumSHA256"]
    assert sent == packaging.base64.b64encode(bytes.fromhex(archive.sha256)).decode()


def test_invalid_save_version_is_refused(s3, archive):
    with pytest.raises(ModelArtifactError, match="Invalid save version"):
        upload_model_archive(s3, archive, bucket=BUCKET, prefix="m", save_version="a/b")


def test_missing_inference_module_is_refused(tmp_path, iris_model):
    with pytest.raises(ModelArtifactError, match="must be an existing .py file"):
        build_model_archive(iris_model, tmp_path / "nope.py", tmp_path / "out")


def test_pinning_an_uninstalled_distribution_is_an_error():
    with pytest.raises(ModelArtifactError, match="not-a-real-dist"):
        pin_requirements(["not-a-real-dist"])


# --- safe extraction --------------------------------------------------------------------------


def _malicious_tar(path, member: tarfile.TarInfo, data: bytes = b"") -> None:
    benign = tarfile.TarInfo("model.joblib")
    benign.size = 3
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(benign, io.BytesIO(b"abc"))
        member.size = len(data) if member.isreg() else 0
        tar.addfile(member, io.BytesIO(data) if member.isreg() else None)


def _member(name, kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    "member",
    [
        _member("/tmp/kedro-aws-evil"),
        _member("../evil.py"),
        _member("code/../../evil.py"),
        _member("C:evil.py"),
        _member("code/link", tarfile.SYMTYPE, "/etc/passwd"),
        _member("code/link", tarfile.SYMTYPE, "../../outside"),
        _member("code/link", tarfile.SYMTYPE, "../model.joblib"),  # inside, but '..' refused
        _member("code/hard", tarfile.LNKTYPE, "../../etc/passwd"),
        _member("dev/null", tarfile.CHRTYPE),
        _member("dev/sda", tarfile.BLKTYPE),
        _member("pipe", tarfile.FIFOTYPE),
    ],
    ids=lambda m: f"{m.name}->{m.linkname}" if m.linkname else m.name,
)
@pytest.mark.parametrize("data_filter", [True, False], ids=["data-filter", "own-checks-only"])
def test_escaping_member_is_refused_by_name(tmp_path, monkeypatch, member, data_filter):
    monkeypatch.setattr(packaging, "_HAS_DATA_FILTER", data_filter)
    archive_path = tmp_path / "evil.tar.gz"
    _malicious_tar(archive_path, member, b"print('pwned')")
    destination = tmp_path / "work" / "model"

    with pytest.raises(UnsafeArchiveError) as raised:
        extract_model_archive(archive_path, destination)
    assert f"'{member.name}'" in str(raised.value)
    # Nothing was extracted, not even the benign member that came first.
    assert not destination.exists()
    assert not (tmp_path / "evil.py").exists()
    assert list((tmp_path / "work").iterdir()) == []


@pytest.mark.parametrize("data_filter", [True, False], ids=["data-filter", "own-checks-only"])
def test_links_inside_the_archive_are_allowed(tmp_path, monkeypatch, data_filter):
    monkeypatch.setattr(packaging, "_HAS_DATA_FILTER", data_filter)
    archive_path = tmp_path / "ok.tar.gz"
    _malicious_tar(archive_path, _member("alias.joblib", tarfile.SYMTYPE, "model.joblib"))
    model_dir = extract_model_archive(archive_path, tmp_path / "model")
    assert (model_dir / "alias.joblib").read_bytes() == b"abc"


def test_extraction_refuses_a_non_empty_target(tmp_path, archive):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    with pytest.raises(ModelArtifactError, match="not empty"):
        extract_model_archive(archive.path, target)


def test_corrupt_archive_is_reported_with_its_path(tmp_path):
    broken = tmp_path / "model.tar.gz"
    broken.write_bytes(b"not a tarball")
    with pytest.raises(ModelArtifactError, match=r"Cannot read model archive .*model\.tar\.gz"):
        extract_model_archive(broken, tmp_path / "model")


# --- the inference module's own contract ------------------------------------------------------


@pytest.fixture
def inference():
    return import_module_from(INFERENCE_MODULE, "inference_contract")


def test_single_csv_row_stays_two_dimensional(inference, iris_model):
    # The container's default CSV decoder squeezes one row to 1-D ("Expected 2D array"):
    # aws/sagemaker-scikit-learn-container#15, #145.
    rows = inference.input_fn("5.1,3.5,1.4,0.2\n", "text/csv")
    assert rows.shape == (1, 4)
    assert inference.predict_fn(rows, iris_model).tolist() == ["setosa"]


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", ""])
def test_unsupported_content_type_is_named(inference, content_type):
    with pytest.raises(ValueError) as raised:
        inference.input_fn(b"{}", content_type)
    message = str(raised.value)
    assert f"'{content_type}'" in message
    assert "application/x-parquet" in message and "text/csv" in message


def test_unsupported_accept_is_named(inference):
    with pytest.raises(ValueError, match=r"'application/json'.*application/x-parquet, text/csv"):
        inference.output_fn(["setosa"], "application/json")


def test_content_type_parameters_are_tolerated(inference):
    rows = inference.input_fn(b"5.1,3.5,1.4,0.2\n", "text/csv; charset=utf-8")
    assert rows.shape == (1, 4)


def test_headerless_csv_with_wrong_width_explains_the_expected_features(inference, iris_model):
    rows = inference.input_fn("5.1,3.5,1.4,0.2,setosa\n", "text/csv")
    with pytest.raises(ValueError, match="5 columns; the model expects 4 features"):
        inference.predict_fn(rows, iris_model)


def test_parquet_with_missing_feature_is_named(inference, iris_model, sample_rows):
    body = _parquet_bytes(sample_rows.drop(columns="petal_width"))
    with pytest.raises(ValueError, match="Missing feature columns petal_width"):
        inference.predict_fn(inference.input_fn(body, "application/x-parquet"), iris_model)


def test_columns_are_reordered_by_name(inference, iris_model, sample_rows):
    shuffled = sample_rows[["species", *reversed(FEATURES)]]
    rows = inference.input_fn(shuffled.to_csv(index=False), "text/csv")
    expected = iris_model.predict(sample_rows[FEATURES]).tolist()
    assert inference.predict_fn(rows, iris_model).tolist() == expected


def test_empty_body_is_refused(inference):
    with pytest.raises(ValueError, match="Empty request body"):
        inference.input_fn("  \n", "text/csv")
