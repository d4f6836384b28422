"""The simulated home and media the skills act on."""

from assistant.world.home import ensure_home
from assistant.world.live import broadcast_device_changes, home_group

__all__ = ["broadcast_device_changes", "ensure_home", "home_group"]
