"""S3 behaviour, asserted identically on the local backend, moto, and a moto server over HTTP.

Local-only tests at the end cover what only the local backend has (files on disk, atomic
writes, path safety) and the points where moto departs from S3 (each says where).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError, ParamValidationError

BUCKET = "kedro-aws-contract"


@pytest.fixture
def s3(make_client):
    s3 = make_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def put(s3, key: str, body: bytes = b"data", **extra) -> dict:
    return s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)


def error_of(excinfo: pytest.ExceptionInfo) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_put_then_get_round_trips_bytes_type_and_metadata(s3):
    body = b"sepal_length,species\n5.1,setosa\n"
    written = put(s3, "raw/iris.csv", body, ContentType="text/csv", Metadata={"run": "42"})

    got = s3.get_object(Bucket=BUCKET, Key="raw/iris.csv")

    assert written["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert got["Body"].read() == body
    assert got["ETag"] == written["ETag"]
    assert got["ContentType"] == "text/csv"
    assert got["Metadata"] == {"run": "42"}
    assert got["ContentLength"] == len(body)
    assert got["LastModified"].tzinfo is not None
    assert got["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_body_may_be_a_file_object_or_str_and_streams_in_chunks(s3):
    put(s3, "from-file", io.BytesIO(b"x" * 10_000))
    s3.put_object(Bucket=BUCKET, Key="from-str", Body="héllo")

    chunks = list(s3.get_object(Bucket=BUCKET, Key="from-file")["Body"].iter_chunks(4096))

    assert b"".join(chunks) == b"x" * 10_000
    assert len(chunks) == 3
    assert s3.get_object(Bucket=BUCKET, Key="from-str")["Body"].read() == "héllo".encode()


def test_default_content_type_is_binary_octet_stream(s3):
    put(s3, "blob")
    assert s3.head_object(Bucket=BUCKET, Key="blob")["ContentType"] == "binary/octet-stream"


def test_overwrite_replaces_the_object(s3):
    put(s3, "k", b"old")
    put(s3, "k", b"new")
    assert s3.get_object(Bucket=BUCKET, Key="k")["Body"].read() == b"new"


def test_ranged_get_returns_the_bytes_asked_for(s3):
    put(s3, "k", b"0123456789")

    part = s3.get_object(Bucket=BUCKET, Key="k", Range="bytes=2-5")
    tail = s3.get_object(Bucket=BUCKET, Key="k", Range="bytes=-3")

    assert part["Body"].read() == b"2345"
    assert part["ContentRange"] == "bytes 2-5/10"
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert tail["Body"].read() == b"789"
    with pytest.raises(ClientError) as excinfo:
        s3.get_object(Bucket=BUCKET, Key="k", Range="bytes=20-30")
    assert error_of(excinfo) == ("InvalidRange", 416)


def test_head_object_reports_metadata_without_body(s3):
    put(s3, "k", b"abc", ContentType="application/json", Metadata={"a": "1"})

    head = s3.head_object(Bucket=BUCKET, Key="k")

    assert head["ContentLength"] == 3
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"a": "1"}
    assert head["ETag"] == f'"{hashlib.md5(b"abc").hexdigest()}"'
    assert "Body" not in head


def test_missing_key_is_no_such_key_and_head_is_404(s3):
    with pytest.raises(s3.exceptions.NoSuchKey) as excinfo:
        s3.get_object(Bucket=BUCKET, Key="missing")
    assert error_of(excinfo) == ("NoSuchKey", 404)

    with pytest.raises(ClientError) as excinfo:
        s3.head_object(Bucket=BUCKET, Key="missing")
    assert error_of(excinfo) == ("404", 404)


def test_missing_bucket_is_no_such_bucket(s3):
    with pytest.raises(s3.exceptions.NoSuchBucket) as excinfo:
        s3.get_object(Bucket="no-such-bucket-here", Key="k")
    assert error_of(excinfo) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as excinfo:
        s3.put_object(Bucket="no-such-bucket-here", Key="k", Body=b"")
    assert error_of(excinfo) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as excinfo:
        s3.list_objects_v2(Bucket="no-such-bucket-here")
    assert error_of(excinfo) == ("NoSuchBucket", 404)


def test_unknown_parameter_fails_before_any_request(s3):
    with pytest.raises(ParamValidationError, match="Unknown parameter"):
        s3.put_object(Bucket=BUCKET, Key="k", Body=b"", ContentTyp="text/plain")


def test_listing_is_in_utf8_byte_order(s3):
    keys = ["u/a", "u/B", "u/é", "u/z", "u/\U0001f600", "u/\uff21", "u/0"]
    for key in keys:
        put(s3, key)

    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="u/")["Contents"]]

    assert listed == sorted(keys, key=lambda k: k.encode("utf-8"))


def test_listing_entries_carry_size_and_etag(s3):
    put(s3, "a.csv", b"12345")
    (entry,) = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert entry["Key"] == "a.csv"
    assert entry["Size"] == 5
    assert entry["ETag"] == f'"{hashlib.md5(b"12345").hexdigest()}"'
    assert entry["LastModified"].tzinfo is not None


def test_delimiter_groups_common_prefixes(s3):
    for key in ["data/01_raw/iris.csv", "data/02_int/a.parquet", "data/02_int/b.parquet", "data/x"]:
        put(s3, key)

    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="data/", Delimiter="/")

    assert [o["Key"] for o in listing["Contents"]] == ["data/x"]
    assert listing["CommonPrefixes"] == [{"Prefix": "data/01_raw/"}, {"Prefix": "data/02_int/"}]
    assert listing["KeyCount"] == 3
    assert listing["Prefix"] == "data/"
    assert listing["IsTruncated"] is False


def test_empty_listing_has_no_contents_key(s3):
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix="nothing/")
    assert "Contents" not in listing
    assert listing["KeyCount"] == 0


def test_pagination_with_continuation_tokens_visits_every_key_once(s3):
    keys = [f"part-{i:03d}" for i in range(7)]
    for key in keys:
        put(s3, key)

    seen, token, pages = [], None, 0
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=BUCKET, MaxKeys=3, **extra)
        pages += 1
        seen += [o["Key"] for o in page["Contents"]]
        assert page["KeyCount"] == len(page["Contents"])
        if not page["IsTruncated"]:
            assert "NextContinuationToken" not in page
            break
        token = page["NextContinuationToken"]

    assert seen == keys
    assert pages == 3


def test_pagination_counts_common_prefixes_and_never_repeats_them(s3):
    for key in ["a/1", "a/2", "b/1", "c", "d/1", "d/2", "e"]:
        put(s3, key)

    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Delimiter="/", PaginationConfig={"PageSize": 2}
        )
    )

    entries = [
        *(p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])),
        *(o["Key"] for page in pages for o in page.get("Contents", [])),
    ]
    assert sorted(entries) == ["a/", "b/", "c", "d/", "e"]
    assert [page["KeyCount"] for page in pages] == [2, 2, 1]


def test_start_after_skips_keys_up_to_it(s3):
    for key in ["k1", "k2", "k3"]:
        put(s3, key)
    listing = s3.list_objects_v2(Bucket=BUCKET, StartAfter="k1")
    assert [o["Key"] for o in listing["Contents"]] == ["k2", "k3"]


def test_delete_object_is_idempotent(s3):
    put(s3, "k")
    assert s3.delete_object(Bucket=BUCKET, Key="k")["ResponseMetadata"]["HTTPStatusCode"] == 204
    # Deleting a key that is not there succeeds on S3.
    assert s3.delete_object(Bucket=BUCKET, Key="k")["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError):
        s3.head_object(Bucket=BUCKET, Key="k")


def test_delete_objects_reports_deleted_keys(s3):
    for key in ["a", "b", "c"]:
        put(s3, key)

    deleted = s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})

    assert sorted(d["Key"] for d in deleted["Deleted"]) == ["a", "b"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == ["c"]


def test_copy_object_keeps_or_replaces_metadata(s3):
    put(s3, "src", b"payload", ContentType="text/plain", Metadata={"origin": "run-1"})

    copied = s3.copy_object(Bucket=BUCKET, Key="dst", CopySource=f"{BUCKET}/src")
    s3.copy_object(
        Bucket=BUCKET,
        Key="dst2",
        CopySource={"Bucket": BUCKET, "Key": "src"},
        MetadataDirective="REPLACE",
        ContentType="application/json",
        Metadata={"origin": "copy"},
    )

    dst = s3.get_object(Bucket=BUCKET, Key="dst")
    dst2 = s3.head_object(Bucket=BUCKET, Key="dst2")
    assert dst["Body"].read() == b"payload"
    assert copied["CopyObjectResult"]["ETag"] == dst["ETag"]
    assert (dst["ContentType"], dst["Metadata"]) == ("text/plain", {"origin": "run-1"})
    assert (dst2["ContentType"], dst2["Metadata"]) == ("application/json", {"origin": "copy"})


def test_copy_errors(s3):
    put(s3, "src")
    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(Bucket=BUCKET, Key="src", CopySource=f"{BUCKET}/src")
    assert error_of(excinfo) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as excinfo:
        s3.copy_object(Bucket=BUCKET, Key="dst", CopySource=f"{BUCKET}/missing")
    assert error_of(excinfo)[0] == "NoSuchKey"


def test_upload_and_download_file_round_trip(s3, tmp_path: Path):
    source = tmp_path / "model.tar.gz"
    source.write_bytes(os.urandom(300_000))
    target = tmp_path / "downloaded" / "model.tar.gz"
    target.parent.mkdir()

    s3.upload_file(str(source), BUCKET, "models/model.tar.gz")
    s3.download_file(BUCKET, "models/model.tar.gz", str(target))

    assert target.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.tar.gz"]


def test_transfer_failures(s3, tmp_path: Path):
    source = tmp_path / "f"
    source.write_bytes(b"x")
    with pytest.raises(S3UploadFailedError):
        s3.upload_file(str(source), "no-such-bucket-here", "k")
    with pytest.raises(ClientError) as excinfo:
        s3.download_file(BUCKET, "missing", str(tmp_path / "out"))
    assert error_of(excinfo) == ("404", 404)
    assert not (tmp_path / "out").exists()


def test_bucket_lifecycle(s3):
    assert BUCKET in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket=BUCKET)
    put(s3, "k")

    with pytest.raises(ClientError) as excinfo:
        s3.delete_bucket(Bucket=BUCKET)
    assert error_of(excinfo) == ("BucketNotEmpty", 409)

    s3.delete_object(Bucket=BUCKET, Key="k")
    s3.delete_bucket(Bucket=BUCKET)
    with pytest.raises(ClientError) as excinfo:
        s3.head_bucket(Bucket=BUCKET)
    assert error_of(excinfo) == ("404", 404)


def test_location_constraint_rules(make_client):
    eu = make_client("s3", region="eu-west-1")
    us = make_client("s3", region="us-east-1")

    with pytest.raises(ClientError) as excinfo:
        eu.create_bucket(Bucket="eu-bucket-1")
    assert error_of(excinfo)[0] == "IllegalLocationConstraintException"
    with pytest.raises(ClientError) as excinfo:
        us.create_bucket(
            Bucket="us-bucket-1", CreateBucketConfiguration={"LocationConstraint": "us-east-1"}
        )
    assert error_of(excinfo)[0] == "InvalidLocationConstraint"

    config = {"LocationConstraint": "eu-west-1"}
    eu.create_bucket(Bucket="eu-bucket-1", CreateBucketConfiguration=config)
    with pytest.raises(eu.exceptions.BucketAlreadyOwnedByYou):
        eu.create_bucket(Bucket="eu-bucket-1", CreateBucketConfiguration=config)
    # us-east-1 answers 200 to re-creating your own bucket (S3 API reference, CreateBucket).
    us.create_bucket(Bucket="us-bucket-1")
    us.create_bucket(Bucket="us-bucket-1")


def test_client_reports_its_region(make_client):
    assert make_client("s3", region="eu-west-1").meta.region_name == "eu-west-1"


# -- local backend only -------------------------------------------------------------------------


@pytest.fixture
def local_s3(make_local_client):
    s3 = make_local_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def test_local_objects_are_plain_files_under_root(local_s3, local_root: Path):
    put(local_s3, "data/01_raw/iris.csv", b"a,b\n")
    assert (local_root / BUCKET / "data" / "01_raw" / "iris.csv").read_bytes() == b"a,b\n"


def test_local_files_placed_by_hand_are_objects(local_s3, local_root: Path):
    (local_root / BUCKET / "manual").mkdir()
    (local_root / BUCKET / "manual" / "f.txt").write_bytes(b"by hand")

    head = local_s3.head_object(Bucket=BUCKET, Key="manual/f.txt")

    assert head["ETag"] == f'"{hashlib.md5(b"by hand").hexdigest()}"'
    assert head["ContentType"] == "binary/octet-stream"


def test_local_sidecar_metadata_is_dropped_when_the_file_changes_behind_our_back(
    local_s3, local_root: Path
):
    put(local_s3, "k", b"v1", ContentType="text/plain")
    (local_root / BUCKET / "k").write_bytes(b"edited by another tool")

    head = local_s3.head_object(Bucket=BUCKET, Key="k")

    assert head["ETag"] == f'"{hashlib.md5(b"edited by another tool").hexdigest()}"'
    assert head["ContentLength"] == len(b"edited by another tool")


def test_local_listing_page_reports_etags_of_put_edited_and_hand_placed_files(
    local_s3, local_root: Path
):
    # A full page spans several metadata queries; edited and hand-placed files get their
    # ETag from their bytes, and it is kept for the next listing.
    bodies = {f"many/{index:04d}": f"body {index}".encode() for index in range(1000)}
    for key, body in bodies.items():
        if key.endswith("7"):
            (local_root / BUCKET / key).parent.mkdir(exist_ok=True)
            (local_root / BUCKET / key).write_bytes(body)  # placed by another tool
        else:
            put(local_s3, key, body)
    bodies["many/0500"] = b"edited behind our back"
    (local_root / BUCKET / "many" / "0500").write_bytes(bodies["many/0500"])

    for _ in range(2):
        page = local_s3.list_objects_v2(Bucket=BUCKET, Prefix="many/")

        assert page["KeyCount"] == 1000 and not page["IsTruncated"]
        assert [entry["Key"] for entry in page["Contents"]] == sorted(bodies)
        assert {entry["Key"]: entry["ETag"] for entry in page["Contents"]} == {
            key: f'"{hashlib.md5(body).hexdigest()}"' for key, body in bodies.items()
        }
        assert {entry["Key"]: entry["Size"] for entry in page["Contents"]} == {
            key: len(body) for key, body in bodies.items()
        }


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")
def test_local_client_keeps_working_in_a_forked_child_and_after(local_s3):
    # The metadata connection is kept open per process: a forked child must open its own
    # (SQLite connections must not cross a fork) and leave the parent's usable.
    put(local_s3, "before", b"parent")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            put(local_s3, "child", b"from the child")
            head = local_s3.head_object(Bucket=BUCKET, Key="before")
            code = 0 if head["ETag"] == f'"{hashlib.md5(b"parent").hexdigest()}"' else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    child = local_s3.head_object(Bucket=BUCKET, Key="child")
    assert child["ETag"] == f'"{hashlib.md5(b"from the child").hexdigest()}"'
    put(local_s3, "after", b"parent again")
    assert local_s3.head_object(Bucket=BUCKET, Key="after")["ContentLength"] == 12


def test_local_state_survives_a_new_client(make_local_client, local_s3):
    put(local_s3, "k", b"v", ContentType="text/csv", Metadata={"run": "7"})

    fresh = make_local_client("s3")
    head = fresh.head_object(Bucket=BUCKET, Key="k")

    assert (head["ContentType"], head["Metadata"]) == ("text/csv", {"run": "7"})


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../escape", "/etc/passwd", "a//b", "a/./b", "dir/", ".."]
)
def test_local_rejects_keys_that_are_not_relative_file_paths(local_s3, local_root: Path, key):
    before = sorted(local_root.parent.rglob("*"))

    with pytest.raises(ClientError) as excinfo:
        put(local_s3, key)

    assert error_of(excinfo) == ("InvalidArgument", 400)
    assert repr(key) in str(excinfo.value)
    assert sorted(local_root.parent.rglob("*")) == before


@pytest.mark.parametrize("bucket", ["..", ".kedro-aws", "a/b", "../aws"])
def test_local_bucket_names_cannot_reach_outside_the_root(local_s3, bucket):
    # S3 itself rejects these names; locally they must never become paths.
    with pytest.raises(ClientError) as excinfo:
        local_s3.put_object(Bucket=bucket, Key="k", Body=b"")
    assert error_of(excinfo)[0] == "NoSuchBucket"


def test_local_invalid_bucket_names_are_refused(local_s3):
    # S3 refuses names outside its naming rules; moto 5.2 creates them (moto gap), so local only.
    with pytest.raises(ClientError) as excinfo:
        local_s3.create_bucket(Bucket="Bad_Name")
    assert error_of(excinfo)[0] == "InvalidBucketName"


def test_local_head_object_on_missing_bucket_is_404(local_s3):
    # HEAD responses have no body, so S3's code is the bare status "404"; moto in-process
    # reports NoSuchBucket instead (moto gap), so this is checked locally only.
    with pytest.raises(ClientError) as excinfo:
        local_s3.head_object(Bucket="no-such-bucket-here", Key="k")
    assert error_of(excinfo) == ("404", 404)


def test_local_file_and_folder_of_the_same_name_are_refused_clearly(local_s3):
    put(local_s3, "a", b"file")
    with pytest.raises(ClientError, match="'a' is an object, so it cannot be a folder"):
        put(local_s3, "a/b")
    put(local_s3, "x/y")
    with pytest.raises(ClientError, match="already holds other objects"):
        put(local_s3, "x")


class _FailingBody:
    """A body that yields some bytes, then breaks (a dropped connection, a crashed producer)."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 2:
            raise OSError("producer died")
        return b"x" * 1024


def test_local_failed_write_leaves_no_partial_object(local_s3, local_root: Path):
    put(local_s3, "model.bin", b"previous version")

    with pytest.raises(OSError, match="producer died"):
        local_s3.put_object(Bucket=BUCKET, Key="model.bin", Body=_FailingBody())
    with pytest.raises(OSError, match="producer died"):
        local_s3.put_object(Bucket=BUCKET, Key="new.bin", Body=_FailingBody())

    assert local_s3.get_object(Bucket=BUCKET, Key="model.bin")["Body"].read() == b"previous version"
    assert [p.name for p in (local_root / BUCKET).iterdir()] == ["model.bin"]
    assert [o["Key"] for o in local_s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == ["model.bin"]


def test_local_quiet_delete_objects_lists_only_errors(local_s3):
    # S3 API reference, DeleteObjects: in quiet mode "the response includes only keys where the
    # delete action encountered an error". moto 5.2 still lists deleted keys (moto gap).
    put(local_s3, "c")
    quiet = local_s3.delete_objects(
        Bucket=BUCKET, Delete={"Objects": [{"Key": "c"}], "Quiet": True}
    )
    assert "Deleted" not in quiet
    assert "Contents" not in local_s3.list_objects_v2(Bucket=BUCKET)


def test_local_state_directory_is_not_a_bucket(local_s3, local_root: Path):
    assert (local_root / ".kedro-aws").is_dir()
    assert [b["Name"] for b in local_s3.list_buckets()["Buckets"]] == [BUCKET]


def test_local_adopt_file_moves_a_hashed_file_in_as_an_object(local_s3, tmp_path: Path):
    body = b"setosa\nvirginica\n" * 1000
    source = tmp_path / "part.out"
    source.write_bytes(body)
    md5 = hashlib.md5(body).hexdigest()

    etag = local_s3.adopt_file(BUCKET, "scores/part-0.csv.out", source, md5_hexdigest=md5)

    assert etag == f'"{md5}"'
    assert not source.exists()  # moved, not copied
    head = local_s3.head_object(Bucket=BUCKET, Key="scores/part-0.csv.out")
    assert head["ETag"] == etag
    assert head["ContentLength"] == len(body)
    assert head["ContentType"] == "binary/octet-stream"  # as put_object without ContentType
    assert local_s3.get_object(Bucket=BUCKET, Key="scores/part-0.csv.out")["Body"].read() == body


def test_local_adopt_file_copies_across_file_systems(local_s3, tmp_path: Path, monkeypatch):
    body = b"1\n2\n"
    source = tmp_path / "part.out"
    source.write_bytes(body)

    monkeypatch.setattr("kedro_aws.local.s3.os.replace", _replace_except_from(source))

    etag = local_s3.adopt_file(
        BUCKET, "out/part.out", source, md5_hexdigest=hashlib.md5(body).hexdigest()
    )

    assert etag == f'"{hashlib.md5(body).hexdigest()}"'
    assert local_s3.head_object(Bucket=BUCKET, Key="out/part.out")["ETag"] == etag
    assert local_s3.get_object(Bucket=BUCKET, Key="out/part.out")["Body"].read() == body


def _replace_except_from(source: Path):
    """os.replace that fails with EXDEV for ``source`` (as from another file system)."""
    import errno

    real_replace = os.replace

    def replace(src, dst):
        if Path(src) == source:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real_replace(src, dst)

    return replace


def test_local_adopt_file_refuses_a_key_that_is_a_folder(local_s3, tmp_path: Path):
    put(local_s3, "scores/part-0.csv.out/inner", b"x")
    source = tmp_path / "part.out"
    source.write_bytes(b"1\n")
    with pytest.raises(ClientError, match="already holds other objects"):
        local_s3.adopt_file(BUCKET, "scores/part-0.csv.out", source, md5_hexdigest="0" * 32)
    assert source.read_bytes() == b"1\n"  # left for the caller to clean up
