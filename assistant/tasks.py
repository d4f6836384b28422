"""Celery tasks of the assistant app; each one calls domain code and nothing more."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from assistant.world.alarms import ring_due_timers


@shared_task(name="assistant.ring_due_timers", time_limit=30, soft_time_limit=25, ignore_result=True)
def ring_due_timers_task() -> int:
    return len(ring_due_timers(timezone.now()))
