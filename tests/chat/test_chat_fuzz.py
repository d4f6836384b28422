"""Property-based fuzzing of the chat socket: a thousand generated frames on one open socket of
the real ASGI app. Every frame gets an answer (a reply or a clear error), never the catch-all
"Something went wrong", the socket stays open, and the rows stored before are exactly as they were.

Frames are any JSON (deep, odd types, huge numbers, HTML), shapes close to the three message
types with one field wrong, raw text, overlong text, binary frames, and valid say, stop and
feedback frames (which run real turns). After each one a probe frame with an unknown type is
sent: its error marks the end of the fuzzed frame's answer, since a socket handles its frames
in order.
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from channels.testing import WebsocketCommunicator
from django.db import connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedback.models import BargeIn, Feedback, Turn
from tests.api.test_api_bad_input import make_turn
from tests.chat.test_chat_consumer import _cookie_for, _speakers, communicator

pytestmark = pytest.mark.django_db(transaction=True)

FRAMES = 1000
FUZZ = settings(
    max_examples=FRAMES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROBE = json.dumps({"type": "fuzz-probe"})
PROBE_ANSWER = "Unknown message type."
CATCH_ALL = "Something went wrong"

text = st.text(max_size=40) | st.sampled_from(
    ["", " ", "\x00", "<script>alert(1)</script>", "\u200b\u200b", "x" * 1001, "?!", "turn on the light"]
)
scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | text
any_json = st.recursive(scalar, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4))
kind = st.sampled_from(["say", "stop", "feedback", "", "SAY", "fuzz"]) | any_json


def frames(speaker_ids: list[int], turn_ids: list[int]) -> st.SearchStrategy:
    ids = st.sampled_from([*speaker_ids, *turn_ids]) | st.sampled_from([*speaker_ids, *turn_ids]).map(str)
    field = any_json | ids | st.integers(min_value=-(2**70), max_value=2**70)
    shaped = st.fixed_dictionaries(
        {"type": kind},
        optional={"text": text | any_json, "device": field, "turn_id": field, "kind": field, "key": field},
    )
    valid = st.one_of(
        st.fixed_dictionaries(
            {
                "type": st.just("say"),
                "text": st.sampled_from(["what time is it", "turn on the light", "tell me a joke"]),
            },
            optional={"device": st.sampled_from(["", *map(str, speaker_ids)]), "key": text},
        ),
        st.just({"type": "stop"}),
        st.fixed_dictionaries(
            {"type": st.just("feedback"), "turn_id": st.sampled_from(turn_ids), "kind": st.just("thumbs_up")}
        ),
    )
    as_text = st.one_of(any_json, shaped, valid).map(lambda v: json.dumps(v, allow_nan=True))
    raw = st.one_of(
        st.text(max_size=80),
        st.integers(min_value=1, max_value=20_000).map(lambda n: "[" * n + "]" * n),
        st.just("x" * 20_000),
    )
    return st.one_of(
        as_text, as_text, raw.map(lambda t: ("text", t)), st.binary(max_size=64).map(lambda b: ("bytes", b))
    )


class SocketInAThread:
    """One chat socket on the real ASGI app, driven from synchronous hypothesis examples."""

    def __init__(self, comm: WebsocketCommunicator) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.comm = comm
        ok, _ = self.run(comm.connect(timeout=10))
        assert ok

    def run(self, coro, timeout: float = 120):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def exchange(self, frame) -> list[str]:
        """Send a frame, then the probe; return every text frame up to the probe's answer."""

        async def go() -> list[str]:
            # send_input, not send_to: an empty frame is a frame too.
            if isinstance(frame, tuple) and frame[0] == "bytes":
                await self.comm.send_input({"type": "websocket.receive", "bytes": frame[1]})
            else:
                text = frame[1] if isinstance(frame, tuple) else frame
                await self.comm.send_input({"type": "websocket.receive", "text": text})
            await self.comm.send_to(text_data=PROBE)
            answers = []
            while True:
                out = await self.comm.receive_output(timeout=60)
                assert out["type"] == "websocket.send", f"the socket closed: {out}"
                answers.append(out.get("text") or "")
                if PROBE_ANSWER in answers[-1]:
                    return answers

        return self.run(go())

    def close(self) -> None:
        self.run(self.comm.disconnect())
        self.run(asyncio.to_thread(connections.close_all))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


def snapshot() -> dict:
    return {
        "turns": list(Turn.objects.order_by("pk").values()),
        "barge_ins": list(BargeIn.objects.order_by("pk").values()),
        "feedback": list(Feedback.objects.order_by("pk").values()),
    }


def test_a_thousand_generated_frames(nlu_model, alice, bob, settings):
    settings.SPEAKING_RATE_WPS = 1000
    kitchen, display = _speakers(alice)
    bobs_kitchen, _ = _speakers(bob)
    own = make_turn(alice, "what's the weather like today")
    foreign = make_turn(bob, "turn on the kitchen light")
    Feedback.objects.create(turn=foreign, kind="thumbs_down")
    before = snapshot()
    socket = SocketInAThread(communicator(_cookie_for(alice)))
    sent = []
    try:

        @FUZZ
        @given(frame=frames([kitchen.pk, display.pk, bobs_kitchen.pk], [own.pk, foreign.pk, 0, 10**18]))
        def send(frame):
            answers = socket.exchange(frame)
            assert not any(CATCH_ALL in a for a in answers), (frame, answers)
            sent.append(frame)

        send()
    finally:
        socket.close()
    assert len(sent) >= FRAMES
    after = {table: {row["id"]: row for row in rows} for table, rows in snapshot().items()}
    for table, rows in before.items():
        for row in rows:
            assert after[table].get(row["id"]) == row, f"{table} row {row['id']} changed"
    # Bob's turn got nothing from alice's socket.
    assert list(Feedback.objects.filter(turn=foreign).values_list("kind", flat=True)) == ["thumbs_down"]
    assert not BargeIn.objects.filter(turn=foreign).exists()
