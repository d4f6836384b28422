"""The "What you've taught me" page: what the assistant knows about the signed-in person, each item
with where it came from; delete one item (htmx swaps the row out; without JavaScript the page
reloads), export everything as JSON, or forget everything at once. The domain is assistant/privacy.py."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from assistant import privacy

ITEM_KINDS = ("preference", "inferred", "concept", "rule")


@require_GET
@login_required
def taught(request: HttpRequest) -> HttpResponse:
    known = privacy.what_is_known(request.user)
    forgot = request.GET.get("forgot") == "1"
    return render(request, "chat/taught.html", {**known, "forgot": forgot})


@require_POST
@login_required
def forget_item(request: HttpRequest, kind: str, item_id: int) -> HttpResponse:
    # Someone else's item, or one already gone, is "not found": nobody learns whose ids exist.
    if kind not in ITEM_KINDS or not privacy.forget_one(request.user, kind, item_id):
        raise Http404("Nothing of yours by that id.")
    if request.htmx:
        return HttpResponse("")  # the row is swapped out
    return redirect("taught")


@require_POST
@login_required
def change_preference(request: HttpRequest, item_id: int) -> HttpResponse:
    preference, problem = privacy.change_preference(request.user, item_id, request.POST.get("value", ""))
    if preference is None and not problem:
        raise Http404("Nothing of yours by that id.")
    if request.htmx:
        # The row again, with the new value or with why not (htmx swaps only a 2xx answer in).
        row = preference or privacy.own_preference(request.user, item_id)
        return render(request, "chat/taught.html#preference-row", {"p": row, "problem": problem})
    if problem:
        return _refused(request, problem)
    return redirect("taught")


def _refused(request: HttpRequest, problem: str) -> HttpResponse:
    """The page again, saying why a change was refused (without JavaScript)."""
    context = {**privacy.what_is_known(request.user), "problem": problem}
    return render(request, "chat/taught.html", context, status=400)


@require_POST
@login_required
def change_inferred(request: HttpRequest, item_id: int) -> HttpResponse:
    """Teach the value of an inferred preference (as it is, or another): it becomes a taught one."""
    preference, problem = privacy.teach_inferred(request.user, item_id, request.POST.get("value", ""))
    if preference is None and not problem:
        raise Http404("Nothing of yours by that id.")
    if problem:
        return _refused(request, problem)
    return redirect("taught")


@require_GET
@login_required
def export(request: HttpRequest) -> HttpResponse:
    data = privacy.export(request.user)
    response = HttpResponse(json.dumps(data, ensure_ascii=False, indent=1), content_type="application/json")
    stamp = timezone.now().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="what-you-taught-me-{stamp}.json"'
    return response


@require_POST
@login_required
def forget_everything(request: HttpRequest) -> HttpResponse:
    if request.POST.get("confirm") != "forget everything":
        return render(
            request,
            "chat/taught.html",
            {**privacy.what_is_known(request.user), "confirm_error": True},
            status=400,
        )
    privacy.forget_everything(request.user)
    return redirect(reverse("taught") + "?forgot=1")
