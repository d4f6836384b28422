"""HTML fragments the chat socket sends: htmx out-of-band swaps.

Each is a partial of templates/chat/page.html rendered with `oob`, so the page
and the socket share one template and user text is escaped by Django the same
way in both.
"""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string
from django.utils.html import format_html

from assistant.chat.conversation import TurnView

PAGE = "chat/page.html"


def _partial(name: str, context: dict[str, Any]) -> str:
    return render_to_string(f"{PAGE}#{name}", {**context, "oob": True})


def new_turn(view: TurnView) -> str:
    """The exchange, with an empty reply the words stream into, plus a visible Stop button."""
    return (
        '<ol hx-swap-oob="beforeend:#messages">'
        + render_to_string(f"{PAGE}#turn", {"t": view, "streaming": True})
        + "</ol>"
        + stop_control(streaming=True)
        + error("")
    )


def word(turn_id: int, index: int, text: str) -> str:
    """One word appended to the reply (a space before every word but the first)."""
    return format_html(
        '<span hx-swap-oob="beforeend:#reply-{}">{}<span class="w">{}</span></span>',
        turn_id,
        " " if index else "",
        text,
    )


def reply_done(turn_id: int, text: str) -> str:
    """The reply was fully spoken: settle it (no longer aria-busy), clear "speaking…", hide Stop."""
    reply = format_html(
        '<p class="reply" id="replybox-{}" hx-swap-oob="true"><span class="heard" id="reply-{}">{}</span></p>',
        turn_id,
        turn_id,
        text,
    )
    status = format_html('<span class="status" id="status-{}" hx-swap-oob="true"></span>', turn_id)
    return reply + status + stop_control(streaming=False)


def interrupted_turn(view: TurnView) -> str:
    """Re-render the exchange as the page shows it after a reload: cut, with the unheard rest dimmed."""
    return _partial("turn", {"t": view}) + stop_control(streaming=False)


def feedback(view: TurnView) -> str:
    return _partial("feedback", {"t": view})


def stop_control(*, streaming: bool) -> str:
    return _partial("stop-control", {"streaming": streaming})


def error(message: str) -> str:
    return _partial("error", {"message": message})


def device_panel(context: dict[str, Any]) -> str:
    return _partial("device-panel", context)


def notice(text: str) -> str:
    """Something the assistant says unprompted (a timer rang), appended to the conversation."""
    return format_html(
        '<ol hx-swap-oob="beforeend:#messages"><li class="notice" role="status">{}</li></ol>',
        text,
    )
