"""Delivering a reply word by word at a speaking pace, and knowing where it stopped.

A ReplyStream is plain asyncio with an injectable clock and sleep, so its pacing
and its barge-in offsets are unit-testable without a socket. The consumer runs
`stream.run(send_word)` as a task and cancels that task on a barge-in; the
stream's counters then say how much of the reply the person actually heard.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

SendWord = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True)
class Interruption:
    """Where a reply was cut: words delivered and milliseconds since it began."""

    offset_words: int
    offset_ms: int


class ReplyStream:
    """The reply of one turn, delivered at `rate_wps` words per second.

    Word i is due `i / rate_wps` seconds after the first one; deadlines are
    computed from the start rather than by sleeping a fixed gap after each send,
    so a slow send does not make the whole reply drift slower.
    """

    def __init__(
        self,
        turn_id: int,
        text: str,
        rate_wps: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_wps <= 0:
            raise ValueError("rate_wps must be positive")
        self.turn_id = turn_id
        self.words: list[str] = text.split()
        self.rate_wps = rate_wps
        self.words_sent = 0
        self.started_at: float | None = None
        self.finished = False
        self._clock = clock
        self._sleep = sleep

    @property
    def total_words(self) -> int:
        return len(self.words)

    @property
    def text(self) -> str:
        """The whole reply, whitespace normalised as it is spoken."""
        return " ".join(self.words)

    @property
    def complete(self) -> bool:
        """Every word was delivered: a stop after this point interrupts nothing."""
        return self.words_sent >= self.total_words

    def elapsed_ms(self) -> int:
        if self.started_at is None:
            return 0
        return max(0, round((self._clock() - self.started_at) * 1000))

    def interruption(self) -> Interruption:
        return Interruption(offset_words=self.words_sent, offset_ms=self.elapsed_ms())

    async def run(self, send_word: SendWord) -> None:
        """Send every word through `send_word(index, word)` at the speaking pace.

        Cancelling the task that runs this is how a reply is stopped; the
        counters stay consistent because a word counts only once it was sent.
        """
        self.started_at = self._clock()
        for index, word in enumerate(self.words):
            delay = self.started_at + index / self.rate_wps - self._clock()
            if delay > 0:
                await self._sleep(delay)
            await send_word(index, word)
            self.words_sent = index + 1
        self.finished = True
