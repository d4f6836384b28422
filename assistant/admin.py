"""Admin for the simulated world (homes, devices, media, timers, lists), API tokens and model versions."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from assistant.models import ApiToken, Device, Home, ListItem, MediaPlayer, ModelVersion, Timer
from assistant.registry import RegistryError, activate_version
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


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "version", "status", "created_at", "promoted_at")
    list_filter = ("kind", "status", "created_at")
    search_fields = ("version", "path", "note")
    date_hierarchy = "created_at"
    # Promotion and rollback go through the registry (it checks metrics and swaps atomically).
    readonly_fields = (
        "kind",
        "version",
        "path",
        "status",
        "created_at",
        "promoted_at",
        "manifest_pretty",
        "metrics_pretty",
    )
    exclude = ("manifest", "metrics")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="manifest")
    def manifest_pretty(self, obj: ModelVersion) -> str:
        return pretty_json(obj.manifest)

    @admin.display(description="metrics")
    def metrics_pretty(self, obj: ModelVersion) -> str:
        return pretty_json(obj.metrics)

    # -- promote / roll back (through assistant.registry; running processes pick the
    # new active version up on their next use) ------------------------------------
    actions = ("promote_selected_version", "roll_back_to_selected_version")

    def _activate(self, request: HttpRequest, queryset: QuerySet, rollback: bool) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version.", messages.ERROR)
            return
        row = queryset.get()
        note = f"rolled back to {row.version} by {request.user.get_username()} in the admin" if rollback else ""
        try:
            row = activate_version(row, note=note)
        except RegistryError as exc:
            self.message_user(request, f"Not changed: {exc}", messages.ERROR)
            return
        label = "NLU" if row.kind == "nlu" else row.kind
        self.message_user(request, f"{label} {row.version} is now active.", messages.SUCCESS)

    @admin.action(description="Promote this version", permissions=["change"])
    def promote_selected_version(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._activate(request, queryset, rollback=False)

    @admin.action(description="Roll back to this version", permissions=["change"])
    def roll_back_to_selected_version(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._activate(request, queryset, rollback=True)
