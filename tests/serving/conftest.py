"""Fixtures for the serving tests: tiny model directories shaped like an extracted model.tar.gz."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

# A module that only loads the model: every other handler is the container's default.
DEFAULT_HANDLERS_MODULE = """
import os
import joblib

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
"""

ENV = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}


def fitted_linear_model() -> LinearRegression:
    """y = x0 + x1 + x2: the model the research notes used (``1,2,3`` -> 6.000000000000001)."""
    x = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [1.0, 1.0, 1.0]])
    return LinearRegression().fit(x, x.sum(axis=1))


@pytest.fixture
def make_model_dir(tmp_path: Path) -> Callable[..., Path]:
    """Build ``<tmp>/<name>/{model.joblib, code/inference.py, ...}`` and return its path."""

    def make(
        code: str = DEFAULT_HANDLERS_MODULE,
        name: str = "model",
        model: object | None = None,
        extra_files: dict[str, str] | None = None,
    ) -> Path:
        model_dir = tmp_path / name
        (model_dir / "code").mkdir(parents=True)
        joblib.dump(
            model if model is not None else fitted_linear_model(), model_dir / "model.joblib"
        )
        (model_dir / "code" / "inference.py").write_text(textwrap.dedent(code))
        for relative, text in (extra_files or {}).items():
            (model_dir / relative).write_text(textwrap.dedent(text))
        return model_dir

    return make
