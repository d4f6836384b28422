"""Staff review pages (thin: the domain is review/turns.py). Only staff and reviewers get in
(review/access.py); everyone else is refused, and user text is always escaped by the templates."""

from __future__ import annotations

from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from assistant.models import ModelVersion
from assistant.registry import RegistryError, activate_version
from feedback import labels, rule_review
from feedback.models import DefectCluster, Label, RephraseLabel, RewriteRule, RuleDecision, Turn
from learning.models import Job
from review import charts, models_page, turns
from review import dashboard as dashboard_figures
from review.access import can_promote, can_review
from review.paging import page_of
from teaching import concepts as taught_concepts
from teaching.models import SharedConcept

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


@require_GET
@reviewers_only
def inbox(request: HttpRequest) -> HttpResponse:
    """The clusters of likely defects, ranked by impact (?view=turns: every likely defect, one by one)."""
    filters = turns.InboxFilters.from_query(request.GET)
    by_turn = request.GET.get("view") == "turns"
    order = turns.UNSURE if request.GET.get("order") == turns.UNSURE else turns.LIKELIEST
    rows = turns.likely_defects(filters, order) if by_turn else turns.ranked_clusters(filters)
    shown = filters.as_query()
    query = {**shown, **({"view": "turns", "order": order} if by_turn else {})}
    context = {
        "page": page_of(rows, request.GET.get("page"), PAGE_SIZE),
        "by_turn": by_turn,
        "f": filters,
        "filtered": bool(shown),
        "since": shown.get("since", ""),
        "query": urlencode(query),
        "order": order,
        "options": turns.filter_options(),
    }
    return render(request, "review/inbox.html", context)


@require_GET
@reviewers_only
def cluster(request: HttpRequest, cluster_id: int) -> HttpResponse:
    return _cluster_page(request, _found_cluster(cluster_id))


def _found_cluster(cluster_id: int) -> DefectCluster:
    found = DefectCluster.objects.filter(pk=cluster_id).first()
    if found is None:
        raise Http404("No cluster by that id (the clusters are rebuilt by each learning cycle).")
    return found


def _cluster_page(request: HttpRequest, found: DefectCluster, *, problem: str = "", status: int = 200) -> HttpResponse:
    members = found.members.select_related("user").order_by("-created_at", "-id")
    page = page_of(members, request.GET.get("page"), PAGE_SIZE)
    rules = turns.cluster_rules(found)
    for rule in rules:
        rule.win_rate = rule_review.win_rate(rule)
    context = {
        "c": found,
        "page": page,
        "failure_points": Label.FailurePoint.choices,
        "problem": problem,
        "rules": rules,
        "ends": turns.chain_ends(found),
        "can_decide": can_promote(request.user),
        "back": request.path,
    }
    return render(request, "review/cluster.html", context, status=status)


@require_POST
@reviewers_only
def label_cluster(request: HttpRequest, cluster_id: int) -> HttpResponse:
    """The same intent and failure point for every turn of a cluster (all or none)."""
    found = _found_cluster(cluster_id)
    try:
        labels.label_all(
            found.members.all(),
            request.user,
            intent=request.POST.get("intent", ""),
            failure_point=request.POST.get("failure_point", ""),
        )
    except labels.LabelError as exc:
        return _cluster_page(request, found, problem=str(exc), status=400)
    return redirect("review-cluster", cluster_id=found.pk)


def _found(turn_id: int) -> Turn:
    found = Turn.objects.select_related("user", "session").filter(pk=turn_id).first()
    if found is None:
        raise Http404("No turn by that id.")
    return found


def _turn_page(request: HttpRequest, found: Turn, *, problem: str = "", status: int = 200) -> HttpResponse:
    context = {
        "t": turns.readable(found),
        "labels": found.labels.select_related("reviewer", "undone_by"),
        "failure_points": Label.FailurePoint.choices,
        "problem": problem,
        "form": request.POST if problem else {},
    }
    return render(request, "review/turn.html", context, status=status)


@require_GET
@reviewers_only
def turn(request: HttpRequest, turn_id: int) -> HttpResponse:
    return _turn_page(request, _found(turn_id))


@require_POST
@reviewers_only
def label(request: HttpRequest, turn_id: int) -> HttpResponse:
    """Store a reviewer's intent, slots and failure point for the turn (the page again if refused)."""
    found = _found(turn_id)
    try:
        labels.label_turn(
            found,
            request.user,
            intent=request.POST.get("intent", ""),
            slots_text=request.POST.get("slots", "")[:2000],
            failure_point=request.POST.get("failure_point", ""),
        )
    except labels.LabelError as exc:
        return _turn_page(request, found, problem=str(exc), status=400)
    return redirect("review-turn", turn_id=found.pk)


@require_POST
@reviewers_only
def undo_label(request: HttpRequest, label_id: int) -> HttpResponse:
    found = Label.objects.filter(pk=label_id).first()
    if found is None:
        raise Http404("No label by that id.")
    labels.undo(found, request.user)
    return redirect("review-turn", turn_id=found.turn_id)


@require_POST
@reviewers_only
def label_retry(request: HttpRequest, turn_id: int) -> HttpResponse:
    """A reviewer's verdict: was this turn a retry of the earlier turn `first` ("retry" or "not_retry")?"""
    found = _found(turn_id)
    verdict = request.POST.get("verdict", "")
    first_id = request.POST.get("first", "")
    if verdict not in ("retry", "not_retry"):
        return _turn_page(request, found, problem='Say "retry" or "not_retry".', status=400)
    first = Turn.objects.filter(pk=int(first_id)).first() if first_id.isdigit() and len(first_id) < 19 else None
    if first is None:
        return _turn_page(request, found, problem="No earlier turn by that id.", status=400)
    sampled = request.POST.get("sampled") == "1"  # from the random queue: back to it
    try:
        labels.label_rephrase(first, found, request.user, is_rephrase=verdict == "retry", sampled=sampled)
    except labels.LabelError as exc:
        return _turn_page(request, found, problem=str(exc), status=400)
    return redirect("review-retries") if sampled else redirect("review-turn", turn_id=found.pk)


@require_GET
@reviewers_only
def retries(request: HttpRequest) -> HttpResponse:
    """Pairs of one person's turns drawn at random: was the later a retry? The rephrase detector's gate
    measures it on these verdicts (the pairs opened from the inbox are mostly around failures)."""
    return render(request, "review/retries.html", {"pairs": turns.pairs_to_judge()})


@require_POST
@reviewers_only
def undo_retry_label(request: HttpRequest, label_id: int) -> HttpResponse:
    found = RephraseLabel.objects.filter(pk=label_id).first()
    if found is None:
        raise Http404("No verdict by that id.")
    labels.undo(found, request.user)
    return redirect("review-turn", turn_id=found.second_id)


@require_GET
@reviewers_only
def export(request: HttpRequest, fmt: str) -> HttpResponse:
    """Every labelled turn's current label: SLURP JSONL or Rasa YAML, which the NLU importers read."""
    current = labels.reviewed()
    if fmt == "slurp":
        body, kind, name = labels.as_slurp_jsonl(current), "application/jsonl", "reviewed.jsonl"
    else:
        body, kind, name = labels.as_rasa_yaml(current), "application/yaml", "reviewed.yml"
    response = HttpResponse(body, content_type=f"{kind}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_GET
@reviewers_only
def models(request: HttpRequest) -> HttpResponse:
    """Each kind's versions with their metrics (staff make one active), and the learning jobs."""
    context = _models_context(request)
    if request.htmx and request.GET.get("part") == "jobs":
        return render(request, "review/models.html#jobs", context)  # the live progress, refreshed
    return render(request, "review/models.html", context)


def _models_context(request: HttpRequest, *, problem: str = "") -> dict:
    return {
        "histories": models_page.histories(),
        "jobs": models_page.recent_jobs(),
        "can_promote": can_promote(request.user),
        "problem": problem,
    }


@require_POST
@reviewers_only
def activate(request: HttpRequest, version_id: int) -> HttpResponse:
    """Make a version active: a promotion, or (an older one) a rollback that rejects the current one."""
    if not can_promote(request.user):
        raise PermissionDenied("Only staff promote or roll back models.")
    row = ModelVersion.objects.filter(pk=version_id).first()
    if row is None:
        raise Http404("No model version by that id.")
    current = ModelVersion.objects.filter(kind=row.kind, status=ModelVersion.Status.ACTIVE).first()
    older = current is not None and (row.created_at, row.pk) < (current.created_at, current.pk)
    note = f"rolled back to {row.version} by {request.user.get_username()} in review" if older else ""
    try:
        activate_version(row, note=note)
    except RegistryError as exc:
        return render(request, "review/models.html", _models_context(request, problem=str(exc)), status=400)
    return redirect("review-models")


@require_POST
@reviewers_only
def run_cycle(request: HttpRequest) -> HttpResponse:
    if not can_promote(request.user):
        raise PermissionDenied("Only staff start learning cycles.")
    Job.enqueue("learning_cycle", {"learners": "all"})
    return redirect("review-models")


@require_GET
@reviewers_only
def concepts(request: HttpRequest) -> HttpResponse:
    """Concepts several people taught the same way (candidates for everyone), and those staff shared."""
    return _concepts_page(request)


def _concepts_page(request: HttpRequest, *, problem: str = "", status: int = 200) -> HttpResponse:
    shared = SharedConcept.objects.select_related("approved_by", "retired_by").order_by("retired_at", "name")
    shared_keys = {c.key for c in shared if c.retired_at is None}
    context = {
        "candidates": [
            c for c in taught_concepts.common(settings.CONCEPT_GLOBAL_MIN_USERS) if c["key"] not in shared_keys
        ],
        "shared": shared[:200],
        "min_users": settings.CONCEPT_GLOBAL_MIN_USERS,
        "can_decide": can_promote(request.user),
        "problem": problem,
    }
    return render(request, "review/concepts.html", context, status=status)


@require_POST
@reviewers_only
def share_concept(request: HttpRequest) -> HttpResponse:
    """Serve a commonly taught concept to everyone: it changes what everyone gets, so staff only."""
    if not can_promote(request.user):
        raise PermissionDenied("Only staff share concepts with everyone.")
    try:
        taught_concepts.approve_shared(request.POST.get("signature", "")[:64], request.user, timezone.now())
    except taught_concepts.SharingError as exc:
        return _concepts_page(request, problem=str(exc), status=400)
    return redirect("review-concepts")


@require_POST
@reviewers_only
def retire_concept(request: HttpRequest, shared_id: int) -> HttpResponse:
    if not can_promote(request.user):
        raise PermissionDenied("Only staff share concepts with everyone.")
    shared = SharedConcept.objects.filter(pk=shared_id).first()
    if shared is None:
        raise Http404("No shared concept by that id.")
    taught_concepts.retire_shared(shared, request.user, timezone.now())
    return redirect("review-concepts")


@require_GET
@reviewers_only
def rules(request: HttpRequest) -> HttpResponse:
    """Global rewrite rules with their evidence and win/loss posterior, proposed and active ones first."""
    status = request.GET.get("status", "")
    rows = RewriteRule.objects.filter(scope=RewriteRule.Scope.GLOBAL).prefetch_related("decisions__reviewer")
    if status in RewriteRule.Status.values:
        rows = rows.filter(status=status)
    elif status != "all":
        rows = rows.filter(status__in=(RewriteRule.Status.PROPOSED, RewriteRule.Status.ACTIVE))
    page = Paginator(rows.order_by("status", "-distinct_users", "-support", "id"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    for rule in page.object_list:
        rule.win_rate = rule_review.win_rate(rule)
    context = {
        "page": page,
        "status": status,
        "statuses": RewriteRule.Status.choices,
        "can_decide": can_promote(request.user),
    }
    return render(request, "review/rules.html", context)


@require_POST
@reviewers_only
def decide_rule(request: HttpRequest, rule_id: int, action: str) -> HttpResponse:
    """Approve, reject or retire a global rule: it changes what everyone gets, so staff only."""
    if not can_promote(request.user):
        raise PermissionDenied("Only staff decide on rewrite rules.")
    rule = RewriteRule.objects.filter(pk=rule_id, scope=RewriteRule.Scope.GLOBAL).first()
    if rule is None:
        raise Http404("No global rule by that id.")
    try:
        rule_review.decide(rule, request.user, action)
    except rule_review.DecisionError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    return _back_to_rule(request, rule.pk)


@require_POST
@reviewers_only
def undo_rule_decision(request: HttpRequest, decision_id: int) -> HttpResponse:
    if not can_promote(request.user):
        raise PermissionDenied("Only staff decide on rewrite rules.")
    decision = RuleDecision.objects.filter(pk=decision_id).first()
    if decision is None:
        raise Http404("No decision by that id.")
    try:
        rule_review.undo(decision, request.user)
    except rule_review.DecisionError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    return _back_to_rule(request, decision.rule_id)


def _back_to_rule(request: HttpRequest, rule_id: int) -> HttpResponse:
    """To the page the decision was taken on (a cluster's), else the rules page; never off this site."""
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = f"{reverse('review-rules')}?status=all"
    return redirect(f"{back.split('#')[0]}#rule-{rule_id}")


@require_GET
@reviewers_only
def dashboard(request: HttpRequest) -> HttpResponse:
    figures = dashboard_figures.figures()
    if not figures["empty"]:
        figures["charts"] = {
            "by_day": charts.bars(figures["by_day"], title="Share of defective turns per day"),
            "by_intent": charts.bars(figures["by_intent"], title="Share of defective turns per intent"),
            "by_skill": charts.bars(figures["by_skill"], title="Share of defective turns per skill"),
            "by_failure_point": charts.bars(
                figures["by_failure_point"], title="Where the likely failures failed (failure-point model)"
            ),
            "arms": charts.bars(figures["arms"], title="Share of defective turns per experiment arm"),
        }
    return render(request, "review/dashboard.html", {"f": figures})
