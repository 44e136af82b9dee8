"""Athena-shaped query errors for the local Athena SQL engine.

Clients of Athena match on the error name that starts ``StateChangeReason`` (``SYNTAX_ERROR``,
``TABLE_NOT_FOUND`` …) and on ``AthenaError.ErrorCategory``; this module gives the local engine
one exception that carries both, worded the way Trino words them::

    >>> err = AthenaQueryError("COLUMN_NOT_FOUND", "line 1:8: Column 'x' cannot be resolved")
    >>> str(err)
    "COLUMN_NOT_FOUND: line 1:8: Column 'x' cannot be resolved"
    >>> err.category
    <ErrorCategory.USER: 2>
"""

from __future__ import annotations

from enum import IntEnum

from sqlglot import exp


class ErrorCategory(IntEnum):
    """``AthenaError.ErrorCategory``: 1 system, 2 user, 3 other.

    Source: docs.aws.amazon.com/athena/latest/APIReference/API_AthenaError.html
    """

    SYSTEM = 1
    USER = 2
    OTHER = 3


class AthenaQueryError(Exception):
    """A query failed the way Athena fails it: ``<ERROR_TYPE>: <message>``.

    Attributes:
        error_type: Trino error name clients match on, e.g. ``"TABLE_NOT_FOUND"``.
        message: Trino-worded message, usually starting with ``line L:C:``.
        category: :class:`ErrorCategory` (``USER`` for anything the query author can fix).
        retryable: whether running the same query again may succeed (never, for user errors).
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        category: ErrorCategory = ErrorCategory.USER,
        *,
        retryable: bool = False,
    ) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.category = ErrorCategory(category)
        self.retryable = retryable

    @property
    def state_change_reason(self) -> str:
        """The text Athena puts in ``Status.StateChangeReason`` and ``AthenaError.ErrorMessage``."""
        return str(self)


def node_position(sql: str, node: exp.Expression) -> str:
    """``line L:C`` (1-based, as Trino reports it) of the first token of ``node`` in ``sql``.

    sqlglot records token offsets on identifiers, literals and function names only, so the
    earliest offset found in the subtree stands for the node; ``1:1`` when none is known.
    """
    starts = [
        n.meta["start"]
        for n in node.walk()
        if isinstance(n, exp.Expression) and "start" in (n._meta or {})
    ]
    return offset_position(sql, min(starts)) if starts else "1:1"


def offset_position(sql: str, offset: int) -> str:
    """``line L:C`` of a 0-based character offset into ``sql``."""
    line = sql.count("\n", 0, offset) + 1
    column = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    return f"{line}:{column}"


def user_error(
    error_type: str, sql: str, node: exp.Expression | None, text: str
) -> AthenaQueryError:
    """A category-2 error whose message starts with the position of ``node``."""
    where = node_position(sql, node) if node is not None else "1:1"
    return AthenaQueryError(error_type, f"line {where}: {text}")


def not_supported(sql: str, node: exp.Expression | None, feature: str) -> AthenaQueryError:
    """``NOT_SUPPORTED``: Athena runs it, the local engine cannot do so with Athena's result."""
    return user_error(
        "NOT_SUPPORTED", sql, node, f"{feature} is not supported by the local Athena engine"
    )
