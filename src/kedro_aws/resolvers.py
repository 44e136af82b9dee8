"""Dynamic globals: date resolvers for Kedro's ``OmegaConfigLoader``.

Register them in the project's ``settings.py`` (globals are resolved while the config loader is
built, before any hook runs, so a plugin hook would be too late)::

    from kedro_aws.resolvers import DATE_RESOLVERS

    CONFIG_LOADER_ARGS = {
        "base_env": "base",
        "default_run_env": "local",
        "custom_resolvers": {**DATE_RESOLVERS},
    }

then use them in ``globals.yml``, the catalog or parameters::

    run_date: ${kedro_aws.yesterday:%Y-%m-%d,Asia/Singapore}    # '2026-11-25'
    this_month: ${kedro_aws.today:%Y-%m}                         # '2026-11' (UTC)
    week_ago: ${kedro_aws.days_ago:7}                            # '2026-11-19' (UTC)

Every resolver returns a *string*: OmegaConf rejects ``date`` objects in config values
(``UnsupportedValueType``, kedro#3620). Names carry the ``kedro_aws.`` prefix because resolver
names are process-global and OmegaConf silently keeps the first one registered under a name.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_DATE_FORMAT = "%Y-%m-%d"
DEFAULT_TIMEZONE = "UTC"


class DateResolverError(ValueError):
    """A date resolver got a format, offset or timezone it cannot use."""


def _zone(tz: str) -> timezone | ZoneInfo:
    if tz.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DateResolverError(
            f"Unknown timezone {tz!r}: use an IANA name such as 'UTC', 'Europe/Paris' or "
            "'Asia/Singapore'."
        ) from exc


def local_date(tz: str = DEFAULT_TIMEZONE, *, now: datetime | None = None) -> date:
    """Today's date in timezone ``tz`` (``now`` lets tests pin the clock).

    Example:
    >>> local_date("Asia/Singapore", now=datetime(2026, 1, 1, 17, 0, tzinfo=timezone.utc))
    datetime.date(2026, 1, 2)
    """
    current = now if now is not None else datetime.now(timezone.utc)
    if current.tzinfo is None:
        raise DateResolverError("`now` must be timezone-aware.")
    return current.astimezone(_zone(tz)).date()


def _whole_days(days: int | str) -> int:
    try:
        return int(days)
    except (TypeError, ValueError) as exc:
        raise DateResolverError(
            f"Date offset must be a whole number of days, got {days!r}."
        ) from exc


def format_offset_date(
    days: int | str = 0,
    fmt: str = DEFAULT_DATE_FORMAT,
    tz: str = DEFAULT_TIMEZONE,
    *,
    now: datetime | None = None,
) -> str:
    """The date ``days`` days from today in ``tz``, formatted with ``strftime`` pattern ``fmt``.

    Example:
    >>> format_offset_date(-1, "%Y%m%d", "UTC", now=datetime(2026, 3, 1, tzinfo=timezone.utc))
    '20260228'
    """
    offset = _whole_days(days)
    if not isinstance(fmt, str) or "%" not in fmt:
        raise DateResolverError(
            f"Date format {fmt!r} has no strftime directive; use e.g. '%Y-%m-%d' or '%Y/%m/%d'."
        )
    return (local_date(tz, now=now) + timedelta(days=offset)).strftime(fmt)


def today(fmt: str = DEFAULT_DATE_FORMAT, tz: str = DEFAULT_TIMEZONE) -> str:
    """``${kedro_aws.today:[format][,timezone]}`` — today's date."""
    return format_offset_date(0, fmt, tz)


def yesterday(fmt: str = DEFAULT_DATE_FORMAT, tz: str = DEFAULT_TIMEZONE) -> str:
    """``${kedro_aws.yesterday:[format][,timezone]}`` — yesterday's date (a nightly batch's date)."""
    return format_offset_date(-1, fmt, tz)


def days_ago(days: int | str, fmt: str = DEFAULT_DATE_FORMAT, tz: str = DEFAULT_TIMEZONE) -> str:
    """``${kedro_aws.days_ago:N[,format][,timezone]}`` — the date N days back (negative: ahead)."""
    return format_offset_date(-_whole_days(days), fmt, tz)


DATE_RESOLVERS: dict[str, Callable[..., str]] = {
    "kedro_aws.today": today,
    "kedro_aws.yesterday": yesterday,
    "kedro_aws.days_ago": days_ago,
}
