"""The chat WebSocket: utterances in, replies streamed word by word out.

Thin on purpose: frames are parsed by chat.messages, turns run through
pipeline.handle_turn, barge-ins and feedback are stored by feedback.store, and
HTML comes from chat.fragments. What lives here is the socket's own state: the
reply being spoken (a ReplyStream run as an asyncio task so the socket keeps
receiving) and one Session per speaker talked to on this socket.

Turns run on the pipeline's turn threads (assistant/pipeline/threads.py), never on the
one thread that the process's short database calls share, so a Stop is acted on at once
however busy the process is: the words stop in the event loop, the barge-in is stored,
and the exchange is re-rendered from what the socket already knows.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import close_old_connections

from assistant.chat import fragments
from assistant.chat.conversation import TurnView, find_own_speaker, find_own_turn, panel_context, turn_view
from assistant.chat.messages import FeedbackMessage, MessageError, SayMessage, parse_message
from assistant.chat.streaming import ReplyStream
from assistant.pipeline.threads import handle_turn_async
from assistant.pipeline.turn import TurnInputError
from assistant.world import ensure_home, home_group
from feedback.models import BargeIn, Session, Turn
from feedback.store import record_barge_in, record_feedback

log = logging.getLogger(__name__)


def db(fn):
    """A short database call off the event loop, on the loop's small thread pool rather than the
    one thread every socket of the process would otherwise queue on.

    Its connection is released inside the call: asgiref runs the function in a copied context,
    where channels' own clean-up (outside it) does not see the connection, which then stayed
    checked out of the pool for good."""

    def call_and_release(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    return database_sync_to_async(call_and_release, thread_sensitive=False)


PANEL_COALESCE_S = 0.05  # changes arriving together re-render the device panel once
PANEL_SKILLS = frozenset({"music", "timers", "lists"})  # their turns change what the panel shows


class ChatConsumer(AsyncWebsocketConsumer):
    # Class-level defaults so disconnect() is safe even when connect() refused the socket.
    group: str | None = None
    stream: ReplyStream | None = None
    stream_task: asyncio.Task | None = None
    speaking: TurnView | None = None  # the exchange whose reply is being streamed
    panel_task: asyncio.Task | None = None  # a device-panel refresh about to be sent

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()  # before accept(): the handshake is refused with a 403
            return
        self.user = user
        self.sessions: dict[int | None, Session | None] = {}
        home = await db(ensure_home)(user)
        self.group = home_group(home.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        # A closed socket is not a barge-in: nobody stopped the reply, the page went away.
        await self._cancel_stream()
        if self.panel_task is not None:
            self.panel_task.cancel()
        if self.group is None:
            return
        # A dead entry left in the group would be sent every broadcast for a day: try hard.
        for attempt in range(3):
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
                return
            except Exception:
                if attempt == 2:
                    log.exception("could not leave group %s", self.group)
                    return
                await asyncio.sleep(0.2 * (attempt + 1))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = parse_message(text_data)
            if message["type"] == "say":
                await self.on_say(message)
            elif message["type"] == "stop":
                await self.on_stop()
            else:
                await self.on_feedback(message)
        except (MessageError, TurnInputError) as exc:
            await self.send(fragments.error(str(exc)))
        except Exception:
            # One bad frame must not close the conversation; the turn store is untouched.
            log.exception("chat message failed")
            await self.send(fragments.error("Something went wrong. Please try again."))

    # --- messages from the page -------------------------------------------------

    async def on_say(self, message: SayMessage) -> None:
        device = await db(find_own_speaker)(self.user, message["device"])
        # Speaking over the reply interrupts it before the new utterance is handled.
        await self.barge_in(BargeIn.Source.NEW_MESSAGE)
        speaker = device.pk if device else None
        if speaker not in self.sessions:
            # A reloaded page goes on with the conversation it left (if it was recent).
            self.sessions[speaker] = await db(Session.resumable)(self.user, device, Session.Channel.WEB)
        turn: Turn = await handle_turn_async(
            self.user,
            text=message["text"],
            device=device,
            session=self.sessions[speaker],
            channel=Session.Channel.WEB,
            idempotency_key=message.get("key"),
        )
        self.sessions[speaker] = turn.session
        # A new turn has no barge-in or feedback yet: its view needs no query.
        view = await db(turn_view)(turn.pk) if turn.replayed else TurnView.from_new_turn(turn)
        await self.send(fragments.new_turn(view))
        if turn.replayed:
            # The page resent a message whose answer it never got (its socket dropped): show the
            # stored exchange as it is; it was already said, and nothing in the home runs twice.
            await self.send(fragments.reply_done(turn.pk, turn.response))
            return
        self.speaking = view
        self.stream = ReplyStream(turn.pk, turn.response, settings.SPEAKING_RATE_WPS)
        self.stream_task = asyncio.create_task(self._speak(self.stream))
        # Device changes reach the panel through the home's group (devices_changed); the media
        # player, timers and lists are not devices, so their turns refresh the panel themselves.
        if (turn.action or {}).get("skill") in PANEL_SKILLS:
            self.request_panel()

    async def on_stop(self) -> None:
        if not await self.barge_in(BargeIn.Source.STOP):
            # Nothing was being said (the reply ended as Stop was pressed): just hide the button.
            await self.send(fragments.stop_control(streaming=False))

    async def on_feedback(self, message: FeedbackMessage) -> None:
        turn = await db(find_own_turn)(self.user, message["turn_id"])
        await db(record_feedback)(turn, self.user, message["kind"])
        view = await db(turn_view)(turn.pk)
        await self.send(fragments.feedback(view))

    # --- messages from the home's group -------------------------------------------

    async def devices_changed(self, event: dict[str, Any]) -> None:
        self.request_panel()

    async def timer_rang(self, event: dict[str, Any]) -> None:
        await self.send(fragments.notice(str(event.get("text", ""))))
        self.request_panel()  # the timer leaves the panel

    def request_panel(self) -> None:
        """Re-render the device panel soon; requests arriving meanwhile are served by the same render."""
        if self.panel_task is None or self.panel_task.done():
            self.panel_task = asyncio.create_task(self._send_panel_soon())

    async def _send_panel_soon(self) -> None:
        await asyncio.sleep(PANEL_COALESCE_S)
        try:
            context = await db(panel_context)(self.user)
            await self.send(fragments.device_panel(context))
        except Exception:
            log.exception("could not refresh the device panel")

    # --- speaking -----------------------------------------------------------------

    async def _speak(self, stream: ReplyStream) -> None:
        async def send_word(index: int, word: str) -> None:
            await self.send(fragments.word(stream.turn_id, index, word))

        try:
            await stream.run(send_word)
            await self.send(fragments.reply_done(stream.turn_id, stream.text))
            if self.stream is stream:  # spoken to the end: nothing left to interrupt
                self.stream = self.stream_task = self.speaking = None
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("streaming the reply of turn %s failed", stream.turn_id)

    async def _cancel_stream(self) -> ReplyStream | None:
        """Stop the reply being spoken, if any; return its stream (None when there was none)."""
        stream, task = self.stream, self.stream_task
        self.stream = self.stream_task = None
        if task is None:
            return None
        task.cancel()
        # wait() neither raises the task's CancelledError nor swallows our own cancellation.
        await asyncio.wait([task])
        return stream

    async def barge_in(self, source: str) -> bool:
        """Interrupt the reply being spoken and record where; False when nothing was cut."""
        stream = await self._cancel_stream()
        if stream is None:
            return False
        if stream.complete:
            # Every word was out already; make sure the page shows the reply as finished.
            await self.send(fragments.reply_done(stream.turn_id, stream.text))
            return False
        cut = stream.interruption()
        view = self.speaking
        await db(_store_barge_in)(self.user, stream.turn_id, cut.offset_words, cut.offset_ms, source)
        if view is None or view.turn_id != stream.turn_id:
            view = await db(turn_view)(stream.turn_id)
        await self.send(fragments.interrupted_turn(view.cut_at(cut.offset_words)))
        return True


def _store_barge_in(user, turn_id: int, offset_words: int, offset_ms: int, source: str) -> None:
    turn = Turn.objects.get(pk=turn_id)
    record_barge_in(turn, offset_words, offset_ms, source, user=user)
