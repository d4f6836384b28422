"""The public data's labels (SLURP and its parent HWU64) against ours: the one table the
NLU importers (assistant/nlu/datasets.py) and the simulator (simulator/data.py) share.

Our intents (assistant/intents.py) use SLURP's names wherever the meaning is the same
(iot_hue_lighton, play_music, alarm_set, lists_createoradd, weather_query…). Where SLURP
is close to one of ours but not the same, the SLURP name is kept rather than folded in:
    audio_volume_other  mixes "set volume to 5", "unmute" and "volume settings": ours
                        splits audio_volume_set / audio_volume_unmute
    play_audiobook      includes "resume my audiobook" (no title); our play_media picks film
                        vs audiobook by device and, without a title, plays what the home last
                        played, so it fulfils the goal; trained as play_media (TRAINED_AS)
    general_quirky      open chit-chat, not our general_greet
"""

from __future__ import annotations

# Every SLURP intent -> the intent of ours that fulfils the request (None: no skill does it).
# The importers keep SLURP's own names (the NLU learns them all, and names the ones no skill
# handles when it declines); the simulator's goals use this to judge what our skills can meet.
SLURP_INTENTS: dict[str, str | None] = {
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

# Every SLURP slot type -> ours (None: none of ours). The importers rename the mapped ones and keep
# SLURP's name for the rest (the tagger learns them too); the simulator's judge checks mapped ones only.
SLURP_SLOTS: dict[str, str | None] = {
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

# HWU64 is SLURP's parent collection with the same names, plus eight general_*
# dialogue acts that SLURP does not have and that no skill here could act on
# (yes/no/stop/repeat/praise without a dialogue state): dropped, and reported.
HWU_DROPPED_INTENTS: tuple[str, ...] = (
    "general_affirm",
    "general_negate",
    "general_confirm",
    "general_dontcare",
    "general_commandstop",
    "general_explain",
    "general_praise",
    "general_repeat",
)


# Public intents a skill of ours fulfils under its own name: an imported example is trained (and scored)
# as ours, so that the served model runs the skill instead of declining ("play the hobbit audiobook" is
# play_media; "i like jazz" is the preference_set our seed teaches). music_likeness is ours only when it
# names what is liked: "save this song to my favourites" stays music_likeness.
TRAINED_AS: dict[str, str] = {"play_audiobook": "play_media"}
LIKED_SLOTS = frozenset({"genre", "artist"})


def trained_intent(public_intent: str, slot_types: frozenset[str] | set[str]) -> str:
    """The intent an imported example is trained and scored as, given its (our) slot types."""
    if public_intent == "music_likeness" and LIKED_SLOTS & set(slot_types):
        return "preference_set"
    return TRAINED_AS.get(public_intent, public_intent)


def our_slot_type(slurp_type: str) -> str:
    """The slot type an imported span is trained as: ours where SLURP's means one of ours."""
    return SLURP_SLOTS.get(slurp_type) or slurp_type
