"""Backend-neutral SageMaker workflows: container images and model packaging.

Only the standard library is imported here; joblib and botocore are loaded when used.
"""

from kedro_aws.sagemaker.images import (
    ImageResolutionError,
    SklearnVersionMismatchError,
    check_sklearn_compatibility,
    framework_version_for_sklearn,
    known_framework_versions,
    known_regions,
    sklearn_image_uri,
)
from kedro_aws.sagemaker.packaging import (
    ArtifactChecksumError,
    ArtifactUploadError,
    ModelArchive,
    ModelArtifact,
    ModelArtifactError,
    UnsafeArchiveError,
    artifact_key,
    build_model_archive,
    container_environment,
    download_model_archive,
    extract_model_archive,
    load_model,
    pin_requirements,
    sha256_file,
    upload_model_archive,
)

__all__ = [
    "ArtifactChecksumError",
    "ArtifactUploadError",
    "ImageResolutionError",
    "ModelArchive",
    "ModelArtifact",
    "ModelArtifactError",
    "SklearnVersionMismatchError",
    "UnsafeArchiveError",
    "artifact_key",
    "build_model_archive",
    "check_sklearn_compatibility",
    "container_environment",
    "download_model_archive",
    "extract_model_archive",
    "framework_version_for_sklearn",
    "known_framework_versions",
    "known_regions",
    "load_model",
    "pin_requirements",
    "sha256_file",
    "sklearn_image_uri",
    "upload_model_archive",
]
