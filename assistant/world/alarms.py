"""Timers and alarms that come due ring: the home's open chat pages are told.

Beat runs ring_due_timers() every few seconds. Each timer is claimed with a
conditional UPDATE, so two workers (or a slow run overlapping the next) never
announce the same timer twice, and one bad row cannot stop the others.
"""

from __future__ import annotations

import logging
from datetime import datetime

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from assistant.models import Timer
from assistant.world.live import home_group

log = logging.getLogger(__name__)


def announcement(timer: Timer) -> str:
    if timer.kind == Timer.Kind.ALARM:
        return f"Your alarm{' for ' + timer.label if timer.label else ''} is ringing."
    return f"Your {timer.spoken_name} is done."


def ring_due_timers(now: datetime, limit: int = 200) -> list[Timer]:
    """Mark due timers as rung and tell their homes; returns the timers rung by this call."""
    due = list(Timer.objects.filter(rang_at=None, cancelled_at=None, fires_at__lte=now).order_by("fires_at")[:limit])
    rung: list[Timer] = []
    layer = get_channel_layer()
    for timer in due:
        claimed = Timer.objects.filter(pk=timer.pk, rang_at=None, cancelled_at=None).update(rang_at=now)
        if not claimed:
            continue  # another run took it, or it was cancelled meanwhile
        rung.append(timer)
        if layer is None:
            continue
        try:
            async_to_sync(layer.group_send)(
                home_group(timer.home_id),
                {"type": "timer.rang", "timer_id": timer.pk, "text": announcement(timer)},
            )
        except Exception:
            log.exception("could not announce timer %s", timer.pk)
    return rung
