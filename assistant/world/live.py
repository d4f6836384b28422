"""Tell open chat pages that device states changed (Channels group per home)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def home_group(home_id: int) -> str:
    return f"home-{home_id}"


def broadcast_device_changes(home_id: int, device_ids: Iterable[int]) -> None:
    """Send {"type": "devices.changed", "device_ids": [...]} to the home's group.

    Called after the turn's transaction commits. A failing channel layer must not
    fail the turn that was already stored, so errors are logged, not raised.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "devices.changed", "device_ids": sorted(set(device_ids))}
    try:
        async_to_sync(layer.group_send)(home_group(home_id), message)
    except RuntimeError:
        # Called from inside an event loop (async consumer): the consumer
        # refreshes its own panel, so nothing is lost.
        log.debug("device broadcast skipped inside a running event loop")
    except Exception:
        log.exception("could not broadcast device changes for home %s", home_id)
