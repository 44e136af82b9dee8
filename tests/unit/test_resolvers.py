"""Date resolvers: formats, timezones, offsets, errors, and use through a Kedro config loader."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from omegaconf import OmegaConf

from kedro_aws.resolvers import (
    DATE_RESOLVERS,
    DateResolverError,
    days_ago,
    format_offset_date,
    local_date,
    today,
    yesterday,
)

# 2026-01-01 17:30 UTC is already 2026-01-02 in Singapore (UTC+8) but still 2026-01-01 in
# New York (UTC-5): one instant, three different "todays" depending on the timezone.
INSTANT = datetime(2026, 1, 1, 17, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("tz", "expected"),
    [("UTC", "2026-01-01"), ("Asia/Singapore", "2026-01-02"), ("America/New_York", "2026-01-01")],
)
def test_today_depends_on_timezone(tz, expected):
    assert format_offset_date(0, "%Y-%m-%d", tz, now=INSTANT) == expected


def test_yesterday_crosses_month_and_year_boundaries():
    assert format_offset_date(-1, "%Y-%m-%d", "UTC", now=INSTANT) == "2025-12-31"
    leap = datetime(2028, 3, 1, 12, tzinfo=timezone.utc)
    assert format_offset_date(-1, "%Y%m%d", "UTC", now=leap) == "20280229"


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("%Y-%m-%d", "2026-01-02"),
        ("%Y/%m/%d", "2026/01/02"),
        ("%Y%m%d", "20260102"),
        ("%Y-%m", "2026-01"),
    ],
)
def test_formats(fmt, expected):
    assert format_offset_date(0, fmt, "Asia/Singapore", now=INSTANT) == expected


def test_public_resolvers_use_the_current_clock_in_the_timezone():
    # Computed independently with zoneinfo; retried once if the test straddles midnight.
    for _ in range(2):
        expected_today = datetime.now(ZoneInfo("Asia/Singapore")).date()
        got = today("%Y-%m-%d", "Asia/Singapore"), yesterday("%Y-%m-%d", "Asia/Singapore")
        if datetime.now(ZoneInfo("Asia/Singapore")).date() == expected_today:
            break
    assert got == (
        expected_today.isoformat(),
        (expected_today - timedelta(days=1)).isoformat(),
    )
    assert days_ago(7) == (local_date("UTC") - timedelta(days=7)).isoformat()
    assert days_ago("-1") == (local_date("UTC") + timedelta(days=1)).isoformat()


def test_resolvers_return_strings_usable_in_omegaconf():
    for name, func in DATE_RESOLVERS.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, func)
    config = OmegaConf.create(
        {
            "a": "${kedro_aws.yesterday:%Y-%m-%d,Asia/Singapore}",
            "b": "s3://bucket/${kedro_aws.today:%Y/%m/%d}/file.parquet",
            "c": "${kedro_aws.days_ago:2,%Y%m%d,UTC}",
            "tz": "Asia/Singapore",
            "d": "${kedro_aws.today:%Y-%m-%d,${tz}}",
        }
    )
    resolved = OmegaConf.to_container(config, resolve=True)
    assert all(isinstance(v, str) for v in resolved.values())
    assert resolved["a"] == yesterday("%Y-%m-%d", "Asia/Singapore")
    assert resolved["b"] == f"s3://bucket/{today('%Y/%m/%d')}/file.parquet"
    assert resolved["c"] == days_ago(2, "%Y%m%d")
    assert resolved["d"] == today("%Y-%m-%d", "Asia/Singapore")


def test_names_are_namespaced():
    assert all(name.startswith("kedro_aws.") for name in DATE_RESOLVERS)


def test_unknown_timezone_is_named_in_the_error():
    with pytest.raises(DateResolverError, match="Unknown timezone 'Mars/Olympus'"):
        today("%Y-%m-%d", "Mars/Olympus")


def test_format_without_directive_is_rejected():
    with pytest.raises(DateResolverError, match="no strftime directive"):
        yesterday("YYYY-MM-DD")


def test_offset_must_be_whole_days():
    with pytest.raises(DateResolverError, match="whole number of days, got 'soon'"):
        days_ago("soon")


def test_naive_now_is_rejected():
    with pytest.raises(DateResolverError, match="timezone-aware"):
        local_date("UTC", now=datetime(2026, 1, 1))
