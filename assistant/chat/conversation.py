"""What the chat page shows and checks, as plain (synchronous) functions.

The view and the consumer both call these: the person's speakers, their recent
turns with barge-ins and feedback, the device panel, and the ownership lookups
that turn an id from the browser into one of the person's own rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Prefetch
from django.utils import timezone

from assistant.chat.messages import MessageError
from assistant.models import Device, ListItem, Timer
from assistant.nlu import serving
from assistant.world import ensure_home
from assistant.world.devices import device_summary, media_summary
from assistant.world.speakers import find_speaker
from feedback.models import BargeIn, Feedback, Turn

HISTORY_LIMIT = 50


def find_own_speaker(user: AbstractBaseUser, device_id: int | None) -> Device | None:
    """The speaker a say frame names (assistant.world.speakers.find_speaker), or a MessageError."""
    if device_id is None:
        return None
    device = find_speaker(user, device_id)
    if device is None:
        raise MessageError("Unknown device: choose one of your speakers.", "wrong_device")
    return device


def find_own_turn(user: AbstractBaseUser, turn_id: int) -> Turn:
    """The person's turn by id. Someone else's turn is reported as unknown, not as forbidden,
    so ids cannot be probed."""
    turn = Turn.objects.filter(pk=turn_id, user=user).first()
    if turn is None:
        raise MessageError("Unknown turn.", "unknown_turn")
    return turn


@dataclass(frozen=True)
class TurnView:
    """One exchange as the page shows it."""

    turn_id: int
    created_at: datetime
    text: str
    response: str
    heard: str  # the words delivered before a barge-in (the whole reply if none)
    unheard: str  # the rest, shown dimmed
    interrupted: bool
    feedback: str | None  # "thumbs_up", "thumbs_down" or None
    device_id: int | None
    device_name: str

    @classmethod
    def from_turn(cls, turn: Turn) -> TurnView:
        words = turn.response.split()
        barge_ins = list(turn.barge_ins.all())  # prefetched, oldest first
        cut = barge_ins[0].offset_words if barge_ins else len(words)
        feedback = list(turn.feedback.all())  # prefetched, oldest first
        return cls(
            turn_id=turn.pk,
            created_at=turn.created_at,
            text=turn.raw_text,
            response=turn.response,
            heard=" ".join(words[:cut]),
            unheard=" ".join(words[cut:]),
            interrupted=bool(barge_ins),
            feedback=feedback[-1].kind if feedback else None,
            device_id=turn.session.device_id,
            device_name=turn.session.device.name if turn.session.device else "",
        )

    @classmethod
    def from_new_turn(cls, turn: Turn) -> TurnView:
        """A turn just stored by handle_turn(): no barge-in or feedback yet, its session in hand."""
        device = turn.session.device
        return cls(
            turn_id=turn.pk,
            created_at=turn.created_at,
            text=turn.raw_text,
            response=turn.response,
            heard=" ".join(turn.response.split()),
            unheard="",
            interrupted=False,
            feedback=None,
            device_id=device.pk if device else None,
            device_name=device.name if device else "",
        )

    def cut_at(self, offset_words: int) -> TurnView:
        """This exchange as it shows once the reply was interrupted after `offset_words` words."""
        words = self.response.split()
        return replace(
            self, heard=" ".join(words[:offset_words]), unheard=" ".join(words[offset_words:]), interrupted=True
        )


def recent_turns(user: AbstractBaseUser, limit: int = HISTORY_LIMIT) -> list[TurnView]:
    """The person's last `limit` turns, oldest first, with what they heard and thought of them."""
    turns = (
        Turn.objects.filter(user=user)
        .select_related("session__device")
        .prefetch_related(
            Prefetch("barge_ins", queryset=BargeIn.objects.order_by("created_at", "id")),
            Prefetch("feedback", queryset=Feedback.objects.order_by("created_at", "id")),
        )
        .order_by("-created_at", "-id")[:limit]
    )
    return [TurnView.from_turn(t) for t in reversed(list(turns))]


def turn_view(turn_id: int) -> TurnView:
    turn = (
        Turn.objects.select_related("session__device")
        .prefetch_related(
            Prefetch("barge_ins", queryset=BargeIn.objects.order_by("created_at", "id")),
            Prefetch("feedback", queryset=Feedback.objects.order_by("created_at", "id")),
        )
        .get(pk=turn_id)
    )
    return TurnView.from_turn(turn)


def panel_context(user: AbstractBaseUser) -> dict[str, Any]:
    """Everything the device panel template needs: devices grouped by room, the media, the timers
    and alarms still to go off, and the lists."""
    home = ensure_home(user)
    rooms: dict[str, list[dict[str, Any]]] = {}
    for row in device_summary(home):
        rooms.setdefault(str(row.get("room") or "elsewhere"), []).append(row)
    now = timezone.now()
    timers = [
        {
            "kind": t.kind,
            "name": t.spoken_name.capitalize() if t.kind == Timer.Kind.TIMER else f"Alarm {t.label}".strip(),
            "fires_at": t.fires_at.isoformat(),
            "left": countdown(t.fires_at - now),
        }
        for t in home.timers.filter(cancelled_at=None, rang_at=None, fires_at__gt=now)
    ]
    lists: dict[str, list[str]] = {}
    for item in ListItem.objects.filter(home=home, done=False):
        lists.setdefault(item.list_name, []).append(item.text)
    return {
        "home": home,
        "rooms": sorted(rooms.items()),
        "media": media_summary(home),
        "timers": timers,
        "lists": sorted(lists.items()),
        "understanding": serving(),
    }


def countdown(left) -> str:
    """ "9:58", "1:02:03": the time left on a timer as the panel shows it (static/js/chat.js ticks it)."""
    seconds = max(0, int(left.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
