"""Admin for the simulated world (homes, devices, media, timers, lists) and API tokens."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from assistant.models import ApiToken, Device, Home, ListItem, MediaPlayer, Timer
from feedback.admin import pretty_json


class DeviceInline(admin.TabularInline):
    model = Device
    extra = 0
    fields = ("name", "kind", "room", "has_screen", "state")
    show_change_link = True


@admin.register(Home)
class HomeAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "owner", "place", "device_count", "created_at")
    search_fields = ("name", "owner__username", "place")
    list_filter = ("place", "created_at")
    date_hierarchy = "created_at"
    list_select_related = ("owner",)
    raw_id_fields = ("owner",)
    inlines = (DeviceInline,)

    @admin.display(description="devices")
    def device_count(self, obj: Home) -> int:
        return obj.devices.count()


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "kind", "room", "home", "has_screen", "updated_at")
    list_filter = ("kind", "room", "has_screen")
    search_fields = ("name", "room", "home__owner__username")
    list_select_related = ("home", "home__owner")
    raw_id_fields = ("home",)
    readonly_fields = ("state_pretty", "updated_at")

    @admin.display(description="state (formatted)")
    def state_pretty(self, obj: Device) -> str:
        return pretty_json(obj.state)


@admin.register(MediaPlayer)
class MediaPlayerAdmin(admin.ModelAdmin):
    list_display = ("id", "home", "status", "now_playing", "volume", "muted", "updated_at")
    list_filter = ("status", "muted")
    search_fields = ("home__owner__username", "item__title")
    list_select_related = ("home", "home__owner")
    raw_id_fields = ("home",)
    readonly_fields = ("item_pretty", "updated_at")

    @admin.display(description="playing")
    def now_playing(self, obj: MediaPlayer) -> str:
        return str(obj.item.get("title", "")) if isinstance(obj.item, dict) else ""

    @admin.display(description="item (formatted)")
    def item_pretty(self, obj: MediaPlayer) -> str:
        return pretty_json(obj.item)


@admin.register(Timer)
class TimerAdmin(admin.ModelAdmin):
    list_display = ("id", "home", "kind", "label", "fires_at", "cancelled_at", "created_at")
    list_filter = ("kind", "fires_at", "cancelled_at")
    search_fields = ("label", "home__owner__username")
    date_hierarchy = "created_at"
    list_select_related = ("home", "home__owner")
    raw_id_fields = ("home",)


@admin.register(ListItem)
class ListItemAdmin(admin.ModelAdmin):
    list_display = ("id", "home", "list_name", "text", "done", "created_at")
    list_filter = ("list_name", "done", "created_at")
    search_fields = ("text", "list_name", "home__owner__username")
    date_hierarchy = "created_at"
    list_select_related = ("home", "home__owner")
    raw_id_fields = ("home",)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "key_prefix", "created_at", "last_used_at")
    list_filter = ("created_at", "last_used_at")
    search_fields = ("user__username",)
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    # The key is shown once when created (manage.py create_api_token); lists show a prefix only.
    readonly_fields = ("key", "created_at", "last_used_at")

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        return ("created_at", "last_used_at") if obj is None else self.readonly_fields

    @admin.display(description="key")
    def key_prefix(self, obj: ApiToken) -> str:
        return f"{obj.key[:6]}…"
