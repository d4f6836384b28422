"""The admin renders every model of the feedback store and the world, with user input escaped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from assistant.models import ApiToken, Device, Home, ListItem, MediaPlayer, ModelVersion, Timer
from feedback.models import (
    BargeIn,
    Experiment,
    ExperimentAssignment,
    Feedback,
    RewriteRule,
    Session,
    Turn,
)
from learning.models import Job

SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def data(alice) -> dict:
    now = timezone.now()
    home = Home.objects.get(owner=alice)
    speaker = Device.objects.filter(home=home, kind=Device.Kind.SPEAKER).first()
    session = Session.objects.create(user=alice, device=speaker, channel=Session.Channel.WEB, started_at=now)
    turn = Turn.objects.create(
        session=session,
        user=alice,
        created_at=now,
        raw_text=SCRIPT,
        asr_text="script alert 1 script",
        intent="out_of_scope",
        slots={"device": SCRIPT},
        nlu_confidence=0.2,
        response=f"Sorry, I can't help with {SCRIPT} yet.",
        status=Turn.Status.OUT_OF_SCOPE,
        context={"room": "kitchen"},
        trace=[
            {"stage": "asr", "input": [SCRIPT], "output": "script alert 1 script", "ms": 0.1, "model_version": "x"},
            {"stage": "nlu", "input": SCRIPT, "output": {"intent": "out_of_scope"}, "ms": 3.2, "model_version": "v"},
        ],
        total_ms=3.3,
    )
    barge_in = BargeIn.objects.create(turn=turn, offset_words=2, offset_ms=700, source=BargeIn.Source.STOP)
    feedback = Feedback.objects.create(turn=turn, kind=Feedback.Kind.THUMBS_DOWN)
    rule = RewriteRule.objects.create(source_text=SCRIPT, target_text="hello", origin=RewriteRule.Origin.MINED)
    model = ModelVersion.objects.create(
        kind="nlu", version="20260101-abc", path="/tmp/nlu", manifest={"note": SCRIPT}, metrics={"accuracy": 0.9}
    )
    job = Job.objects.create(kind="retrain_nlu", params={"q": SCRIPT}, result={"ok": True}, message=SCRIPT)
    timer = Timer.objects.create(home=home, kind=Timer.Kind.TIMER, label=SCRIPT, fires_at=now + timedelta(minutes=5))
    item = ListItem.objects.create(home=home, list_name="shopping", text=SCRIPT)
    token = ApiToken.objects.create(user=alice)
    player = MediaPlayer.objects.get(home=home)
    player.item = {"title": SCRIPT}
    player.save()
    experiment = Experiment.objects.create(
        name="rewrites-ab", description=SCRIPT, arms=[{"name": "control", "config": {}}, {"name": SCRIPT, "config": {}}]
    )
    assignment = ExperimentAssignment.objects.create(experiment=experiment, user=alice, arm=SCRIPT)
    return {
        "experiment": experiment,
        "experimentassignment": assignment,
        "session": session,
        "turn": turn,
        "bargein": barge_in,
        "feedback": feedback,
        "rewriterule": rule,
        "modelversion": model,
        "job": job,
        "home": home,
        "device": speaker,
        "mediaplayer": player,
        "timer": timer,
        "listitem": item,
        "apitoken": token,
    }


MODELS = [
    ("feedback", "session"),
    ("feedback", "turn"),
    ("feedback", "bargein"),
    ("feedback", "feedback"),
    ("feedback", "rewriterule"),
    ("assistant", "modelversion"),
    ("learning", "job"),
    ("feedback", "experiment"),
    ("feedback", "experimentassignment"),
    ("assistant", "home"),
    ("assistant", "device"),
    ("assistant", "mediaplayer"),
    ("assistant", "timer"),
    ("assistant", "listitem"),
    ("assistant", "apitoken"),
]


@pytest.mark.parametrize(("app", "model"), MODELS)
def test_the_changelist_renders(admin_client, data, app, model):
    response = admin_client.get(reverse(f"admin:{app}_{model}_changelist"))
    assert response.status_code == 200
    assert SCRIPT.encode() not in response.content


@pytest.mark.parametrize(("app", "model"), MODELS)
def test_the_change_page_renders(admin_client, data, app, model):
    response = admin_client.get(reverse(f"admin:{app}_{model}_change", args=[data[model].pk]))
    assert response.status_code == 200
    assert SCRIPT.encode() not in response.content


def test_the_turn_page_shows_the_escaped_text_and_pretty_trace(admin_client, data):
    response = admin_client.get(reverse("admin:feedback_turn_change", args=[data["turn"].pk]))
    content = response.content.decode()
    assert ESCAPED in content
    assert SCRIPT not in content
    # Pretty-printed: one key per line, indented, inside <pre> (jsonb keeps its own key order).
    assert '<pre style="white-space: pre-wrap; margin: 0">[\n  {\n    &quot;' in content
    assert "\n    &quot;stage&quot;: &quot;asr&quot;,\n" in content
    # Barge-ins and feedback are shown inline.
    assert "700" in content
    assert "Thumbs down" in content


def test_the_turn_list_shows_the_escaped_text(admin_client, data):
    content = admin_client.get(reverse("admin:feedback_turn_changelist")).content.decode()
    assert ESCAPED in content


@pytest.mark.parametrize(
    "query",
    [
        "q=script",
        "q=alice",
        "q=%3Cscript%3E",
        "status__exact=oos",
        "intent__exact=out_of_scope",
        "session__channel__exact=web",
        "created_at__gte=2000-01-01",
        f"created_at__year={timezone.now().year}",
        "q=%00",
    ],
)
def test_the_turn_list_searches_and_filters(admin_client, data, query):
    response = admin_client.get(reverse("admin:feedback_turn_changelist") + "?" + query)
    assert response.status_code in (200, 302)  # 302: the admin's own answer to a filter it cannot apply
    if response.status_code == 200:
        assert SCRIPT.encode() not in response.content


@pytest.mark.parametrize(("action", "status"), [("approve", "active"), ("reject", "rejected")])
def test_rewrite_rules_can_be_approved_and_rejected(admin_client, data, action, status):
    rule = data["rewriterule"]
    response = admin_client.post(
        reverse("admin:feedback_rewriterule_changelist"),
        {"action": action, "_selected_action": [rule.pk]},
        follow=True,
    )
    assert response.status_code == 200
    rule.refresh_from_db()
    assert rule.status == status


def test_a_turn_cannot_be_added_by_hand(admin_client, data):
    assert admin_client.get(reverse("admin:feedback_turn_add")).status_code == 403


def test_non_staff_are_sent_to_the_login(client, alice, data):
    client.force_login(alice)
    response = client.get(reverse("admin:feedback_turn_changelist"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
