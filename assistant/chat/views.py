"""The chat page: the conversation so far, the speakers to talk to, the device panel."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from assistant.chat.conversation import panel_context, recent_turns
from assistant.world.speakers import speaker_devices


@require_GET
@login_required
def chat(request: HttpRequest) -> HttpResponse:
    turns = recent_turns(request.user)
    speakers = speaker_devices(request.user)
    # Keep talking to the speaker of the last turn, if it is still there.
    last_device = next((t.device_id for t in reversed(turns) if t.device_id), None)
    speaker_ids = [d.pk for d in speakers]
    selected = last_device if last_device in speaker_ids else (speaker_ids[0] if speaker_ids else None)
    context = {
        "turns": turns,
        "speakers": speakers,
        "selected_device": selected,
        "max_chars": settings.MAX_UTTERANCE_CHARS,
        "ws_path": "/ws/chat/",
        **panel_context(request.user),
    }
    return render(request, "chat/page.html", context)
