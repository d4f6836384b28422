"""Music skill: the catalogue, the player, the screen rule and the volume, without the NLU."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.db import transaction

from assistant import skills
from assistant.models import MediaPlayer
from assistant.pipeline.turn import build_context
from assistant.turns import NluResult, TurnContext

NOW = datetime(2026, 11, 21, 20, 0, tzinfo=UTC)


def ctx_for(user, speaker: str | None = None) -> TurnContext:
    """The context a turn spoken to `speaker` (a device name) at NOW would get."""
    device = user.home.devices.get(name=speaker) if speaker else None
    return build_context(user, device, NOW)


def say(user, intent: str, speaker: str | None = "Kitchen speaker", **slots: str):
    ctx = ctx_for(user, speaker)
    action = skills.resolve(NluResult(text="", intent=intent, confidence=0.99, slots=slots), ctx)
    json.dumps(action.as_dict())
    with transaction.atomic():
        result = skills.execute(action, ctx)
    return action, result


def player(user) -> MediaPlayer:
    return MediaPlayer.objects.get(home=user.home)


@pytest.mark.parametrize("said", ["the beatles", "beatles", "beatles'", "the beetles"])
def test_an_artist_plays_their_songs_whatever_the_spelling(alice, said):
    _, result = say(alice, "play_music", artist=said)
    assert result.ok, result.text
    p = player(alice)
    assert p.status == "playing"
    assert p.item["artist"] == "The Beatles"
    assert p.queue == ["t006", "t007", "t008"]
    assert result.text == "Playing songs by The Beatles, starting with Hey Jude by The Beatles."


def test_a_song_plays_alone_and_an_artist_narrows_it(alice):
    _, result = say(alice, "play_music", song="bohemian rhapsody")
    assert result.text == "Playing Bohemian Rhapsody by Queen."
    assert player(alice).queue == []
    say(alice, "play_music", song="one", artist="metallica")
    assert player(alice).item["id"] == "t060"


def test_a_genre_and_a_playlist_fill_the_queue(alice):
    _, result = say(alice, "play_music", genre="rap")
    assert result.ok and player(alice).item["genre"] == "hip hop"
    _, result = say(alice, "play_music", playlist="workout playlist")
    assert result.ok
    assert [player(alice).item["id"], *player(alice).queue] == ["t036", "t037", "t043", "t060"]
    assert result.text.startswith("Playing the workout playlist, starting with")


def test_an_unknown_song_artist_genre_or_playlist_is_a_helpful_failure(alice):
    for slots, words in [
        ({"song": "hotel california"}, "I couldn't find the song hotel california."),
        ({"artist": "the zorblatts"}, "I couldn't find any music by the zorblatts."),
        ({"genre": "polka"}, "I don't have any polka music."),
        ({"playlist": "wedding"}, "I couldn't find a playlist called wedding."),
    ]:
        _, result = say(alice, "play_music", **slots)
        assert not result.ok
        assert result.text.startswith(words)
    assert player(alice).status == "stopped"


def test_a_title_plays_as_the_film_on_a_device_with_a_screen(alice):
    action, result = say(alice, "play_media", speaker="Living room display", title="hunger games")
    assert action.params["kind"] == "film"
    assert player(alice).item["id"] == "m001"
    assert result.text == "Playing the film The Hunger Games."


def test_a_title_plays_as_the_audiobook_on_a_speaker_without_a_screen(alice):
    action, result = say(alice, "play_media", speaker="Kitchen speaker", title="hunger games")
    assert action.params["kind"] == "audiobook"
    assert player(alice).item["id"] == "m002"
    assert result.text == "Playing the audiobook The Hunger Games by Suzanne Collins."


def test_a_film_only_title_on_a_speaker_without_a_screen_points_to_the_display(alice):
    _, result = say(alice, "play_media", speaker="Bedroom speaker", title="finding nemo")
    assert not result.ok
    assert "Living room display" in result.text
    assert player(alice).status == "stopped"


def test_an_untitled_request_plays_what_the_home_last_played_else_one_this_device_suits(alice):
    """ "Resume my audiobook", "play me an audiobook": no title to look up."""
    action, result = say(alice, "play_media", speaker="Kitchen speaker")
    assert result.ok and action.params["kind"] == "audiobook" and player(alice).item["type"] == "audiobook"
    first = player(alice).item["id"]
    say(alice, "music_pause")
    say(alice, "play_music", artist="adele")  # a song is not what "resume my audiobook" means
    action, _ = say(alice, "play_media", speaker="Living room display")
    assert action.params["kind"] == "film"  # a screen: a film
    say(alice, "play_media", speaker="Bedroom speaker", title="hunger games")
    action, result = say(alice, "play_media", speaker="Kitchen speaker")
    assert (
        player(alice).item["id"] == "m002"
        and result.text == "Playing the audiobook The Hunger Games by Suzanne Collins."
    )
    say(alice, "play_media", speaker="Living room display", title="finding nemo")
    say(alice, "play_media", speaker="Kitchen speaker")  # a film needs a screen: an audiobook instead
    assert player(alice).item["id"] == first


def test_pause_resume_next_and_whats_playing_follow_the_player(alice):
    _, result = say(alice, "music_pause")
    assert not result.ok and result.text == "Nothing is playing."
    _, result = say(alice, "music_query")
    assert result.text == "Nothing is playing right now."
    say(alice, "play_music", artist="adele")
    _, result = say(alice, "music_query")
    assert result.text == "This is Hello by Adele."
    say(alice, "music_pause")
    assert player(alice).status == "paused"
    _, result = say(alice, "music_resume")
    assert result.ok and player(alice).status == "playing"
    for expected in ("t002", "t003", "t004"):
        _, result = say(alice, "music_next")
        assert result.ok and player(alice).item["id"] == expected
    _, result = say(alice, "music_next")
    assert not result.ok and "last one" in result.text


@pytest.mark.parametrize(
    ("intent", "level", "volume"),
    [("audio_volume_up", None, 6), ("audio_volume_down", None, 4), ("audio_volume_up", "by 3", 8),
     ("audio_volume_set", "7", 7), ("audio_volume_set", "70 percent", 7), ("audio_volume_set", "50", 5),
     ("audio_volume_up", "to 9", 9), ("audio_volume_up", "max", 10), ("audio_volume_down", "2", 2),
     ("audio_volume_up", "2", 7),
     ("audio_volume_set", "15", 2)],
)  # fmt: skip
def test_the_volume_moves_on_a_scale_of_0_to_10_and_a_bare_number_against_the_direction_is_a_step(
    alice, intent, level, volume
):
    slots = {"level": level} if level else {}
    _, result = say(alice, intent, **slots)
    assert result.ok, result.text
    assert player(alice).volume == volume


def test_mute_and_unmute(alice):
    say(alice, "audio_volume_mute")
    assert player(alice).muted is True
    say(alice, "audio_volume_unmute")
    assert player(alice).muted is False


def test_another_users_player_is_untouched(alice, bob):
    say(alice, "play_music", artist="queen")
    say(alice, "audio_volume_set", level="9")
    assert player(bob).status == "stopped" and player(bob).volume == 5


def test_a_genre_said_as_an_artist_or_inside_a_description_still_plays(alice):
    _, result = say(alice, "play_music", genre="old school rap")
    assert result.ok and player(alice).item["genre"] == "hip hop"
    _, result = say(alice, "play_music", artist="r and b", genre="soul")
    assert result.ok and player(alice).item["genre"] == "soul"
