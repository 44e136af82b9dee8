"""Model archives for the SageMaker scikit-learn serving container: build, upload, read back.

The archive (``model.tar.gz``) has the layout the container expects once SageMaker untars it
into ``/opt/ml/model``::

    model.joblib             the fitted model, loaded by the module's model_fn(model_dir)
    code/<module>.py         the inference module (model_fn, input_fn, predict_fn, output_fn)
    code/requirements.txt    pinned packages the module needs beyond the container

It is byte-for-byte reproducible, so its SHA-256 identifies the model: the digest goes into the
model package's metadata and is checked again whenever the artifact is read back. Works with any
boto3-compatible S3 client (boto3, moto, the local backend).

Example:
>>> archive = build_model_archive(model, "src/iris_aws/serving/inference.py", "data/06_models",
...                               requirements=pin_requirements(["pyarrow"]))  # doctest: +SKIP
>>> artifact = upload_model_archive(s3, archive, bucket="ml", prefix="iris/models",
...                                 save_version="2026-11-26T02.26.36.123Z")  # doctest: +SKIP
>>> artifact.s3_uri  # doctest: +SKIP
's3://ml/iris/models/2026-11-26T02.26.36.123Z/model.tar.gz'
>>> artifact.container_environment("eu-west-1")["SAGEMAKER_SUBMIT_DIRECTORY"]  # doctest: +SKIP
'/opt/ml/model/code'
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

logger = logging.getLogger(__name__)

ARCHIVE_FILENAME = "model.tar.gz"
MODEL_FILENAME = "model.joblib"
CODE_DIRNAME = "code"
REQUIREMENTS_FILENAME = "requirements.txt"
# Where the container finds code packed inside the model archive. The SageMaker Python SDK sets
# the same value when it repacks code into model.tar.gz (v2 ``Model._script_mode_env_vars``,
# src/sagemaker/model.py); otherwise the container would look for an S3 sourcedir.tar.gz.
SUBMIT_DIRECTORY = "/opt/ml/model/code"
SHA256_METADATA_KEY = "sha256"

# Fixed member metadata makes the archive reproducible. The mtime is not 0: the container
# pip-installs the code directory, and building a wheel from files dated before 1980 fails
# ("ZIP does not support timestamps before 1980"). 2000-01-01T00:00:00Z is safe in any timezone.
_MEMBER_MTIME = 946_684_800
_FILE_MODE = 0o644
_DIR_MODE = 0o755
_CHUNK = 1024 * 1024
# tarfile's "data" extraction filter exists from Python 3.12 and in 3.11.4+ / 3.10.12+ backports.
_HAS_DATA_FILTER = hasattr(tarfile, "data_filter")
_FILTER_ERRORS = getattr(tarfile, "FilterError", ())


class ModelArtifactError(Exception):
    """Base class of the errors raised while packaging or reading back a model artifact."""


class ArtifactChecksumError(ModelArtifactError):
    """The bytes read back do not have the SHA-256 recorded for the artifact."""


class ArtifactUploadError(ModelArtifactError):
    """An upload could not be verified, or would overwrite a different artifact."""


class UnsafeArchiveError(ModelArtifactError):
    """A tarball member would be written outside the extraction directory, or is a device."""


@dataclass(frozen=True)
class ModelArchive:
    """A ``model.tar.gz`` built on local disk by ``build_model_archive``."""

    path: Path
    sha256: str
    size: int
    program: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class ModelArtifact:
    """A verified ``model.tar.gz`` on S3: what a model package records and deploys.

    Example:
    >>> a = ModelArtifact("s3://b/m/v1/model.tar.gz", "ab" * 32, 1024, "inference.py")
    >>> a.container_environment("eu-west-1", log_level=logging.WARNING)["SAGEMAKER_PROGRAM"]
    'inference.py'
    """

    s3_uri: str
    sha256: str
    size: int
    program: str

    def container_environment(self, region: str, log_level: int = logging.INFO) -> dict[str, str]:
        """The container ``Environment`` this artifact needs (see ``container_environment``)."""
        return container_environment(self.program, region, log_level)


def container_environment(
    program: str, region: str, log_level: int = logging.INFO
) -> dict[str, str]:
    """Environment that makes the scikit-learn container serve code packed in the archive.

    Without ``SAGEMAKER_PROGRAM`` the container imports no user module at all, and without
    ``SAGEMAKER_SUBMIT_DIRECTORY`` it looks for the code in ``/opt/ml/code``; log level and region
    are the other two variables the SageMaker SDK sets for script-mode models.

    Example:
    >>> container_environment("inference.py", "eu-west-1")["SAGEMAKER_CONTAINER_LOG_LEVEL"]
    '20'
    """
    return {
        "SAGEMAKER_PROGRAM": program,
        "SAGEMAKER_SUBMIT_DIRECTORY": SUBMIT_DIRECTORY,
        "SAGEMAKER_CONTAINER_LOG_LEVEL": str(log_level),
        "SAGEMAKER_REGION": region,
    }


def pin_requirements(distributions: Iterable[str]) -> tuple[str, ...]:
    """Pin distributions to the versions installed here, for ``code/requirements.txt``.

    The container pip-installs this file at start-up; pinning what the pipeline ran and tested
    with keeps serving identical to local runs. Never list scikit-learn here: choose the
    matching container instead (``images.framework_version_for_sklearn``).

    Example:
    >>> pin_requirements(["pyarrow"])  # doctest: +SKIP
    ('pyarrow==26.0.1',)
    """
    from importlib import metadata  # noqa: PLC0415 - slow import, rarely needed

    pins = []
    for name in distributions:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise ModelArtifactError(
                f"Cannot pin '{name}' for the serving requirements: it is not installed in "
                "this environment."
            ) from None
    return tuple(pins)


def build_model_archive(
    model: Any,
    inference_module: str | os.PathLike,
    destination_dir: str | os.PathLike,
    *,
    requirements: Sequence[str] = (),
) -> ModelArchive:
    """Write a reproducible ``model.tar.gz`` into ``destination_dir``.

    Members are sorted and carry fixed mtime, owner and mode, and the gzip header has no name
    and mtime 0, so the same model, module and requirements give the same SHA-256 (with the
    same joblib/zlib versions), wherever and whenever the archive is built.

    Args:
        model: the fitted estimator, serialised with ``joblib`` as ``model.joblib``.
        inference_module: path of the ``.py`` file the container imports (``SAGEMAKER_PROGRAM``).
        destination_dir: directory to write ``model.tar.gz`` into (created if missing).
        requirements: lines of ``code/requirements.txt`` (see ``pin_requirements``); the file
            is omitted when empty.

    Raises:
        ModelArtifactError: the inference module is missing or not a ``.py`` file.
    """
    import joblib  # noqa: PLC0415 - heavy; only packaging needs it

    module_path = Path(inference_module)
    if module_path.suffix != ".py" or not module_path.is_file():
        raise ModelArtifactError(
            f"Inference module '{module_path}' must be an existing .py file "
            "(it becomes SAGEMAKER_PROGRAM)."
        )
    model_bytes = io.BytesIO()
    joblib.dump(model, model_bytes)
    files = {
        MODEL_FILENAME: model_bytes.getvalue(),
        f"{CODE_DIRNAME}/{module_path.name}": module_path.read_bytes(),
    }
    if requirements:
        lines = "".join(f"{line.strip()}\n" for line in requirements)
        files[f"{CODE_DIRNAME}/{REQUIREMENTS_FILENAME}"] = lines.encode("utf-8")

    destination = Path(destination_dir)
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / ARCHIVE_FILENAME
    # Write under a temporary name and rename, so a crash never leaves a truncated archive.
    fd, tmp_name = tempfile.mkstemp(prefix=".model-", suffix=".tar.gz.tmp", dir=destination)
    try:
        with os.fdopen(fd, "wb") as raw:
            members = _write_tarball(raw, files)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return ModelArchive(
        path=target,
        sha256=sha256_file(target),
        size=target.stat().st_size,
        program=module_path.name,
        members=members,
    )


def _write_tarball(raw: io.BufferedWriter, files: dict[str, bytes]) -> tuple[str, ...]:
    entries: dict[str, bytes | None] = dict(files)
    for name in files:
        for parent in PurePosixPath(name).parents:
            if str(parent) != ".":
                entries[str(parent)] = None  # None marks a directory
    # filename="" keeps the archive's own name out of the gzip header; mtime=0 the build time.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(entries):
            data = entries[name]
            info = tarfile.TarInfo(name)
            info.mtime = _MEMBER_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = _DIR_MODE
                tar.addfile(info)
            else:
                info.mode = _FILE_MODE
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return tuple(sorted(entries))


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_key(prefix: str, save_version: str) -> str:
    """S3 key of the archive for a Kedro save version: ``<prefix>/<save_version>/model.tar.gz``.

    Example:
    >>> artifact_key("iris/models/", "2026-11-26T02.26.36.123Z")
    'iris/models/2026-11-26T02.26.36.123Z/model.tar.gz'
    """
    if not save_version or "/" in save_version or save_version in {".", ".."}:
        raise ModelArtifactError(
            f"Invalid save version '{save_version}': it must be a non-empty path segment."
        )
    parts = [prefix.strip("/"), save_version, ARCHIVE_FILENAME]
    return "/".join(part for part in parts if part)


def upload_model_archive(
    s3_client: Any, archive: ModelArchive, *, bucket: str, prefix: str, save_version: str
) -> ModelArtifact:
    """Upload an archive under its Kedro save version, and verify it landed intact.

    S3 has no atomic rename, so the artifact cannot be staged and moved into place. Instead the
    returned ``ModelArtifact`` is the proof of a verified upload: register a model package only
    with it. Verification: S3 itself checks ``ChecksumSHA256`` when the client supports it; then
    ``head_object`` must report the archive's size and the SHA-256 stored in the object's
    metadata. A failed verification deletes the object (best effort) and raises.

    An existing object under the same key is accepted only if it carries the same SHA-256 (a
    retried run), never overwritten: a Kedro version is immutable.

    Raises:
        ArtifactUploadError: the key holds a different artifact, or verification failed.
    """
    key = artifact_key(prefix, save_version)
    s3_uri = f"s3://{bucket}/{key}"
    artifact = ModelArtifact(s3_uri, archive.sha256, archive.size, archive.program)

    existing = _head(s3_client, bucket, key)
    if existing is not None:
        if _recorded_sha256(existing) == archive.sha256:
            logger.info("%s already holds this artifact (sha256 %s).", s3_uri, archive.sha256)
            return artifact
        raise ArtifactUploadError(
            f"{s3_uri} already exists with a different artifact "
            f"(sha256 {_recorded_sha256(existing) or 'unknown'}, ours {archive.sha256}); "
            "a saved Kedro version is never overwritten."
        )

    extra: dict[str, Any] = {}
    if _supports_checksum_sha256(s3_client):
        extra["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(archive.sha256)).decode()
    with open(archive.path, "rb") as body:
        s3_client.put_object(
            Bucket=bucket,
            Key=key,
            Body=body,
            ContentType="application/x-gzip",
            Metadata={SHA256_METADATA_KEY: archive.sha256},
            **extra,
        )

    head = _head(s3_client, bucket, key)
    problem = None
    if head is None:
        problem = "the object is missing after upload"
    elif head.get("ContentLength") != archive.size:
        problem = f"size {head.get('ContentLength')} != {archive.size}"
    elif _recorded_sha256(head) != archive.sha256:
        problem = f"recorded sha256 {_recorded_sha256(head)} != {archive.sha256}"
    if problem:
        _delete_quietly(s3_client, bucket, key)
        raise ArtifactUploadError(f"Upload of {archive.path} to {s3_uri} not verified: {problem}.")
    logger.info("Uploaded %s (%d bytes, sha256 %s).", s3_uri, archive.size, archive.sha256)
    return artifact


def download_model_archive(
    s3_client: Any, s3_uri: str, *, expected_sha256: str, destination_dir: str | os.PathLike
) -> Path:
    """Download ``s3_uri`` into ``destination_dir`` and verify its SHA-256.

    The bytes are hashed while streaming to a temporary file, which becomes
    ``<destination_dir>/model.tar.gz`` only if the digest matches.

    Raises:
        ArtifactChecksumError: the digest differs (tampered or corrupted artifact); the
            message names the URI, the expected and the actual digest.
    """
    bucket, key = _split_s3_uri(s3_uri)
    destination = Path(destination_dir)
    destination.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=".model-", suffix=".tar.gz.tmp", dir=destination)
    try:
        with os.fdopen(fd, "wb") as out:
            body = s3_client.get_object(Bucket=bucket, Key=key)["Body"]
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != expected_sha256.lower():
            raise ArtifactChecksumError(
                f"Checksum mismatch for {s3_uri}: expected sha256 {expected_sha256}, "
                f"got {actual}. The artifact was modified or corrupted after registration."
            )
        target = destination / ARCHIVE_FILENAME
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def extract_model_archive(archive_path: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Safely extract a model archive into ``destination`` (which must not exist or be empty).

    Every member is checked before anything is written: absolute paths, ``..`` components,
    links pointing outside the directory, and device or FIFO members are refused, naming the
    member. Extraction then also uses tarfile's ``data`` filter where available (Python 3.12,
    3.11.4+) as a second line of defence. Files land in a temporary sibling directory that is
    renamed into place, so a failure leaves nothing half-extracted.

    Raises:
        UnsafeArchiveError: a member would escape ``destination`` or is a special file.
    """
    destination = Path(destination)
    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        raise ModelArtifactError(f"Extraction target {destination} exists and is not empty.")
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        tar = tarfile.open(archive_path, mode="r:*")
        members = tar.getmembers()
    except tarfile.TarError as error:
        raise ModelArtifactError(f"Cannot read model archive {archive_path}: {error}") from error
    with tar:
        for member in members:
            _check_member(member, archive_path)
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}-", dir=destination.parent))
        try:
            if _HAS_DATA_FILTER:
                tar.extractall(staging, members=members, filter="data")
            else:
                tar.extractall(staging, members=members)  # members checked above
            if destination.exists():
                destination.rmdir()
            os.replace(staging, destination)
        except _FILTER_ERRORS as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise UnsafeArchiveError(
                f"Unsafe member '{error.tarinfo.name}' in {archive_path}: {error}"
            ) from error
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return destination


def load_model(model_dir: str | os.PathLike) -> Any:
    """Load ``model.joblib`` from an extracted archive. Only load artifacts you verified."""
    import joblib  # noqa: PLC0415

    return joblib.load(Path(model_dir) / MODEL_FILENAME)


def _check_member(member: tarfile.TarInfo, archive_path: str | os.PathLike) -> None:
    def refuse(reason: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(f"Unsafe member '{member.name}' in {archive_path}: {reason}.")

    if member.isdev() or member.isfifo():
        raise refuse("device files and FIFOs are not allowed")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise refuse(f"unsupported member type {member.type!r}")
    if _escapes(member.name):
        raise refuse("its path is absolute or contains '..'")
    # Link targets get the same rule. Refusing every '..' (not only those that normalise to
    # outside) is deliberate: 'q -> .' plus 'p -> q/..' looks inside lexically but resolves
    # outside. Without '..' and absolute paths, any chain of links can only descend.
    if (member.issym() or member.islnk()) and _escapes(member.linkname):
        kind = "symlink" if member.issym() else "hard link"
        raise refuse(f"{kind} to '{member.linkname}', which is absolute or contains '..'")


def _escapes(path: str) -> bool:
    """Whether an archive path could resolve outside the extraction directory."""
    posix = path.replace("\\", "/")
    if not posix or posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        return True  # empty, absolute, or a Windows drive (C:evil)
    return ".." in PurePosixPath(posix).parts


def _split_s3_uri(s3_uri: str) -> tuple[str, str]:
    if not s3_uri.startswith("s3://") or "/" not in s3_uri[5:]:
        raise ModelArtifactError(f"'{s3_uri}' is not an s3://bucket/key URI.")
    bucket, key = s3_uri[5:].split("/", 1)
    return bucket, key


def _head(s3_client: Any, bucket: str, key: str) -> dict | None:
    from botocore.exceptions import ClientError  # noqa: PLC0415 - only needed on this path

    try:
        return s3_client.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in {"404", "NoSuchKey", "NotFound"}:
            return None
        raise


def _recorded_sha256(head: dict) -> str | None:
    # S3 lower-cases user metadata keys; be lenient with clients that do not.
    recorded = {k.lower(): v for k, v in (head.get("Metadata") or {}).items()}
    return recorded.get(SHA256_METADATA_KEY)


def _supports_checksum_sha256(s3_client: Any) -> bool:
    """Whether the client's PutObject model accepts ChecksumSHA256 (boto3 does; others may not)."""
    try:
        shape = s3_client.meta.service_model.operation_model("PutObject").input_shape
    except Exception:  # a non-botocore client: skip the optional checksum
        return False
    return "ChecksumSHA256" in shape.members


def _delete_quietly(s3_client: Any, bucket: str, key: str) -> None:
    try:
        s3_client.delete_object(Bucket=bucket, Key=key)
    except Exception:  # best effort; the caller raises the real error
        logger.warning("Could not delete unverified upload s3://%s/%s", bucket, key)
