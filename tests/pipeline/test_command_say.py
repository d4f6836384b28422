"""`manage.py say`: one turn from the command line, printed as a reply or as the turn's JSON."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from assistant.models import Device, Home
from feedback.models import Session, Turn

ROOT = Path(__file__).resolve().parents[2]


def say(*args: str) -> str:
    out = io.StringIO()
    call_command("say", *args, stdout=out)
    return out.getvalue()


def test_json_output_is_the_turn(nlu_model, alice):
    data = json.loads(say("--user", "alice", "--json", "turn off the lights in the bedroom"))
    assert {"turn_id", "asr", "nlu", "rewrite", "action", "response", "trace"} <= set(data)
    assert set(data["nlu"]) == {"intent", "slots", "confidence"}
    assert data["nlu"]["intent"] == "iot_hue_lightoff"
    assert data["rewrite"] is None
    assert isinstance(data["action"], dict)
    assert data["response"]
    assert [s["stage"] for s in data["trace"]] == ["asr", "nlu", "rewrite", "resolve", "execute", "respond"]
    assert all(isinstance(s["ms"], int | float) for s in data["trace"])
    turn = Turn.objects.get(pk=data["turn_id"])
    assert turn.session.channel == Session.Channel.CLI
    assert data == json.loads(json.dumps(turn.as_dict()))


def test_plain_output_is_the_reply(nlu_model, alice):
    printed = say("--user", "alice", "what time is it")
    assert printed.strip() == Turn.objects.get(user=alice).response


def test_it_creates_the_user_with_a_home(nlu_model):
    say("--user", "erin", "hello")
    erin = get_user_model().objects.get(username="erin")
    assert Home.objects.filter(owner=erin).exists()
    assert Turn.objects.filter(user=erin).count() == 1


@pytest.mark.parametrize(
    ("device", "room"), [("kitchen", "kitchen"), ("Bedroom speaker", "bedroom"), ("lounge", "living room")]
)
def test_it_speaks_to_the_speaker_in_a_room_or_by_name(nlu_model, alice, device, room):
    data = json.loads(say("--user", "alice", "--device", device, "--json", "turn on the light"))
    speaker = Device.objects.get(home__owner=alice, kind=Device.Kind.SPEAKER, room=room)
    assert Turn.objects.get(pk=data["turn_id"]).context["device_id"] == speaker.pk


def test_an_unknown_device_is_a_clear_error(alice):
    with pytest.raises(CommandError, match=r"No speaker named or in 'attic'.*Kitchen speaker"):
        say("--user", "alice", "--device", "attic", "hello")
    assert not Turn.objects.exists()


@pytest.mark.parametrize("device", ["\u00b2", "\u0661", "\uff11"])
def test_a_device_of_digits_int_cannot_read_is_unknown(alice, device):
    with pytest.raises(CommandError, match="No speaker named or in"):
        say("--user", "alice", "--device", device, "hello")
    assert not Turn.objects.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("   ", "empty"), ("x" * 1001, "longer than"), ("a\x00b", "control"), ("\udcff", "Unicode")],
)
def test_bad_text_is_a_command_error(alice, text, message):
    with pytest.raises(CommandError, match=message):
        say("--user", "alice", text)
    assert not Turn.objects.exists()


def test_an_invalid_user_name_is_a_command_error(db):
    with pytest.raises(CommandError, match="not a valid user name"):
        say("--user", "no spaces please", "hello")


@pytest.mark.django_db(transaction=True)
def test_from_the_shell_an_error_exits_non_zero_without_a_traceback():
    db = django_settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "say", "--user", "zed", "--device", "attic", "hello"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "No speaker named or in 'attic'" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_consecutive_says_are_one_conversation(nlu_model, alice):
    """`say` goes on with the recent CLI session, so an answer to the assistant's question is read as one."""
    assert say("is it on", "--user", "alice").strip() == "Which device do you want to know about?"
    assert "garage door is closed" in say("the garage door", "--user", "alice").lower()
    assert Device.objects.get(home__owner=alice, kind="garage_door").state["open"] is False
