"""The one duration parser: the forms it takes, the ones it refuses, its bounds, and that every caller uses it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hub import durations
from hub.conflicts import MAX_AGE, parse_age
from hub.durations import DurationError
from hub.errors import UsageError
from hub.scheduler import JobSpec, every_seconds
from hub.tokens import MAX_TTL, parse_ttl
from hub.types import utcnow

VALID = [("30s", timedelta(seconds=30)), ("5m", timedelta(minutes=5)), ("12h", timedelta(hours=12)),
         ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2)), ("1.5h", timedelta(minutes=90)),
         ("0.5s", timedelta(milliseconds=500)), (" 7 d ", timedelta(days=7)), ("12H", timedelta(hours=12)),
         ("007d", timedelta(days=7)), ("36500d", timedelta(days=36500))]
INVALID = ["", " ", "d", "7", "-3h", "+3h", ".5h", "1.h", "1,5h", "1e9d", "infh", "nanh", "7x", "7 days",
           "5 fortnights", "1h30m", "h7", "5ſ", "forever", "never"]


@pytest.mark.parametrize("text,expected", VALID)
def test_the_forms_it_takes(text: str, expected: timedelta):
    assert durations.parse(text, name="--x") == expected


@pytest.mark.parametrize("text", INVALID)
def test_a_malformed_duration_says_what_was_given_and_what_is_expected(text: str):
    with pytest.raises(DurationError) as caught:
        durations.parse(text, name="--older-than")
    message = str(caught.value)
    assert message.startswith(f"--older-than {text!r}: expected a positive duration like 30m, 12h, 7d, 2w")
    assert "s, m, h, d or w" in message


@pytest.mark.parametrize("text", ["0s", "0d", "0.0s", "0.0000001s"])
def test_zero_is_refused(text: str):
    with pytest.raises(DurationError, match=r"'.*': the duration must be more than 0, e\.g\. 30m, 12h, 7d"):
        durations.parse(text, name="every")


@pytest.mark.parametrize("text", ["36501d", "5215w", "99999999999d", "9" * 400 + "d"])
def test_the_default_bound(text: str):
    with pytest.raises(DurationError, match="too long; at most 36500 days"):
        durations.parse(text, name="every")


def test_a_callers_bound_wording_and_alternatives():
    assert durations.parse("1h", name="--x", maximum=timedelta(days=1)) == timedelta(hours=1)
    assert durations.parse("1d", name="--x", maximum=timedelta(days=1)) == timedelta(days=1)
    with pytest.raises(DurationError, match=r"--x '25h': too far back; at most 1 days, or so$"):
        durations.parse("25h", name="--x", maximum=timedelta(days=1), beyond="too far back", otherwise=", or so")
    with pytest.raises(DurationError, match=r"\(a number and a unit: s, m, h, d or w\), or so$"):
        durations.parse("soon", name="--x", otherwise=", or so")


def test_the_error_is_a_usage_error_and_a_value_error():
    """Exit 2 on the command line; a ValueError for config validators."""
    with pytest.raises(DurationError) as caught:
        durations.parse("soon", name="--x")
    assert isinstance(caught.value, UsageError) and isinstance(caught.value, ValueError)
    assert caught.value.exit_code == 2


# --- every caller takes the same forms, keeps its bound and says what else it takes ------------------

@pytest.mark.parametrize("text,expected", VALID)
def test_every_caller_takes_every_form(text: str, expected: timedelta):
    assert parse_ttl(text) == expected
    assert parse_age(text) == expected
    assert every_seconds(text) == expected.total_seconds()
    at = durations.since(text)
    assert at is not None and abs((utcnow() - expected) - at) < timedelta(minutes=1)


def test_the_scheduler_takes_weeks_decimals_and_capitals():
    spec = JobSpec("push:all", "push", "all", None, every="1.5H")
    assert spec.trigger().interval == timedelta(minutes=90)
    assert JobSpec("push:all", "push", "all", None, every="2w").trigger().interval == timedelta(weeks=2)


@pytest.mark.parametrize("every,says", [("0s", "the duration must be more than 0"),
                                        ("99999999999d", "too long; at most 36500 days"),
                                        ("5 fortnights", "expected a positive duration")])
def test_the_scheduler_refuses_zero_endless_and_malformed_intervals(every: str, says: str):
    """APScheduler would quietly run a 0 interval every second, and overflow on an endless one."""
    with pytest.raises(DurationError, match=f"every {every!r}: {says}"):
        JobSpec("push:all", "push", "all", None, every=every).trigger()


def test_token_lifetimes_keep_never_and_their_bound():
    assert MAX_TTL == timedelta(days=36500)
    for text in (None, "", " ", "never", "NEVER", "none"):
        assert parse_ttl(text) is None
    with pytest.raises(DurationError, match="--expires '36501d': too far in the future; at most 36500 days, "
                                            "or 'never' for a token that does not expire"):
        parse_ttl("36501d")
    with pytest.raises(DurationError, match="--expires '0d': the duration must be more than 0.*or 'never'"):
        parse_ttl("0d")
    with pytest.raises(DurationError, match=r"--expires 'soon': expected a positive duration .*or 'never'"):
        parse_ttl("soon")


def test_conflict_ages_keep_their_bound_and_option_name():
    assert MAX_AGE == timedelta(days=36500) and parse_age(None) is None and parse_age("") is None
    with pytest.raises(DurationError, match="--older-than '36501d': too far back; at most 36500 days"):
        parse_age("36501d")
    with pytest.raises(DurationError, match="--since 'x': expected"):
        parse_age("x", option="--since")


def test_since_takes_iso_times_and_names_them_in_errors():
    assert durations.since(None) is None and durations.since("") is None
    assert durations.since("2024-05-01") == datetime(2024, 5, 1, tzinfo=timezone.utc)
    assert durations.since("2024-05-01T08:00:00+02:00") == datetime(2024, 5, 1, 6, tzinfo=timezone.utc)
    for text, says in (("yesterday", "expected a positive duration"), ("0h", "the duration must be more than 0"),
                       ("99999999d", "too far back; at most 36500 days")):
        with pytest.raises(DurationError, match=f"--since {text!r}: {says}.*ISO-8601 time like 2024-05-01"):
            durations.since(text)
