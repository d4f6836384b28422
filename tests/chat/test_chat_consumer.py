"""The chat WebSocket, driven through the real ASGI application (auth, origin check,
routing) with Postgres, Redis channel layer and the trained NLU model."""

from __future__ import annotations

import asyncio
import html
import json
import re

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

from assistant.asgi import application
from assistant.models import Device
from assistant.world import home_group
from assistant.world.devices import describe_state
from feedback.models import BargeIn, Feedback, Session, Turn

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

# The first turn of a test session loads the model; later frames are quick.
FIRST_TURN_TIMEOUT = 60
WORD_RE = re.compile(r'hx-swap-oob="beforeend:#reply-(\d+)">\s?<span class="w">(.*?)</span>')
# A new exchange appended to the conversation (an interrupted one is re-rendered in place).
NEW_TURN = r'beforeend:#messages">\s*<li class="exchange" id="turn-(\d+)"'
# A request with a several-word answer whatever the skills say exactly.
UTTERANCE = "what's the weather like today"


@pytest_asyncio.fixture(autouse=True)
async def close_thread_connections():
    """The consumer's ORM calls run in asgiref's sync thread; close its connections after
    each test so the test database can be flushed and dropped."""
    yield
    await sync_to_async(connections.close_all)()


def _speakers(user) -> tuple[Device, Device]:
    home = user.home
    kitchen, _ = Device.objects.get_or_create(
        home=home, name="Kitchen speaker", defaults={"kind": "speaker", "room": "kitchen"}
    )
    display, _ = Device.objects.get_or_create(
        home=home,
        name="Living room display",
        defaults={"kind": "speaker", "room": "living room", "has_screen": True},
    )
    Device.objects.get_or_create(
        home=home, name="Kitchen light", defaults={"kind": "light", "room": "kitchen", "state": {"on": False}}
    )
    return kitchen, display


def _cookie_for(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture
def alice_speakers(alice):
    return _speakers(alice)


@pytest.fixture
def bob_speakers(bob):
    return _speakers(bob)


@pytest.fixture
def alice_cookie(alice):
    return _cookie_for(alice)


@pytest.fixture
def fast_speech(settings):
    settings.SPEAKING_RATE_WPS = 1000


@pytest.fixture
def slow_speech(settings):
    # Slow enough that a stop sent after the first word lands mid-reply.
    settings.SPEAKING_RATE_WPS = 4


async def _cookie_for_async(user) -> str:
    return await sync_to_async(_cookie_for)(user)


def communicator(cookie: str | None) -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/chat/", headers=headers)


async def connected(cookie: str) -> WebsocketCommunicator:
    comm = communicator(cookie)
    ok, _ = await comm.connect(timeout=5)
    assert ok
    return comm


async def frames_until(comm: WebsocketCommunicator, pattern: str, timeout: float = 5) -> list[str]:
    """Collect frames until one matches `pattern` (a regex); fail if it never comes."""
    frames: list[str] = []
    while True:
        frame = await comm.receive_from(timeout=timeout)
        frames.append(frame)
        if re.search(pattern, frame):
            return frames


def words_in(frames: list[str], turn_id: int) -> list[str]:
    return [html.unescape(w) for f in frames for tid, w in WORD_RE.findall(f) if int(tid) == turn_id]


def turn_id_in(frames: list[str]) -> int:
    for frame in frames:
        match = re.search(NEW_TURN, frame)
        if match:
            return int(match.group(1))
    raise AssertionError("no new turn in frames")


async def say(comm: WebsocketCommunicator, text: str, device: Device | None, timeout: float = FIRST_TURN_TIMEOUT):
    """Send an utterance; return (turn_id, frames up to and including the new turn)."""
    await comm.send_to(text_data=json.dumps({"type": "say", "text": text, "device": str(device.pk) if device else ""}))
    frames = await frames_until(comm, NEW_TURN, timeout=timeout)
    return turn_id_in(frames), frames


async def error_frame(comm: WebsocketCommunicator) -> str:
    frames = await frames_until(comm, r'id="chat-error"')
    return frames[-1]


def error_text(frame: str) -> str:
    return re.search(r'<div id="chat-error"[^>]*>(.*?)</div>', frame, re.S).group(1).strip()


# --- connecting ---------------------------------------------------------------


async def test_it_rejects_an_unauthenticated_socket(db):
    comm = communicator(None)
    ok, _ = await comm.connect(timeout=5)
    assert not ok
    await comm.disconnect()


async def test_it_rejects_a_socket_with_a_made_up_session(db):
    comm = communicator("not-a-session-key")
    ok, _ = await comm.connect(timeout=5)
    assert not ok
    await comm.disconnect()


async def test_it_rejects_a_foreign_origin(alice_cookie):
    comm = WebsocketCommunicator(
        application,
        "/ws/chat/",
        headers=[(b"origin", b"http://evil.example"), (b"cookie", f"sessionid={alice_cookie}".encode())],
    )
    ok, _ = await comm.connect(timeout=5)
    assert not ok
    await comm.disconnect()


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        (b"http://testserver:9999", b"testserver"),  # the allowed host, another port: another program's page
        (b"http://testserver", b"testserver:8000"),
        (b"https://testserver", b"testserver"),  # an https page cannot have opened this ws:// socket
        (b"http://testserver", b"evil.example"),  # a Host that is not one of ALLOWED_HOSTS
        (b"null", b"testserver"),
        (b"http://testserver:notaport", b"testserver"),
    ],
)
async def test_it_rejects_an_origin_that_is_not_this_exact_site(alice_cookie, origin, host):
    headers = [(b"origin", origin), (b"host", host), (b"cookie", f"sessionid={alice_cookie}".encode())]
    comm = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
    ok, _ = await comm.connect(timeout=5)
    assert not ok
    await comm.disconnect()


async def test_it_accepts_the_same_port_and_a_trusted_origin(alice, alice_cookie, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://assistant.example"]
    cookie = (b"cookie", f"sessionid={alice_cookie}".encode())
    for origin, host in (
        (b"http://testserver:8000", b"testserver:8000"),
        (b"https://assistant.example", b"testserver"),
    ):
        comm = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", origin), (b"host", host), cookie])
        ok, _ = await comm.connect(timeout=5)
        assert ok, (origin, host)
        await comm.disconnect()


# --- a turn -------------------------------------------------------------------


async def test_it_streams_the_reply_word_by_word_and_stores_the_turn(
    nlu_model, alice, alice_speakers, alice_cookie, fast_speech
):
    kitchen, _ = alice_speakers
    comm = await connected(alice_cookie)
    try:
        turn_id, frames = await say(comm, UTTERANCE, kitchen)
        frames += await frames_until(comm, rf'id="status-{turn_id}" hx-swap-oob="true"')
        turn = await database_sync_to_async(Turn.objects.select_related("session").get)(pk=turn_id)
        streamed = words_in(frames, turn_id)
        # One frame per word, in order, making up exactly the stored reply.
        assert streamed == turn.response.split()
        assert len(streamed) >= 2
        assert turn.user_id == alice.pk
        assert turn.raw_text == UTTERANCE
        assert turn.session.channel == Session.Channel.WEB
        assert turn.session.device_id == kitchen.pk
        assert turn.context["room"] == "kitchen"
        # The stop button is hidden again once the reply is over.
        assert 'id="stop"' in frames[-1]
        assert "hidden" in frames[-1].split('id="stop"')[1].split(">")[0]
    finally:
        await comm.disconnect()


async def test_it_paces_the_reply_at_the_speaking_rate(nlu_model, alice, alice_speakers, alice_cookie, settings):
    settings.SPEAKING_RATE_WPS = 20  # 50 ms a word
    kitchen, _ = alice_speakers
    comm = await connected(alice_cookie)
    try:
        loop = asyncio.get_running_loop()
        turn_id, _ = await say(comm, UTTERANCE, kitchen)
        announced = loop.time()  # the exchange is sent before its first word
        arrivals = []
        while True:
            frame = await comm.receive_from(timeout=5)
            if WORD_RE.search(frame):
                arrivals.append(loop.time())
            if f'id="status-{turn_id}" hx-swap-oob="true"' in frame:
                break
        assert len(arrivals) >= 3
        # Word n is not sent before n/rate seconds after the first: no bursts, whatever the load.
        assert arrivals[-1] - announced >= (len(arrivals) - 1) / 20
    finally:
        await comm.disconnect()


async def test_turns_on_one_socket_share_a_session_per_device(
    nlu_model, alice, alice_speakers, alice_cookie, fast_speech
):
    kitchen, display = alice_speakers
    comm = await connected(alice_cookie)
    try:
        first, _ = await say(comm, UTTERANCE, kitchen)
        second, _ = await say(comm, "turn on the kitchen light", kitchen)
        third, _ = await say(comm, UTTERANCE, display)
        sessions = await database_sync_to_async(
            lambda: {t.pk: t.session_id for t in Turn.objects.filter(pk__in=[first, second, third])}
        )()
        assert sessions[first] == sessions[second]
        assert sessions[third] != sessions[first]
    finally:
        await comm.disconnect()


async def test_a_reloaded_page_goes_on_with_the_recent_conversation(
    nlu_model, alice, alice_speakers, alice_cookie, fast_speech
):
    kitchen, _ = alice_speakers
    comm = await connected(alice_cookie)
    try:
        before, _ = await say(comm, UTTERANCE, kitchen)
    finally:
        await comm.disconnect()
    comm = await connected(alice_cookie)  # the page was reloaded: a new socket
    try:
        after, _ = await say(comm, "turn on the kitchen light", kitchen)
    finally:
        await comm.disconnect()
    sessions = await database_sync_to_async(
        lambda: {t.pk: t.session_id for t in Turn.objects.filter(pk__in=[before, after])}
    )()
    assert sessions[after] == sessions[before]


async def test_the_answer_to_the_assistants_question_completes_the_request(
    nlu_model, alice, alice_speakers, alice_cookie, fast_speech
):
    """ "is it on" -> "Which device do you want to know about?" -> "the garage door": the answer fills
    the question's device (the garage stays closed), on the same socket and session."""
    kitchen, _ = alice_speakers
    comm = await connected(alice_cookie)
    try:
        asked, _ = await say(comm, "is it on", kitchen)
        answered, _ = await say(comm, "the garage door", kitchen)
        turns = await database_sync_to_async(lambda: {t.pk: t for t in Turn.objects.filter(pk__in=[asked, answered])})()
        assert turns[asked].response == "Which device do you want to know about?"
        assert turns[answered].intent == "iot_device_query"
        assert "garage door is closed" in turns[answered].response.lower()
        garage = await database_sync_to_async(lambda: Device.objects.get(home=alice.home, kind="garage_door"))()
        assert garage.state["open"] is False
    finally:
        await comm.disconnect()


async def test_it_refreshes_the_device_panel_after_a_turn(nlu_model, alice, alice_speakers, alice_cookie, fast_speech):
    kitchen, _ = alice_speakers
    comm = await connected(alice_cookie)
    try:
        _, frames = await say(comm, "turn on the kitchen light", kitchen)
        frames += await frames_until(comm, r'<aside id="device-panel"[^>]*hx-swap-oob="true"')
        panel = frames[-1]
        light = await database_sync_to_async(Device.objects.get)(home=alice.home, name="Kitchen light")
        assert light.state["on"] is True  # the turn did it
        entry = panel.split(f'data-device-id="{light.pk}"')[1].split("</li>")[0]
        assert "Kitchen light" in entry
        assert html.escape(describe_state(light)) in entry
    finally:
        await comm.disconnect()


async def test_timers_and_lists_show_in_the_panel_as_they_change(
    nlu_model, alice, alice_speakers, alice_cookie, fast_speech
):
    kitchen, _ = alice_speakers
    comm = await connected(alice_cookie)
    try:
        _, frames = await say(comm, "set a timer for 10 minutes", kitchen)
        frames += await frames_until(comm, r'<aside id="device-panel"[^>]*hx-swap-oob="true"')
        timers = frames[-1].split('class="timers"')[1].split("</section>")[0]
        assert "10-minute timer" in timers and re.search(
            r'<time class="countdown" datetime="[^"]+" data-kind="timer">(9:5\d|10:00)<', timers
        )
        _, frames = await say(comm, "add milk to my shopping list", kitchen)
        frames += await frames_until(comm, r'<aside id="device-panel"[^>]*hx-swap-oob="true"')
        shopping = frames[-1].split('data-list="shopping"')[1].split("</section>")[0]
        assert "<li>milk</li>" in shopping
    finally:
        await comm.disconnect()


async def test_it_rerenders_the_panel_when_the_home_group_says_devices_changed(alice, alice_speakers, alice_cookie):
    comm = await connected(alice_cookie)
    try:
        light = await database_sync_to_async(Device.objects.get)(home=alice.home, name="Kitchen light")
        light.name = "Pantry lamp"
        await database_sync_to_async(light.save)()
        await get_channel_layer().group_send(
            home_group(alice.home.pk), {"type": "devices.changed", "device_ids": [light.pk]}
        )
        frames = await frames_until(comm, r'<aside id="device-panel"')
        assert "Pantry lamp" in frames[-1]
    finally:
        await comm.disconnect()


async def test_a_timer_that_rings_is_announced_in_the_conversation(alice, alice_speakers, alice_cookie):
    from datetime import timedelta

    from django.utils import timezone

    from assistant.models import Timer
    from assistant.world.alarms import ring_due_timers

    comm = await connected(alice_cookie)
    try:
        now = timezone.now()
        await database_sync_to_async(Timer.objects.create)(
            home=alice.home, kind="timer", label="<b>5 minute</b>", fires_at=now - timedelta(seconds=1)
        )
        await database_sync_to_async(ring_due_timers)(now)
        frames = await frames_until(comm, r'class="notice"')
        assert "Your timer for &lt;b&gt;5 minute&lt;/b&gt; is done." in frames[-1]
    finally:
        await comm.disconnect()


# --- barge-in -----------------------------------------------------------------


async def test_stop_mid_reply_stores_a_barge_in_and_stops_the_words(
    nlu_model, alice, alice_speakers, alice_cookie, slow_speech
):
    kitchen, _ = alice_speakers
    comm = await connected(alice_cookie)
    try:
        turn_id, frames = await say(comm, UTTERANCE, kitchen)
        # The first word goes out at once; the second only after 250 ms.
        frames += await frames_until(comm, rf"beforeend:#reply-{turn_id}")
        await asyncio.sleep(0.05)
        await comm.send_to(text_data=json.dumps({"type": "stop"}))
        frames += await frames_until(comm, r"Interrupted")
        delivered = words_in(frames, turn_id)

        barge_ins = await database_sync_to_async(lambda: list(BargeIn.objects.filter(turn_id=turn_id)))()
        assert len(barge_ins) == 1
        barge_in = barge_ins[0]
        assert barge_in.source == BargeIn.Source.STOP
        assert barge_in.offset_words == len(delivered) == 1
        # Stop went out 50 ms after the first word (no upper bound: speed is for the benchmarks).
        assert barge_in.offset_ms >= 40
        # Nothing more is spoken after the stop.
        assert await comm.receive_nothing(timeout=0.6)
        turn = await database_sync_to_async(Turn.objects.get)(pk=turn_id)
        assert len(turn.response.split()) > 1  # the stored reply is whole
    finally:
        await comm.disconnect()


async def test_stop_is_acted_on_while_other_turns_are_still_running(
    nlu_model, alice, bob, alice_speakers, bob_speakers, alice_cookie, slow_speech, monkeypatch
):
    """A busy process must not queue a Stop behind other people's turns: with bob's turns
    held mid-pipeline on every turn thread, alice's Stop still interrupts her reply."""
    import threading

    from assistant.pipeline import threads

    release = threading.Event()
    held = threading.Semaphore(0)
    real_handle_turn = threads.handle_turn

    def slow_for_bob(user, **kwargs):
        if user.pk == bob.pk:
            held.release()
            release.wait(timeout=60)
        return real_handle_turn(user, **kwargs)

    monkeypatch.setattr(threads, "handle_turn", slow_for_bob)
    kitchen, _ = alice_speakers
    bob_kitchen, _ = bob_speakers
    alice_comm = await connected(alice_cookie)
    bob_cookie = await _cookie_for_async(bob)
    bob_comms = [await connected(bob_cookie) for _ in range(settings.TURN_THREADS)]
    try:
        turn_id, frames = await say(alice_comm, UTTERANCE, kitchen)
        frames += await frames_until(alice_comm, rf"beforeend:#reply-{turn_id}")
        for comm in bob_comms:  # every turn thread now holds one of bob's turns
            await comm.send_to(text_data=json.dumps({"type": "say", "text": "hello", "device": str(bob_kitchen.pk)}))
        for _ in bob_comms:
            assert await asyncio.to_thread(held.acquire, True, 30)
        await alice_comm.send_to(text_data=json.dumps({"type": "stop"}))
        frames += await frames_until(alice_comm, r"Interrupted")
        assert not release.is_set()  # interrupted while bob's turns were still running
        barge_in = await database_sync_to_async(BargeIn.objects.get)(turn_id=turn_id)
        assert barge_in.offset_words == len(words_in(frames, turn_id))
    finally:
        release.set()
        for comm in bob_comms:
            await frames_until(comm, NEW_TURN, timeout=FIRST_TURN_TIMEOUT)
            await comm.disconnect()
        await alice_comm.disconnect()


async def test_a_new_message_mid_reply_is_a_barge_in_then_a_new_turn(
    nlu_model, alice, alice_speakers, alice_cookie, slow_speech
):
    kitchen, _ = alice_speakers
    comm = await connected(alice_cookie)
    try:
        first, frames = await say(comm, UTTERANCE, kitchen)
        frames += await frames_until(comm, rf"beforeend:#reply-{first}")
        second, more = await say(comm, "turn on the kitchen light", kitchen)
        assert second != first
        assert any("Interrupted" in f and f'id="turn-{first}"' in f for f in more)

        barge_in = await database_sync_to_async(BargeIn.objects.get)(turn_id=first)
        assert barge_in.source == BargeIn.Source.NEW_MESSAGE
        assert barge_in.offset_words == 1
        assert await database_sync_to_async(Turn.objects.filter(pk=second, user=alice).exists)()
        # The new reply streams; the interrupted one does not resume.
        later = await frames_until(comm, rf"beforeend:#reply-{second}")
        assert not words_in(later, first)
    finally:
        await comm.disconnect()


async def test_stop_after_the_reply_ended_records_nothing(nlu_model, alice, alice_speakers, alice_cookie, fast_speech):
    kitchen, _ = alice_speakers
    comm = await connected(alice_cookie)
    try:
        turn_id, _ = await say(comm, UTTERANCE, kitchen)
        await frames_until(comm, rf'id="status-{turn_id}" hx-swap-oob="true"')
        await comm.send_to(text_data=json.dumps({"type": "stop"}))
        frames = await frames_until(comm, r'id="stop-control"')
        assert "Interrupted" not in frames[-1]
        assert not await database_sync_to_async(BargeIn.objects.filter(turn_id=turn_id).exists)()
    finally:
        await comm.disconnect()


async def test_closing_the_socket_mid_reply_cancels_cleanly_and_keeps_the_turn(
    nlu_model, alice, alice_speakers, alice_cookie, slow_speech
):
    kitchen, _ = alice_speakers
    comm = await connected(alice_cookie)
    turn_id, _ = await say(comm, UTTERANCE, kitchen)
    await frames_until(comm, rf"beforeend:#reply-{turn_id}")
    await comm.disconnect()  # raises if the consumer crashed while closing
    await asyncio.sleep(0.5)
    assert await database_sync_to_async(Turn.objects.filter(pk=turn_id).exists)()
    # A page going away is not an interruption.
    assert not await database_sync_to_async(BargeIn.objects.filter(turn_id=turn_id).exists)()


# --- feedback -----------------------------------------------------------------


async def test_thumbs_up_then_down_is_stored_and_shown(nlu_model, alice, alice_speakers, alice_cookie, fast_speech):
    kitchen, _ = alice_speakers
    comm = await connected(alice_cookie)
    try:
        turn_id, _ = await say(comm, UTTERANCE, kitchen)
        await frames_until(comm, rf'id="status-{turn_id}" hx-swap-oob="true"')
        for kind in ("thumbs_up", "thumbs_up", "thumbs_down"):
            await comm.send_to(
                text_data=json.dumps({"type": "feedback", "turn_id": str(turn_id), "kind": kind, "HEADERS": {}})
            )
            frames = await frames_until(comm, rf'id="feedback-{turn_id}"')
            pressed = re.findall(r'"kind": "(\w+)"}\'\s+aria-pressed="true"', frames[-1])
            assert pressed == [kind]
        kinds = await database_sync_to_async(
            lambda: list(Feedback.objects.filter(turn_id=turn_id).order_by("id").values_list("kind", flat=True))
        )()
        # Pressing the same thumb twice adds nothing; changing one's mind adds a row.
        assert kinds == ["thumbs_up", "thumbs_down"]
    finally:
        await comm.disconnect()


async def test_feedback_on_someone_elses_turn_is_refused(
    nlu_model, alice, bob, alice_speakers, bob_speakers, alice_cookie, fast_speech
):
    bob_turn = await database_sync_to_async(_bob_turn)(bob, bob_speakers[0])
    comm = await connected(alice_cookie)
    try:
        await comm.send_to(text_data=json.dumps({"type": "feedback", "turn_id": bob_turn.pk, "kind": "thumbs_down"}))
        assert error_text(await error_frame(comm)) == "Unknown turn."
        assert not await database_sync_to_async(Feedback.objects.filter(turn=bob_turn).exists)()
    finally:
        await comm.disconnect()


def _bob_turn(bob, device):
    from assistant.pipeline.turn import handle_turn

    return handle_turn(bob, text=UTTERANCE, device=device, channel="web")


# --- bad input ----------------------------------------------------------------

BAD_FRAMES = [
    pytest.param("{not json", "not valid JSON", id="malformed-json"),
    pytest.param('"just a string"', "must be a JSON object", id="json-not-an-object"),
    pytest.param("[1, 2]", "must be a JSON object", id="json-array"),
    pytest.param(json.dumps({"text": "hello"}), "needs a `type`", id="missing-type"),
    pytest.param(json.dumps({"type": "dance"}), "Unknown message type", id="unknown-type"),
    pytest.param(json.dumps({"type": "say", "device": ""}), "Say something", id="say-missing-text"),
    pytest.param(json.dumps({"type": "say", "text": "hi"}), "Choose the device", id="say-missing-device"),
    pytest.param(json.dumps({"type": "say", "text": "   \n\t ", "device": ""}), "Say something", id="blank-text"),
    pytest.param(json.dumps({"type": "say", "text": "", "device": ""}), "Say something", id="empty-text"),
    pytest.param(json.dumps({"type": "say", "text": 42, "device": ""}), "must be a string", id="text-not-a-string"),
    pytest.param(json.dumps({"type": "say", "text": "a" * 1001, "device": ""}), "longer than 1000", id="too-long"),
    pytest.param(json.dumps({"type": "say", "text": "hi\x00", "device": ""}), "NUL", id="nul-char"),
    pytest.param(json.dumps({"type": "say", "text": "hi", "device": "99999999"}), "Unknown device", id="no-device"),
    pytest.param(json.dumps({"type": "say", "text": "hi", "device": "kitchen"}), "must be an id", id="device-junk"),
    pytest.param(json.dumps({"type": "say", "text": "hi", "device": True}), "must be an id", id="device-bool"),
    pytest.param(json.dumps({"type": "say", "text": "hi", "device": -3}), "must be an id", id="device-negative"),
    pytest.param(json.dumps({"type": "feedback", "kind": "thumbs_up"}), "needs `turn_id`", id="fb-missing-turn"),
    pytest.param(json.dumps({"type": "feedback", "turn_id": 1}), "needs `turn_id`", id="fb-missing-kind"),
    pytest.param(json.dumps({"type": "feedback", "turn_id": 1, "kind": "meh"}), "thumbs_up or", id="fb-kind"),
    pytest.param(
        json.dumps({"type": "feedback", "turn_id": 99999999, "kind": "thumbs_up"}), "Unknown turn", id="fb-no-turn"
    ),
    pytest.param(
        json.dumps({"type": "feedback", "turn_id": "1; drop", "kind": "thumbs_up"}), "must be an id", id="fb-junk-id"
    ),
    pytest.param("x" * 20_000, "too large", id="huge-frame"),
]


async def test_bad_input_gets_an_error_and_the_socket_stays_open(alice, alice_speakers, alice_cookie):
    turns_before = await database_sync_to_async(Turn.objects.count)()
    comm = await connected(alice_cookie)
    try:
        # One socket takes every bad frame in turn: each gets its error and the next still works.
        for case in BAD_FRAMES:
            frame, expected = case.values
            await comm.send_to(text_data=frame)
            assert expected in error_text(await error_frame(comm)), case.id
        await comm.send_to(text_data=json.dumps({"type": "stop"}))
        await frames_until(comm, r'id="stop-control"')
    finally:
        await comm.disconnect()
    assert await database_sync_to_async(Turn.objects.count)() == turns_before


async def test_a_binary_frame_gets_an_error(alice, alice_cookie):
    comm = await connected(alice_cookie)
    try:
        await comm.send_to(bytes_data=b"\x00\xff\x10")
        assert "text frames" in error_text(await error_frame(comm))
    finally:
        await comm.disconnect()


async def test_speaking_to_another_users_device_is_refused(alice, bob, alice_speakers, bob_speakers, alice_cookie):
    bob_kitchen, _ = bob_speakers
    comm = await connected(alice_cookie)
    try:
        await comm.send_to(text_data=json.dumps({"type": "say", "text": "hello", "device": str(bob_kitchen.pk)}))
        assert "Unknown device" in error_text(await error_frame(comm))
        assert not await database_sync_to_async(Turn.objects.exists)()
    finally:
        await comm.disconnect()


async def test_a_non_speaker_device_is_refused(alice, alice_speakers, alice_cookie):
    light = await database_sync_to_async(Device.objects.get)(home=alice.home, name="Kitchen light")
    comm = await connected(alice_cookie)
    try:
        await comm.send_to(text_data=json.dumps({"type": "say", "text": "hello", "device": light.pk}))
        assert "Unknown device" in error_text(await error_frame(comm))
    finally:
        await comm.disconnect()


async def test_html_in_an_utterance_is_stored_as_is_and_sent_escaped(
    nlu_model, alice, alice_speakers, alice_cookie, fast_speech
):
    kitchen, _ = alice_speakers
    text = "<script>alert('x')</script> & <b>lights</b>"
    comm = await connected(alice_cookie)
    try:
        turn_id, frames = await say(comm, text, kitchen)
        frames += await frames_until(comm, rf'id="status-{turn_id}" hx-swap-oob="true"')
        turn = await database_sync_to_async(Turn.objects.get)(pk=turn_id)
        assert turn.raw_text == text
        joined = "".join(frames)
        assert "<script>" not in joined
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;lights&lt;/b&gt;" in joined
    finally:
        await comm.disconnect()


async def test_a_bad_frame_mid_reply_does_not_interrupt_it(nlu_model, alice, alice_speakers, alice_cookie, settings):
    settings.SPEAKING_RATE_WPS = 20
    kitchen, _ = alice_speakers
    comm = await connected(alice_cookie)
    try:
        turn_id, frames = await say(comm, UTTERANCE, kitchen)
        await comm.send_to(text_data="{oops")
        await comm.send_to(text_data=json.dumps({"type": "say", "text": "  ", "device": str(kitchen.pk)}))
        frames += await frames_until(comm, rf'id="status-{turn_id}" hx-swap-oob="true"')
        turn = await database_sync_to_async(Turn.objects.get)(pk=turn_id)
        assert words_in(frames, turn_id) == turn.response.split()
        assert sum(1 for f in frames if 'id="chat-error"' in f and error_text(f)) == 2
        assert not await database_sync_to_async(BargeIn.objects.exists)()
    finally:
        await comm.disconnect()


async def test_a_resent_say_frame_gets_its_stored_turn_back(
    nlu_model, alice, alice_speakers, alice_cookie, fast_speech
):
    """The page resends a say frame (same key) after its socket dropped before the answer came."""
    kitchen, _ = alice_speakers
    frame = json.dumps({"type": "say", "text": "add milk to my shopping list", "device": str(kitchen.pk), "key": "k-1"})
    first = await connected(alice_cookie)
    try:
        await first.send_to(text_data=frame)
        turn_id = turn_id_in(await frames_until(first, NEW_TURN, timeout=FIRST_TURN_TIMEOUT))
    finally:
        await first.disconnect()
    second = await connected(alice_cookie)
    try:
        await second.send_to(text_data=frame)
        frames = await frames_until(second, rf'id="status-{turn_id}" hx-swap-oob="true"')
        assert turn_id_in(frames) == turn_id
        assert not words_in(frames, turn_id)  # shown whole, not spoken again
    finally:
        await second.disconnect()
    assert await database_sync_to_async(Turn.objects.filter(user=alice).count)() == 1
    from assistant.models import ListItem

    assert await database_sync_to_async(ListItem.objects.filter(text__icontains="milk").count)() == 1


async def test_the_socket_talks_on_after_a_resent_say_frame(
    nlu_model, alice, alice_speakers, alice_cookie, fast_speech
):
    """Found by the socket fuzzer: the replayed turn's session did not have its device loaded, and
    the next exchange on that session queried it from the event loop ("Something went wrong")."""
    kitchen, _ = alice_speakers
    frame = json.dumps({"type": "say", "text": "what time is it", "device": str(kitchen.pk), "key": "k-2"})
    comm = await connected(alice_cookie)
    try:
        for _ in range(2):
            await comm.send_to(text_data=frame)
            first_id = turn_id_in(await frames_until(comm, NEW_TURN, timeout=FIRST_TURN_TIMEOUT))
        next_id, frames = await say(comm, "tell me a joke", kitchen)
        assert next_id != first_id
        assert not [error_text(f) for f in frames if 'id="chat-error"' in f and error_text(f)]
    finally:
        await comm.disconnect()
