"""The intents and slots the assistant understands: the contract between the
NLU, the seed utterances and the skills.

Intent names follow SLURP's `scenario_action` style. Each intent is handled by
exactly one skill (the `skill` name in assistant/skills/).
"""

from __future__ import annotations

from typing import NamedTuple


class IntentSpec(NamedTuple):
    skill: str
    description: str
    slots: tuple[str, ...]


OUT_OF_SCOPE = "out_of_scope"

# Slot types the NLU tags (BIO over tokens). `list_name` and `title` extend the
# issue's list so that "add milk to my shopping list" and "play <film>" resolve.
SLOTS: tuple[str, ...] = (
    "room",
    "device",
    "level",
    "colour",
    "temperature",
    "artist",
    "song",
    "genre",
    "playlist",
    "title",
    "list_item",
    "list_name",
    "time",
    "duration",
    "place",
    "date",
    "person",  # a name the user gives themselves ("call me Sam")
    "team",
    "cuisine",
    "unit",  # temperature units
    "concept",  # a name the user teaches ("study mode", "goodnight")
)
# What the user can teach about themselves ("I'm a Warriors fan", "call me Sam").
PREFERENCE_SLOTS: tuple[str, ...] = ("person", "team", "cuisine", "genre", "artist", "unit", "room")

INTENTS: dict[str, IntentSpec] = {
    # smart home: lights
    "iot_hue_lighton": IntentSpec("smart_home", "turn lights on", ("room", "device")),
    "iot_hue_lightoff": IntentSpec("smart_home", "turn lights off", ("room", "device")),
    "iot_hue_lightdim": IntentSpec("smart_home", "dim lights / set brightness", ("room", "level")),
    "iot_hue_lightup": IntentSpec("smart_home", "brighten lights", ("room", "level")),
    "iot_hue_lightchange": IntentSpec("smart_home", "change light colour", ("room", "colour")),
    # smart home: appliances
    "iot_thermostat_set": IntentSpec("smart_home", "set the heating temperature", ("room", "temperature")),
    "iot_temperature_query": IntentSpec("smart_home", "what's the temperature (oven if on, else thermostat)", ()),
    "iot_oven_on": IntentSpec("smart_home", "turn the oven on / preheat", ("temperature",)),
    "iot_oven_off": IntentSpec("smart_home", "turn the oven off", ()),
    "iot_oven_set": IntentSpec("smart_home", "set the oven temperature", ("temperature",)),
    "iot_garage_open": IntentSpec("smart_home", "open the garage door", ()),
    "iot_garage_close": IntentSpec("smart_home", "close the garage door", ()),
    "iot_tv_on": IntentSpec("smart_home", "turn the TV on", ("room",)),
    "iot_tv_off": IntentSpec("smart_home", "turn the TV off", ("room",)),
    "iot_wemo_on": IntentSpec("smart_home", "turn a plug / named device on", ("device", "room")),
    "iot_wemo_off": IntentSpec("smart_home", "turn a plug / named device off", ("device", "room")),
    "iot_cleaning": IntentSpec("smart_home", "start the vacuum", ("room",)),
    "iot_device_query": IntentSpec("smart_home", "is the X on / open?", ("device", "room")),
    # music and media
    "play_music": IntentSpec(
        "music", "play an artist, song, genre or playlist", ("artist", "song", "genre", "playlist")
    ),
    "play_media": IntentSpec("music", "play a title: a film on a screen, else the audiobook", ("title",)),
    "music_pause": IntentSpec("music", "pause", ()),
    "music_resume": IntentSpec("music", "resume", ()),
    "music_next": IntentSpec("music", "next track", ()),
    "music_query": IntentSpec("music", "what is playing", ()),
    "audio_volume_up": IntentSpec("music", "louder", ("level",)),
    "audio_volume_down": IntentSpec("music", "quieter", ("level",)),
    "audio_volume_set": IntentSpec("music", "set volume to a level", ("level",)),
    "audio_volume_mute": IntentSpec("music", "mute", ()),
    "audio_volume_unmute": IntentSpec("music", "unmute", ()),
    # timers and alarms
    "timer_set": IntentSpec("timers", "set a timer", ("duration",)),
    "timer_query": IntentSpec("timers", "list timers / time left", ()),
    "timer_remove": IntentSpec("timers", "cancel a timer", ("duration",)),
    "alarm_set": IntentSpec("timers", "set an alarm", ("time", "date")),
    "alarm_query": IntentSpec("timers", "list alarms", ()),
    "alarm_remove": IntentSpec("timers", "cancel an alarm", ("time",)),
    # lists
    "lists_createoradd": IntentSpec("lists", "add an item to a list", ("list_item", "list_name")),
    "lists_query": IntentSpec("lists", "read a list", ("list_name",)),
    "lists_remove": IntentSpec("lists", "remove an item from a list", ("list_item", "list_name")),
    # information
    "weather_query": IntentSpec("weather", "weather, optionally where and when", ("place", "date")),
    "datetime_query": IntentSpec("datetime", "the time or date", ("place",)),
    # things to know: sports results and restaurants (offline, assistant/world/)
    "sports_query": IntentSpec("sports", "how did a team (or my team) do, when do they play", ("team", "date")),
    "restaurant_query": IntentSpec("restaurants", "find a restaurant, of a cuisine or the one I like", ("cuisine",)),
    # what the assistant knows about the user (teaching/preferences.py)
    "preference_set": IntentSpec("preferences", "I'm a Warriors fan, I like jazz, call me Sam", PREFERENCE_SLOTS),
    "preference_query": IntentSpec("preferences", "what do you know about me", ()),
    "preference_forget": IntentSpec("preferences", "forget that I like jazz, forget that", PREFERENCE_SLOTS),
    "preference_learn": IntentSpec("preferences", "learn my preferences: a few questions, each can be skipped", ()),
    # taught concepts (teaching/concepts.py): "turn on study mode", "when I say goodnight, …"
    "concept_run": IntentSpec("concepts", "run a routine the user taught, or ask what it means", ("concept",)),
    "concept_teach": IntentSpec("concepts", "when I say X, do Y and Z", ("concept",)),
    # chit-chat
    "general_greet": IntentSpec("chitchat", "hello, how are you", ()),
    "general_joke": IntentSpec("chitchat", "tell a joke", ()),
    "general_help": IntentSpec("chitchat", "what can you do: three examples for this device", ()),
    "general_thanks": IntentSpec("chitchat", "thank you", ()),
    "general_stop": IntentSpec("chitchat", "stop, cancel, never mind: end what is going on", ()),
    # dialogue: answers to the assistant's own questions ("which device?" -> "the garage door",
    # "shall I open it?" -> "yes"); teaching/dialogue.py reads them against the pending question
    "dialogue_inform": IntentSpec("dialogue", "a bare value: a device, room, temperature, time…", SLOTS),
    "dialogue_affirm": IntentSpec("dialogue", "yes, go ahead, that's right", ()),
    "dialogue_deny": IntentSpec("dialogue", "no, don't, that's wrong", ()),
    OUT_OF_SCOPE: IntentSpec("out_of_scope", "anything the assistant cannot do", ()),
}

# Closings, answers and statements: "Did I answer your question?" after "OK.", "You're welcome!" or
# "Got it: you like jazz." makes no sense.
NOT_SURVEYED: frozenset[str] = frozenset(
    {
        "general_stop", "general_thanks", "dialogue_inform", "dialogue_affirm", "dialogue_deny", "concept_teach",
        # telling it something is not asking a question
        "preference_set", "preference_forget", "preference_learn",
    }
)  # fmt: skip
DIALOGUE_INTENTS: frozenset[str] = frozenset({"dialogue_inform", "dialogue_affirm", "dialogue_deny"})

# Actions a cautious home assistant confirms unless they were asked for in so many words
# (a confident reading of the user's own words, not a rewrite, a guess or a filled-in answer):
# opening the garage lets anyone in.
CONFIRMED_INTENTS: frozenset[str] = frozenset({"iot_garage_open"})

# What an intent does, whatever it is done to: "turn it up" is "up" said of the thing in question. The
# context re-ranker (assistant/nlu/context.py) adds the same action on what the situation is about (the
# heating just mentioned) to the NLU's readings, and a skill told "up" of the heating raises it a step.
ACTIONS: dict[str, frozenset[str]] = {
    "audio_volume_up": frozenset({"up"}),
    "iot_hue_lightup": frozenset({"up"}),
    "audio_volume_down": frozenset({"down"}),
    "iot_hue_lightdim": frozenset({"down", "set"}),
    "iot_thermostat_set": frozenset({"up", "down", "set"}),
    "iot_oven_set": frozenset({"up", "down", "set"}),
    "audio_volume_set": frozenset({"set"}),
    "iot_tv_on": frozenset({"on"}),
    "iot_oven_on": frozenset({"on"}),
    "iot_hue_lighton": frozenset({"on"}),
    "iot_wemo_on": frozenset({"on"}),
    "music_resume": frozenset({"on"}),
    "audio_volume_unmute": frozenset({"on"}),
    "iot_tv_off": frozenset({"off"}),
    "iot_oven_off": frozenset({"off"}),
    "iot_hue_lightoff": frozenset({"off"}),
    "iot_wemo_off": frozenset({"off"}),
    "music_pause": frozenset({"off"}),
    "audio_volume_mute": frozenset({"off"}),
    "iot_temperature_query": frozenset({"temperature"}),
    "weather_query": frozenset({"temperature"}),
}
