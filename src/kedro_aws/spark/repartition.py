"""``repartition_by``: control how a node's Spark output is spread across tasks and files.

Spark writes one file per task per output partition directory, so repartitioning by the
``partitionBy`` columns before the write gives one well-sized file per directory instead of a
shower of small files. The scheme usually lives in config, so the decorator's arguments may be
parameter references (:func:`kedro_aws.params.param`) resolved when the node runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from kedro_aws import run_state
from kedro_aws.params import ParamRef, resolve

F = TypeVar("F", bound=Callable[..., Any])


class RepartitionError(ValueError):
    """The repartitioning scheme is malformed or names columns the DataFrame lacks."""


@dataclass(frozen=True)
class _Scheme:
    columns: list[str]
    num_partitions: int | None
    column_sources: dict[str, str]  # column -> the parameter key it came from
    partitions_source: str | None


def repartition_by(
    *columns: str | Sequence[str] | ParamRef, num_partitions: int | ParamRef | None = None
) -> Callable[[F], F]:
    """Repartition the Spark DataFrame the decorated node returns.

    Args:
        *columns: Column names, lists of names, or parameter references resolving to either.
        num_partitions: A number of partitions (or a parameter reference to one); with columns,
            rows are hashed by the columns into that many partitions.

    Raises:
        RepartitionError: When the node runs, before its output is returned (so before Kedro
            writes it), if the scheme is malformed or names columns the DataFrame lacks.

    Examples:
    >>> from kedro_aws.params import param
    >>> @repartition_by(param("partitions.parsed"))
    ... def parse(df):
    ...     return df.withColumn("year", df.ts.substr(1, 4))
    >>> parse.__name__
    'parse'
    """
    if not columns and num_partitions is None:
        raise RepartitionError("repartition_by needs at least one column or num_partitions.")

    def decorator(func: F) -> F:
        @functools.wraps(func)  # keeps the node's auto-generated name and type hints
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            where = _where(func)
            scheme = _resolve_scheme(columns, num_partitions, where)
            result = func(*args, **kwargs)
            return _apply(result, scheme, where, func)

        return wrapper  # type: ignore[return-value]

    return decorator


def _where(func: Callable[..., Any]) -> str:
    node = run_state.current_node()
    return f"node '{node}'" if node else f"function '{func.__qualname__}' (outside a Kedro run)"


def _describe_source(ref: ParamRef) -> str:
    state = run_state.session_params()
    env = state.env if state is not None else None
    return f"parameter '{ref.key}'" + (f" (env '{env}')" if env else "")


def _resolve_scheme(columns: tuple[Any, ...], num_partitions: Any, where: str) -> _Scheme:
    resolved: list[str] = []
    sources: dict[str, str] = {}
    for arg in columns:
        source = _describe_source(arg) if isinstance(arg, ParamRef) else "the decorator arguments"
        value = resolve(arg)
        names = [value] if isinstance(value, str) else value
        if (
            not isinstance(names, (list, tuple))
            or not names
            or not all(isinstance(n, str) and n for n in names)
        ):
            raise RepartitionError(
                f"repartition_by on {where}: {source} must be a column name or a non-empty list "
                f"of column names, got {value!r} ({type(value).__name__})."
            )
        for name in names:
            if name not in sources:
                resolved.append(name)
                sources[name] = source

    partitions_source = None
    if num_partitions is not None:
        partitions_source = (
            _describe_source(num_partitions)
            if isinstance(num_partitions, ParamRef)
            else "the decorator arguments"
        )
        num_partitions = resolve(num_partitions)
        if num_partitions is not None and (
            isinstance(num_partitions, bool)
            or not isinstance(num_partitions, int)
            or num_partitions < 1
        ):
            raise RepartitionError(
                f"repartition_by on {where}: num_partitions from {partitions_source} must be a "
                f"positive integer, got {num_partitions!r}."
            )
    if not resolved and num_partitions is None:
        raise RepartitionError(
            f"repartition_by on {where}: the scheme resolved to no columns and no num_partitions."
        )
    return _Scheme(resolved, num_partitions, sources, partitions_source)


def _apply(result: Any, scheme: _Scheme, where: str, func: Callable[..., Any]) -> Any:
    if not (hasattr(result, "repartition") and hasattr(result, "columns")):
        raise RepartitionError(
            f"repartition_by on {where}: {func.__qualname__} must return a Spark DataFrame, "
            f"got {type(result).__name__}."
        )
    missing = [c for c in scheme.columns if c not in result.columns]
    if missing:
        origins = sorted({scheme.column_sources[c] for c in missing})
        raise RepartitionError(
            f"repartition_by on {where}: column(s) {missing} are not in the DataFrame returned "
            f"by {func.__qualname__} (its columns: {list(result.columns)}); they come from "
            f"{', '.join(origins)}. Nothing was written."
        )
    if scheme.num_partitions is not None:
        return result.repartition(scheme.num_partitions, *scheme.columns)
    return result.repartition(*scheme.columns)
