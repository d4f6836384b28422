"""Reading slot text: levels, temperatures, durations, clock times and dates."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from assistant.skills.values import (
    format_duration,
    next_time_at,
    parse_clock,
    parse_date,
    parse_duration,
    parse_level,
    parse_temperature,
    to_celsius,
)

SATURDAY = date(2026, 11, 21)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10 minutes", 600), ("an hour and a half", 5400), ("half an hour", 1800), ("1h30m", 5400),
     ("a quarter of an hour", 900), ("10", 600), ("5 mins", 300), ("an hour and a quarter", 4500),
     ("a timer", None), ("", None), ("banana", None)],
)  # fmt: skip
def test_durations_are_read_in_seconds(text, seconds):
    assert parse_duration(text) == seconds


def test_durations_are_spoken_back():
    assert format_duration(5400) == "1 hour and 30 minutes"
    assert format_duration(3725) == "1 hour, 2 minutes and 5 seconds"


@pytest.mark.parametrize(
    ("text", "hm", "known"),
    [("7 am", (7, 0), True), ("6:30 pm", (18, 30), True), ("7 30", (7, 30), False), ("19:00", (19, 0), True),
     ("half past 7", (7, 30), False), ("quarter to 8", (7, 45), False), ("noon", (12, 0), True),
     ("12 am", (0, 0), True), ("7.30 pm", (19, 30), True), ("5 in the evening", (17, 0), True),
     ("35", (5, 30), False), ("36 am", (6, 30), True), ("1130", (11, 30), False), ("21", (21, 0), True)],
)  # fmt: skip
def test_clock_times_are_read(text, hm, known):
    clock = parse_clock(text)
    assert (clock.hour, clock.minute) == hm
    assert clock.meridiem_known is known


def test_impossible_clock_times_are_not_read():
    assert parse_clock("25:00") is None
    assert parse_clock("soon-ish") is None


@pytest.mark.parametrize(
    ("text", "day"),
    [("today", SATURDAY), ("tomorrow", date(2026, 11, 22)), ("on friday", date(2026, 11, 27)),
     ("saturday", SATURDAY), ("next saturday", date(2026, 11, 28)), ("the 25th", date(2026, 11, 25)),
     ("20 fifth", date(2026, 11, 25)), ("3rd of december", date(2026, 12, 3)), ("january 2nd", date(2027, 1, 2)),
     ("the 5th", date(2026, 12, 5)), ("tomorrow's", date(2026, 11, 22)), ("in 3 days", date(2026, 11, 24)),
     ("whenever", None)],
)  # fmt: skip
def test_dates_are_read_relative_to_today(text, day):
    assert parse_date(text, SATURDAY) == day


def test_a_time_without_am_or_pm_is_the_next_one_to_come():
    now = datetime(2026, 11, 21, 20, 0, tzinfo=UTC)
    assert next_time_at(parse_clock("7"), now) == datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
    assert next_time_at(parse_clock("9"), now) == datetime(2026, 11, 21, 21, 0, tzinfo=UTC)


def test_levels_and_temperatures_are_read():
    assert parse_level("50 percent").on_scale(100) == 50
    assert parse_level("half").on_scale(10) == 5
    assert parse_level("by 2").relative is True
    assert parse_level("a little") is None
    assert to_celsius(parse_temperature("350 degrees"), fahrenheit_above=260) == pytest.approx(176.7)
    assert to_celsius(parse_temperature("21 degrees"), fahrenheit_above=35) == 21
    assert to_celsius(parse_temperature("68 f"), fahrenheit_above=100) == 20
