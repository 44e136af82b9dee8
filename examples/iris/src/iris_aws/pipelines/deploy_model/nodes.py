"""Nodes of ``deploy_model``: score iris with the latest approved model, via Batch Transform.

The same nodes run offline (``--env local``: S3 and SageMaker are files under ``data/aws``) and
on AWS (``--env aws``); the backend comes from ``conf/<env>/aws.yml``. The SageMaker workflow
itself lives in :mod:`kedro_aws.sagemaker.deploy`; these nodes only add the iris specifics:
which columns are features, where the scoring data goes, how predictions come back.
"""

from __future__ import annotations

import io
import logging
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kedro_aws import client
from kedro_aws.clients import current_settings
from kedro_aws.config import AwsSettings
from kedro_aws.sagemaker.deploy import (
    create_model_from_package,
    is_valid_name,
    progress_logger,
    resolve_model_package,
    run_transform_job,
    unique_name,
    wait_for_transform_job,
)

logger = logging.getLogger(__name__)

PREDICTION_COLUMN = "prediction"


def select_model_package(deploy: dict[str, Any]) -> str:
    """ARN of the package to deploy: the group's latest Approved one, or the pinned one."""
    package = resolve_model_package(
        _clients()["sagemaker"], deploy["model_package_group"], deploy.get("model_package")
    )
    logger.info("Deploying %s (version %s).", package.arn, package.version)
    return package.arn


def create_model(model_package_arn: str, deploy: dict[str, Any]) -> str:
    """Create a SageMaker model from the package; returns the (new, unique) model name."""
    settings = _aws_settings()
    role_arn = deploy.get("role_arn") or settings.role_arn
    if not role_arn:
        raise ValueError(
            "No SageMaker execution role: set role_arn in conf/<env>/aws.yml (or the parameter "
            "deploy_model.role_arn). SageMaker assumes it to pull the image and read the model."
        )
    model_name = unique_name(f"{deploy['name_prefix']}-model")
    create_model_from_package(
        _clients(settings)["sagemaker"], model_package_arn, model_name, role_arn
    )
    return model_name


def prepare_scoring_input(iris: pd.DataFrame, deploy: dict[str, Any]) -> pd.DataFrame:
    """The rows to score: the model's features only, in training order (label dropped)."""
    features = list(deploy["features"])
    missing = sorted(set(features) - set(iris.columns))
    if missing:
        raise ValueError(
            f"Scoring data lacks feature columns {missing}; it has {list(iris.columns)}."
        )
    return iris[features].reset_index(drop=True)


def upload_scoring_input(features: pd.DataFrame, deploy: dict[str, Any]) -> dict[str, Any]:
    """Write the rows to S3, once per format, under a prefix of their own for this run.

    Parquet keeps column names, so the inference module matches features by name. CSV is written
    without a header: Batch Transform splits it into mini-batches of lines and has no notion of
    a header (only the first mini-batch would carry it).
    """
    settings = _aws_settings()
    s3 = _clients(settings)["s3"]
    run_id = unique_name(f"{deploy['name_prefix']}-scoring")
    base = f"s3://{_bucket(settings)}/{deploy['s3_prefix'].strip('/')}/{run_id}"
    inputs = {}
    for fmt in deploy["formats"]:
        prefix = f"{base}/input/{fmt}/"
        _put(s3, f"{prefix}{_file_name(fmt)}", _encode(features, fmt))
        inputs[fmt] = prefix
    logger.info("Uploaded %d rows to score under %s/input/.", len(features), base)
    return {"run_id": run_id, "base_uri": base, "inputs": inputs}


def run_batch_transform(
    model_package_arn: str, model_name: str, scoring_input: dict[str, Any], deploy: dict[str, Any]
) -> dict[str, Any]:
    """Run one transform job per format, all started before any is waited for.

    Returns what was run (package, model, jobs, input and output URIs), saved as a report.
    """
    sm = _clients()["sagemaker"]
    resources, wait = deploy["resources"], deploy["wait"]
    jobs = []
    for fmt, input_uri in scoring_input["inputs"].items():
        job_name = f"{scoring_input['run_id']}-{fmt}"
        if not is_valid_name(job_name):
            raise ValueError(f"Job name {job_name!r} is invalid: shorten name_prefix.")
        job = run_transform_job(
            sm,
            job_name=job_name,
            model_name=model_name,
            input_s3_uri=input_uri,
            output_s3_uri=f"{scoring_input['base_uri']}/output/{fmt}/",
            **deploy["jobs"][fmt],
            **resources,
        )
        logger.info("Started transform job %s on %s.", job.name, job.input_s3_uri)
        jobs.append(job)
    for job in jobs:
        wait_for_transform_job(
            sm,
            job.name,
            progress=progress_logger(logger),
            poll_seconds=wait["poll_seconds"],
            max_poll_seconds=wait["max_poll_seconds"],
            timeout=wait["timeout_seconds"],
        )
    return {
        "model_package_arn": model_package_arn,
        "model_name": model_name,
        "jobs": {
            fmt: {
                "name": job.name,
                "arn": job.arn,
                "input": job.input_s3_uri,
                "output": job.output_uri_for(f"{job.input_s3_uri}{_file_name(fmt)}"),
            }
            for fmt, job in zip(scoring_input["inputs"], jobs, strict=True)
        },
    }


def load_predictions(features: pd.DataFrame, transform_report: dict[str, Any]) -> pd.DataFrame:
    """The scored rows: features plus ``prediction``, read back from the jobs' outputs.

    Every format must give the same predictions; a difference means the inference module
    decodes one format differently from the other, so it fails the node.
    """
    s3 = _clients()["s3"]
    predictions = {}
    for fmt, job in transform_report["jobs"].items():
        values = _decode_predictions(_get(s3, job["output"]), fmt)
        if len(values) != len(features):
            raise ValueError(
                f"Transform job {job['name']} returned {len(values)} predictions for "
                f"{len(features)} rows ({job['output']})."
            )
        predictions[fmt] = values
    first_fmt, first = next(iter(predictions.items()))
    for fmt, values in predictions.items():
        differ = [i for i, (a, b) in enumerate(zip(first, values, strict=True)) if a != b]
        if differ:
            raise ValueError(
                f"{fmt} and {first_fmt} predictions differ at rows {differ[:10]} "
                f"({len(differ)} rows); check how the inference module decodes each format."
            )
    return features.assign(**{PREDICTION_COLUMN: first})


# --------------------------------------------------------------------------------------------
# Formats and S3
# --------------------------------------------------------------------------------------------


def _file_name(fmt: str) -> str:
    return f"iris.{fmt}"


def _encode(features: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "parquet":
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(features, preserve_index=False), buffer)
        return buffer.getvalue()
    if fmt == "csv":
        return features.to_csv(index=False, header=False, lineterminator="\n").encode("utf-8")
    raise ValueError(f"Unknown scoring format {fmt!r}; use parquet or csv.")


def _decode_predictions(body: bytes, fmt: str) -> list[Any]:
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(body)).column(PREDICTION_COLUMN).to_pylist()
    # CSV with AssembleWith=Line: one prediction per line, in input order. Blank lines are
    # separators (AWS may add a newline after a multi-line response), never predictions.
    return [line for line in body.decode("utf-8").splitlines() if line]


def _put(s3: Any, uri: str, body: bytes) -> None:
    bucket, key = _split(uri)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def _get(s3: Any, uri: str) -> bytes:
    bucket, key = _split(uri)
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


# --------------------------------------------------------------------------------------------
# Settings of the running session
# --------------------------------------------------------------------------------------------


def _bucket(settings: AwsSettings) -> str:
    if not settings.bucket:
        raise ValueError("No bucket for the scoring data: set bucket in conf/<env>/aws.yml.")
    return settings.bucket


def _clients(settings: AwsSettings | None = None) -> dict[str, Any]:
    settings = settings or _aws_settings()
    return {name: client(name, settings=settings) for name in ("s3", "sagemaker")}


def _aws_settings() -> AwsSettings:
    """``aws.yml`` of the running session's env (``--env`` applies)."""
    return current_settings()
