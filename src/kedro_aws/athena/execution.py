"""Start an Athena query, wait for it with backoff, and report what it scanned and cost.

Example:
>>> estimated_cost_usd(1024**4)  # one TiB at $5/TB
5.0
>>> estimated_cost_usd(1)  # the 10 MB minimum per query
4.76837158203125e-05
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

# Athena SQL pricing: $5.00 per TB of data scanned, rounded up to the nearest megabyte, with a
# 10 MB minimum per query (https://aws.amazon.com/athena/pricing/). Prices vary slightly by
# region; this is an estimate for logs, not a bill.
PRICE_PER_TB_USD = 5.0
MIN_BILLED_BYTES = 10 * 1024**2
TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")


class AthenaQueryError(Exception):
    """A query ended FAILED or CANCELLED, timed out, or scanned more than allowed."""

    def __init__(
        self,
        message: str,
        *,
        query_id: str | None = None,
        state: str | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.query_id = query_id
        self.state = state
        self.error_type = error_type


@dataclass(frozen=True)
class QueryExecution:
    """A finished (SUCCEEDED) query execution."""

    query_id: str
    statement_type: str | None
    bytes_scanned: int
    engine_ms: int
    output_location: str | None
    manifest_location: str | None
    raw: Mapping[str, Any]


def estimated_cost_usd(bytes_scanned: int) -> float:
    """What Athena would charge for a query that scanned ``bytes_scanned`` bytes."""
    billed = max(int(bytes_scanned), MIN_BILLED_BYTES)
    return billed / 1024**4 * PRICE_PER_TB_USD


def start_query(
    athena: Any,
    sql: str,
    *,
    database: str | None,
    output_location: str | None,
    workgroup: str | None = None,
    catalog: str | None = None,
    parameters: Sequence[str] | None = None,
    reuse_max_age_minutes: int | None = None,
) -> str:
    """``start_query_execution`` with the optional parts filled in only when given."""
    request: dict[str, Any] = {"QueryString": sql}
    context = {k: v for k, v in (("Database", database), ("Catalog", catalog)) if v}
    if context:
        request["QueryExecutionContext"] = context
    if output_location:
        request["ResultConfiguration"] = {"OutputLocation": output_location}
    if workgroup:
        request["WorkGroup"] = workgroup
    if parameters:
        request["ExecutionParameters"] = list(parameters)
    if reuse_max_age_minutes:
        request["ResultReuseConfiguration"] = {
            "ResultReuseByAgeConfiguration": {
                "Enabled": True,
                "MaxAgeInMinutes": int(reuse_max_age_minutes),
            }
        }
    return athena.start_query_execution(**request)["QueryExecutionId"]


def wait_for_query(  # noqa: PLR0913
    athena: Any,
    query_id: str,
    *,
    timeout: float = 3600.0,
    poll_interval: float = 0.2,
    max_poll_interval: float = 5.0,
    max_bytes_scanned: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> QueryExecution:
    """Poll until the query is terminal; the delay grows ×1.5 up to ``max_poll_interval``.

    Raises:
        AthenaQueryError: FAILED/CANCELLED (with Athena's reason and error type), over
            ``timeout`` or over ``max_bytes_scanned`` (the query is stopped first).
    """
    started = clock()
    delay = poll_interval
    last_state = None
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        status = execution["Status"]
        state = status["State"]
        if state != last_state:
            logger.info("Athena query %s: %s", query_id, state)
            last_state = state
        scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes", 0) or 0)
        if max_bytes_scanned is not None and scanned > max_bytes_scanned:
            if state not in TERMINAL_STATES:
                athena.stop_query_execution(QueryExecutionId=query_id)
            raise AthenaQueryError(
                f"Athena query {query_id} scanned {scanned:,} bytes, over max_bytes_scanned="
                f"{max_bytes_scanned:,}"
                + ("; it was stopped." if state not in TERMINAL_STATES else "."),
                query_id=query_id,
                state=state,
                error_type="SCAN_LIMIT_EXCEEDED",
            )
        if state in TERMINAL_STATES:
            break
        if clock() - started > timeout:
            athena.stop_query_execution(QueryExecutionId=query_id)
            raise AthenaQueryError(
                f"Athena query {query_id} did not finish within {timeout:g} s ({state}); it was "
                "stopped.",
                query_id=query_id,
                state=state,
                error_type="TIMEOUT",
            )
        sleep(delay)
        delay = min(delay * 1.5, max_poll_interval)

    if state != "SUCCEEDED":
        error = status.get("AthenaError", {})
        reason = status.get("StateChangeReason") or error.get("ErrorMessage") or state
        raise AthenaQueryError(
            f"Athena query {query_id} {state}: {reason}",
            query_id=query_id,
            state=state,
            error_type=_error_type(reason),
        )
    statistics = execution.get("Statistics", {})
    logger.info(
        "Athena query %s scanned %s (estimated cost $%.6f).",
        query_id,
        _human_bytes(scanned),
        estimated_cost_usd(scanned),
    )
    return QueryExecution(
        query_id=query_id,
        statement_type=execution.get("StatementType"),
        bytes_scanned=scanned,
        engine_ms=int(statistics.get("EngineExecutionTimeInMillis", 0) or 0),
        output_location=execution.get("ResultConfiguration", {}).get("OutputLocation"),
        manifest_location=statistics.get("DataManifestLocation"),
        raw=execution,
    )


def run_query(
    athena: Any, sql: str, *, wait: Mapping[str, Any] | None = None, **start: Any
) -> QueryExecution:
    """``start_query`` then ``wait_for_query``."""
    return wait_for_query(athena, start_query(athena, sql, **start), **dict(wait or {}))


def _error_type(reason: str) -> str | None:
    # Athena's reasons start with the Trino error name: "TABLE_NOT_FOUND: line 1:15: ...".
    head = reason.split(":", 1)[0].strip()
    return head if head.isupper() and " " not in head else None


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{size} B"
