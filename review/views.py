"""Staff review pages (thin: the domain is review/turns.py). Only staff and reviewers get in
(review/access.py); everyone else is refused, and user text is always escaped by the templates."""

from __future__ import annotations

from datetime import date, datetime, time
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from feedback.models import Turn
from review import turns
from review.access import can_review

PAGE_SIZE = 50


def reviewers_only(view):
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can_review(request.user):
            raise PermissionDenied("Only staff and reviewers may review turns.")
        return view(request, *args, **kwargs)

    return wrapped


def _since(text: str) -> datetime | None:
    try:
        day = date.fromisoformat(text) if text else None
    except ValueError:
        return None
    return timezone.make_aware(datetime.combine(day, time.min)) if day else None


@require_GET
@reviewers_only
def inbox(request: HttpRequest) -> HttpResponse:
    intent = request.GET.get("intent", "")[:80]
    since_text = request.GET.get("since", "")[:10]
    rows = turns.likely_defects(intent=intent, since=_since(since_text))
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "intent": intent,
        "since": since_text,
        "bad_since": bool(since_text) and not _since(since_text),
    }
    return render(request, "review/inbox.html", context)


@require_GET
@reviewers_only
def turn(request: HttpRequest, turn_id: int) -> HttpResponse:
    found = Turn.objects.select_related("user", "session").filter(pk=turn_id).first()
    if found is None:
        raise Http404("No turn by that id.")
    return render(request, "review/turn.html", {"t": turns.readable(found)})
