"""Staff review pages: the inbox of likely defects and a readable turn; only staff and reviewers get in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from feedback.labels import label_turn, reviewed
from feedback.models import BargeIn, DefectCluster, Feedback, Label, Rephrase, Session, Turn

pytestmark = pytest.mark.django_db
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _turn(user, text: str, *, at=NOON, defect: float | None = None, response: str = "", intent: str = "") -> Turn:
    session = Session.objects.create(user=user, channel=Session.Channel.WEB, started_at=at)
    return Turn.objects.create(
        session=session,
        user=user,
        created_at=at,
        raw_text=text,
        asr_text=text,
        intent=intent,
        response=response,
        defect_probability=defect,
        defect_model_version="defect-test" if defect is not None else "",
        trace=[
            {"stage": "asr", "input": text, "output": text, "confidence": 1.0, "ms": 0.1, "model_version": "typed"},
            {
                "stage": "nlu",
                "input": text,
                "output": {"intent": intent, "alternatives": [{"intent": "iot_hue_lightoff", "confidence": 0.3}]},
                "confidence": 0.41,
                "ms": 12.5,
                "model_version": "nlu-test",
            },
        ],
    )


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_only_staff_and_reviewers_get_in(client, alice, staff, reviewer):
    turn = _turn(alice, "turn of the kitchn lights", defect=0.9)
    for url in ("/review/", f"/review/turns/{turn.pk}/"):
        assert client.get(url).status_code == 302  # anonymous: to the login page
        assert _client(alice).get(url).status_code == 403  # a user of the assistant is not a reviewer
        assert _client(staff).get(url).status_code == 200
        assert _client(reviewer).get(url).status_code == 200
    assert _client(staff).post("/review/").status_code == 405


def test_the_inbox_lists_likely_defects_most_likely_first_and_filters(alice, bob, staff):
    _turn(alice, "turn of the kitchn lights", defect=0.7, intent="iot_hue_lightoff")
    _turn(bob, "wake me up at seven", defect=0.95, intent="alarm_set", at=NOON + timedelta(days=2))
    _turn(alice, "what time is it", defect=0.1, intent="datetime_query")
    _turn(alice, "not scored yet")
    page = _client(staff).get("/review/", {"view": "turns"}).content.decode()
    assert page.index("wake me up at seven") < page.index("turn of the kitchn lights")
    assert "what time is it" not in page and "not scored yet" not in page
    only = _client(staff).get("/review/", {"view": "turns", "intent": "iot_hue_lightoff"}).content.decode()
    assert "turn of the kitchn lights" in only and "wake me up" not in only
    later = _client(staff).get("/review/", {"view": "turns", "since": "2026-11-22"}).content.decode()
    assert "wake me up at seven" in later and "kitchn" not in later
    found = _client(staff).get("/review/", {"view": "turns", "q": "KITCHN"}).content.decode()
    assert "kitchn" in found and "wake me up" not in found
    bad = _client(staff).get("/review/", {"view": "turns", "since": "<script>", "page": "x"})
    assert bad.status_code == 200 and "must be a date" in bad.content.decode()
    assert "<script>" not in bad.content.decode()


def test_a_turn_reads_as_a_timeline_with_the_barge_in_and_what_followed(alice, staff):
    first = _turn(
        alice,
        "turn of the kitchn lights <b>now</b>",
        defect=0.8,
        intent="out_of_scope",
        response="Sorry, I can't help with that yet, but I'm learning.",
    )
    BargeIn.objects.create(turn=first, offset_words=3, offset_ms=900, source=BargeIn.Source.STOP)
    Feedback.objects.create(turn=first, kind=Feedback.Kind.THUMBS_DOWN)
    second = _turn(alice, "turn off the kitchen lights", at=NOON + timedelta(seconds=20), intent="iot_hue_lightoff")
    Rephrase.objects.create(first=first, second=second, score=0.9, gap_ms=20000, detector_version="test")
    page = _client(staff).get(f"/review/turns/{first.pk}/").content.decode()
    assert "<b>now</b>" not in page and "&lt;b&gt;now&lt;/b&gt;" in page  # user text is escaped
    assert "Sorry, I can&#x27;t" in page and "cut here after 3 words, 900 ms" in page
    assert "help with that yet" in page.split("cut here")[1]  # the words not heard come after the mark
    assert "nlu-test" in page and "iot_hue_lightoff (0.30)" in page  # stage, model, alternatives
    assert "thumbs_down" in page and "Rephrased next as" in page and f"/review/turns/{second.pk}/" in page
    assert "0.800 (defect-test)" in page
    back = _client(staff).get(f"/review/turns/{second.pk}/").content.decode()
    assert "Rephrased <a" in back and "not scored yet" in back


def test_an_unknown_turn_is_not_found(staff):
    assert _client(staff).get("/review/turns/999999/").status_code == 404


def test_a_reviewer_labels_a_turn_and_can_undo_it(alice, reviewer):
    turn = _turn(alice, "turn of the kitchen lights", defect=0.9, intent="out_of_scope")
    client = _client(reviewer)
    url = f"/review/turns/{turn.pk}/label/"
    response = client.post(url, {"intent": "iot_hue_lightoff", "slots": "room = kitchen", "failure_point": "nlu"})
    assert response.status_code == 302 and response["Location"] == f"/review/turns/{turn.pk}/"
    label = Label.objects.get(turn=turn)
    assert (label.intent, label.slots, label.failure_point, label.reviewer) == (
        "iot_hue_lightoff",
        {"room": "kitchen"},
        "nlu",
        reviewer,
    )
    page = client.get(f"/review/turns/{turn.pk}/").content.decode()
    assert "room = “kitchen”" in page and "rita" in page
    assert list(reviewed()) == [label]
    assert client.post(f"/review/labels/{label.pk}/undo/").status_code == 302
    label.refresh_from_db()
    assert label.undone_at is not None and label.undone_by == reviewer
    assert list(reviewed()) == []  # undone: it no longer counts


@pytest.mark.parametrize(
    ("form", "why"),
    [
        ({"intent": "", "failure_point": ""}, "Give an intent"),
        ({"intent": "no_such_intent"}, "Unknown intent"),
        ({"intent": "iot_hue_lightoff", "slots": "room = bathroom"}, "is not words of this turn"),
        ({"intent": "iot_hue_lightoff", "slots": "colour_type = kitchen"}, "has no slot"),
        ({"intent": "iot_hue_lightoff", "slots": "<script>alert(1)</script>"}, "write each slot as"),
        ({"intent": "iot_hue_lightoff", "failure_point": "everywhere"}, "Unknown failure point"),
    ],
)
def test_a_wrong_label_is_refused_saying_why_and_nothing_is_stored(alice, staff, form, why):
    turn = _turn(alice, "turn of the kitchen lights", defect=0.9)
    response = _client(staff).post(f"/review/turns/{turn.pk}/label/", form)
    assert response.status_code == 400
    page = response.content.decode()
    assert why in page.replace("&#x27;", "'").replace("&quot;", '"') and "<script>alert" not in page
    assert not Label.objects.exists()


def test_labels_are_refused_to_others_and_unknown_ids_are_not_found(alice, staff):
    turn = _turn(alice, "turn of the kitchen lights", defect=0.9)
    assert _client(alice).post(f"/review/turns/{turn.pk}/label/", {"intent": "iot_hue_lightoff"}).status_code == 403
    assert _client(staff).post("/review/turns/999999/label/", {"intent": "iot_hue_lightoff"}).status_code == 404
    assert _client(staff).post("/review/labels/999999/undo/").status_code == 404
    assert not Label.objects.exists()


def test_reviewed_turns_export_as_slurp_and_rasa_that_the_importers_read(alice, staff, tmp_path):
    from assistant.nlu.datasets import read_inline_jsonl, read_rasa

    first = _turn(alice, "turn of the kitchen lights", defect=0.9)
    second = _turn(alice, "wake me up at seven", defect=0.8)
    only_failure = _turn(alice, "blah", defect=0.8)
    client = _client(staff)
    client.post(f"/review/turns/{first.pk}/label/", {"intent": "iot_hue_lightoff", "slots": "room = kitchen"})
    client.post(f"/review/turns/{second.pk}/label/", {"intent": "alarm_set", "slots": "time = 7"})
    client.post(f"/review/turns/{only_failure.pk}/label/", {"failure_point": "none"})
    slurp = client.get("/review/export/slurp.jsonl")
    assert slurp.status_code == 200 and "attachment" in slurp["Content-Disposition"]
    (tmp_path / "reviewed.jsonl").write_bytes(slurp.content)
    rows = list(read_inline_jsonl(tmp_path / "reviewed.jsonl", "slurp"))
    assert [(r.text, r.intent) for r in rows] == [
        ("turn of the kitchen lights", "iot_hue_lightoff"),
        ("wake me up at 7", "alarm_set"),
    ]
    assert rows[0].spans[0][0] == "room"
    (tmp_path / "reviewed.yml").write_bytes(client.get("/review/export/rasa.yml").content)
    assert sorted((r.text, r.intent) for r in read_rasa(tmp_path / "reviewed.yml")) == sorted(
        (r.text, r.intent) for r in rows
    )
    assert _client(alice).get("/review/export/slurp.jsonl").status_code == 403


def test_the_inbox_groups_the_same_failing_request_across_people_and_ranks_by_impact(alice, bob, charlie, staff):
    from learning.clusters import build_clusters

    for user, text in [
        (alice, "turn of the kitchn lights"),
        (bob, "turn of the kitchn lights"),
        (charlie, "turn of the kitchen light"),
        (alice, "turn of the kitchn lights"),
        (bob, "wake me up at seven"),
        (bob, "wake me up at seven"),
        (bob, "wake me up at seven o'clock"),
    ]:
        _turn(user, text, defect=0.9, intent="out_of_scope", at=NOON)
    _turn(alice, "what time is it", defect=0.1, at=NOON)
    result = build_clusters(now=NOON + timedelta(days=1))
    assert result["turns"] == 7 and result["clusters"] == 2
    lights, alarm = DefectCluster.objects.order_by("-users", "-turns")
    assert (lights.users, lights.turns, lights.representative) == (3, 4, "turn of the kitchn lights")
    assert (alarm.users, alarm.turns) == (1, 3) and "wake me up at 7" in alarm.examples  # normalised words
    assert set(alarm.wordings.splitlines()) == set(alarm.examples)  # what the inbox's search reads
    assert lights.recent_turns == 4 and lights.trend == 4 and lights.top_intent == "out_of_scope"
    assert set(lights.members.values_list("user__username", flat=True)) == {"alice", "bob", "charlie"}

    page = _client(staff).get("/review/").content.decode()
    assert page.index("turn of the kitchn lights") < page.index("wake me up at 7")  # more people first
    cluster_page = _client(staff).get(f"/review/clusters/{lights.pk}/").content.decode()
    assert "charlie" in cluster_page and "wake me up" not in cluster_page
    searched = _client(staff).get("/review/", {"q": "o'clock"}).content.decode()
    assert "wake me up at 7" in searched and "kitchn" not in searched
    assert _client(alice).get(f"/review/clusters/{lights.pk}/").status_code == 403
    assert _client(staff).get("/review/clusters/999999/").status_code == 404

    # A new run replaces the grouping.
    build_clusters(now=NOON + timedelta(days=60))  # nothing in the last REVIEW_CLUSTER_DAYS any more
    assert not DefectCluster.objects.exists() and not Turn.objects.filter(defect_cluster__isnull=False).exists()


def _versions(tmp_path):
    """Two versions of a kind on disk, the newer active."""
    from assistant.artifacts import write_artifact
    from assistant.registry import ModelKind

    kind = ModelKind("testkind", lambda path: None, label="test model")
    rows = []
    for name in ("v1", "v2"):
        out = tmp_path / name
        write_artifact(out, {"format": "test", "version": name, "metrics": {"accuracy": 0.9}}, {})
        rows.append(kind.register(out, {"format": "test", "version": name, "metrics": {"accuracy": 0.9}}))
    return rows


def test_staff_roll_a_model_back_and_reviewers_cannot(staff, reviewer, tmp_path):
    from assistant.models import ModelVersion

    old, new = _versions(tmp_path)
    page = _client(reviewer).get("/review/models/").content.decode()
    assert "testkind" in page and "accuracy 0.9" in page and "Make active" not in page
    assert _client(reviewer).post(f"/review/models/{old.pk}/activate/").status_code == 403
    assert ModelVersion.objects.get(pk=new.pk).status == ModelVersion.Status.ACTIVE
    assert "Make active" in _client(staff).get("/review/models/").content.decode()
    assert _client(staff).post(f"/review/models/{old.pk}/activate/").status_code == 302
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.status == ModelVersion.Status.ACTIVE
    assert new.status == ModelVersion.Status.REJECTED and "rolled back to v1 by sam" in new.note
    again = _client(staff).post(f"/review/models/{old.pk}/activate/")
    assert again.status_code == 400 and "already the active version" in again.content.decode()
    assert _client(staff).post("/review/models/999999/activate/").status_code == 404


def test_staff_start_a_learning_cycle_and_watch_the_jobs(staff, reviewer, django_capture_on_commit_callbacks):
    from learning.models import Job

    assert _client(reviewer).post("/review/jobs/run-cycle/").status_code == 403
    assert not Job.objects.exists()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert _client(staff).post("/review/jobs/run-cycle/").status_code == 302
    job = Job.objects.get(kind="learning_cycle")
    assert job.status == Job.Status.QUEUED and len(callbacks) == 1
    part = _client(staff).get("/review/models/", {"part": "jobs"}, HTTP_HX_REQUEST="true").content.decode()
    assert "learning_cycle" in part and "<h1>" not in part  # only the jobs table, refreshed every few seconds


def _rule(**fields):
    from feedback.models import RewriteRule

    defaults = {
        "source_text": "turn of the kitchn lights",
        "target_text": "turn off the kitchen lights",
        "status": "proposed",
        "origin": "mined",
        "distinct_users": 4,
        "wins": 8.0,
        "losses": 1.0,
        "evidence": {"chains": [{"session": "a1b2c3d4e5f6", "path": ["turn of the kitchn lights", "<b>x</b>"]}]},
    }
    return RewriteRule.objects.create(**{**defaults, **fields})


def test_staff_approve_reject_and_undo_a_rule_with_its_evidence(staff, reviewer):
    from feedback.models import RewriteRule, RuleDecision

    rule = _rule()
    page = _client(reviewer).get("/review/rules/").content.decode()
    assert "turn of the kitchn lights" in page and "0.818 [" in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "Approve" not in page  # reviewers look; staff decide
    assert _client(reviewer).post(f"/review/rules/{rule.pk}/approve/").status_code == 403
    client = _client(staff)
    assert client.post(f"/review/rules/{rule.pk}/approve/").status_code == 302
    rule.refresh_from_db()
    assert rule.status == RewriteRule.Status.ACTIVE and "approved by sam" in rule.status_reason
    assert client.post(f"/review/rules/{rule.pk}/approve/").status_code == 400  # already active
    assert client.post(f"/review/rules/{rule.pk}/explode/").status_code == 400
    decision = RuleDecision.objects.get(rule=rule)
    assert (decision.from_status, decision.to_status, decision.reviewer) == ("proposed", "active", staff)
    assert client.post(f"/review/rule-decisions/{decision.pk}/undo/").status_code == 302
    rule.refresh_from_db()
    assert rule.status == RewriteRule.Status.PROPOSED
    assert client.post(f"/review/rule-decisions/{decision.pk}/undo/").status_code == 400  # undone already
    assert client.post("/review/rules/999999/reject/").status_code == 404
    assert client.post("/review/rule-decisions/999999/undo/").status_code == 404
    personal = _rule(source_text="lights of", scope="personal")
    assert client.post(f"/review/rules/{personal.pk}/reject/").status_code == 404  # someone's own: not reviewed here


def test_a_whole_cluster_is_labelled_at_once_or_not_at_all(alice, bob, reviewer):
    from learning.clusters import build_clusters

    for user in (alice, bob, alice):
        _turn(user, "turn of the kitchn lights", defect=0.9, intent="out_of_scope", at=NOON)
    build_clusters(now=NOON)
    cluster = DefectCluster.objects.get()
    client = _client(reviewer)
    refused = client.post(f"/review/clusters/{cluster.pk}/label/", {"intent": "no_such_intent", "failure_point": "nlu"})
    assert refused.status_code == 400 and "Unknown intent" in refused.content.decode()
    assert not Label.objects.exists()
    done = client.post(f"/review/clusters/{cluster.pk}/label/", {"intent": "iot_hue_lightoff", "failure_point": "nlu"})
    assert done.status_code == 302
    assert Label.objects.filter(intent="iot_hue_lightoff", failure_point="nlu", reviewer=reviewer).count() == 3
    assert _client(alice).post(f"/review/clusters/{cluster.pk}/label/", {"failure_point": "nlu"}).status_code == 403
    assert client.post("/review/clusters/999999/label/", {"failure_point": "nlu"}).status_code == 404


def test_the_review_benchmark_prints_each_pages_timings_and_cleans_up():
    import json
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("bench_review", "--turns", "300", "--requests", "2", stdout=out)
    report = json.loads(out.getvalue())
    assert report["bench_turns"] == 300 and report["cluster_step"]["clusters"] > 0
    assert set(report["pages"]) == {
        "inbox_clusters",
        "inbox_turns",
        "inbox_turns_page_50",
        "inbox_search",
        "inbox_turns_search",
        "inbox_turns_search_rare",
        "inbox_turns_search_absent",
        "inbox_turns_unsure",
        "inbox_failed_at",
        "inbox_turns_skill_rare",
        "inbox_turns_nlu_version",
        "inbox_clusters_skill",
        "cluster",
        "turn",
    }
    assert all(p["p95_ms"] > 0 for p in report["pages"].values())
    assert not Turn.objects.exists() and not DefectCluster.objects.exists()  # the bench's data is gone


def test_the_dashboard_draws_defect_rates_with_intervals_escaping_every_label(alice, bob, staff, reviewer):
    from feedback.models import Experiment, ExperimentAssignment

    assert "No turns yet" in _client(staff).get("/review/dashboard/").content.decode()
    for i in range(6):
        _turn(alice, f"turn of the lights {i}", defect=0.9 if i < 4 else 0.1, intent="<script>x</script>", at=NOON)
    _turn(bob, "what time is it", defect=0.05, intent="datetime_query", at=NOON + timedelta(days=1))
    experiment = Experiment.objects.create(name="rewrites", arms=[{"name": "control"}, {"name": "global"}])
    ExperimentAssignment.objects.create(experiment=experiment, user=alice, arm="control")
    ExperimentAssignment.objects.create(experiment=experiment, user=bob, arm="global")
    Turn.objects.filter(raw_text__startswith="turn of the lights").update(skill="smart_home")
    Turn.objects.filter(raw_text="turn of the lights 0").update(failure_point="nlu")
    Turn.objects.filter(raw_text="turn of the lights 1").update(failure_point="asr")
    page = _client(reviewer).get("/review/dashboard/").content.decode()
    assert "smart_home" in page and "0.50 (1/2)" in page  # half the placed failures failed at each
    assert page.count("<svg") == 5 and "<script>x" not in page and "&lt;script&gt;x&lt;/script&gt;" in page
    assert "0.67 (4/6)" in page and "rewrites: control" in page and "0.00 (0/1)" in page
    assert "<line" in page  # the 95% interval whiskers
    assert _client(alice).get("/review/dashboard/").status_code == 403


def test_reviewers_labels_join_the_nlu_training_data_and_win_over_the_seed(alice, staff):
    from assistant.nlu.seed import seed_examples
    from learning.nlu.service import reviewed_examples, with_feedback

    seed = seed_examples()
    assert with_feedback(seed) is seed  # no label: the seed as it is (same data, no retraining)
    turn = _turn(alice, "lights of in the kitchen please", defect=0.9)
    clash = seed[0]
    other = _turn(alice, clash.text, defect=0.9)
    client = _client(staff)
    client.post(f"/review/turns/{turn.pk}/label/", {"intent": "iot_hue_lightoff", "slots": "room = kitchen"})
    client.post(f"/review/turns/{other.pk}/label/", {"intent": "general_joke"})
    client.post(f"/review/turns/{other.pk}/label/", {"failure_point": "nlu"})  # a later one without an intent
    (example, *rest) = [e for e in reviewed_examples() if e.text == "lights of in the kitchen please"]
    assert not rest and example.intent == "iot_hue_lightoff"
    span = example.spans[0]
    assert (span.type, span.value, example.text[span.start : span.end]) == ("room", "kitchen", "kitchen")
    merged = with_feedback(seed)
    assert any(e.text == "lights of in the kitchen please" for e in merged)
    # The turn's current label is the newest one, which names no intent: the seed's label stands.
    assert next(e for e in merged if e.text == clash.text).intent == clash.intent
    relabelled = next(e for e in seed if e.intent != "general_joke" and e.text != clash.text)
    client.post(f"/review/turns/{_turn(alice, relabelled.text, defect=0.9).pk}/label/", {"intent": "general_joke"})
    assert next(e for e in with_feedback(seed) if e.text == relabelled.text).intent == "general_joke"  # reviewer wins


def test_pages_are_cut_without_counting_the_list(alice):
    from review.paging import page_of

    for i in range(5):
        _turn(alice, f"turn {i}", defect=0.9)
    rows = Turn.objects.order_by("id")
    first = page_of(rows, None, 2)
    assert [t.raw_text for t in first.object_list] == ["turn 0", "turn 1"] and first.has_next and not first.has_previous
    last = page_of(rows, "3", 2)
    assert [t.raw_text for t in last.object_list] == ["turn 4"] and not last.has_next and last.previous_page_number == 2
    assert page_of(rows, "<b>", 2).number == 1 and page_of(rows, "-4", 2).number == 1
    assert page_of(rows, "99999999999", 2).object_list == []  # far past the end: an empty page, no error


def test_every_likely_defect_shows_where_it_failed_and_the_inbox_filters_by_it(alice, bob, staff):
    misheard = _turn(alice, "turn of the kitchn lights", defect=0.8, intent="music_play")
    Turn.objects.filter(pk=misheard.pk).update(
        failure_point="asr", failure_point_confidence=0.71, failure_point_model_version="failure-point-test"
    )
    unresolved = _turn(bob, "lights off in the attic", defect=0.9, intent="iot_hue_lightoff")
    Turn.objects.filter(pk=unresolved.pk).update(failure_point="resolve", failure_point_confidence=0.9)
    client = _client(staff)
    only_asr = client.get("/review/", {"view": "turns", "failed_at": "asr"}).content.decode()
    assert "kitchn" in only_asr and "attic" not in only_asr
    unsure = client.get("/review/", {"view": "turns", "order": "unsure"}).content.decode()
    assert unsure.index("kitchn") < unsure.index("attic")  # 0.71 sure before 0.9 sure
    anything = client.get("/review/", {"view": "turns", "failed_at": "<b>nonsense</b>"})
    assert (
        anything.status_code == 200 and "attic" in anything.content.decode() and "kitchn" in anything.content.decode()
    )
    page = client.get(f"/review/turns/{misheard.pk}/").content.decode()
    assert "asr, confidence 0.71 (failure-point-test)" in page
    label_turn(misheard, staff, failure_point="nlu")
    page = client.get(f"/review/turns/{misheard.pk}/").content.decode()
    assert "nlu (a reviewer's label); the model said asr" in page

    cluster = DefectCluster.objects.create(
        representative="lights off in the attic", turns=1, users=1, failure_point="resolve", failure_point_share=1.0,
        first_seen=NOON, last_seen=NOON, built_at=NOON,
    )  # fmt: skip
    unresolved.defect_cluster = cluster
    unresolved.save(update_fields=["defect_cluster"])
    inbox = client.get("/review/", {"failed_at": "resolve"}).content.decode()
    assert "lights off in the attic" in inbox
    assert "lights off in the attic" not in client.get("/review/", {"failed_at": "asr"}).content.decode()
    assert "1.00 of them failed at resolve" in client.get(f"/review/clusters/{cluster.pk}/").content.decode()


def test_word_search_reads_a_full_text_index_of_the_words():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'feedback_turn'")
        definitions = dict(cursor.fetchall())
    assert "to_tsvector('simple'" in definitions["turn_words_fts"] and "gin" in definitions["turn_words_fts"]
    assert "turn_text_trgm" not in definitions  # substring search is gone


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("kitchn", {"turn of the kitchn lights"}),
        ("KITCH", {"turn of the kitchn lights", "kitchen timer please"}),  # the last word as a word's start
        ("lights kitch", {"turn of the kitchn lights"}),  # every word, in any order
        ("the lights", {"turn of the kitchn lights"}),
        ("ights", set()),  # words, not substrings
        ("!!! ...", set()),  # no word at all
        ("<script>alert('x')</script>", set()),
        ("kitchn & | ! ( ) :* '", {"turn of the kitchn lights"}),  # tsquery's operators are not words
        ("ünïcode", {"ünïcode wörds here"}),
    ],
)
def test_the_search_finds_turns_by_their_words(alice, staff, q, found):
    texts = ["turn of the kitchn lights", "kitchen timer please", "wake me up at seven", "ünïcode wörds here"]
    for text in texts:
        _turn(alice, text, defect=0.9)
    response = _client(staff).get("/review/", {"view": "turns", "q": q})
    assert response.status_code == 200
    page = response.content.decode()
    assert {t for t in texts if f"“{t}”" in page} == found
    assert "<script>alert" not in page


def test_the_miner_leaves_a_rule_a_person_approved_as_they_decided(staff):
    from feedback import rule_review
    from feedback.models import RewriteRule
    from learning.mining import mine_and_store

    approved = _rule(scope="global")
    rule_review.decide(approved, staff, "approve")
    unvouched = _rule(source_text="lights of", status="active")
    mine_and_store(lambda share, message: None)  # no chain supports either any more
    approved.refresh_from_db()
    unvouched.refresh_from_db()
    assert approved.status == RewriteRule.Status.ACTIVE and "approved by sam" in approved.status_reason
    assert unvouched.status == RewriteRule.Status.RETIRED
    assert rule_review.approved_by_a_person([approved.pk, unvouched.pk]) == {approved.pk}


def test_failures_meant_as_the_same_request_are_one_cluster_however_worded(alice, bob, charlie, staff):
    from learning.clusters import build_clusters

    def failed_then_worked(user, tries: list[str], worked: str, slots: dict) -> list[Turn]:
        failed = [
            _turn(user, said, defect=0.9, intent="out_of_scope", at=NOON + timedelta(seconds=10 * i))
            for i, said in enumerate(tries)
        ]
        success = _turn(user, worked, defect=0.01, intent="alarm_set", at=NOON + timedelta(seconds=50))
        Turn.objects.filter(pk=success.pk).update(slots=slots)
        for first, second in zip(failed, [*failed[1:], success], strict=True):
            Rephrase.objects.create(first=first, second=second, score=0.9, gap_ms=10000, detector_version="test")
        return failed

    # The failed words need not carry the slot ("seven" for "7 am"), and an earlier try of the chain counts too.
    a = failed_then_worked(alice, ["rouse me when it is seven"], "set an alarm for 7 am", {"time": "7 am"})
    b = failed_then_worked(
        bob, ["i need to be up by 7 in the morning", "up at 7 tomorrow morning"], "alarm at 7 am", {"time": "7 AM"}
    )
    other = failed_then_worked(charlie, ["get me out of bed at nine"], "alarm for 9 am", {"time": "9 am"})
    build_clusters(now=NOON + timedelta(minutes=1))
    clusters = {t.raw_text: Turn.objects.get(pk=t.pk).defect_cluster_id for t in [*a, *b, *other]}
    assert len({clusters[t.raw_text] for t in [*a, *b]}) == 1
    assert clusters["get me out of bed at nine"] != clusters["rouse me when it is seven"]
    merged = DefectCluster.objects.get(pk=clusters["rouse me when it is seven"])
    assert merged.users == 2 and merged.turns == 3


def test_the_inbox_ranks_first_the_groups_a_label_or_rule_can_fix(alice, bob, charlie, staff):
    from learning.clusters import build_clusters

    for user in (alice, bob, charlie):  # three people, but carrying it out failed: no label fixes that
        failed = _turn(user, "remove my alarm for tomorrow", defect=0.9, intent="alarm_remove", at=NOON)
        Turn.objects.filter(pk=failed.pk).update(failure_point="execute", failure_point_confidence=0.9)
    misread = _turn(alice, "turn of the kitchn lights", defect=0.9, intent="out_of_scope", at=NOON)
    Turn.objects.filter(pk=misread.pk).update(failure_point="nlu", failure_point_confidence=0.8)
    build_clusters(now=NOON + timedelta(minutes=1))
    alarm = DefectCluster.objects.get(representative="remove my alarm for tomorrow")
    assert not alarm.fixable and alarm.failure_point == "execute" and alarm.users == 3
    page = _client(staff).get("/review/").content.decode()
    assert page.index("turn of the kitchn lights") < page.index("remove my alarm for tomorrow")


def test_a_cluster_shows_the_rules_that_fired_or_could_and_staff_decide_there(alice, bob, staff, reviewer):
    from feedback.models import RewriteRule

    cluster = DefectCluster.objects.create(
        representative="turn of the kitchn lights",
        examples=["turn of the kitchn lights", "turn of kitchn light"],
        turns=2,
        users=2,
        first_seen=NOON,
        last_seen=NOON,
        built_at=NOON,
    )
    could = _rule()  # proposed, its source one of the cluster's wordings
    fired = _rule(source_text="kitchn lights of", status="active")
    elsewhere = _rule(source_text="play jazz", target_text="play some jazz")
    mine = _rule(scope="personal", user=alice, target_text="<i>my own</i>")
    turn = _turn(bob, "kitchn lights of", defect=0.9)
    Turn.objects.filter(pk=turn.pk).update(defect_cluster=cluster, rewrite={"kept": True, "rule_id": fired.pk})
    page = _client(reviewer).get(f"/review/clusters/{cluster.pk}/").content.decode()
    assert f'id="rule-{could.pk}"' in page and f'id="rule-{fired.pk}"' in page
    assert f'id="rule-{elsewhere.pk}"' not in page and f'id="rule-{mine.pk}"' not in page  # nobody's own rule
    assert "Approve" not in page  # reviewers look; staff decide
    client = _client(staff)
    shown = client.get(f"/review/clusters/{cluster.pk}/").content.decode()
    assert "Approve" in shown and f'value="/review/clusters/{cluster.pk}/"' in shown
    back = client.post(f"/review/rules/{could.pk}/approve/", {"next": f"/review/clusters/{cluster.pk}/"})
    assert back.status_code == 302 and back["Location"] == f"/review/clusters/{cluster.pk}/#rule-{could.pk}"
    assert RewriteRule.objects.get(pk=could.pk).status == RewriteRule.Status.ACTIVE
    # A decision never sends anyone off this site.
    away = client.post(f"/review/rules/{could.pk}/reject/", {"next": "https://evil.example/"})
    assert away["Location"].startswith("/review/rules/?status=all#rule-")
    empty = DefectCluster.objects.create(
        representative="never ruled", examples=[], first_seen=NOON, last_seen=NOON, built_at=NOON
    )
    assert "No rewrite rule fired" in client.get(f"/review/clusters/{empty.pk}/").content.decode()


def test_a_cluster_says_how_the_people_behind_it_went_on(alice, bob, charlie, staff):
    cluster = DefectCluster.objects.create(
        representative="rouse me at seven", turns=3, users=3, first_seen=NOON, last_seen=NOON, built_at=NOON
    )
    got, gave_up, silent = (_turn(u, "rouse me at seven", defect=0.9) for u in (alice, bob, charlie))
    Turn.objects.filter(pk__in=[got.pk, gave_up.pk, silent.pk]).update(defect_cluster=cluster)
    retry = _turn(alice, "wake me at seven", defect=0.8, at=NOON + timedelta(seconds=5))
    success = _turn(alice, "set an alarm for 7 am", defect=0.05, intent="alarm_set", at=NOON + timedelta(seconds=9))
    failed_again = _turn(bob, "get me up at seven", defect=0.9, at=NOON + timedelta(seconds=5))
    for first, second in ((got, retry), (retry, success), (gave_up, failed_again)):
        Rephrase.objects.create(first=first, second=second, score=0.9, gap_ms=5000, detector_version="test")
    page = _client(staff).get(f"/review/clusters/{cluster.pk}/").content.decode()
    assert "1 had no rephrase after them" in page
    assert "1 was rephrased and no retry went well" in page
    assert "read as alarm_set (1)" in page


def test_underspecified_requests_rank_after_what_a_label_or_rule_can_fix(alice, bob, charlie, staff):
    from learning.clusters import build_clusters

    def retried(user, said: str, intent: str, worked: str, worked_intent: str, slots: dict, minute: int) -> Turn:
        failed = _turn(user, said, defect=0.9, intent=intent, at=NOON + timedelta(minutes=minute))
        success = _turn(user, worked, defect=0.02, intent=worked_intent, at=NOON + timedelta(minutes=minute, seconds=9))
        Turn.objects.filter(pk=success.pk).update(slots=slots)
        Rephrase.objects.create(first=failed, second=success, score=0.9, gap_ms=9000, detector_version="test")
        return failed

    for minute, user in enumerate((alice, bob, charlie)):  # three people left out their team
        retried(
            user,
            "how did my team do",
            "sports_query",
            "how did chelsea do",
            "sports_query",
            {"team": "chelsea"},
            minute,
        )
    for minute, user in enumerate((alice, bob), start=10):  # two were misread
        retried(user, "lights of in the den", "out_of_scope", "turn off the den lights", "iot_hue_lightoff", {}, minute)
    build_clusters(now=NOON + timedelta(hours=1))
    team = DefectCluster.objects.get(representative="how did my team do")
    lights = DefectCluster.objects.get(representative="lights of in the den")
    assert (team.underspecified_share, team.fixable) == (1.0, False)
    assert (lights.underspecified_share, lights.fixable) == (0.0, True)
    inbox = _client(staff).get("/review/").content.decode()
    assert inbox.index("lights of in the den") < inbox.index("how did my team do")  # fewer people, but fixable
    page = _client(staff).get(f"/review/clusters/{team.pk}/").content.decode()
    assert "100% of these turns were underspecified" in page and "a preference or a taught concept" in page


def test_without_postgresql_the_search_matches_each_word_as_written(alice, staff, monkeypatch):
    from types import SimpleNamespace

    from review import turns as review_turns

    for text in ("turn of the kitchn lights", "kitchen timer please"):
        _turn(alice, text, defect=0.9)
    monkeypatch.setattr(review_turns, "connection", SimpleNamespace(vendor="sqlite"))  # a bare `make run`
    page = _client(staff).get("/review/", {"view": "turns", "q": "KITCH lights"}).content.decode()
    assert "turn of the kitchn lights" in page and "kitchen timer" not in page
    assert "kitchen timer" not in _client(staff).get("/review/", {"view": "turns", "q": "..."}).content.decode()


def test_a_reviewer_says_whether_a_turn_retried_the_ones_before_it_and_can_undo_it(alice, bob, reviewer):
    from feedback.labels import reviewed_rephrases
    from feedback.models import RephraseLabel

    failed = _turn(alice, "turn of the kitchn lights", intent="out_of_scope")
    aside = _turn(alice, "<b>what time is it</b>", at=NOON + timedelta(seconds=4), intent="datetime_query")
    retry = _turn(alice, "switch off the kitchen lights", at=NOON + timedelta(seconds=9), intent="iot_hue_lightoff")
    Rephrase.objects.create(first=failed, second=retry, score=0.81, gap_ms=9000, detector_version="fixed-logistic-1")
    long_ago = _turn(alice, "turn on the lights", at=NOON - timedelta(minutes=5))
    client = _client(reviewer)
    page = client.get(f"/review/turns/{retry.pk}/").content.decode()
    assert "Was this a retry?" in page and "a retry (0.81)" in page and "no link" in page
    assert "&lt;b&gt;what time is it&lt;/b&gt;" in page and "<b>what time" not in page  # escaped
    assert f'value="{long_ago.pk}"' not in page  # five minutes before: not a pair the detector judges

    url = f"/review/turns/{retry.pk}/retry-of/"
    assert client.post(url, {"first": failed.pk, "verdict": "retry"}).status_code == 302
    assert client.post(url, {"first": aside.pk, "verdict": "not_retry"}).status_code == 302
    assert {(v.first_id, v.is_rephrase) for v in reviewed_rephrases()} == {(failed.pk, True), (aside.pk, False)}
    page = client.get(f"/review/turns/{retry.pk}/").content.decode()
    assert "not a retry" in page and "Undo" in page

    # A second thought wins; undoing it brings back the first.
    client.post(url, {"first": aside.pk, "verdict": "retry"})
    assert reviewed_rephrases().get(first=aside).is_rephrase is True
    latest = RephraseLabel.objects.filter(first=aside).order_by("-id").first()
    assert client.post(f"/review/retry-labels/{latest.pk}/undo/").status_code == 302
    assert reviewed_rephrases().get(first=aside).is_rephrase is False
    assert RephraseLabel.objects.count() == 3  # every decision is kept

    # Refused, saying why, storing nothing: itself, another person's, one too long before, bad input.
    for form, why in [
        ({"first": retry.pk, "verdict": "retry"}, "not a retry of itself"),
        ({"first": long_ago.pk, "verdict": "retry"}, "can be what it retried"),
        ({"first": _turn(bob, "lights off", at=NOON).pk, "verdict": "retry"}, "one person"),
        ({"first": failed.pk, "verdict": "<script>"}, "Say"),
        ({"first": "x" * 50, "verdict": "retry"}, "No earlier turn"),
        ({"first": "99999999", "verdict": "retry"}, "No earlier turn"),
        ({}, "Say"),
    ]:
        response = client.post(url, form)
        assert response.status_code == 400, form
        assert why in response.content.decode().replace("&#x27;", "'").replace("&quot;", '"'), form
    assert RephraseLabel.objects.count() == 3


def test_retry_verdicts_are_refused_to_others_and_unknown_ids_are_not_found(alice, staff):
    from feedback.models import RephraseLabel

    first = _turn(alice, "turn of the kitchn lights")
    second = _turn(alice, "kitchen lights off", at=NOON + timedelta(seconds=5))
    assert (
        _client(alice).post(f"/review/turns/{second.pk}/retry-of/", {"first": first.pk, "verdict": "retry"}).status_code
        == 403
    )
    assert (
        _client(staff).post("/review/turns/999999/retry-of/", {"first": first.pk, "verdict": "retry"}).status_code
        == 404
    )
    assert _client(staff).post("/review/retry-labels/999999/undo/").status_code == 404
    assert _client(staff).get(f"/review/turns/{second.pk}/retry-of/").status_code == 405
    assert not RephraseLabel.objects.exists()


def test_the_random_queue_of_retries_to_judge_draws_unjudged_pairs_and_stores_its_verdicts_as_sampled(
    client, alice, bob, staff, reviewer
):
    from feedback.models import RephraseLabel

    first = _turn(alice, "<b>turn of the kitchn lights</b>", response="Sorry, I can't do that.")
    second = _turn(alice, "kitchen lights off", at=NOON + timedelta(seconds=5))
    _turn(bob, "what time is it", at=NOON + timedelta(hours=2))  # nobody's pair: said alone
    Rephrase.objects.create(first=first, second=second, score=0.77, gap_ms=5000, detector_version="fixed-logistic-1")
    assert client.get("/review/retries/").status_code == 302
    assert _client(alice).get("/review/retries/").status_code == 403
    page = _client(reviewer).get("/review/retries/").content.decode()
    assert "&lt;b&gt;turn of the kitchn lights&lt;/b&gt;" in page and "<b>turn" not in page
    assert "kitchen lights off" in page and "a retry (0.77)" in page and "(5 s)" in page
    assert "what time is it" not in page
    response = _client(reviewer).post(
        f"/review/turns/{second.pk}/retry-of/", {"first": first.pk, "verdict": "retry", "sampled": "1"}
    )
    assert response.status_code == 302 and response["Location"] == "/review/retries/"
    verdict = RephraseLabel.objects.get()
    assert (verdict.first_id, verdict.second_id, verdict.is_rephrase, verdict.sampled) == (
        first.pk,
        second.pk,
        True,
        True,
    )
    # Judged: the queue has nothing left to draw.
    assert "No pair to judge" in _client(staff).get("/review/retries/").content.decode()
    # From the turn page, a chosen pair: not sampled.
    third = _turn(alice, "lights off in the kitchen", at=NOON + timedelta(seconds=9))
    _client(staff).post(f"/review/turns/{third.pk}/retry-of/", {"first": second.pk, "verdict": "not_retry"})
    assert RephraseLabel.objects.get(second=third).sampled is False
    assert _client(staff).post("/review/retries/").status_code == 405


def test_random_pairs_are_uniform_over_the_pairs_the_detector_judges(alice, bob):
    import random
    from collections import Counter

    from feedback.labels import random_pairs

    # alice: three turns in a row (pairs 1-2, 1-3, 2-3); bob: two in a row (one pair), then one alone.
    a = [_turn(alice, f"alice {k}", at=NOON + timedelta(seconds=5 * k)) for k in range(3)]
    b = [_turn(bob, f"bob {k}", at=NOON + timedelta(seconds=5 * k)) for k in range(2)]
    _turn(bob, "bob later", at=NOON + timedelta(hours=1))
    pairs = {(a[0].pk, a[1].pk), (a[0].pk, a[2].pk), (a[1].pk, a[2].pk), (b[0].pk, b[1].pk)}
    counts: Counter = Counter()
    rng = random.Random(0)
    for _ in range(400):
        ((first, second),) = random_pairs(1, rng=rng)
        assert first.user_id == second.user_id and first.created_at <= second.created_at
        counts[(first.pk, second.pk)] += 1
    assert set(counts) == pairs
    assert min(counts.values()) > 70 and max(counts.values()) < 130  # about 100 each
    assert len(random_pairs(10, rng=rng)) == 4  # each pair once
    assert random_pairs(10, turns=Turn.objects.filter(user=bob), rng=rng) == [(b[0], b[1])]
    assert random_pairs(0) == [] and random_pairs(3, turns=Turn.objects.none()) == []
