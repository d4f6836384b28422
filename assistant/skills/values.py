"""Turn slot surface text into values: levels, temperatures, durations, times, dates.

Slot values arrive as the NLU saw them: lower case, spelled numbers already
digits ("ten minutes" -> "10 minutes", see assistant/text.normalise).
Every parser returns None when it cannot read the text; the skill then says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s.:%']", " ", text.lower()).split()


def first_number(text: str) -> float | None:
    match = _NUMBER.search(text or "")
    return float(match.group()) if match else None


# --- levels (brightness, volume) --------------------------------------------


@dataclass(frozen=True)
class Level:
    """A level as said: a number, a fraction ("half"), or an extreme ("max").

    `fraction` is 0..1 of the full scale when the text gave a percentage or a
    word; `number` is a bare number whose scale the skill decides; `relative`
    is True for "by 20%" (a change, not a target).
    """

    fraction: float | None = None
    number: float | None = None
    relative: bool = False

    def on_scale(self, top: int) -> int | None:
        """The level on a 0..top scale (brightness top=100, volume top=10)."""
        if self.fraction is not None:
            return round(self.fraction * top)
        if self.number is None:
            return None
        value = self.number
        if top <= 10 < value <= 100:  # "volume 50" on a 0-10 scale reads as a percentage
            value = value / 10
        return round(value)


_LEVEL_WORDS = {
    "max": 1.0, "maximum": 1.0, "full": 1.0, "fully": 1.0, "all the way": 1.0, "loudest": 1.0,
    "brightest": 1.0, "100%": 1.0, "highest": 1.0, "high": 0.8, "bright": 0.8, "loud": 0.8,
    "half": 0.5, "halfway": 0.5, "medium": 0.5, "middle": 0.5, "quarter": 0.25, "a quarter": 0.25,
    "low": 0.3, "dim": 0.3, "quiet": 0.3, "lowest": 0.1, "minimum": 0.1, "min": 0.1, "quietest": 0.1,
    "dimmest": 0.1, "a little": None, "a bit": None, "a little bit": None, "slightly": None,
}  # fmt: skip


def parse_level(text: str | None) -> Level | None:
    """ "50 percent", "50%", "to 7", "by 20 percent", "half", "max" -> a Level."""
    if not text:
        return None
    t = " ".join(words(text))
    relative = bool(re.search(r"\bby\b", t))
    match = re.search(r"(\d+(?:\.\d+)?)\s*(%|percent|per cent|pc)?", t)
    if match:
        value = float(match.group(1))
        if match.group(2):
            return Level(fraction=min(value, 100) / 100, relative=relative)
        return Level(number=value, relative=relative)
    for phrase in sorted(_LEVEL_WORDS, key=len, reverse=True):
        if re.search(rf"(?<!\w){re.escape(phrase)}(?!\w)", t):
            fraction = _LEVEL_WORDS[phrase]
            if fraction is None:  # "a little": the skill's small step
                return None
            return Level(fraction=fraction, relative=relative)
    return None


# --- temperatures ------------------------------------------------------------


@dataclass(frozen=True)
class Temperature:
    value: float
    unit: str | None  # "c", "f" or None when not said


def parse_temperature(text: str | None) -> Temperature | None:
    """ "180 degrees", "21.5", "350 fahrenheit", "20 c" -> Temperature."""
    if not text:
        return None
    value = first_number(text)
    if value is None:
        return None
    t = text.lower()
    unit = None
    if re.search(r"\b(fahrenheit|f)\b|°f", t):
        unit = "f"
    elif re.search(r"\b(celsius|centigrade|c)\b|°c", t):
        unit = "c"
    return Temperature(value=value, unit=unit)


def to_celsius(temp: Temperature, fahrenheit_above: float) -> float:
    """Celsius; a value without a unit above `fahrenheit_above` is taken as Fahrenheit."""
    if temp.unit == "f" or (temp.unit is None and temp.value > fahrenheit_above):
        return round((temp.value - 32) * 5 / 9, 1)
    return temp.value


# --- durations -----------------------------------------------------------------

_UNIT_SECONDS = {
    "second": 1, "seconds": 1, "sec": 1, "secs": 1, "s": 1,
    "minute": 60, "minutes": 60, "min": 60, "mins": 60, "m": 60,
    "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600, "h": 3600,
    "day": 86400, "days": 86400,
}  # fmt: skip
_SMALLER = {86400: 3600, 3600: 60, 60: 1, 1: 1}


def parse_duration(text: str | None) -> int | None:
    """ "10 minutes", "an hour and a half", "1 hour 30", "half an hour", "90 seconds" -> seconds."""
    if not text:
        return None
    tokens = words(text.replace("-", " "))
    # "1h30m", "10min": split digits from letters
    split: list[str] = []
    for token in tokens:
        split.extend(p for p in re.findall(r"\d+(?:\.\d+)?|[a-z']+", token) if p)
    total = 0.0
    pending: float | None = None  # a number waiting for its unit
    article = False  # pending came from "a"/"an", not a spoken number
    last_unit: int | None = None
    seen = False
    for token in split:
        if re.fullmatch(r"\d+(?:\.\d+)?", token):
            pending, article = float(token), False
        elif token in ("a", "an", "one") and pending is None:
            pending, article = 1.0, True
        elif token in ("half", "quarter"):
            share = 0.5 if token == "half" else 0.25
            if last_unit is not None and (pending is None or article):
                # "an hour and a half": a share of the unit just said
                total += share * last_unit
                pending, article, seen = None, False, True
            elif pending is None or article:
                pending, article = share, False  # "half an hour", "a quarter of an hour"
            else:
                pending += share  # "2 and a half hours"
        elif token in _UNIT_SECONDS:
            unit = _UNIT_SECONDS[token]
            total += (pending if pending is not None else 1.0) * unit
            pending, article, last_unit, seen = None, False, unit, True
    if pending is not None and not article:
        # "1 hour 30": the bare number is in the next smaller unit; "10" alone means minutes.
        total += pending * (_SMALLER[last_unit] if last_unit else 60)
        seen = True
    if not seen or total <= 0:
        return None
    return round(total)


def format_duration(seconds: float) -> str:
    """ "1 hour and 30 minutes", "45 seconds"."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    for value, name in ((hours, "hour"), (minutes, "minute"), (secs, "second")):
        if value:
            parts.append(f"{value} {name}{'s' if value != 1 else ''}")
    if not parts:
        return "0 seconds"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# --- times of day and dates -----------------------------------------------------

_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = [
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
]  # fmt: skip
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "thirtieth": 30,
}  # fmt: skip
_PARTS_OF_DAY = {"morning": time(7), "noon": time(12), "midday": time(12), "afternoon": time(15),
                 "evening": time(18), "tonight": time(20), "night": time(21), "midnight": time(0)}  # fmt: skip


@dataclass(frozen=True)
class ClockTime:
    hour: int
    minute: int
    meridiem_known: bool  # False for "7" or "7:30": am or pm is for the caller to decide


def parse_clock(text: str | None) -> ClockTime | None:
    """ "7 am", "6:30 pm", "7 30", "19:00", "half past 7", "quarter to 8", "noon" -> ClockTime."""
    if not text:
        return None
    t = " ".join(words(text.replace(".", ":") if re.search(r"\d\.\d", text) else text))
    t = re.sub(r"(\d)\s*([ap])\s*m\b", r"\1 \2m", t)
    t = t.replace("o'clock", "").replace("oclock", "")
    if re.search(r"\bnoon\b|\bmidday\b", t):
        return ClockTime(12, 0, True)
    if re.search(r"\bmidnight\b", t):
        return ClockTime(0, 0, True)
    meridiem = None
    if re.search(r"\bpm\b|\bevening\b|\btonight\b|\bafternoon\b|\bat night\b", t):
        meridiem = "pm"
    elif re.search(r"\bam\b|\bmorning\b", t):
        meridiem = "am"
    hour = minute = None
    match = re.search(r"\b(half|quarter|\d{1,2})\s+(past|after|to|till|before)\s+(\d{1,2})\b", t)
    if match:
        amount = {"half": 30, "quarter": 15}.get(match.group(1))
        amount = int(match.group(1)) if amount is None else amount
        hour = int(match.group(3))
        if match.group(2) in ("to", "till", "before"):
            hour, minute = (hour - 1) % 24, 60 - amount
        else:
            minute = amount
    else:
        match = re.search(r"\b(\d{1,4})(?::(\d{2})|\s+(\d{2}))?\b", t)
        if match:
            number = int(match.group(1))
            minute = int(match.group(2) or match.group(3) or 0)
            if len(match.group(1)) >= 3:
                hour, minute = divmod(number, 100)  # "530 am", "1130": h then mm
            elif 24 <= number <= 59 and number % 10 and not (match.group(2) or match.group(3)):
                # "five thirty" reaches us as "35" (the number words were summed): 5:30
                hour, minute = number % 10, number - number % 10
            else:
                hour = number
    if hour is None:
        for part, at in _PARTS_OF_DAY.items():
            if re.search(rf"\b{part}\b", t):
                return ClockTime(at.hour, at.minute, True)
        return None
    if hour > 23 or minute > 59:
        return None
    if meridiem == "pm" and hour < 12:
        hour += 12
    elif meridiem == "am" and hour == 12:
        hour = 0
    return ClockTime(hour, minute, meridiem is not None or hour > 12 or hour == 0)


def relative_offset(text: str | None) -> int | None:
    """ "in 10 minutes", "5 minutes from now", "2 hours later" -> seconds, else None."""
    if not text:
        return None
    t = text.lower()
    if re.search(r"\bin\b|\bfrom now\b|\blater\b|\bafter\b", t) and re.search(
        r"\b(second|sec|minute|min|hour|hr)s?\b", t
    ):
        return parse_duration(t)
    return None


def parse_date(text: str | None, today: date) -> date | None:
    """ "today", "tomorrow", "on friday", "next monday", "the 25th", "december 3rd" -> a date."""
    if not text:
        return None
    t = " ".join(words(text)).replace("'s", "")
    t = re.sub(r"\b(todays|tomorrows)\b", lambda m: m.group()[:-1], t)
    if re.search(r"\bday after tomorrow\b", t):
        return today + timedelta(days=2)
    if re.search(r"\b(today|tonight|now|this morning|this evening|this afternoon)\b", t):
        return today
    if re.search(r"\btomorrow\b", t):
        return today + timedelta(days=1)
    if re.search(r"\byesterday\b", t):
        return today - timedelta(days=1)
    match = re.search(r"\bin (\d+) days?\b", t)
    if match:
        return today + timedelta(days=int(match.group(1)))
    if re.search(r"\bweekend\b", t):
        return today + timedelta(days=(5 - today.weekday()) % 7)
    if re.search(r"\bnext week\b", t):
        return today + timedelta(days=7 - today.weekday())
    for index, name in enumerate(_WEEKDAYS):
        if re.search(rf"\b{name}s?\b", t):
            ahead = (index - today.weekday()) % 7
            if re.search(rf"\bnext {name}\b", t) and ahead == 0:
                ahead = 7
            return today + timedelta(days=ahead)
    # Day of month, with or without a month: "25th", "20 fifth" (twenty fifth), "3rd of december".
    day = None
    match = re.search(r"\b(\d{1,2})(?:st|nd|rd|th)?\b", t)
    ordinal = next((v for w, v in _ORDINALS.items() if re.search(rf"\b{w}\b", t)), None)
    if ordinal is not None:
        tens = re.search(r"\b(20|30)\s+\w+", t)
        day = ordinal + (int(tens.group(1)) if tens and ordinal < 10 else 0)
    elif match:
        day = int(match.group(1))
    month = next((i + 1 for i, m in enumerate(_MONTHS) if re.search(rf"\b{m}\b", t)), None)
    if day is None:
        if month is not None:
            year = today.year + (1 if month < today.month else 0)
            return date(year, month, 1) if month != today.month else today
        return None
    month_said = month is not None
    month = month or today.month
    try:
        result = date(today.year, month, day)
        if result < today:
            # "the 5th" said on the 20th: next month's; "3rd of january" said in March: next year's
            if month_said:
                result = date(today.year + 1, month, day)
            else:
                result = date(today.year + (today.month == 12), today.month % 12 + 1, day)
        return result
    except ValueError:
        return None


def next_time_at(clock: ClockTime, now: datetime, day: date | None = None) -> datetime:
    """The next moment at `clock` after `now` (on `day` when given), in now's time zone.

    Without am/pm, "7" means whichever of 7:00 and 19:00 comes first.
    """
    options = [clock.hour] if clock.meridiem_known else [clock.hour, (clock.hour + 12) % 24]
    candidates = []
    days = [day] if day is not None else [now.date(), now.date() + timedelta(days=1)]
    for d in days:
        for hour in options:
            at = datetime.combine(d, time(hour, clock.minute), tzinfo=now.tzinfo)
            if at > now or day is not None:
                candidates.append(at)
    future = [c for c in candidates if c > now]
    return min(future) if future else min(candidates)


def format_clock(at: datetime) -> str:
    """ "7 AM", "6:30 PM"."""
    hour = at.hour % 12 or 12
    suffix = "AM" if at.hour < 12 else "PM"
    return f"{hour} {suffix}" if at.minute == 0 else f"{hour}:{at.minute:02d} {suffix}"


def format_day(day: date, today: date) -> str:
    """ "today", "tomorrow", "on Friday", "on Saturday 5 December"."""
    delta = (day - today).days
    if delta == 0:
        return "today"
    if delta == 1:
        return "tomorrow"
    if delta == -1:
        return "yesterday"
    if 1 < delta < 7:
        return f"on {day.strftime('%A')}"
    return f"on {day.strftime('%A')} {day.day} {day.strftime('%B')}"
