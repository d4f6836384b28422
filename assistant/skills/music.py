"""Music and media over the demo catalogue: play, pause, resume, next, what's playing, volume.

Context rule: a title that exists as a film and an audiobook ("the hunger
games") plays as the film on a device with a screen (ctx.has_screen) and as the
audiobook otherwise. A film-only title asked of a speaker without a screen is
refused with a pointer to a device that has one.

The home has one MediaPlayer (the speakers play together); `item` is the
catalogue entry playing, `queue` the catalogue ids still to come.
"""

from __future__ import annotations

from typing import Any

from assistant.models import Device, Home, MediaPlayer
from assistant.skills.base import Request, failed
from assistant.skills.liking import liked
from assistant.skills.values import parse_level
from assistant.turns import Action, SkillResult, TurnContext
from assistant.world import catalogue as cat
from teaching.models import Preference

VOLUME_MAX = 10
VOLUME_STEP = 1


def _by(item: dict[str, Any]) -> str:
    who = item.get("artist") or item.get("author")
    return f" by {who}" if who else ""


def _describe(item: dict[str, Any]) -> str:
    kind = item.get("type")
    if kind == "film":
        return f"the film {item['title']}"
    if kind == "audiobook":
        return f"the audiobook {item['title']}{_by(item)}"
    return f"{item['title']}{_by(item)}"


# --- resolve -----------------------------------------------------------------------


def resolve(req: Request) -> Action:
    intent = req.intent
    if intent == "play_music":
        return _resolve_play_music(req)
    if intent == "play_media":
        return _resolve_play_media(req)
    if intent.startswith("audio_volume_"):
        return _resolve_volume(req)
    return req.action()  # pause, resume, next, query: decided against the player's state


def _play(req: Request, tracks: list[dict], label: str, kind: str, **chosen: str) -> Action:
    """`chosen`: the genre or artist played, and the preference it came from if the user did not say it
    (what the preference models learn from)."""
    return req.action(kind=kind, label=label, item_ids=[t["id"] for t in tracks], **chosen)


def _resolve_play_music(req: Request) -> Action:
    song, artist_text = req.slot("song"), req.slot("artist")
    playlist_text, genre_text = req.slot("playlist"), req.slot("genre")
    artist = cat.find_artist(artist_text) if artist_text else None

    if song:
        track = cat.find_song(song, artist[0] if artist else None)
        if track is not None:
            return _play(req, [track], _describe(track), "song")
        # The NLU sometimes tags an artist or a playlist as a song.
        if (other := cat.find_artist(song)) is not None:
            return _play(req, other[1], f"songs by {other[0]}", "artist", artist=other[0])
        if (playlist := cat.find_playlist(song)) is not None:
            return _play_playlist(req, playlist)
        return req.fail(f"I couldn't find the song {song}.", not_found="song")
    if playlist_text:
        playlist = cat.find_playlist(playlist_text)
        if playlist is None:
            names = ", ".join(p["name"] for p in cat.catalogue()["playlists"])
            return req.fail(f"I couldn't find a playlist called {playlist_text}. Your playlists are {names}.")
        return _play_playlist(req, playlist)
    if artist_text:
        if artist is None:
            if (track := cat.find_song(artist_text)) is not None:
                return _play(req, [track], _describe(track), "song")
            if (genre := cat.find_genre(genre_text or artist_text)) is not None:
                return _play(req, genre[1], f"some {genre[0]}", "genre", genre=genre[0])
            return req.fail(f"I couldn't find any music by {artist_text}.", not_found="artist")
        return _play(req, artist[1], f"songs by {artist[0]}", "artist", artist=artist[0])
    if genre_text:
        genre = cat.find_genre(genre_text)
        if genre is None:
            return req.fail(f"I don't have any {genre_text} music.", not_found="genre")
        return _play(req, genre[1], f"some {genre[0]}", "genre", genre=genre[0])
    # "play some music": the music the user likes (taught, or inferred), else a mix that changes by day.
    genre_liked = liked(req.ctx.user_id, Preference.Kind.GENRE)
    if genre_liked and (genre := cat.find_genre(genre_liked.value)) is not None:
        label = f"some {genre[0]}, {genre_liked.because}"
        return _play(req, genre[1], label, "genre", genre=genre[0], preference=genre_liked.source)
    artist_liked = liked(req.ctx.user_id, Preference.Kind.ARTIST)
    if artist_liked and (artist := cat.find_artist(artist_liked.value)) is not None:
        label = f"songs by {artist[0]}, {artist_liked.because}"
        return _play(req, artist[1], label, "artist", artist=artist[0], preference=artist_liked.source)
    tracks = list(cat.catalogue()["tracks"])
    start = req.ctx.now.toordinal() % len(tracks)
    return _play(req, tracks[start:] + tracks[:start], "a mix of your music", "mix")


def _play_playlist(req: Request, playlist: dict) -> Action:
    items = cat.items_by_id()
    tracks = [items[i] for i in playlist["track_ids"] if i in items]
    return _play(req, tracks, f"the {playlist['name']} playlist", "playlist")


def _resolve_play_media(req: Request) -> Action:
    title = req.slot("title") or req.slot("song") or req.slot("playlist") or req.slot("artist")
    if not title:
        return _resolve_untitled_media(req)
    versions = cat.find_media(title)
    if versions:
        films = [m for m in versions if m["type"] == "film"]
        books = [m for m in versions if m["type"] == "audiobook"]
        if req.ctx.has_screen and films:
            return _play(req, films[:1], _describe(films[0]), "film")
        if books:
            return _play(req, books[:1], _describe(books[0]), "audiobook")
        screens = list(
            req.home.devices.filter(kind=Device.Kind.SPEAKER, has_screen=True).values_list("name", flat=True)
        )
        hint = f" Ask the {screens[0]} to watch it." if screens else ""
        return req.fail(f"{films[0]['title']} is a film, and this speaker has no screen.{hint}")
    if (track := cat.find_song(title)) is not None:
        return _play(req, [track], _describe(track), "song")
    if (artist := cat.find_artist(title)) is not None:
        return _play(req, artist[1], f"songs by {artist[0]}", "artist", artist=artist[0])
    return req.fail(f"I couldn't find {title}.", not_found="title")


def _resolve_untitled_media(req: Request) -> Action:
    """ "Resume my audiobook", "play me an audiobook": what the home last played, if this device can
    play it (a film needs a screen), else one from the catalogue of the kind this device suits (a film
    on a screen, else an audiobook), a different one each day, as "play some music" does."""
    player = MediaPlayer.objects.filter(home=req.home).values_list("item", flat=True).first() or {}
    playable = ("film", "audiobook") if req.ctx.has_screen else ("audiobook",)
    last = cat.items_by_id().get(player.get("id")) if player.get("type") in playable else None
    if last is not None:
        return _play(req, [last], _describe(last), last["type"])
    kind = "film" if req.ctx.has_screen else "audiobook"
    media = [m for m in cat.catalogue()["media"] if m["type"] == kind]
    if not media:
        return req.fail("What would you like to play?", needs="title")
    pick = media[req.ctx.now.toordinal() % len(media)]
    return _play(req, [pick], _describe(pick), kind)


def _resolve_volume(req: Request) -> Action:
    intent = req.intent
    if intent == "audio_volume_mute":
        return req.action(muted=True)
    if intent == "audio_volume_unmute":
        return req.action(muted=False)
    level = parse_level(req.slot("level") or "")
    if intent == "audio_volume_set":
        if level is None or level.on_scale(VOLUME_MAX) is None:
            return req.fail("What volume would you like, from 0 to 10?", needs="level")
        if level.relative:
            return req.action(delta=level.on_scale(VOLUME_MAX))
        return req.action(volume=max(0, min(VOLUME_MAX, level.on_scale(VOLUME_MAX) or 0)))
    sign = 1 if intent == "audio_volume_up" else -1
    if level is None:
        return req.action(delta=sign * VOLUME_STEP)
    amount = level.on_scale(VOLUME_MAX) or VOLUME_STEP
    if level.relative:
        return req.action(delta=sign * amount)
    # "up to 8" is a target; "up 2" (a target below the current volume) is a change.
    return req.action(volume=max(0, min(VOLUME_MAX, amount)), or_delta=sign * amount)


# --- execute --------------------------------------------------------------------------


def _player(home: Home) -> MediaPlayer:
    player, _ = MediaPlayer.objects.select_for_update().get_or_create(home=home)
    return player


def _now_playing(player: MediaPlayer) -> dict[str, Any]:
    return {
        "status": player.status,
        "item": player.item,
        "queue": player.queue,
        "volume": player.volume,
        "muted": player.muted,
    }


def execute(action: Action, ctx: TurnContext, home: Home) -> SkillResult:
    player = _player(home)
    intent, params = action.intent, action.params
    if intent in ("play_music", "play_media"):
        items = cat.items_by_id()
        ids = [i for i in params.get("item_ids") or [] if i in items]
        if not ids:
            return failed("I couldn't find anything to play.")
        player.item = {**items[ids[0]], "device_id": ctx.device_id}
        player.queue = ids[1:]
        player.status = "playing"
        player.save()
        label = params.get("label") or _describe(player.item)
        first = _describe(player.item)
        text = f"Playing {label}." if label == first else f"Playing {label}, starting with {first}."
        return SkillResult(text=text, data=_now_playing(player))
    if intent == "music_pause":
        if player.status != "playing":
            return failed("Nothing is playing.", **_now_playing(player))
        player.status = "paused"
        player.save()
        return SkillResult(text="Paused.", data=_now_playing(player))
    if intent == "music_resume":
        if player.status == "playing":
            return SkillResult(text=f"Already playing {_describe(player.item)}.", data=_now_playing(player))
        if not player.item:
            return failed("There's nothing to resume. Ask me to play something.", **_now_playing(player))
        player.status = "playing"
        player.save()
        return SkillResult(text=f"Resuming {_describe(player.item)}.", data=_now_playing(player))
    if intent == "music_next":
        if not player.item or player.status == "stopped":
            return failed("Nothing is playing.", **_now_playing(player))
        items = cat.items_by_id()
        queue = [i for i in player.queue or [] if i in items]
        if not queue:
            return failed("That's the last one in the queue.", **_now_playing(player))
        player.item = {**items[queue[0]], "device_id": ctx.device_id}
        player.queue = queue[1:]
        player.status = "playing"
        player.save()
        return SkillResult(text=f"Next up: {_describe(player.item)}.", data=_now_playing(player))
    if intent == "music_query":
        if not player.item or player.status == "stopped":
            return SkillResult(text="Nothing is playing right now.", data=_now_playing(player))
        state = "This is" if player.status == "playing" else "Paused on"
        return SkillResult(text=f"{state} {_describe(player.item)}.", data=_now_playing(player))
    return _execute_volume(player, intent, params)


def _execute_volume(player: MediaPlayer, intent: str, params: dict[str, Any]) -> SkillResult:
    if "muted" in params:
        player.muted = bool(params["muted"])
        player.save()
        return SkillResult(text="Muted." if player.muted else "Unmuted.", data=_now_playing(player))
    volume = player.volume
    if "volume" in params:
        target = int(params["volume"])
        or_delta = params.get("or_delta")
        if or_delta is not None and (or_delta > 0) != (target > volume):
            target = volume + int(or_delta)
    else:
        target = volume + int(params.get("delta", 0))
    target = max(0, min(VOLUME_MAX, target))
    if intent == "audio_volume_up" and target == volume == VOLUME_MAX:
        return SkillResult(text="The volume is already at its maximum.", data=_now_playing(player))
    if intent == "audio_volume_down" and target == volume == 0:
        return SkillResult(text="The volume is already at its lowest.", data=_now_playing(player))
    player.volume = target
    player.muted = False if target > 0 else player.muted
    player.save()
    return SkillResult(text=f"Volume {target}.", data=_now_playing(player))
