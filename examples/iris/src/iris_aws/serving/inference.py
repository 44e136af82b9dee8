"""Inference module of the iris model, run by the SageMaker scikit-learn serving container.

It is packed as ``code/inference.py`` in ``model.tar.gz`` (``SAGEMAKER_PROGRAM=inference.py``)
and implements the container's four hooks. It needs only what the container ships (scikit-learn,
joblib, numpy, pandas) plus pyarrow, which ``REQUIREMENTS`` names so the packaging step pins it
in ``code/requirements.txt``.

Content types, for requests (``ContentType``) and responses (``Accept``):

- ``application/x-parquet``: a Parquet file; features are taken by column name.
- ``text/csv``: comma-separated rows. The first row is a header when none of its cells is a
  number, so files written with a header work. Batch Transform's default is no header (and it
  splits a file into mini-batches, so only the first one would carry it): headerless rows must
  hold exactly the model's features, in training order. Drop other columns with the transform
  job's ``DataProcessing.InputFilter``.

A ``species`` label column, when present by name, is dropped before predicting, so labelled
evaluation files can be scored as they are. Predictions come back one per input row, in order:
a single ``prediction`` column in Parquet, or one value per line (no header) in CSV, which is
what ``AssembleWith=Line`` expects.

Example (what the container does for one request):
>>> model = model_fn("/opt/ml/model")  # doctest: +SKIP
>>> rows = input_fn("5.1,3.5,1.4,0.2\\n", "text/csv")  # doctest: +SKIP
>>> output_fn(predict_fn(rows, model), "text/csv")  # doctest: +SKIP
'setosa\\n'
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any

import joblib
import pandas as pd

# Distributions this module needs beyond the container; pinned at packaging time.
REQUIREMENTS = ("pyarrow",)
MODEL_FILENAME = "model.joblib"
LABEL_COLUMN = "species"
PREDICTION_COLUMN = "prediction"

PARQUET = "application/x-parquet"
CSV = "text/csv"
SUPPORTED_CONTENT_TYPES = (PARQUET, CSV)


def model_fn(model_dir: str) -> Any:
    """Load the fitted model from the directory SageMaker extracted the archive into."""
    return joblib.load(os.path.join(model_dir, MODEL_FILENAME))


def input_fn(request_body: str | bytes, content_type: str) -> pd.DataFrame:
    """Decode a request into a DataFrame (always 2-D, even for a single row).

    Raises:
        ValueError: unsupported content type, or an empty body.
    """
    media_type = _media_type(content_type)
    if media_type == PARQUET:
        return _read_parquet(request_body)
    if media_type == CSV:
        text = request_body.decode("utf-8") if isinstance(request_body, bytes) else request_body
        return _read_csv(text)
    raise ValueError(
        f"Unsupported content type '{content_type}'; this model accepts "
        f"{', '.join(SUPPORTED_CONTENT_TYPES)}."
    )


def predict_fn(input_data: pd.DataFrame, model: Any) -> Any:
    """Predict one label per row, after dropping the label column and ordering the features.

    Raises:
        ValueError: the columns do not match the model's features; the message lists them.
    """
    features = input_data.drop(columns=[LABEL_COLUMN], errors="ignore")
    return model.predict(_align_features(features, model))


def output_fn(prediction: Any, accept: str) -> str | bytes:
    """Encode predictions as Parquet (one ``prediction`` column) or CSV (one value per line).

    Raises:
        ValueError: unsupported Accept type.
    """
    media_type = _media_type(accept)
    if media_type in (CSV, "*/*", ""):
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([value] for value in _as_list(prediction))
        return buffer.getvalue()
    if media_type == PARQUET:
        import pyarrow as pa  # noqa: PLC0415 - installed from requirements.txt at start-up
        import pyarrow.parquet as pq  # noqa: PLC0415

        buffer = io.BytesIO()
        pq.write_table(pa.table({PREDICTION_COLUMN: _as_list(prediction)}), buffer)
        return buffer.getvalue()
    raise ValueError(
        f"Unsupported accept type '{accept}'; this model returns "
        f"{', '.join(SUPPORTED_CONTENT_TYPES)}."
    )


def _media_type(content_type: str | None) -> str:
    # The container compares content types exactly; parameters such as "; charset=utf-8" are
    # harmless here, so accept them instead of failing the whole request.
    return (content_type or "").split(";", 1)[0].strip().lower()


def _read_parquet(body: str | bytes) -> pd.DataFrame:
    import pyarrow.parquet as pq  # noqa: PLC0415

    if isinstance(body, str):
        raise ValueError(f"A {PARQUET} request body must be bytes, not text.")
    if not body:
        raise ValueError("Empty request body.")
    return pq.read_table(io.BytesIO(bytes(body))).to_pandas()


def _read_csv(text: str) -> pd.DataFrame:
    if not text.strip():
        raise ValueError("Empty request body.")
    first_row = next(csv.reader(io.StringIO(text)))
    has_header = not any(_is_number(cell) for cell in first_row)
    return pd.read_csv(io.StringIO(text), header=0 if has_header else None)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _align_features(features: pd.DataFrame, model: Any) -> pd.DataFrame:
    expected = getattr(model, "feature_names_in_", None)
    if expected is None:
        return features
    expected = [str(name) for name in expected]
    headerless = all(pd.api.types.is_integer(column) for column in features.columns)
    if headerless:
        if features.shape[1] != len(expected):
            raise ValueError(
                f"Headerless CSV rows have {features.shape[1]} columns; the model expects "
                f"{len(expected)} features in this order: {', '.join(expected)}."
            )
        return features.set_axis(expected, axis="columns")
    missing = [name for name in expected if name not in features.columns]
    if missing:
        raise ValueError(
            f"Missing feature columns {', '.join(missing)}; the model expects "
            f"{', '.join(expected)} (got {', '.join(map(str, features.columns))})."
        )
    return features[expected]


def _as_list(prediction: Any) -> list:
    return prediction.tolist() if hasattr(prediction, "tolist") else list(prediction)
