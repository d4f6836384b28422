"""/api/v1/: the JSON API (see assistant/api/views.py and GET /api/v1/openapi.json)."""

from __future__ import annotations

from django.urls import path, re_path

from assistant.api import views

app_name = "api"

urlpatterns = [
    path("turns", views.turns, name="turns"),
    path("turns/<int:turn_id>", views.turn_detail, name="turn"),
    path("turns/<int:turn_id>/feedback", views.turn_feedback, name="turn-feedback"),
    path("me", views.what_is_known, name="me"),
    path("openapi.json", views.openapi, name="openapi"),
    path("docs", views.docs, name="docs"),
    re_path(r"^(?P<rest>[\s\S]*)$", views.not_found),  # any path, newlines included
]
