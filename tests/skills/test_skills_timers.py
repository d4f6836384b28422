"""Timers and alarms: real fire times from ctx.now, listing, cancelling, without the NLU."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from assistant import skills
from assistant.models import Timer
from assistant.turns import NluResult, TurnContext

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)  # a Saturday; London is on UTC in November


def say(user, intent: str, now: datetime = NOW, text: str = "", **slots: str):
    home = user.home
    ctx = TurnContext(user_id=user.pk, home_id=home.pk, device_id=None, room=None, has_screen=False, now=now)
    action = skills.resolve(NluResult(text=text, intent=intent, confidence=0.99, slots=slots), ctx)
    json.dumps(action.as_dict())
    with transaction.atomic():
        result = skills.execute(action, ctx)
    return action, result


def active(user, kind: str) -> list[Timer]:
    return list(Timer.objects.filter(home=user.home, kind=kind, cancelled_at__isnull=True))


@pytest.mark.parametrize(
    ("said", "seconds", "spoken"),
    [("10 minutes", 600, "10 minutes"), ("an hour and a half", 5400, "1 hour and 30 minutes"),
     ("half an hour", 1800, "30 minutes"), ("90 seconds", 90, "1 minute and 30 seconds"),
     ("2 and a half hours", 9000, "2 hours and 30 minutes"), ("1 hour 15", 4500, "1 hour and 15 minutes")],
)  # fmt: skip
def test_a_timer_fires_after_the_duration_said(alice, said, seconds, spoken):
    _, result = say(alice, "timer_set", duration=said)
    assert result.ok
    assert result.text == f"Timer set for {spoken}."
    (timer,) = active(alice, "timer")
    assert timer.fires_at == NOW + timedelta(seconds=seconds)


def test_a_timer_without_a_duration_asks_for_one_and_a_huge_one_is_refused(alice):
    _, result = say(alice, "timer_set")
    assert not result.ok and result.text == "For how long should I set the timer?"
    _, result = say(alice, "timer_set", duration="3 days")
    assert not result.ok and "24 hours" in result.text
    assert active(alice, "timer") == []


def test_listing_timers_says_the_time_left(alice):
    _, result = say(alice, "timer_query")
    assert result.text == "You have no timers running."
    say(alice, "timer_set", duration="10 minutes")
    _, result = say(alice, "timer_query", now=NOW + timedelta(minutes=4, seconds=30))
    assert result.text == "Your 10-minute timer has 5 minutes and 30 seconds left."
    say(alice, "timer_set", duration="1 hour")
    _, result = say(alice, "timer_query", now=NOW + timedelta(minutes=5))
    assert result.text == "You have 2 timers: 10 minutes with 5 minutes left and 1 hour with 55 minutes left."


def test_a_finished_timer_is_no_longer_listed(alice):
    say(alice, "timer_set", duration="1 minute")
    _, result = say(alice, "timer_query", now=NOW + timedelta(minutes=2))
    assert result.text == "You have no timers running."


def test_cancelling_a_timer_by_duration_or_the_only_one(alice):
    say(alice, "timer_set", duration="10 minutes")
    say(alice, "timer_set", duration="5 minutes")
    _, result = say(alice, "timer_remove")
    assert not result.ok and "Which one" in result.text
    _, result = say(alice, "timer_remove", duration="10 minutes")
    assert result.ok and result.text == "Cancelled your 10-minute timer."
    assert [t.label for t in active(alice, "timer")] == ["5 minutes"]
    _, result = say(alice, "timer_remove")
    assert result.ok
    assert active(alice, "timer") == []
    _, result = say(alice, "timer_remove")
    assert not result.ok and result.text == "You have no timers to cancel."


def test_cancel_all_timers(alice):
    say(alice, "timer_set", duration="10 minutes")
    say(alice, "timer_set", duration="5 minutes")
    _, result = say(alice, "timer_remove", text="cancel all my timers")
    assert result.ok and result.text == "Cancelled 2 timers."


@pytest.mark.parametrize(
    ("time", "date", "fires_at", "spoken"),
    [("7 am", None, datetime(2026, 11, 22, 7, 0, tzinfo=UTC), "7 AM tomorrow"),
     ("6:30 pm", None, datetime(2026, 11, 21, 18, 30, tzinfo=UTC), "6:30 PM today"),
     ("7", None, datetime(2026, 11, 21, 19, 0, tzinfo=UTC), "7 PM today"),
     ("10", None, datetime(2026, 11, 21, 10, 0, tzinfo=UTC), "10 AM today"),
     ("7 am", "tomorrow", datetime(2026, 11, 22, 7, 0, tzinfo=UTC), "7 AM tomorrow"),
     ("8 am", "on friday", datetime(2026, 11, 27, 8, 0, tzinfo=UTC), "8 AM on Friday"),
     ("half past 6", "monday", datetime(2026, 11, 23, 6, 30, tzinfo=UTC), "6:30 AM on Monday"),
     ("in 20 minutes", None, datetime(2026, 11, 21, 9, 20, tzinfo=UTC), "9:20 AM today"),
     ("30 minutes", None, datetime(2026, 11, 21, 9, 30, tzinfo=UTC), "9:30 AM today"),
     ("35", None, datetime(2026, 11, 21, 17, 30, tzinfo=UTC), "5:30 PM today"),
     ("36 am", "tomorrow", datetime(2026, 11, 22, 6, 30, tzinfo=UTC), "6:30 AM tomorrow"),
     ("530 am", "tomorrow", datetime(2026, 11, 22, 5, 30, tzinfo=UTC), "5:30 AM tomorrow"),
     ("8 am", "saturday", datetime(2026, 11, 28, 8, 0, tzinfo=UTC), "8 AM on Saturday 28 November"),
     ("7 am", "every day", datetime(2026, 11, 22, 7, 0, tzinfo=UTC), "7 AM tomorrow")],
)  # fmt: skip
def test_an_alarm_goes_off_at_the_next_matching_time(alice, time, date, fires_at, spoken):
    slots = {"time": time} | ({"date": date} if date else {})
    _, result = say(alice, "alarm_set", **slots)
    assert result.ok, result.text
    assert result.text == f"Alarm set for {spoken}."
    (alarm,) = active(alice, "alarm")
    assert alarm.fires_at == fires_at


def test_alarm_times_are_on_the_homes_clock(alice):
    home = alice.home
    home.place = "New York"
    home.save()
    say(alice, "alarm_set", time="7 am", date="tomorrow")
    (alarm,) = active(alice, "alarm")
    assert alarm.fires_at == datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def test_an_alarm_needs_a_time_that_has_not_passed(alice):
    _, result = say(alice, "alarm_set", date="tomorrow")
    assert not result.ok and "What time" in result.text
    _, result = say(alice, "alarm_set", time="6 am", date="today")
    assert not result.ok and "already passed" in result.text
    _, result = say(alice, "alarm_set", time="banana")
    assert not result.ok
    assert active(alice, "alarm") == []


def test_alarms_are_listed_and_cancelled_by_time(alice):
    say(alice, "alarm_set", time="7 am")
    say(alice, "alarm_set", time="8 am", date="monday")
    _, result = say(alice, "alarm_query")
    assert result.text == "You have 2 alarms: 7 AM tomorrow and 8 AM on Monday."
    _, result = say(alice, "alarm_remove", time="8")
    assert result.ok and result.text == "Cancelled your alarm for 8 AM on Monday."
    _, result = say(alice, "alarm_remove", time="9 pm")
    assert not result.ok and result.text == "I couldn't find that alarm."
    _, result = say(alice, "alarm_query")
    assert result.text == "You have an alarm at 7 AM tomorrow."


def test_another_users_timers_are_separate(alice, bob):
    say(alice, "timer_set", duration="10 minutes")
    _, result = say(bob, "timer_query")
    assert result.text == "You have no timers running."
    _, result = say(bob, "timer_remove")
    assert not result.ok
    assert len(active(alice, "timer")) == 1


def test_a_timer_is_spoken_of_as_people_do():
    from assistant.models import Timer

    assert Timer(label="10 minutes").spoken_name == "10-minute timer"
    assert Timer(label="1 hour").spoken_name == "1-hour timer"
    assert Timer(label="1 hour and 30 minutes").spoken_name == "timer for 1 hour and 30 minutes"
    assert Timer(label="").spoken_name == "timer"
