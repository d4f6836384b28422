"""`manage.py nlu_rollback`, the admin's "Promote / Roll back to this version", and turns
on intents no skill handles (a model trained on SLURP can predict email_query…)."""

from __future__ import annotations

import json
import shutil
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from assistant import skills
from assistant.models import ModelVersion
from assistant.nlu import NLU_MODELS
from assistant.pipeline.turn import build_context, handle_turn
from assistant.turns import NluResult
from feedback.models import Turn

pytestmark = pytest.mark.django_db


def second_version(nlu_artifact, tmp_path, version: str) -> ModelVersion:
    """The session's artifact registered again under another version name, and promoted."""
    src, manifest = nlu_artifact
    dst = tmp_path / version
    shutil.copytree(src, dst)
    on_disk = json.loads((dst / "manifest.json").read_text())
    on_disk["version"] = version
    (dst / "manifest.json").write_text(json.dumps(on_disk))
    return NLU_MODELS.register(dst, {**manifest, "version": version}, promote=True)


def test_nlu_rollback_restores_the_previous_version(nlu_model, nlu_artifact, tmp_path):
    newer = second_version(nlu_artifact, tmp_path, "v-new")
    assert NLU_MODELS.model().version == "v-new"
    out = StringIO()
    call_command("nlu_rollback", stdout=out)
    assert f"NLU {nlu_model.version} is active" in out.getvalue()
    newer.refresh_from_db()
    nlu_model.refresh_from_db()
    assert newer.status == ModelVersion.Status.REJECTED
    assert nlu_model.status == ModelVersion.Status.ACTIVE
    assert NLU_MODELS.model().version == nlu_model.version  # hot swap back, no restart


def test_nlu_rollback_with_nothing_to_roll_back_to_is_a_clear_error(nlu_model):
    with pytest.raises(CommandError, match="Nothing rolled back: no earlier NLU version"):
        call_command("nlu_rollback", stdout=StringIO())
    nlu_model.refresh_from_db()
    assert nlu_model.status == ModelVersion.Status.ACTIVE


def test_nlu_rollback_with_no_model_at_all(db):
    with pytest.raises(CommandError, match="no active NLU version"):
        call_command("nlu_rollback", stdout=StringIO())


def post_action(admin_client, action: str, rows: list[ModelVersion]):
    return admin_client.post(
        reverse("admin:assistant_modelversion_changelist"),
        {"action": action, "_selected_action": [r.pk for r in rows]},
        follow=True,
    )


def test_admin_rolls_back_to_a_chosen_version_and_promotes_one(admin_client, nlu_model, nlu_artifact, tmp_path):
    newer = second_version(nlu_artifact, tmp_path, "v-admin")
    response = post_action(admin_client, "roll_back_to_selected_version", [nlu_model])
    assert response.status_code == 200
    assert f"NLU {nlu_model.version} is now active" in response.content.decode()
    nlu_model.refresh_from_db()
    newer.refresh_from_db()
    assert (nlu_model.status, newer.status) == (ModelVersion.Status.ACTIVE, ModelVersion.Status.REJECTED)
    assert "rolled back to" in newer.note
    assert NLU_MODELS.model().version == nlu_model.version

    response = post_action(admin_client, "promote_selected_version", [newer])
    assert "NLU v-admin is now active" in response.content.decode()
    nlu_model.refresh_from_db()
    assert nlu_model.status == ModelVersion.Status.RETIRED
    assert NLU_MODELS.model().version == "v-admin"


def test_admin_refuses_a_broken_artifact_and_several_rows(admin_client, nlu_model, nlu_artifact, tmp_path):
    broken = second_version(nlu_artifact, tmp_path, "v-broken")
    post_action(admin_client, "roll_back_to_selected_version", [nlu_model])
    (tmp_path / "v-broken" / "manifest.json").write_text("{not json")
    response = post_action(admin_client, "promote_selected_version", [broken])
    assert "Not changed" in response.content.decode()
    assert "unreadable manifest" in response.content.decode()
    response = post_action(admin_client, "promote_selected_version", [broken, nlu_model])
    assert "Select exactly one version." in response.content.decode()
    response = post_action(admin_client, "promote_selected_version", [nlu_model])
    assert "already the active version" in response.content.decode()
    nlu_model.refresh_from_db()
    assert nlu_model.status == ModelVersion.Status.ACTIVE


def test_non_staff_cannot_run_the_actions(client, alice, nlu_model):
    client.force_login(alice)
    response = client.post(
        reverse("admin:assistant_modelversion_changelist"),
        {"action": "promote_selected_version", "_selected_action": [nlu_model.pk]},
    )
    assert response.status_code == 302 and "/login" in response["Location"]


# -- intents without a skill -----------------------------------------------------------
def test_an_intent_without_a_skill_resolves_to_out_of_scope_and_says_which(alice):
    ctx = build_context(alice, None, timezone.now())
    understood = NluResult(text="read my emails", intent="email_query", confidence=0.93, slots={"person": "bob"})
    action = skills.resolve(understood, ctx)
    assert (action.skill, action.intent) == ("out_of_scope", "out_of_scope")
    assert action.params["unhandled_intent"] == "email_query"
    result = skills.execute(action, ctx)
    assert not result.ok and "read your email" in result.text.lower()  # one wording starts the sentence with it


# A real (tiny) model that knows an intent no skill handles, as a SLURP-trained one does.
FOREIGN = {
    "email_query": [
        "check my email",
        "do i have new emails",
        "read my emails",
        "any new mail today",
        "what is in my inbox",
        "read me my latest email",
        "did anyone email me",
        "show my unread emails",
        "open my inbox",
        "any messages in my email",
        "check my inbox please",
        "read the newest email",
    ],
    "iot_hue_lighton": [
        "turn on the lights",
        "lights on",
        "switch the lights on",
        "put the lamp on",
        "turn the light on please",
        "switch on the lamp",
        "lights on please",
        "turn on the lamp",
        "can you turn on the lights",
        "put the lights on",
        "make it light",
        "switch the lamp on",
    ],
    "out_of_scope": [
        "what is the meaning of life",
        "book me a flight",
        "how tall is a giraffe",
        "sing a sea shanty",
        "who won the war",
        "buy some shares",
        "translate this to french",
        "call a plumber",
        "what is my credit score",
        "paint the fence",
        "order a taxi to town",
        "fix my bike",
    ],
}


def test_a_turn_on_an_unhandled_intent_does_not_crash(alice, db, tmp_path, settings):
    from assistant.nlu.seed import Example
    from learning.nlu.heads import train

    examples = [Example(text=t, intent=intent) for intent, texts in FOREIGN.items() for t in texts]
    manifest = train(examples, tmp_path / "foreign")
    assert "email_query" in manifest["intents"]
    NLU_MODELS.register(tmp_path / "foreign", manifest, promote=True)
    settings.NLU_OOS_THRESHOLD = 0.0  # a 36-sentence model is not confident; the policy is not under test

    turn = handle_turn(alice, text="read my emails")
    assert turn.intent == "email_query"
    assert turn.status == Turn.Status.OUT_OF_SCOPE
    resolve = next(r for r in turn.trace if r["stage"] == "resolve")
    assert resolve["output"]["params"]["unhandled_intent"] == "email_query"
    assert "can't read your email yet" in turn.response.lower() or "read your email isn't" in turn.response.lower()
