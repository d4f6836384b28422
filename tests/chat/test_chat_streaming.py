"""ReplyStream: pacing and barge-in offsets, with a fake clock (no socket, no sleep)."""

from __future__ import annotations

import asyncio

import pytest

from assistant.chat.streaming import ReplyStream


class FakeTime:
    """A clock that only moves when the stream sleeps, so pacing is exact."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def make(text: str, rate: float = 2.0) -> tuple[ReplyStream, FakeTime]:
    fake = FakeTime()
    return ReplyStream(7, text, rate, clock=fake.clock, sleep=fake.sleep), fake


def test_it_refuses_a_non_positive_rate():
    with pytest.raises(ValueError):
        ReplyStream(1, "hi there", 0)


def test_it_splits_the_reply_into_words():
    stream, _ = make("  It is   sunny\nin London. ")
    assert stream.words == ["It", "is", "sunny", "in", "London."]
    assert stream.total_words == 5
    assert not stream.complete


@pytest.mark.asyncio
async def test_it_sends_every_word_at_the_speaking_pace():
    stream, fake = make("one two three four", rate=2.0)
    sent: list[tuple[int, str, float]] = []

    async def send(index: int, word: str) -> None:
        sent.append((index, word, fake.now))

    await stream.run(send)
    assert [(i, w) for i, w, _ in sent] == [(0, "one"), (1, "two"), (2, "three"), (3, "four")]
    # The first word at once, then one every half second.
    assert [t - 100.0 for _, _, t in sent] == [0.0, 0.5, 1.0, 1.5]
    assert stream.complete and stream.finished
    assert stream.interruption().offset_words == 4


@pytest.mark.asyncio
async def test_a_slow_send_does_not_make_the_reply_drift():
    stream, fake = make("a b c d", rate=2.0)
    times = []

    async def slow_send(index: int, word: str) -> None:
        times.append(fake.now)
        fake.now += 0.2  # sending takes time

    await stream.run(slow_send)
    assert [round(t - 100.0, 6) for t in times] == [0.0, 0.5, 1.0, 1.5]


@pytest.mark.asyncio
async def test_cancelling_records_how_much_was_heard():
    stream = ReplyStream(3, "a b c d e f", 50.0)  # real clock: 20 ms a word
    sent = []

    async def send(index: int, word: str) -> None:
        sent.append(word)

    task = asyncio.create_task(stream.run(send))
    while len(sent) < 2:
        await asyncio.sleep(0.005)
    task.cancel()
    await asyncio.wait([task])
    cut = stream.interruption()
    assert cut.offset_words == len(sent) >= 2
    assert cut.offset_words < 6
    # At least the words' own pacing had passed (no upper bound: a busy machine may be slower).
    assert cut.offset_ms >= max(15, (cut.offset_words - 1) * 20)
    assert not stream.complete and not stream.finished


@pytest.mark.asyncio
async def test_a_word_cancelled_while_sending_is_not_counted():
    stream, _ = make("a b c", rate=1000.0)
    gate = asyncio.Event()

    async def blocked_send(index: int, word: str) -> None:
        if index == 1:
            await gate.wait()  # never set: the send of the second word hangs

    task = asyncio.create_task(stream.run(blocked_send))
    for _ in range(50):
        await asyncio.sleep(0.001)
    task.cancel()
    await asyncio.wait([task])
    assert stream.words_sent == 1


def test_before_it_starts_nothing_was_heard():
    stream, _ = make("hello there")
    cut = stream.interruption()
    assert (cut.offset_words, cut.offset_ms) == (0, 0)


@pytest.mark.asyncio
async def test_an_empty_reply_completes_at_once():
    stream, fake = make("   ")

    async def send(index: int, word: str) -> None:
        raise AssertionError("nothing to send")

    await stream.run(send)
    assert stream.complete and fake.sleeps == []
