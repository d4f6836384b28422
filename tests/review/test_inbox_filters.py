"""The inbox narrowed by skill, by the NLU version that read a turn and by experiment arm, in both views;
a stored turn carries its skill and NLU version, and turns stored before those columns get them back."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from django.apps import apps as django_apps
from django.db import connection
from django.test import Client

from assistant.models import ModelVersion
from feedback.models import DefectCluster, Experiment, ExperimentAssignment, Session, Turn

pytestmark = pytest.mark.django_db
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def _turn(user, text: str, *, skill: str, version: str, defect: float = 0.9, cluster=None) -> Turn:
    session = Session.objects.create(user=user, channel=Session.Channel.WEB, started_at=NOON)
    return Turn.objects.create(
        session=session,
        user=user,
        created_at=NOON,
        raw_text=text,
        asr_text=text,
        intent="music_query",
        defect_probability=defect,
        skill=skill,
        nlu_model_version=version,
        defect_cluster=cluster,
        action={"skill": skill, "intent": "music_query", "params": {}},
        trace=[{"stage": "nlu", "input": text, "output": {"intent": "music_query"}, "model_version": version}],
    )


def _cluster(text: str) -> DefectCluster:
    return DefectCluster.objects.create(
        representative=text, examples=[text], turns=1, users=1, first_seen=NOON, last_seen=NOON, built_at=NOON
    )


@pytest.fixture
def client_of(staff):
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def stored(alice, bob):
    experiment = Experiment.objects.create(name="rewrites", arms=[{"name": "control"}, {"name": "global"}])
    ExperimentAssignment.objects.create(experiment=experiment, user=alice, arm="control")
    ExperimentAssignment.objects.create(experiment=experiment, user=bob, arm="global")
    ModelVersion.objects.create(kind="nlu", version="nlu-old", path="/x", status=ModelVersion.Status.RETIRED)
    ModelVersion.objects.create(kind="nlu", version="nlu-new", path="/y", status=ModelVersion.Status.ACTIVE)
    music, lights = _cluster("play some jazz in the den"), _cluster("dim the porch lamp")
    _turn(alice, "play some jazz in the den", skill="music", version="nlu-old", cluster=music)
    _turn(bob, "dim the porch lamp", skill="smart_home", version="nlu-new", cluster=lights)


@pytest.mark.parametrize("view", [{"view": "turns"}, {}])
def test_the_inbox_narrows_to_a_skill_an_nlu_version_and_an_arm(client_of, stored, view):
    def shown(**filters) -> str:
        response = client_of.get("/review/", {**view, **filters})
        assert response.status_code == 200
        return response.content.decode()

    for filters, kept, left in (
        ({"skill": "music"}, "play some jazz", "dim the porch"),
        ({"skill": "smart_home"}, "dim the porch", "play some jazz"),
        ({"nlu_version": "nlu-old"}, "play some jazz", "dim the porch"),
        ({"arm": "rewrites:global"}, "dim the porch", "play some jazz"),
    ):
        page = shown(**filters)
        assert kept in page and left not in page, filters
    everything = shown()
    assert "play some jazz" in everything and "dim the porch" in everything
    # The form offers what there is to choose from.
    assert "nlu-old" in everything and "rewrites:control" in everything and ">smart_home<" in everything
    for nothing in ({"skill": "no_such_skill"}, {"arm": "nope"}, {"arm": "rewrites:"}, {"nlu_version": "x" * 500}):
        page = shown(**nothing)
        assert "play some jazz" not in page and "with these filters" in page


def test_unknown_or_hostile_filter_values_are_shown_escaped_never_run(client_of, stored):
    page = client_of.get("/review/", {"view": "turns", "nlu_version": "<script>alert(1)</script>"})
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.content.decode()


def test_the_next_page_keeps_the_filters(client_of, alice):
    for i in range(60):
        _turn(alice, f"play track {i}", skill="music", version="nlu-old", defect=0.5 + i / 200)
    _turn(alice, "dim the porch lamp", skill="smart_home", version="nlu-old", defect=0.99)
    page = client_of.get("/review/", {"view": "turns", "skill": "music"}).content.decode()
    assert "skill=music" in page and "page=2" in page
    second = client_of.get("/review/", {"view": "turns", "skill": "music", "page": 2}).content.decode()
    assert "play track" in second and "dim the porch" not in second


def test_a_handled_turn_records_its_skill_and_the_nlu_version_that_read_it(alice, nlu_model):
    from assistant.pipeline.turn import handle_turn

    turn = handle_turn(alice, text="what time is it")
    turn.refresh_from_db()
    assert turn.skill == turn.action["skill"] != ""
    nlu_stage = next(s for s in turn.trace if s["stage"] == "nlu")
    assert turn.nlu_model_version == nlu_stage["model_version"] != ""


def test_turns_stored_before_the_columns_get_them_from_their_action_and_trace(alice):
    old = _turn(alice, "play some jazz", skill="", version="")
    Turn.objects.filter(pk=old.pk).update(
        trace=[{"stage": "asr"}, {"stage": "nlu", "model_version": "nlu-2025"}], action={"skill": "music"}
    )
    broken = _turn(alice, "garbled", skill="", version="")
    Turn.objects.filter(pk=broken.pk).update(trace={"not": "a list"}, action=None)
    migration = importlib.import_module("feedback.migrations.0018_turn_skill_nlu_version")
    with connection.cursor() as cursor:
        cursor.execute(migration.BACKFILL)
    old.refresh_from_db()
    broken.refresh_from_db()
    assert (old.skill, old.nlu_model_version) == ("music", "nlu-2025")
    assert (broken.skill, broken.nlu_model_version) == ("", "")

    # Elsewhere than PostgreSQL (the SQLite file of a bare `make run`) the same, turn by turn.
    Turn.objects.filter(pk=old.pk).update(skill="", nlu_model_version="")
    sqlite = SimpleNamespace(connection=SimpleNamespace(vendor="sqlite"))
    migration.backfill(django_apps, sqlite)
    old.refresh_from_db()
    broken.refresh_from_db()
    assert (old.skill, old.nlu_model_version) == ("music", "nlu-2025")
    assert (broken.skill, broken.nlu_model_version) == ("", "")


def test_binary_filter_values_are_no_error(client_of, stored):
    for name in ("q", "intent", "skill", "nlu_version", "arm", "since", "failed_at"):
        for view in ("view=turns&", ""):
            response = client_of.get(f"/review/?{view}{name}=nul%00byte%FF%FE")  # a NUL, bytes that are no UTF-8
            assert response.status_code == 200, name
