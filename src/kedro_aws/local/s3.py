"""Local S3: ``s3://bucket/key`` is the file ``<root>/<bucket>/<key>``.

A boto3-compatible subset of the S3 client that keeps objects as plain files, so that pipeline
outputs can be opened with any tool and inputs can be dropped in by hand. What S3 keeps beside
the bytes (ETag, ContentType, user Metadata) lives in a SQLite sidecar under
``<root>/.kedro-aws/``, which is never listed as a bucket or an object.

Example:
>>> s3 = LocalS3Client("/tmp/kedro-aws-doc-s3", region="us-east-1")
>>> _ = s3.create_bucket(Bucket="demo")
>>> _ = s3.put_object(Bucket="demo", Key="raw/iris.csv", Body=b"a,b\\n1,2\\n")
>>> s3.get_object(Bucket="demo", Key="raw/iris.csv")["Body"].read()
b'a,b\\n1,2\\n'

Differences from S3, all refused with a clear ``InvalidArgument`` error rather than silently
mangled: keys that cannot be a relative file path (``..`` or ``.`` segments, a leading ``/``,
empty segments, a trailing ``/``), and a key that would need a file and a folder of the same
name (``a`` and ``a/b``). Only single-part ETags (quoted MD5) are produced.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, unquote

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from dateutil.tz import tzutc

from kedro_aws.local import LocalClient
from kedro_aws.local.sqlite_store import SqliteStore

_CHUNK = 1024 * 1024
# Temporary files of in-flight writes carry this prefix; keys may not use it, listings skip it.
_RESERVED_PREFIX = ".kedro-aws-"
# Keys per metadata query of a listing: under SQLite's old 999-parameter limit (before 3.32).
_KEYS_PER_QUERY = 500
_DEFAULT_CONTENT_TYPE = "binary/octet-stream"  # what S3 stores when no ContentType is sent
_MAX_KEY_BYTES = 1024
# S3 general purpose bucket naming rules (docs: "General purpose bucket naming rules").
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class LocalS3Client(LocalClient):
    """S3 on the local file system (see the module docstring for the layout).

    Args:
        root: Directory that holds one sub-directory per bucket.
        region: Reported as ``meta.region_name``; decides ``create_bucket``'s location rules.
    """

    service_name = "s3"

    def __init__(self, root: str | Path, region: str) -> None:
        super().__init__(root, region)
        self._metadata = _ObjectMetadataStore(self.state_dir / "s3-metadata.sqlite")

    # -- buckets ---------------------------------------------------------------------------

    def create_bucket(self, **params: Any) -> dict[str, Any]:
        """Create a bucket directory, with S3's naming and location-constraint rules."""
        params = self._validated("CreateBucket", params)
        bucket = params["Bucket"]
        if not _is_valid_bucket_name(bucket):
            raise self._error(
                "CreateBucket",
                "InvalidBucketName",
                "The specified bucket is not valid.",
                BucketName=bucket,
            )
        constraint = (params.get("CreateBucketConfiguration") or {}).get("LocationConstraint")
        self._check_location_constraint(constraint)
        path = self.root / bucket
        try:
            path.mkdir()
        except FileExistsError:
            # S3 answers 200 to re-creating your own bucket in us-east-1 only, "for legacy
            # compatibility" (S3 API reference, CreateBucket, BucketAlreadyOwnedByYou).
            if self.region != "us-east-1":
                raise self._error(
                    "CreateBucket",
                    "BucketAlreadyOwnedByYou",
                    "Your previous request to create the named bucket succeeded and you "
                    "already own it.",
                    status=409,
                    BucketName=bucket,
                ) from None
        return self._response(Location=f"/{bucket}")

    def _check_location_constraint(self, constraint: str | None) -> None:
        if self.region == "us-east-1":
            if constraint is None:
                return
            if constraint == "us-east-1":
                raise self._error(
                    "CreateBucket",
                    "InvalidLocationConstraint",
                    "The specified location-constraint is not valid",
                    LocationConstraint=constraint,
                )
        if constraint != self.region:
            raise self._error(
                "CreateBucket",
                "IllegalLocationConstraintException",
                f"The {constraint or 'unspecified'} location constraint is incompatible for "
                f"the region specific endpoint this request was sent to ({self.region}).",
            )

    def head_bucket(self, **params: Any) -> dict[str, Any]:
        """Succeed if the bucket exists; else a ``ClientError`` with code ``404``."""
        params = self._validated("HeadBucket", params)
        if self._bucket_dir(params["Bucket"]) is None:
            raise self._error("HeadBucket", "404", "Not Found", status=404)
        return self._response(BucketRegion=self.region)

    def list_buckets(self, **params: Any) -> dict[str, Any]:
        """All bucket directories under the root, by name."""
        self._validated("ListBuckets", params)
        buckets = [
            {"Name": entry.name, "CreationDate": _timestamp(entry.stat().st_mtime_ns)}
            for entry in sorted(os.scandir(self.root), key=lambda e: e.name)
            if entry.is_dir() and _is_valid_bucket_name(entry.name)
        ]
        return self._response(Buckets=buckets, Owner={"DisplayName": "local", "ID": "local"})

    def delete_bucket(self, **params: Any) -> dict[str, Any]:
        """Delete an empty bucket (``BucketNotEmpty`` otherwise)."""
        params = self._validated("DeleteBucket", params)
        bucket = params["Bucket"]
        path = self._require_bucket("DeleteBucket", bucket)
        if next(self._walk_keys(path, ""), None) is not None:
            raise self._error(
                "DeleteBucket",
                "BucketNotEmpty",
                "The bucket you tried to delete is not empty",
                status=409,
                BucketName=bucket,
            )
        shutil.rmtree(path)  # only empty folders (and stray temp files) are left
        self._metadata.forget_bucket(bucket)
        return self._response(status=204)

    # -- objects ---------------------------------------------------------------------------

    def put_object(self, **params: Any) -> dict[str, Any]:
        """Write an object atomically; ``Body`` may be bytes, str or a readable file object."""
        params = self._validated("PutObject", params)
        etag = self._write(
            "PutObject",
            params["Bucket"],
            params["Key"],
            params.get("Body", b""),
            content_type=params.get("ContentType"),
            metadata=params.get("Metadata"),
        )
        return self._response(ETag=etag)

    def get_object(self, **params: Any) -> dict[str, Any]:
        """Read an object; ``Body`` is a botocore ``StreamingBody``. Supports ``Range``."""
        params = self._validated("GetObject", params)
        bucket, key = params["Bucket"], params["Key"]
        path = self._existing_object("GetObject", bucket, key)
        try:
            stream = path.open("rb")
        except FileNotFoundError:  # deleted between the check and the open
            raise self._no_such_key("GetObject", key) from None
        # An open file keeps reading the version it opened even if a writer replaces the key,
        # which is S3's "a GET sees one whole version" guarantee.
        info = self._metadata.describe(bucket, key, path, os.fstat(stream.fileno()))
        fields = _object_fields(info)
        size = info["size"]
        if "Range" in params:
            start, end = self._parse_range(params["Range"], size)
            with stream:
                stream.seek(start)
                data = stream.read(end - start + 1)
            fields.update(ContentLength=len(data), ContentRange=f"bytes {start}-{end}/{size}")
            return self._response(206, Body=StreamingBody(io.BytesIO(data), len(data)), **fields)
        return self._response(Body=StreamingBody(stream, size), **fields)

    def _parse_range(self, header: str, size: int) -> tuple[int, int]:
        match = _RANGE.match(header.strip())
        if match is None or match.groups() == ("", ""):
            # S3 ignores a Range it cannot parse and returns the whole object.
            return 0, max(size - 1, 0)
        first, last = match.groups()
        if first == "":  # suffix range: the last N bytes
            start, end = max(size - int(last), 0), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        if start >= size or start > end:
            raise self._error(
                "GetObject",
                "InvalidRange",
                "The requested range is not satisfiable",
                status=416,
                RangeRequested=header,
                ActualObjectSize=str(size),
            )
        return start, end

    def head_object(self, **params: Any) -> dict[str, Any]:
        """An object's metadata; a missing bucket or key is code ``404`` (HEAD has no body)."""
        params = self._validated("HeadObject", params)
        bucket, key = params["Bucket"], params["Key"]
        path = self._object_path_or_none(bucket, key)
        try:
            if path is None:
                raise FileNotFoundError(key)
            info = self._metadata.describe(bucket, key, path, os.stat(path))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise self._error("HeadObject", "404", "Not Found", status=404) from None
        if path.is_dir():
            raise self._error("HeadObject", "404", "Not Found", status=404)
        return self._response(**_object_fields(info))

    def delete_object(self, **params: Any) -> dict[str, Any]:
        """Delete an object; deleting a missing key succeeds, as on S3."""
        params = self._validated("DeleteObject", params)
        bucket, key = params["Bucket"], params["Key"]
        self._require_bucket("DeleteObject", bucket)
        self._delete(bucket, key)
        return self._response(status=204)

    def delete_objects(self, **params: Any) -> dict[str, Any]:
        """Delete up to 1000 keys; ``Quiet`` leaves out the ``Deleted`` list."""
        params = self._validated("DeleteObjects", params)
        bucket = params["Bucket"]
        self._require_bucket("DeleteObjects", bucket)
        objects = params["Delete"]["Objects"]
        if len(objects) > 1000:
            raise self._error(
                "DeleteObjects",
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our "
                "published schema",
            )
        deleted, errors = [], []
        for entry in objects:
            try:
                self._delete(bucket, entry["Key"])
            except ClientError as exc:
                error = exc.response["Error"]
                errors.append(
                    {"Key": entry["Key"], "Code": error["Code"], "Message": error["Message"]}
                )
            else:
                deleted.append({"Key": entry["Key"]})
        quiet = params["Delete"].get("Quiet", False)
        return self._response(Deleted=None if quiet else deleted, Errors=errors or None)

    def copy_object(self, **params: Any) -> dict[str, Any]:
        """Copy an object; ``MetadataDirective`` ``COPY`` (default) or ``REPLACE``."""
        if isinstance(params.get("CopySource"), dict):
            # boto3 turns a {"Bucket", "Key"} CopySource into its string form before validating.
            source = params["CopySource"]
            params = {**params, "CopySource": f"{source['Bucket']}/{quote(source['Key'])}"}
        params = self._validated("CopyObject", params)
        src_bucket, src_key = _parse_copy_source(params["CopySource"])
        bucket, key = params["Bucket"], params["Key"]
        replace = params.get("MetadataDirective", "COPY") == "REPLACE"
        if (src_bucket, src_key) == (bucket, key) and not replace:
            raise self._error(
                "CopyObject",
                "InvalidRequest",
                "This copy request is illegal because it is trying to copy an object to itself "
                "without changing the object's metadata, storage class, website redirect "
                "location or encryption attributes.",
            )
        self._require_bucket("CopyObject", bucket)
        src_path = self._existing_object("CopyObject", src_bucket, src_key)
        with src_path.open("rb") as source:
            info = self._metadata.describe(src_bucket, src_key, src_path, os.fstat(source.fileno()))
            etag = self._write(
                "CopyObject",
                bucket,
                key,
                source,
                content_type=params.get("ContentType") if replace else info["content_type"],
                metadata=params.get("Metadata") if replace else info["metadata"],
            )
        written = self.head_object(Bucket=bucket, Key=key)
        return self._response(
            CopyObjectResult={"ETag": etag, "LastModified": written["LastModified"]}
        )

    def list_objects_v2(self, **params: Any) -> dict[str, Any]:
        """List keys in UTF-8 byte order, with Prefix/Delimiter/StartAfter and pagination."""
        params = self._validated("ListObjectsV2", params)
        bucket = params["Bucket"]
        path = self._require_bucket("ListObjectsV2", bucket)
        prefix = params.get("Prefix", "")
        delimiter = params.get("Delimiter")
        max_keys = params.get("MaxKeys", 1000)
        token = params.get("ContinuationToken")
        start_after = params.get("StartAfter", "").encode("utf-8")
        # The token names the last entry (key or common prefix) of the previous page: entries
        # up to it were served, and a common prefix as marker also covers its whole group.
        marker = _decode_token(token) if token is not None else ""
        if marker is None:
            raise self._error(
                "ListObjectsV2",
                "InvalidArgument",
                "The continuation token provided is incorrect",
                ArgumentName="continuation-token",
            )
        listed: list[str] = []
        common_prefixes: list[str] = []
        last_entry = None
        truncated = False
        for key in self._sorted_keys(path, prefix):
            if key.encode("utf-8") <= start_after:
                continue
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            entry = key[: cut + len(delimiter)] if cut >= 0 else key
            if entry == last_entry or (marker and entry.encode() <= marker.encode()):
                continue  # served already: on an earlier page, or in this common prefix
            if len(listed) + len(common_prefixes) >= max_keys:
                truncated = True
                break
            last_entry = entry
            if cut >= 0:
                common_prefixes.append(entry)
            else:
                listed.append(key)
        contents = self._list_entries(bucket, path, listed)
        return self._response(
            IsTruncated=truncated,
            Contents=contents or None,
            Name=bucket,
            Prefix=prefix,
            Delimiter=delimiter,
            MaxKeys=max_keys,
            CommonPrefixes=[{"Prefix": p} for p in common_prefixes] or None,
            KeyCount=len(contents) + len(common_prefixes),
            ContinuationToken=token,
            NextContinuationToken=_encode_token(last_entry) if truncated else None,
            StartAfter=params.get("StartAfter"),
        )

    def _list_entries(self, bucket: str, root: Path, keys: list[str]) -> list[dict[str, Any]]:
        objects = [(key, root / key, os.stat(root / key)) for key in keys]
        return [
            {
                "Key": key,
                "LastModified": info["last_modified"],
                "ETag": info["etag"],
                "Size": info["size"],
                "StorageClass": "STANDARD",
            }
            for key, info in zip(keys, self._metadata.describe_many(bucket, objects), strict=True)
        ]

    # -- managed transfers (boto3 injects these into its S3 client) ---------------------------

    def upload_file(  # noqa: PLR0917 - boto3's positional signature
        self,
        Filename: str | os.PathLike,
        Bucket: str,
        Key: str,
        ExtraArgs: dict[str, Any] | None = None,
        Callback: Any = None,
        Config: Any = None,  # transfer tuning does not apply locally
    ) -> None:
        """Upload a local file; failures raise boto3's ``S3UploadFailedError`` as boto3 does."""
        with open(Filename, "rb") as source:
            self._upload(source, Bucket, Key, ExtraArgs, Callback, label=os.fspath(Filename))

    def upload_fileobj(  # noqa: PLR0917 - boto3's positional signature
        self,
        Fileobj: IO[bytes],
        Bucket: str,
        Key: str,
        ExtraArgs: dict[str, Any] | None = None,
        Callback: Any = None,
        Config: Any = None,
    ) -> None:
        """Upload a readable binary file object."""
        self._upload(Fileobj, Bucket, Key, ExtraArgs, Callback, label=repr(Fileobj))

    def _upload(self, source, bucket, key, extra_args, callback, *, label: str) -> None:
        try:
            self.put_object(
                Bucket=bucket, Key=key, Body=_CountingReader(source, callback), **(extra_args or {})
            )
        except ClientError as exc:
            # boto3's S3Transfer turns ClientError into this, with this message.
            raise S3UploadFailedError(f"Failed to upload {label} to {bucket}/{key}: {exc}") from exc

    def download_file(  # noqa: PLR0917 - boto3's positional signature
        self,
        Bucket: str,
        Key: str,
        Filename: str | os.PathLike,
        ExtraArgs: dict[str, Any] | None = None,
        Callback: Any = None,
        Config: Any = None,
    ) -> None:
        """Download to ``Filename`` atomically (a failed download leaves no partial file)."""
        # boto3 starts with a HeadObject, so a missing key is a ClientError with code 404.
        self.head_object(Bucket=Bucket, Key=Key, **(_head_args(ExtraArgs)))
        target = Path(Filename)
        tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex[:8]}")
        try:
            with tmp.open("wb") as sink:
                self.download_fileobj(Bucket, Key, sink, ExtraArgs, Callback)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def download_fileobj(  # noqa: PLR0917 - boto3's positional signature
        self,
        Bucket: str,
        Key: str,
        Fileobj: IO[bytes],
        ExtraArgs: dict[str, Any] | None = None,
        Callback: Any = None,
        Config: Any = None,
    ) -> None:
        """Write an object's bytes into a writable binary file object."""
        body = self.get_object(Bucket=Bucket, Key=Key, **(ExtraArgs or {}))["Body"]
        with contextlib.closing(body):
            for chunk in body.iter_chunks(_CHUNK):
                Fileobj.write(chunk)
                if Callback is not None:
                    Callback(len(chunk))

    # -- internals -------------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path | None:
        if not _is_valid_bucket_name(bucket):
            return None  # never touch the file system with a name S3 could not have created
        path = self.root / bucket
        return path if path.is_dir() else None

    def _require_bucket(self, operation: str, bucket: str) -> Path:
        path = self._bucket_dir(bucket)
        if path is None:
            raise self._error(
                operation,
                "NoSuchBucket",
                "The specified bucket does not exist",
                status=404,
                BucketName=bucket,
            )
        return path

    def _no_such_key(self, operation: str, key: str) -> ClientError:
        return self._error(
            operation, "NoSuchKey", "The specified key does not exist.", status=404, Key=key
        )

    def _object_path(self, operation: str, bucket: str, key: str) -> Path:
        """The file behind ``bucket/key``; refuses keys that could escape the bucket."""
        bucket_dir = self._require_bucket(operation, bucket)
        problem = _key_problem(key)
        if problem:
            raise self._error(
                operation,
                "InvalidArgument",
                f"Key {key!r} cannot be stored by the local S3 backend: {problem}.",
                ArgumentName="key",
                ArgumentValue=key,
            )
        path = bucket_dir.joinpath(*key.split("/"))
        # Belt and braces: _key_problem already rules out every way out of the bucket.
        if os.path.commonpath([bucket_dir, path]) != str(bucket_dir):  # pragma: no cover
            raise ValueError(f"Key {key!r} resolves outside bucket {bucket!r}")
        return path

    def _object_path_or_none(self, bucket: str, key: str) -> Path | None:
        if self._bucket_dir(bucket) is None or _key_problem(key):
            return None
        return self.root / bucket / Path(*key.split("/"))

    def _existing_object(self, operation: str, bucket: str, key: str) -> Path:
        self._require_bucket(operation, bucket)
        path = self._object_path_or_none(bucket, key)
        if path is None or not path.is_file():
            raise self._no_such_key(operation, key)
        return path

    def _write(
        self,
        operation: str,
        bucket: str,
        key: str,
        body: bytes | str | IO[bytes],
        *,
        content_type: str | None,
        metadata: dict[str, str] | None,
    ) -> str:
        """Stream ``body`` to a temp file beside the target, record metadata, then rename."""
        path = self._object_path(operation, bucket, key)
        if path.is_dir():
            raise self._conflict(operation, key, f"{key}/ already holds other objects")
        if isinstance(body, str):
            body = body.encode("utf-8")  # as botocore does for a str Body
        source = io.BytesIO(body) if isinstance(body, (bytes, bytearray)) else body
        tmp = path.with_name(f"{_RESERVED_PREFIX}tmp-{uuid.uuid4().hex}")
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with self._open_temp(operation, bucket, key, tmp) as sink:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
            etag = f'"{digest.hexdigest()}"'
            # The sidecar row is keyed to the temp file's size, mtime and inode, which the
            # rename keeps: a reader that sees the old file with the new row (or a crash in
            # between) notices the mismatch and never serves a wrong ETag.
            self._metadata.record(
                bucket,
                key,
                os.stat(tmp),
                etag=etag,
                content_type=content_type or _DEFAULT_CONTENT_TYPE,
                metadata=metadata or {},
            )
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(OSError):  # gone already, or its folder never existed
                tmp.unlink()
        return etag

    def adopt_file(self, bucket: str, key: str, source: Path, *, md5_hexdigest: str) -> str:
        """Move a finished file into the bucket as ``key``: an upload that needs no copy.

        For producers on this machine that already hashed what they wrote (the local
        Batch Transform writes each output file once, hashing as it goes). The move is atomic,
        like ``put_object``; if ``source`` is on another file system it is copied instead.
        Returns the ETag.

        >>> s3.adopt_file("bucket", "scores/part-0.csv.out", Path("part.tmp"),
        ...               md5_hexdigest=hashlib.md5(data).hexdigest())  # doctest: +SKIP
        '"9e107d9d372bb6826bd81d3542a419d6"'
        """
        operation = "PutObject"
        path = self._object_path(operation, bucket, key)
        if path.is_dir():
            raise self._conflict(operation, key, f"{key}/ already holds other objects")
        self._make_parent(operation, bucket, key, path)
        etag = f'"{md5_hexdigest}"'
        try:
            # Keyed to the file's size, mtime and inode, which the rename keeps (see _write).
            self._metadata.record(
                bucket,
                key,
                os.stat(source),
                etag=etag,
                content_type=_DEFAULT_CONTENT_TYPE,
                metadata={},
            )
            os.replace(source, path)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            with open(source, "rb") as stream:
                return self._write(operation, bucket, key, stream, content_type=None, metadata=None)
        return etag

    def _open_temp(self, operation: str, bucket: str, key: str, tmp: Path) -> IO[bytes]:
        # A concurrent delete may remove the parent folder between our mkdir and open (it
        # prunes emptied folders); once our temp file is inside, the folder is safe.
        for _attempt in range(5):
            self._make_parent(operation, bucket, key, tmp)
            try:
                return tmp.open("xb")
            except FileNotFoundError:
                continue
        return tmp.open("xb")

    def _make_parent(self, operation: str, bucket: str, key: str, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            blocking = next((p for p in path.parents if p.is_file()), path.parent).relative_to(
                self.root / bucket
            )
            raise self._conflict(
                operation, key, f"{blocking.as_posix()!r} is an object, so it cannot be a folder"
            ) from None

    def _conflict(self, operation: str, key: str, reason: str) -> ClientError:
        return self._error(
            operation,
            "InvalidArgument",
            f"Key {key!r} cannot be stored by the local S3 backend: {reason} (on S3 both may "
            "exist; on a file system a name is either a file or a folder).",
            ArgumentName="key",
            ArgumentValue=key,
        )

    def _delete(self, bucket: str, key: str) -> None:
        path = self._object_path_or_none(bucket, key)
        if path is None:
            return
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
            path.unlink()
        self._metadata.forget(bucket, key)
        # S3 has no folders: drop the ones this delete emptied. A concurrent writer that loses
        # its fresh parent folder here simply recreates it (see _make_parent's callers).
        bucket_dir = self.root / bucket
        for parent in path.parents:
            if parent == bucket_dir:
                break
            try:
                parent.rmdir()
            except OSError:
                break

    def _sorted_keys(self, bucket_dir: Path, prefix: str) -> list[str]:
        # S3 lists in UTF-8 byte order, which is exactly Python's code-point order for str
        # (unlike UTF-16 order, where U+E000..U+FFFF sort after supplementary characters).
        return sorted(self._walk_keys(bucket_dir, prefix))

    @staticmethod
    def _walk_keys(bucket_dir: Path, prefix: str) -> Iterator[str]:
        folder, _, _ = prefix.rpartition("/")
        segments = folder.split("/") if folder else []
        if any(s in ("", ".", "..") or s.startswith(_RESERVED_PREFIX) for s in segments):
            return  # no valid key can start with this prefix
        start = bucket_dir.joinpath(*segments)
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(_RESERVED_PREFIX)]
            relative = Path(dirpath).relative_to(bucket_dir).as_posix()
            base = "" if relative == "." else relative + "/"
            for name in filenames:
                key = base + name
                if not name.startswith(_RESERVED_PREFIX) and key.startswith(prefix):
                    yield key


class _ObjectMetadataStore:
    """ETag, ContentType and user Metadata of local objects, in one SQLite database.

    A row is only trusted while the file still has the size, mtime and inode it was recorded
    with; files written by other tools get an ETag computed on first sight and the defaults.
    """

    _SCHEMA = """
        CREATE TABLE IF NOT EXISTS object_metadata (
            bucket TEXT NOT NULL, key TEXT NOT NULL,
            size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,
            etag TEXT NOT NULL, content_type TEXT NOT NULL, metadata TEXT NOT NULL,
            PRIMARY KEY (bucket, key)
        )
    """

    def __init__(self, path: Path) -> None:
        # Not durable: a row lost in a power cut is only a cached ETag, which ``describe``
        # recomputes when the row does not match the file.
        self._store = SqliteStore(path, [self._SCHEMA], durable=False)

    def record(self, bucket: str, key: str, stat: os.stat_result, **fields: Any) -> None:
        with self._store.write() as db:
            _insert_metadata(db, bucket, key, stat, fields)

    def describe(self, bucket: str, key: str, path: Path, stat: os.stat_result) -> dict[str, Any]:
        """Size, LastModified, ETag, ContentType and Metadata of the file with ``stat``."""
        return self.describe_many(bucket, [(key, path, stat)])[0]

    def describe_many(
        self, bucket: str, objects: Sequence[tuple[str, Path, os.stat_result]]
    ) -> list[dict[str, Any]]:
        """``describe`` for many ``(key, path, stat)`` of one bucket, in order.

        One query per 500 keys, not one per key: a listing page holds up to 1,000.
        """
        keys = [key for key, _path, _stat in objects]
        rows: dict[str, tuple] = {}
        with self._store.read() as db:
            for start in range(0, len(keys), _KEYS_PER_QUERY):
                chunk = keys[start : start + _KEYS_PER_QUERY]
                rows.update(
                    (row[0], row[1:])
                    for row in db.execute(
                        "SELECT key, size, mtime_ns, inode, etag, content_type, metadata "
                        "FROM object_metadata WHERE bucket = ? AND key IN "
                        f"({', '.join('?' * len(chunk))})",
                        (bucket, *chunk),
                    )
                )
        infos, unseen = [], []
        for key, path, stat in objects:
            info = {"size": stat.st_size, "last_modified": _timestamp(stat.st_mtime_ns)}
            row = rows.get(key)
            if row and tuple(row[:3]) == (stat.st_size, stat.st_mtime_ns, stat.st_ino):
                info |= {"etag": row[3], "content_type": row[4], "metadata": json.loads(row[5])}
            else:
                # Placed by another tool (or changed behind our back): hashed once, outside
                # the write transaction below, then cached.
                fields = {
                    "etag": _file_etag(path),
                    "content_type": _DEFAULT_CONTENT_TYPE,
                    "metadata": {},
                }
                info |= fields
                unseen.append((key, stat, fields))
            infos.append(info)
        if unseen:
            with self._store.write() as db:
                for key, stat, fields in unseen:
                    _insert_metadata(db, bucket, key, stat, fields)
        return infos

    def forget(self, bucket: str, key: str) -> None:
        with self._store.write() as db:
            db.execute("DELETE FROM object_metadata WHERE bucket = ? AND key = ?", (bucket, key))

    def forget_bucket(self, bucket: str) -> None:
        with self._store.write() as db:
            db.execute("DELETE FROM object_metadata WHERE bucket = ?", (bucket,))


class _CountingReader:
    """Reports bytes read to a boto3-style transfer ``Callback``."""

    def __init__(self, source: IO[bytes], callback: Any) -> None:
        self._source, self._callback = source, callback

    def read(self, size: int = -1) -> bytes:
        chunk = self._source.read(size)
        if chunk and self._callback is not None:
            self._callback(len(chunk))
        return chunk


def _head_args(extra_args: dict[str, Any] | None) -> dict[str, Any]:
    """The ExtraArgs of a download that HeadObject accepts too (e.g. VersionId, SSE keys)."""
    allowed = {"VersionId", "SSECustomerAlgorithm", "SSECustomerKey", "RequestPayer"}
    return {k: v for k, v in (extra_args or {}).items() if k in allowed}


def _object_fields(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "AcceptRanges": "bytes",
        "LastModified": info["last_modified"],
        "ContentLength": info["size"],
        "ETag": info["etag"],
        "ContentType": info["content_type"],
        "Metadata": info["metadata"],
    }


def _is_valid_bucket_name(name: str) -> bool:
    return bool(_BUCKET_NAME.match(name)) and ".." not in name and not _IP_ADDRESS.match(name)


def _key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a file path relative to its bucket, or ``None`` if it can."""
    checks = (
        (not key, "it is empty"),
        (len(key.encode("utf-8")) > _MAX_KEY_BYTES, f"it is longer than {_MAX_KEY_BYTES} bytes"),
        (key.startswith("/"), "it is an absolute path"),
        (os.sep != "/" and (os.sep in key or ":" in key), "it is an absolute path"),
        ("\x00" in key, "it contains a NUL character"),
        (key.endswith("/"), "a key ending in '/' would be a folder"),
    )
    problem = next((reason for failed, reason in checks if failed), None)
    if problem is not None:
        return problem
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            return f"it has a {segment or 'empty'!r} path segment"
        if segment.startswith(_RESERVED_PREFIX):
            return f"segments starting with {_RESERVED_PREFIX!r} are reserved"
    return None


def _insert_metadata(
    db: sqlite3.Connection, bucket: str, key: str, stat: os.stat_result, fields: dict[str, Any]
) -> None:
    db.execute(
        "INSERT OR REPLACE INTO object_metadata VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            bucket,
            key,
            stat.st_size,
            stat.st_mtime_ns,
            stat.st_ino,
            fields["etag"],
            fields["content_type"],
            json.dumps(fields["metadata"]),
        ),
    )


def _parse_copy_source(source: str) -> tuple[str, str]:
    # "bucket/key" or "/bucket/key", URL-encoded, optionally "?versionId=...".
    path = unquote(source.split("?versionId=", 1)[0]).lstrip("/")
    bucket, _, key = path.partition("/")
    return bucket, key


def _file_etag(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return f'"{digest.hexdigest()}"'


def _timestamp(mtime_ns: int) -> datetime:
    # S3 reports whole seconds (HTTP dates; listings end in ".000Z"), in UTC.
    return datetime.fromtimestamp(mtime_ns // 1_000_000_000, tz=tzutc())


def _encode_token(entry: str) -> str:
    return base64.urlsafe_b64encode(entry.encode("utf-8")).decode("ascii")


def _decode_token(token: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (ValueError, UnicodeError):
        return None
