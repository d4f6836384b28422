"""Timers and alarms: Timer rows whose fires_at is computed from ctx.now.

Times people say ("7 am", "6:30 pm", "on friday") are on the home's clock
(the time zone of Home.place, see skills/base.home_zone). "7" without am/pm is
whichever of 7:00 and 19:00 comes next. Cancelling stamps cancelled_at with a
conditional update so two cancels of the same timer cannot both succeed.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from assistant.models import Home, Timer
from assistant.skills.base import Request, failed, home_zone, join, local_now
from assistant.skills.values import (
    format_clock,
    format_day,
    format_duration,
    next_time_at,
    parse_clock,
    parse_date,
    parse_duration,
    relative_offset,
)
from assistant.turns import Action, SkillResult, TurnContext

MAX_TIMER_SECONDS = 24 * 3600
MAX_ALARM_DAYS = 366
_ALL = re.compile(r"\b(all|every|everything)\b")
_UNITS = re.compile(r"\b\d*\s*(seconds?|secs?|minutes?|mins?|hours?|hrs?)\b")
_RECURRING = re.compile(r"\b(this week|weekdays?|every ?day|daily|every \w+|weekly)\b")
_WEEKDAY = re.compile(r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b")


def resolve(req: Request) -> Action:
    intent = req.intent
    if intent == "timer_set":
        seconds = parse_duration(req.slot("duration"))
        if seconds is None:
            return req.fail("For how long should I set the timer?", needs="duration")
        if seconds > MAX_TIMER_SECONDS:
            return req.fail("I can set timers for up to 24 hours. For longer, set an alarm.")
        fires_at = req.ctx.now + timedelta(seconds=seconds)
        return req.action(seconds=seconds, label=format_duration(seconds), fires_at=fires_at.isoformat())
    if intent == "timer_remove":
        return req.action(seconds=parse_duration(req.slot("duration")), all=bool(_ALL.search(req.text)))
    if intent == "alarm_set":
        return _resolve_alarm(req)
    if intent == "alarm_remove":
        clock = parse_clock(req.slot("time"))
        day = parse_date(req.slot("date"), local_now(req.ctx, req.home).date())
        return req.action(
            hour=clock.hour if clock else None,
            minute=clock.minute if clock else None,
            meridiem_known=clock.meridiem_known if clock else False,
            date=day.isoformat() if day else None,
            all=bool(_ALL.search(req.text)),
        )
    return req.action()  # queries read the rows at execute time


def _resolve_alarm(req: Request) -> Action:
    now = local_now(req.ctx, req.home)
    time_text, date_text = req.slot("time"), req.slot("date")
    offset = relative_offset(time_text)
    if offset is None and time_text and parse_clock(time_text) is None and _UNITS.search(time_text):
        offset = parse_duration(time_text)  # "wake me up in 30 minutes" tagged as just "30 minutes"
    if date_text and _RECURRING.search(date_text):
        date_text = None  # repeating alarms are not supported: the next one is set
    if offset is not None:
        at = now + timedelta(seconds=offset)
    else:
        clock = parse_clock(time_text)
        day = parse_date(date_text, now.date())
        if clock is None:
            if time_text:
                return req.fail(f"I didn't understand the time {time_text}.", needs="time")
            return req.fail("What time should I set the alarm for?", needs="time")
        if date_text and day is None:
            return req.fail(f"I didn't understand the day {date_text}.", needs="date")
        at = next_time_at(clock, now, day)
        if at <= now and day is not None and day == now.date() and _WEEKDAY.search(date_text or ""):
            at = next_time_at(clock, now, day + timedelta(days=7))  # "saturday" said on a Saturday, too late
        if at <= now:
            return req.fail(f"{format_clock(at)} {format_day(at.date(), now.date())} has already passed.")
    if at - now > timedelta(days=MAX_ALARM_DAYS):
        return req.fail("I can set alarms up to a year ahead.")
    label = f"{format_clock(at)} {format_day(at.date(), now.date())}"
    return req.action(fires_at=at.isoformat(), label=label)


# --- execute ----------------------------------------------------------------------------


def _active(home: Home, kind: str, now: datetime):
    return Timer.objects.filter(home=home, kind=kind, cancelled_at__isnull=True, fires_at__gt=now).order_by("fires_at")


def _cancel(timers: list[Timer], now: datetime) -> int:
    return Timer.objects.filter(pk__in=[t.pk for t in timers], cancelled_at__isnull=True).update(cancelled_at=now)


def _timer_data(timer: Timer, now: datetime) -> dict:
    return {
        "id": timer.pk,
        "kind": timer.kind,
        "label": timer.label,
        "fires_at": timer.fires_at.isoformat(),
        "seconds_left": max(0, round((timer.fires_at - now).total_seconds())),
    }


def _alarm_words(timer: Timer, home: Home, now: datetime) -> str:
    at = timer.fires_at.astimezone(home_zone(home))
    return f"{format_clock(at)} {format_day(at.date(), now.astimezone(home_zone(home)).date())}"


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    intent, params, now = action.intent, action.params, ctx.now
    if intent in ("timer_set", "alarm_set"):
        try:
            fires_at = datetime.fromisoformat(str(params["fires_at"]))
        except (KeyError, ValueError):
            return failed("I couldn't work out when that should go off.")
        if fires_at.tzinfo is None or fires_at <= now:
            return failed("That time has already passed.")
        kind = Timer.Kind.TIMER if intent == "timer_set" else Timer.Kind.ALARM
        timer = Timer.objects.create(home=home, kind=kind, label=str(params.get("label", ""))[:100], fires_at=fires_at)
        if kind == Timer.Kind.TIMER:
            text = f"Timer set for {timer.label}."
        else:
            text = f"Alarm set for {_alarm_words(timer, home, now)}."
        return SkillResult(text=text, data={"timer": _timer_data(timer, now)})

    if intent == "timer_query":
        timers = list(_active(home, Timer.Kind.TIMER, now))
        data = {"timers": [_timer_data(t, now) for t in timers]}
        if not timers:
            return SkillResult(text="You have no timers running.", data=data)
        left = [format_duration((t.fires_at - now).total_seconds()) + " left" for t in timers]
        if len(timers) == 1:
            return SkillResult(text=f"Your {timers[0].spoken_name} has {left[0]}.", data=data)
        parts = [f"{t.label} with {rest}" for t, rest in zip(timers, left, strict=True)]
        return SkillResult(text=f"You have {len(timers)} timers: {join(parts)}.", data=data)

    if intent == "alarm_query":
        alarms = list(_active(home, Timer.Kind.ALARM, now))
        data = {"alarms": [_timer_data(t, now) for t in alarms]}
        if not alarms:
            return SkillResult(text="You have no alarms set.", data=data)
        times = [_alarm_words(a, home, now) for a in alarms]
        if len(alarms) == 1:
            return SkillResult(text=f"You have an alarm at {times[0]}.", data=data)
        return SkillResult(text=f"You have {len(alarms)} alarms: {join(times)}.", data=data)

    if intent == "timer_remove":
        return _remove(home, Timer.Kind.TIMER, params, now, _match_timer)
    if intent == "alarm_remove":
        return _remove(home, Timer.Kind.ALARM, params, now, _match_alarm(home))
    return failed("Sorry, I can't do that with timers.")


def _match_timer(timer: Timer, params: dict) -> bool:
    seconds = params.get("seconds")
    return seconds is None or timer.label == format_duration(int(seconds))


def _match_alarm(home: Home):
    zone = home_zone(home)

    def match(alarm: Timer, params: dict) -> bool:
        at = alarm.fires_at.astimezone(zone)
        if params.get("date") and at.date().isoformat() != params["date"]:
            return False
        hour = params.get("hour")
        if hour is None:
            return True
        hours = {hour} if params.get("meridiem_known") else {hour % 12, hour % 12 + 12}
        return at.hour in hours and at.minute == (params.get("minute") or 0)

    return match


def _remove(home: Home, kind: str, params: dict, now: datetime, match) -> SkillResult:
    noun = "timer" if kind == Timer.Kind.TIMER else "alarm"
    active = list(_active(home, kind, now))
    if not active:
        return failed(f"You have no {noun}s to cancel.")
    specific = params.get("seconds") is not None or params.get("hour") is not None or params.get("date")
    chosen = [t for t in active if match(t, params)]
    if not chosen:
        return failed(f"I couldn't find that {noun}.", **{f"{noun}s": [_timer_data(t, now) for t in active]})
    if len(chosen) > 1 and not params.get("all") and not specific:
        words = [t.label if kind == Timer.Kind.TIMER else _alarm_words(t, home, now) for t in chosen]
        return failed(f"You have {len(chosen)} {noun}s: {join(words)}. Which one should I cancel?", needs="which")
    if len(chosen) > 1 and not params.get("all"):
        chosen = chosen[:1]  # two identical ones: cancel the one that goes off first
    cancelled = _cancel(chosen, now)
    if not cancelled:
        return failed(f"That {noun} was already cancelled.")
    if len(chosen) == 1:
        if kind == Timer.Kind.TIMER:
            text = f"Cancelled your {chosen[0].spoken_name}."
        else:
            text = f"Cancelled your alarm for {_alarm_words(chosen[0], home, now)}."
    else:
        text = f"Cancelled {cancelled} {noun}s."
    return SkillResult(text=text, data={"cancelled": [t.pk for t in chosen]})
