"""Where turns run when an async surface (the chat socket) asks for one: a pool of turn threads.

handle_turn() is synchronous (the ORM, torch). Channels' database_sync_to_async runs such
calls on ONE thread per process that every other database call of every socket shares, so a
busy process would queue a person's Stop, or the next word's bookkeeping, behind other
people's turns. Turns run here instead, on settings.TURN_THREADS threads. A turn thread
gives its database connection back when its turn is done (closed, or returned to the pool),
so an idle pool holds none and a busy process holds at most TURN_THREADS + 1.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from assistant.pipeline.turn import handle_turn


@cache
def turn_executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.TURN_THREADS, thread_name_prefix="turn")


def _turn_on_this_thread(user: Any, **kwargs: Any) -> Any:
    try:
        return handle_turn(user, **kwargs)
    finally:
        connections.close_all()


async def handle_turn_async(user: Any, **kwargs: Any) -> Any:
    """handle_turn() on a turn thread; the thread's database connection is released afterwards."""
    run = sync_to_async(_turn_on_this_thread, thread_sensitive=False, executor=turn_executor())
    return await run(user, **kwargs)
