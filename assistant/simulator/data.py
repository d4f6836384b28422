"""Goals and ASR pairs, read at run time from files in SLURP's shape, and the
mapping from SLURP's intents and slot types to ours.

A goal is one paraphrase group: a gold intent, a gold slot set and several real
phrasings (with their bracketed annotations, `[date : tomorrow]`). SLURP's label
set is larger than ours (assistant/intents.py): INTENT_MAP says, for every SLURP
intent, which of our intents fulfils it, or None when we have no skill for it.
Goals with such an intent can never succeed; by default the simulator leaves them
out (`unsupported="exclude"`) and reports how many it left out; with
`unsupported="include"` users bring them too and their turns count as defects
with the failure point `unsupported`, reported apart from the others.

SLOT_MAP does the same for slot types. A gold slot is checked only if its type
maps to a slot our intent takes; the rest (weather_descriptor, timeofday…) are
things our skills do not act on, so the judge ignores them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from assistant.intents import INTENTS
from assistant.nlu.datasets import DatasetError, jsonl_rows

# SLURP intent -> our intent (None: no skill does this; the goal is out of scope for us).
INTENT_MAP: dict[str, str | None] = {
    "alarm_query": "alarm_query",
    "alarm_remove": "alarm_remove",
    "alarm_set": "alarm_set",
    "audio_volume_down": "audio_volume_down",
    "audio_volume_mute": "audio_volume_mute",
    "audio_volume_other": None,  # "set the volume to…" and "unmute" mixed in one class
    "audio_volume_up": "audio_volume_up",
    "calendar_query": None,
    "calendar_remove": None,
    "calendar_set": None,
    "cooking_query": None,
    "cooking_recipe": None,
    "datetime_convert": None,
    "datetime_query": "datetime_query",
    "email_addcontact": None,
    "email_query": None,
    "email_querycontact": None,
    "email_sendemail": None,
    "general_greet": "general_greet",
    "general_joke": "general_joke",
    "general_quirky": None,
    "iot_cleaning": "iot_cleaning",
    "iot_coffee": None,
    "iot_hue_lightchange": "iot_hue_lightchange",
    "iot_hue_lightdim": "iot_hue_lightdim",
    "iot_hue_lightoff": "iot_hue_lightoff",
    "iot_hue_lighton": "iot_hue_lighton",
    "iot_hue_lightup": "iot_hue_lightup",
    "iot_wemo_off": "iot_wemo_off",
    "iot_wemo_on": "iot_wemo_on",
    "lists_createoradd": "lists_createoradd",
    "lists_query": "lists_query",
    "lists_remove": "lists_remove",
    "music_dislikeness": None,
    "music_likeness": None,
    "music_query": "music_query",
    "music_settings": None,  # shuffle / repeat: not a setting our player has
    "news_query": None,
    "play_audiobook": "play_media",  # our play_media plays the audiobook when there is no screen
    "play_game": None,
    "play_music": "play_music",
    "play_podcasts": None,
    "play_radio": None,
    "qa_currency": None,
    "qa_definition": None,
    "qa_factoid": None,
    "qa_maths": None,
    "qa_stock": None,
    "recommendation_events": None,
    "recommendation_locations": None,
    "recommendation_movies": None,
    "social_post": None,
    "social_query": None,
    "takeaway_order": None,
    "takeaway_query": None,
    "transport_query": None,
    "transport_taxi": None,
    "transport_ticket": None,
    "transport_traffic": None,
    "weather_query": "weather_query",
}

# SLURP slot type -> our slot type (None: nothing of ours acts on it, not checked).
SLOT_MAP: dict[str, str | None] = {
    "artist_name": "artist",
    "audiobook_name": "title",
    "change_amount": "level",
    "color_type": "colour",
    "date": "date",
    "device_type": "device",
    "house_place": "room",
    "list_name": "list_name",
    "movie_name": "title",
    "music_genre": "genre",
    "place_name": "place",
    "playlist_name": "playlist",
    "song_name": "song",
    "time": "time",
    # Everything else SLURP tags has no slot of ours; listed so the table is explicit.
    "app_name": None,
    "business_name": None,
    "business_type": None,
    "currency_name": None,
    "definition_word": None,
    "email_folder": None,
    "event_name": None,
    "food_type": None,
    "game_name": None,
    "joke_type": None,
    "media_type": None,
    "movie_type": None,
    "news_topic": None,
    "order_type": None,
    "person": None,
    "player_setting": None,
    "podcast_descriptor": None,
    "podcast_name": None,
    "radio_name": None,
    "relation": None,
    "time_zone": None,
    "timeofday": None,
    "transport_agency": None,
    "transport_type": None,
    "weather_descriptor": None,
}

DEFAULT_TIER = "goal_precise_heuristic"
_SPAN = re.compile(r"\[\s*([\w]+)\s*:\s*([^\]]*?)\s*\]")


def parse_annotation(annotation: str) -> list[tuple[str, str]]:
    """SLURP's `[type : value]` spans of one annotation, in order."""
    return [(m.group(1), m.group(2)) for m in _SPAN.finditer(annotation or "")]


@dataclass(frozen=True)
class Phrasing:
    sentence: str
    gold_slots: tuple[tuple[str, str], ...]  # SLURP (type, value) spans of this sentence


@dataclass(frozen=True)
class Goal:
    goal_id: int  # position in the goals file: stable for a given file
    slurp_intent: str
    intent: str | None  # ours, None when unsupported
    slots: tuple[tuple[str, str], ...]  # the group's SLURP slot set
    phrasings: tuple[Phrasing, ...]

    @property
    def supported(self) -> bool:
        return self.intent is not None

    def checked_slots(self, phrasing: Phrasing) -> list[tuple[str, str]]:
        """(our slot type, gold value) pairs the judge checks for this phrasing."""
        if self.intent is None:
            return []
        takes = set(INTENTS[self.intent].slots)
        out = []
        for slurp_type, value in phrasing.gold_slots:
            ours = SLOT_MAP.get(slurp_type)
            if ours is not None and ours in takes:
                out.append((ours, value))
        return out


class DataError(ValueError):
    pass


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict]]:
    """(line number, object) per non-blank line; the NLU importers' reader, with the simulator's error."""
    try:
        yield from jsonl_rows(path)
    except DatasetError as exc:
        raise DataError(str(exc)) from None


def load_goals(path: Path, tier: str | None = DEFAULT_TIER) -> list[Goal]:
    """Goals of one tier (all tiers with tier=None) with at least one phrasing, in file order."""
    goals = []
    for number, row in _read_jsonl(Path(path)):
        if tier is not None and row.get("tier") != tier:
            continue
        intent = row.get("intent")
        paraphrases = row.get("paraphrases")
        if not isinstance(intent, str) or not isinstance(paraphrases, list):
            raise DataError(f"{path}:{number}: a goal needs `intent` and a `paraphrases` list")
        phrasings = []
        seen = set()
        for item in paraphrases:
            sentence = item.get("sentence") if isinstance(item, dict) else None
            if not isinstance(sentence, str) or not sentence.strip() or sentence in seen:
                continue
            seen.add(sentence)
            annotation = item.get("annotation") if isinstance(item.get("annotation"), str) else sentence
            phrasings.append(Phrasing(sentence=sentence, gold_slots=tuple(parse_annotation(annotation))))
        if not phrasings:
            continue
        slots = tuple(
            (str(s[0]), str(s[1])) for s in row.get("slots") or [] if isinstance(s, list | tuple) and len(s) == 2
        )
        goals.append(
            Goal(
                goal_id=number,
                slurp_intent=intent,
                intent=INTENT_MAP.get(intent),
                slots=slots,
                phrasings=tuple(phrasings),
            )
        )
    if not goals:
        raise DataError(f"{path}: no goals" + (f" of tier {tier!r}" if tier else ""))
    return goals


@dataclass(frozen=True)
class AsrPair:
    reference: str
    hypothesis: str
    headset: bool


def load_asr_pairs(path: Path) -> list[AsrPair]:
    pairs = []
    for number, row in _read_jsonl(Path(path)):
        ref, hyp = row.get("reference"), row.get("hypothesis")
        if not isinstance(ref, str) or not isinstance(hyp, str):
            raise DataError(f"{path}:{number}: a pair needs `reference` and `hypothesis` strings")
        pairs.append(AsrPair(reference=ref, hypothesis=hyp, headset=bool(row.get("headset"))))
    if not pairs:
        raise DataError(f"{path}: no ASR pairs")
    return pairs
