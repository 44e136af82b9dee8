"""Local Athena: a boto3-compatible Athena client that runs queries on DuckDB in the background.

Queries are submitted with ``start_query_execution``, run on a thread pool and polled with
``get_query_execution`` — QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED — exactly as on
Athena. Tables are resolved through the local Glue catalog and read from the local S3 root;
results land in ``<OutputLocation>/<QueryExecutionId>.csv`` and are paged by
``get_query_results``::

    >>> athena = LocalAthenaClient("/tmp/kedro-aws-doc-athena", region="us-east-1")
    >>> qid = athena.start_query_execution(
    ...     QueryString="SELECT 7 / 2 AS half",
    ...     ResultConfiguration={"OutputLocation": "s3://results/athena/"},
    ... )["QueryExecutionId"]
    >>> athena.wait(qid)["Status"]["State"]
    'SUCCEEDED'
    >>> athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"][1]
    {'Data': [{'VarCharValue': '3'}]}

Query executions are kept in ``<root>/.kedro-aws/athena.sqlite`` and are visible to every
client on the same root; a query runs in the process that started it (if that process dies
mid-query, its execution stays RUNNING). What the engine supports and how it differs from
Athena is in ``docs/athena-local.md``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
from dateutil.tz import tzutc

from kedro_aws.local import LocalClient
from kedro_aws.local.athena_engine import AthenaEngine, QueryOutcome, QueryRequest
from kedro_aws.local.athena_results import read_column_info, read_page
from kedro_aws.local.athena_sql import DEFAULT_CATALOG, AthenaQueryError, classify
from kedro_aws.local.athena_sql_errors import ErrorCategory
from kedro_aws.local.athena_tables import s3_uri_to_path
from kedro_aws.local.glue import LocalGlueClient
from kedro_aws.local.sqlite_store import SqliteStore as _SqliteStore

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS athena_queries ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, workgroup TEXT NOT NULL,"
    " token TEXT, state TEXT NOT NULL, body TEXT NOT NULL, local TEXT NOT NULL DEFAULT '{}')",
    "CREATE INDEX IF NOT EXISTS athena_queries_token ON athena_queries (token)",
)
_TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
# Athena API reference: GetQueryResults MaxResults 1–1000; ListQueryExecutions MaxResults 0–50;
# BatchGetQueryExecution takes 1–50 ids. Query strings are at most 262,144 bytes (quotas page).
_MAX_RESULTS = 1000
_MAX_LIST = 50
_MAX_QUERY_BYTES = 262_144
_ENGINE_VERSION = {
    "SelectedEngineVersion": "AUTO",
    "EffectiveEngineVersion": "Athena engine version 3",
}
# SubstatementType as Athena reports it, by statement kind.
_SUBSTATEMENT = {
    "SELECT": "SELECT",
    "CREATE_TABLE_AS": "CREATE_TABLE_AS_SELECT",
    "UNLOAD": "UNLOAD",
    "INSERT": "INSERT_INTO",
}

# Connections of running queries in this process, so any client on the same root can cancel.
_ACTIVE: dict[str, duckdb.DuckDBPyConnection] = {}
_ACTIVE_LOCK = threading.Lock()


class LocalAthenaClient(LocalClient):
    """Athena on DuckDB over the local Glue catalog and the local S3 root.

    Args:
        root: The local backend's root directory.
        region: Reported as ``meta.region_name``.
        glue: The Glue client tables are resolved through (default: a ``LocalGlueClient`` on
            ``root``).
        s3: The local S3 client whose root holds the data (default: ``root``).
        max_workers: Queries that run at the same time; more wait in QUEUED.
    """

    service_name = "athena"

    def __init__(
        self,
        root: str | Path,
        region: str,
        glue: Any = None,
        s3: Any = None,
        *,
        max_workers: int = 4,
    ) -> None:
        super().__init__(root, region)
        self.glue = glue if glue is not None else LocalGlueClient(root, region)
        self.s3_root = Path(s3.root) if s3 is not None else self.root
        self._store = _SqliteStore(self.state_dir / "athena.sqlite", _SCHEMA)
        self._engine = AthenaEngine(self.glue, self.s3_root, self.state_dir / "athena-tmp")
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="athena")
        self._duckdb = duckdb.connect()

    # -- starting ---------------------------------------------------------------------------

    def start_query_execution(self, **params: Any) -> dict[str, Any]:
        """Queue a query; only a malformed request fails here (``InvalidRequestException``).

        A query that cannot run (bad SQL, unknown table…) is accepted and ends FAILED.
        """
        params = self._validated("StartQueryExecution", params)
        query = params["QueryString"]
        if not query.strip() or len(query.encode("utf-8")) > _MAX_QUERY_BYTES:
            raise self._invalid(
                "StartQueryExecution",
                f"QueryString must hold 1 to {_MAX_QUERY_BYTES} bytes, "
                f"got {len(query.encode('utf-8'))}.",
            )
        output = (params.get("ResultConfiguration") or {}).get("OutputLocation")
        if not output:
            # Athena's wording when neither the request nor the workgroup names a location.
            raise self._invalid(
                "StartQueryExecution",
                "No output location provided. An output location is required either through "
                "the Workgroup result configuration setting or as an API input.",
            )
        try:
            s3_uri_to_path(output, self.s3_root)
        except AthenaQueryError:
            raise self._invalid(
                "StartQueryExecution", f"OutputLocation {output!r} is not an s3:// location."
            ) from None
        workgroup = params.get("WorkGroup") or "primary"
        context = params.get("QueryExecutionContext") or {}
        kind, statement_type = classify(query)
        token = params.get("ClientRequestToken")
        now = _now()
        query_id = str(uuid.uuid4())
        body: dict[str, Any] = {
            "QueryExecutionId": query_id,
            "Query": query,
            "StatementType": statement_type,
            "ResultConfiguration": {"OutputLocation": output},
            "QueryExecutionContext": context,
            "Status": {"State": "QUEUED", "SubmissionDateTime": now},
            "Statistics": {"EngineExecutionTimeInMillis": 0, "DataScannedInBytes": 0},
            "WorkGroup": workgroup,
            "EngineVersion": _ENGINE_VERSION,
            "SubstatementType": _SUBSTATEMENT.get(kind, _ddl_substatement(query)),
        }
        for key in ("ExecutionParameters", "ResultReuseConfiguration"):
            if key in params:
                body[key] = params[key]
        with self._store.write() as db:
            if token:
                existing = db.execute(
                    "SELECT id, body FROM athena_queries WHERE token = ?", (token,)
                ).fetchone()
                if existing is not None:
                    # Idempotency: the same token and request give the same execution.
                    if _same_request(_load(existing["body"]), body):
                        return self._response(QueryExecutionId=existing["id"])
                    raise self._invalid(
                        "StartQueryExecution",
                        "Idempotent parameters do not match: ClientRequestToken was used "
                        "with a different request.",
                    )
            reused = self._reusable(db, body, now) if kind == "SELECT" else None
            local: dict[str, Any] = {"kind": kind}
            if reused is not None:
                previous, previous_local = reused
                body["Status"].update(State="SUCCEEDED", CompletionDateTime=now)
                body["ResultConfiguration"] = previous["ResultConfiguration"]
                body["Statistics"] = {
                    **previous["Statistics"],
                    "DataScannedInBytes": 0,
                    "ResultReuseInformation": {"ReusedPreviousResult": True},
                }
                local = {**previous_local, "kind": kind}
            db.execute(
                "INSERT INTO athena_queries (id, workgroup, token, state, body, local)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (query_id, workgroup, token, body["Status"]["State"], _dump(body), _dump(local)),
            )
        if reused is None:
            self._pool.submit(self._run, query_id)
        return self._response(QueryExecutionId=query_id)

    def _reusable(self, db: Any, body: dict[str, Any], now: datetime) -> Any:
        """The earlier execution (body, local state) whose result ``body`` may reuse, or ``None``.

        Athena reuses a result when the query string, database/catalog, result configuration and
        workgroup match and the result is younger than MaxAgeInMinutes (default 60, at most
        7 days) — Athena user guide, "Reuse query results".
        """
        config = (body.get("ResultReuseConfiguration") or {}).get(
            "ResultReuseByAgeConfiguration", {}
        )
        if not config.get("Enabled"):
            return None
        max_age = timedelta(minutes=min(config.get("MaxAgeInMinutes", 60), 7 * 24 * 60))
        rows = db.execute(
            "SELECT body, local FROM athena_queries WHERE state = 'SUCCEEDED' AND workgroup = ?"
            " ORDER BY seq DESC",
            (body["WorkGroup"],),
        ).fetchall()
        for row in rows:
            previous = _load(row["body"])
            if (
                previous["Query"] == body["Query"]
                and previous.get("QueryExecutionContext") == body.get("QueryExecutionContext")
                and previous.get("ExecutionParameters") == body.get("ExecutionParameters")
                and _prefix(previous) == _prefix(body)
                and now - previous["Status"]["CompletionDateTime"] <= max_age
            ):
                return previous, _load(row["local"])
        return None

    # -- running ----------------------------------------------------------------------------

    def _run(self, query_id: str) -> None:
        started = _now()
        # Registered before the query is RUNNING: whoever sees RUNNING can interrupt it.
        # A cursor of the client's in-memory DuckDB database: its own session (settings, temp
        # views, interrupt) at a fraction of the ~20 ms a new database costs per query.
        conn = self._duckdb.cursor()
        with _ACTIVE_LOCK:
            _ACTIVE[query_id] = conn
        with self._store.write() as db:
            row = db.execute(
                "SELECT body, state FROM athena_queries WHERE id = ?", (query_id,)
            ).fetchone()
            if row is not None and row["state"] == "QUEUED":
                body = _load(row["body"])
                body["Status"]["State"] = "RUNNING"
                self._save(db, query_id, body)
        if row is None or row["state"] != "QUEUED":  # cancelled while queued
            with _ACTIVE_LOCK:
                _ACTIVE.pop(query_id, None)
            conn.close()
            return
        staged = None
        error: AthenaQueryError | None = None
        try:
            staged = self._engine.execute(self._request(body), conn)
        except AthenaQueryError as err:
            error = err
        except duckdb.InterruptException:
            error = AthenaQueryError("USER_CANCELLED", "Query was cancelled by user")
        except Exception as err:  # noqa: BLE001 - any engine bug must still end the query
            error = AthenaQueryError(
                "GENERIC_INTERNAL_ERROR", f"{type(err).__name__}: {err}", ErrorCategory.SYSTEM
            )
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.pop(query_id, None)
            conn.close()
        self._finish(query_id, started, staged, error)

    def _request(self, body: dict[str, Any]) -> QueryRequest:
        output = body["ResultConfiguration"]["OutputLocation"]
        context = body.get("QueryExecutionContext") or {}
        return QueryRequest(
            query_id=body["QueryExecutionId"],
            text=body["Query"],
            database=context.get("Database"),
            catalog=(context.get("Catalog") or DEFAULT_CATALOG).lower(),
            parameters=body.get("ExecutionParameters"),
            output_uri=output,
            output_dir=s3_uri_to_path(output, self.s3_root),
        )

    def _finish(
        self, query_id: str, started: datetime, staged: Any, error: AthenaQueryError | None
    ) -> None:
        # The state change and the publication of outputs happen under one write lock, so a
        # stop_query_execution either comes first (nothing is published) or not at all.
        with self._store.write() as db:
            row = db.execute(
                "SELECT body, local FROM athena_queries WHERE id = ?", (query_id,)
            ).fetchone()
            body = _load(row["body"]) if row is not None else None
            if body is None or body["Status"]["State"] != "RUNNING":
                if staged is not None:
                    staged.discard()
                return
            local = _load(row["local"])
            outcome = None
            if staged is not None:
                try:
                    outcome = staged.commit()
                except AthenaQueryError as err:
                    error = err
                except Exception as err:  # noqa: BLE001 - e.g. Glue refused the CTAS table
                    error = AthenaQueryError(
                        "GENERIC_INTERNAL_ERROR",
                        f"{type(err).__name__}: {err}",
                        ErrorCategory.SYSTEM,
                    )
            now = _now()
            elapsed = int((now - started).total_seconds() * 1000)
            queued = int((started - body["Status"]["SubmissionDateTime"]).total_seconds() * 1000)
            body["Status"]["CompletionDateTime"] = now
            body["Statistics"].update(
                EngineExecutionTimeInMillis=elapsed,
                QueryQueueTimeInMillis=max(queued, 0),
                TotalExecutionTimeInMillis=elapsed + max(queued, 0),
                QueryPlanningTimeInMillis=0,
                ServicePreProcessingTimeInMillis=0,
                ServiceProcessingTimeInMillis=0,
                ResultReuseInformation={"ReusedPreviousResult": False},
            )
            if error is not None:
                body["Status"].update(
                    State="FAILED",
                    StateChangeReason=error.state_change_reason,
                    AthenaError={
                        "ErrorCategory": int(error.category),
                        "ErrorType": _error_type_number(error),
                        "Retryable": error.retryable,
                        "ErrorMessage": error.state_change_reason,
                    },
                )
            else:
                self._record_outcome(body, local, outcome)
            self._save(db, query_id, body, local)

    def _record_outcome(self, body: dict, local: dict, outcome: QueryOutcome) -> None:
        body["Status"]["State"] = "SUCCEEDED"
        body["StatementType"] = outcome.statement_type
        prefix = body["ResultConfiguration"]["OutputLocation"].rstrip("/")
        if outcome.result_file is not None:
            body["ResultConfiguration"]["OutputLocation"] = f"{prefix}/{outcome.result_file.name}"
        body["Statistics"]["DataScannedInBytes"] = outcome.data_scanned
        if outcome.manifest_file is not None:
            body["Statistics"]["DataManifestLocation"] = f"{prefix}/{outcome.manifest_file.name}"
        local.update(
            result_file=str(outcome.result_file) if outcome.result_file else None,
            text_result=outcome.text_result,
            update_count=outcome.update_count,
            output_prefix=prefix + "/",
        )

    # -- reading state ----------------------------------------------------------------------

    def get_query_execution(self, **params: Any) -> dict[str, Any]:
        """The execution's state, statistics and result location."""
        params = self._validated("GetQueryExecution", params)
        body, _ = self._execution("GetQueryExecution", params["QueryExecutionId"])
        return self._response(QueryExecution=body)

    def batch_get_query_execution(self, **params: Any) -> dict[str, Any]:
        """Up to 50 executions; unknown ids are listed in ``UnprocessedQueryExecutionIds``."""
        params = self._validated("BatchGetQueryExecution", params)
        ids = params["QueryExecutionIds"]
        if not 1 <= len(ids) <= _MAX_LIST:
            raise self._invalid(
                "BatchGetQueryExecution",
                f"QueryExecutionIds must hold 1 to {_MAX_LIST} ids, got {len(ids)}.",
            )
        found, missing = [], []
        with self._store.read() as db:
            for query_id in ids:
                row = db.execute(
                    "SELECT body FROM athena_queries WHERE id = ?", (query_id,)
                ).fetchone()
                if row is None:
                    missing.append(
                        {
                            "QueryExecutionId": query_id,
                            "ErrorCode": "INVALID_INPUT",
                            "ErrorMessage": f"QueryExecution {query_id} was not found",
                        }
                    )
                else:
                    found.append(_load(row["body"]))
        return self._response(QueryExecutions=found, UnprocessedQueryExecutionIds=missing)

    def list_query_executions(self, **params: Any) -> dict[str, Any]:
        """Ids of a workgroup's executions, newest first (``primary`` by default)."""
        params = self._validated("ListQueryExecutions", params)
        limit = params.get("MaxResults", _MAX_LIST)
        if not 0 <= limit <= _MAX_LIST:
            raise self._invalid(
                "ListQueryExecutions", f"MaxResults must be between 0 and {_MAX_LIST}."
            )
        start = self._decode_token("ListQueryExecutions", params.get("NextToken"))
        with self._store.read() as db:
            rows = db.execute(
                "SELECT id FROM athena_queries WHERE workgroup = ? ORDER BY seq DESC"
                " LIMIT ? OFFSET ?",
                (params.get("WorkGroup") or "primary", limit + 1, start),
            ).fetchall()
        ids = [r["id"] for r in rows[:limit]]
        token = _encode_token(start + limit) if len(rows) > limit else None
        return self._response(QueryExecutionIds=ids, NextToken=token)

    def get_query_results(self, **params: Any) -> dict[str, Any]:
        """Rows of a SUCCEEDED query, as text; the first row of a SELECT is the header.

        ``MaxResults`` (at most 1000) rows per call; pass the returned ``NextToken`` on, or use
        ``get_paginator("get_query_results")``. NULL is an empty datum ``{}``.
        """
        params = self._validated("GetQueryResults", params)
        query_id = params["QueryExecutionId"]
        body, local = self._execution("GetQueryResults", query_id)
        state = body["Status"]["State"]
        if state in ("QUEUED", "RUNNING"):
            raise self._invalid(
                "GetQueryResults", f"Query has not yet finished. Current state: {state}"
            )
        if state != "SUCCEEDED":
            raise self._invalid(
                "GetQueryResults",
                f"Query did not finish successfully. Final query state: {state}",
            )
        limit = params.get("MaxResults", _MAX_RESULTS)
        if not 1 <= limit <= _MAX_RESULTS:
            raise self._invalid(
                "GetQueryResults", f"MaxResults must be between 1 and {_MAX_RESULTS}."
            )
        offset = self._decode_token("GetQueryResults", params.get("NextToken"))
        result_file = Path(local["result_file"]) if local.get("result_file") else None
        rows, next_offset = [], None
        info: list[dict[str, Any]] = []
        if result_file is not None:
            rows, next_offset = read_page(
                result_file, offset, limit, text=local.get("text_result", False)
            )
            info = read_column_info(result_file)
        return self._response(
            UpdateCount=local.get("update_count", 0),
            ResultSet={
                "Rows": [
                    {"Data": [{} if v is None else {"VarCharValue": v} for v in row]}
                    for row in rows
                ],
                "ResultSetMetadata": {"ColumnInfo": info},
            },
            NextToken=None if next_offset is None else _encode_token(next_offset),
        )

    # -- stopping ---------------------------------------------------------------------------

    def stop_query_execution(self, **params: Any) -> dict[str, Any]:
        """Cancel a QUEUED or RUNNING query (a finished one is left as it is)."""
        params = self._validated("StopQueryExecution", params)
        query_id = params["QueryExecutionId"]
        with self._store.write() as db:
            row = db.execute(
                "SELECT body, local FROM athena_queries WHERE id = ?", (query_id,)
            ).fetchone()
            if row is None:
                raise self._not_found("StopQueryExecution", query_id)
            body = _load(row["body"])
            if body["Status"]["State"] in _TERMINAL:
                return self._response()
            body["Status"].update(
                State="CANCELLED",
                CompletionDateTime=_now(),
                StateChangeReason="Query cancelled by user",
            )
            self._save(db, query_id, body, _load(row["local"]))
        threading.Thread(target=_interrupt_until_done, args=(query_id,), daemon=True).start()
        return self._response()

    # -- convenience ------------------------------------------------------------------------

    def wait(self, query_id: str, timeout: float = 300.0, poll: float = 0.02) -> dict[str, Any]:
        """Poll until the query is terminal; returns its ``QueryExecution`` (local extra).

        Raises ``TimeoutError`` naming the query and its last state.
        """
        deadline = time.monotonic() + timeout
        while True:
            execution = self.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            if execution["Status"]["State"] in _TERMINAL:
                return execution
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Query {query_id} still {execution['Status']['State']} after {timeout}s"
                )
            time.sleep(poll)

    def close(self) -> None:
        """Wait for running queries and release the worker threads and the DuckDB database."""
        self._pool.shutdown(wait=True)
        self._duckdb.close()

    # -- helpers ----------------------------------------------------------------------------

    def _execution(self, operation: str, query_id: str) -> tuple[dict, dict]:
        with self._store.read() as db:
            row = db.execute(
                "SELECT body, local FROM athena_queries WHERE id = ?", (query_id,)
            ).fetchone()
        if row is None:
            raise self._not_found(operation, query_id)
        return _load(row["body"]), _load(row["local"])

    def _save(self, db: Any, query_id: str, body: dict, local: dict | None = None) -> None:
        db.execute(
            "UPDATE athena_queries SET state = ?, body = ?"
            + (", local = ?" if local else "")
            + " WHERE id = ?",
            (body["Status"]["State"], _dump(body), *([_dump(local)] if local else []), query_id),
        )

    def _invalid(self, operation: str, message: str):
        return self._error(operation, "InvalidRequestException", message)

    def _not_found(self, operation: str, query_id: str):
        return self._invalid(operation, f"QueryExecution {query_id} was not found")

    def _decode_token(self, operation: str, token: str | None) -> int:
        if not token:
            return 0
        try:
            return int(json.loads(base64.urlsafe_b64decode(token.encode()).decode())["offset"])
        except (ValueError, KeyError, TypeError):
            raise self._invalid(operation, f"Invalid NextToken: {token!r}") from None


def _interrupt_until_done(query_id: str) -> None:
    """Interrupt the query's DuckDB statement until its worker lets go of the connection.

    ``interrupt()`` only stops a statement that is running; the worker may be between two
    statements (translating, listing files), so keep interrupting until it has finished.
    """
    while True:
        with _ACTIVE_LOCK:
            conn = _ACTIVE.get(query_id)
            if conn is None:
                return
            conn.interrupt()
        time.sleep(0.02)


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _ddl_substatement(query: str) -> str:
    words = query.strip().split()
    return "_".join(w.upper() for w in words[:2]) if words else "UNKNOWN"


def _prefix(body: dict[str, Any]) -> str:
    """The OutputLocation prefix of a request (a finished query reports its result file)."""
    location = body["ResultConfiguration"]["OutputLocation"]
    if location.endswith((".csv", ".txt")):
        location = location.rsplit("/", 1)[0]
    return location.rstrip("/")


def _same_request(old: dict[str, Any], new: dict[str, Any]) -> bool:
    keys = ("Query", "QueryExecutionContext", "WorkGroup", "ExecutionParameters")
    return all(old.get(k) == new.get(k) for k in keys) and _prefix(old) == _prefix(new)


def _error_type_number(error: AthenaQueryError) -> int:
    # AthenaError.ErrorType is a number (API_AthenaError: 0–9999, with a documented table, e.g.
    # 1000 "USER_ERROR"-range codes). We report 1000 for user errors, 0 otherwise; clients
    # match on ErrorCategory and on the message's error name.
    return 1000 if error.category == ErrorCategory.USER else 0


def _now() -> datetime:
    return datetime.now(tz=tzutc())


def _dump(value: dict[str, Any]) -> str:
    return json.dumps(value, default=_encode_time)


def _encode_time(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"__datetime__": value.isoformat()}
    raise TypeError(f"Cannot store {type(value).__name__}: {value!r}")


def _load(text: str) -> dict[str, Any]:
    return json.loads(text, object_hook=_decode_time)


def _decode_time(obj: dict[str, Any]) -> Any:
    if set(obj) == {"__datetime__"}:
        return datetime.fromisoformat(obj["__datetime__"])
    return obj
