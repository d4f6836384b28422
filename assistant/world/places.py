"""A small built-in gazetteer: time zone and rough climate of well-known places.

Used by the date/time skill (local time elsewhere) and the offline weather
provider (a plausible climate by season). Climate figures are rounded yearly
mean and half the summer/winter swing in °C, plus how wet the place is (0-1);
they only need to be plausible, not accurate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from rapidfuzz import fuzz, process


@dataclass(frozen=True)
class Place:
    name: str  # display name
    tz: str
    mean_c: float
    swing_c: float
    wet: float
    southern: bool = False

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


_P = Place
PLACES: dict[str, Place] = {
    p.name.lower(): p
    for p in (
        _P("London", "Europe/London", 11, 7, 0.55),
        _P("Manchester", "Europe/London", 10, 6, 0.65),
        _P("Edinburgh", "Europe/London", 9, 6, 0.6),
        _P("Glasgow", "Europe/London", 9, 6, 0.7),
        _P("Cardiff", "Europe/London", 11, 6, 0.65),
        _P("Belfast", "Europe/London", 9, 5, 0.65),
        _P("Dublin", "Europe/Dublin", 10, 5, 0.6),
        _P("Paris", "Europe/Paris", 12, 8, 0.45),
        _P("Berlin", "Europe/Berlin", 10, 10, 0.45),
        _P("Madrid", "Europe/Madrid", 15, 10, 0.25),
        _P("Barcelona", "Europe/Madrid", 16, 8, 0.3),
        _P("Rome", "Europe/Rome", 16, 9, 0.3),
        _P("Amsterdam", "Europe/Amsterdam", 10, 7, 0.6),
        _P("Brussels", "Europe/Brussels", 11, 7, 0.55),
        _P("Lisbon", "Europe/Lisbon", 17, 6, 0.35),
        _P("Athens", "Europe/Athens", 18, 9, 0.2),
        _P("Stockholm", "Europe/Stockholm", 7, 10, 0.45),
        _P("Oslo", "Europe/Oslo", 6, 11, 0.45),
        _P("Helsinki", "Europe/Helsinki", 6, 12, 0.45),
        _P("Copenhagen", "Europe/Copenhagen", 9, 8, 0.5),
        _P("Vienna", "Europe/Vienna", 11, 10, 0.45),
        _P("Zurich", "Europe/Zurich", 10, 9, 0.55),
        _P("Warsaw", "Europe/Warsaw", 8, 11, 0.45),
        _P("Prague", "Europe/Prague", 9, 10, 0.45),
        _P("Moscow", "Europe/Moscow", 6, 14, 0.45),
        _P("Istanbul", "Europe/Istanbul", 15, 9, 0.35),
        _P("Cairo", "Africa/Cairo", 22, 7, 0.03),
        _P("Nairobi", "Africa/Nairobi", 19, 2, 0.4),
        _P("Lagos", "Africa/Lagos", 27, 2, 0.55),
        _P("Cape Town", "Africa/Johannesburg", 17, 5, 0.35, southern=True),
        _P("Johannesburg", "Africa/Johannesburg", 16, 5, 0.35, southern=True),
        _P("Harare", "Africa/Harare", 18, 4, 0.3, southern=True),
        _P("Dubai", "Asia/Dubai", 28, 8, 0.03),
        _P("Mumbai", "Asia/Kolkata", 27, 3, 0.4),
        _P("Delhi", "Asia/Kolkata", 25, 9, 0.25),
        _P("Bangalore", "Asia/Kolkata", 24, 3, 0.35),
        _P("Singapore", "Asia/Singapore", 28, 1, 0.6),
        _P("Bangkok", "Asia/Bangkok", 29, 2, 0.45),
        _P("Hong Kong", "Asia/Hong_Kong", 23, 6, 0.45),
        _P("Beijing", "Asia/Shanghai", 13, 15, 0.25),
        _P("Shanghai", "Asia/Shanghai", 17, 11, 0.45),
        _P("Tokyo", "Asia/Tokyo", 16, 10, 0.45),
        _P("Seoul", "Asia/Seoul", 13, 14, 0.35),
        _P("Sydney", "Australia/Sydney", 18, 5, 0.4, southern=True),
        _P("Melbourne", "Australia/Melbourne", 15, 5, 0.45, southern=True),
        _P("Perth", "Australia/Perth", 19, 6, 0.3, southern=True),
        _P("Auckland", "Pacific/Auckland", 15, 4, 0.55, southern=True),
        _P("New York", "America/New_York", 13, 12, 0.4),
        _P("Boston", "America/New_York", 11, 12, 0.45),
        _P("Washington", "America/New_York", 14, 12, 0.4),
        _P("Miami", "America/New_York", 25, 4, 0.45),
        _P("Orlando", "America/New_York", 23, 5, 0.45),
        _P("Atlanta", "America/New_York", 17, 10, 0.4),
        _P("Chicago", "America/Chicago", 10, 14, 0.4),
        _P("Houston", "America/Chicago", 21, 8, 0.4),
        _P("Dallas", "America/Chicago", 19, 10, 0.3),
        _P("Denver", "America/Denver", 10, 12, 0.25),
        _P("Phoenix", "America/Phoenix", 24, 11, 0.08),
        _P("Las Vegas", "America/Los_Angeles", 20, 12, 0.05),
        _P("Los Angeles", "America/Los_Angeles", 18, 4, 0.12),
        _P("San Francisco", "America/Los_Angeles", 14, 3, 0.25),
        _P("Sacramento", "America/Los_Angeles", 16, 9, 0.2),
        _P("Seattle", "America/Los_Angeles", 11, 7, 0.6),
        _P("Toronto", "America/Toronto", 8, 13, 0.4),
        _P("Ottawa", "America/Toronto", 6, 15, 0.4),
        _P("Montreal", "America/Toronto", 7, 15, 0.45),
        _P("Vancouver", "America/Vancouver", 11, 7, 0.6),
        _P("Mexico City", "America/Mexico_City", 17, 3, 0.4),
        _P("Sao Paulo", "America/Sao_Paulo", 20, 3, 0.45, southern=True),
        _P("Rio de Janeiro", "America/Sao_Paulo", 24, 3, 0.4, southern=True),
        _P("Buenos Aires", "America/Argentina/Buenos_Aires", 18, 6, 0.35, southern=True),
        _P("Reykjavik", "Atlantic/Reykjavik", 5, 5, 0.6),
        _P("Austin", "America/Chicago", 21, 9, 0.3),
        _P("Kansas City", "America/Chicago", 13, 13, 0.35),
        _P("Minneapolis", "America/Chicago", 8, 15, 0.35),
        _P("New Orleans", "America/Chicago", 21, 8, 0.5),
        _P("Cleveland", "America/New_York", 11, 12, 0.45),
        _P("Detroit", "America/Detroit", 10, 13, 0.4),
        _P("Buffalo", "America/New_York", 9, 13, 0.5),
        _P("Philadelphia", "America/New_York", 13, 12, 0.4),
        _P("Newark", "America/New_York", 13, 12, 0.4),
        _P("Portland", "America/Los_Angeles", 13, 8, 0.55),
        _P("San Diego", "America/Los_Angeles", 18, 4, 0.1),
        _P("Salt Lake City", "America/Denver", 12, 13, 0.25),
        _P("Anchorage", "America/Anchorage", 3, 11, 0.4),
        _P("Honolulu", "Pacific/Honolulu", 25, 2, 0.3),
        _P("Quebec", "America/Toronto", 5, 15, 0.5),
        _P("Chennai", "Asia/Kolkata", 29, 3, 0.35),
        _P("Kolkata", "Asia/Kolkata", 27, 5, 0.4),
        _P("Karachi", "Asia/Karachi", 26, 6, 0.1),
        _P("Tehran", "Asia/Tehran", 17, 12, 0.15),
        _P("Jakarta", "Asia/Jakarta", 28, 1, 0.6),
        _P("Manila", "Asia/Manila", 28, 2, 0.55),
        _P("Riyadh", "Asia/Riyadh", 27, 10, 0.03),
        _P("Tel Aviv", "Asia/Jerusalem", 21, 6, 0.2),
    )
}

# Countries, states and informal names -> a place above.
PLACE_ALIASES: dict[str, str] = {
    "uk": "london", "england": "london", "britain": "london", "great britain": "london",
    "scotland": "edinburgh", "wales": "cardiff", "ireland": "dublin", "france": "paris",
    "germany": "berlin", "spain": "madrid", "italy": "rome", "netherlands": "amsterdam",
    "holland": "amsterdam", "belgium": "brussels", "portugal": "lisbon", "greece": "athens",
    "sweden": "stockholm", "norway": "oslo", "finland": "helsinki", "denmark": "copenhagen",
    "austria": "vienna", "switzerland": "zurich", "poland": "warsaw", "russia": "moscow",
    "turkey": "istanbul", "egypt": "cairo", "kenya": "nairobi", "nigeria": "lagos",
    "south africa": "johannesburg", "zimbabwe": "harare", "india": "delhi", "new delhi": "delhi",
    "bombay": "mumbai", "bengaluru": "bangalore", "thailand": "bangkok", "china": "beijing",
    "japan": "tokyo", "korea": "seoul", "south korea": "seoul", "australia": "sydney",
    "new zealand": "auckland", "nyc": "new york", "new york city": "new york", "manhattan": "new york",
    "brooklyn": "new york", "long island": "new york", "usa": "new york", "us": "new york",
    "america": "new york", "united states": "new york", "east coast": "new york", "eastern": "new york",
    "florida": "miami", "georgia": "atlanta", "illinois": "chicago", "central": "chicago",
    "texas": "houston", "colorado": "denver", "mountain": "denver", "arizona": "phoenix",
    "nevada": "las vegas", "vegas": "las vegas", "california": "los angeles", "la": "los angeles",
    "pacific": "los angeles", "west coast": "los angeles", "washington dc": "washington", "dc": "washington",
    "canada": "toronto", "mexico": "mexico city", "brazil": "sao paulo", "argentina": "buenos aires",
    "iceland": "reykjavik", "uae": "dubai", "kansas": "kansas city", "missouri": "kansas city",
    "minnesota": "minneapolis", "louisiana": "new orleans", "ohio": "cleveland", "michigan": "detroit",
    "pennsylvania": "philadelphia", "new jersey": "newark", "oregon": "portland", "utah": "salt lake city",
    "alaska": "anchorage", "hawaii": "honolulu", "massachusetts": "boston", "maine": "boston",
    "virginia": "washington", "maryland": "washington", "tennessee": "atlanta", "carolina": "atlanta",
    "madras": "chennai", "calcutta": "kolkata", "pakistan": "karachi", "iran": "tehran", "indonesia": "jakarta",
    "philippines": "manila", "saudi arabia": "riyadh", "israel": "tel aviv", "cpt": "cape town",
    "cst": "chicago", "est": "new york", "pst": "los angeles", "mst": "denver", "gmt": "london",
}  # fmt: skip

_NOISE = re.compile(r"\b(the|in|at|for|of|city|town|today|now|right)\b")


def _clean(text: str) -> str:
    text = re.sub(r"'s\b", "", text.lower())
    text = re.sub(r"[^a-z ]", " ", text)
    return " ".join(_NOISE.sub(" ", text).split())


def find_place(text: str | None) -> Place | None:
    """The best-known place for a surface name ("miami florida", "tokyo", "japan"), or None."""
    if not text:
        return None
    query = _clean(text)
    if not query:
        return None
    names = {**{k: k for k in PLACES}, **PLACE_ALIASES}
    if query in names:
        return PLACES[names[query]]
    # "miami florida", "orlando fl": a known name inside a longer one.
    for n in range(len(query.split()), 0, -1):
        words = query.split()
        for i in range(len(words) - n + 1):
            chunk = " ".join(words[i : i + n])
            if chunk in names and len(chunk) > 2:
                return PLACES[names[chunk]]
    match = process.extractOne(query, list(names), scorer=fuzz.ratio, score_cutoff=82)
    return PLACES[names[match[0]]] if match else None
