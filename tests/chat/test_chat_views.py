"""The chat page and login: access, history across reloads, escaping, devices."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from assistant.models import Device
from feedback.models import BargeIn, Feedback, Session, Turn

pytestmark = pytest.mark.django_db


def add_turn(user, text, response, *, device=None, minutes_ago=0) -> Turn:
    when = timezone.now() - timedelta(minutes=minutes_ago)
    session = Session.objects.create(user=user, device=device, channel=Session.Channel.WEB, started_at=when)
    return Turn.objects.create(session=session, user=user, created_at=when, raw_text=text, response=response)


@pytest.fixture
def alice_kitchen(alice):
    return Device.objects.get(home=alice.home, name="Kitchen speaker")  # from the demo home


def test_the_chat_page_requires_login(client):
    response = client.get(reverse("chat"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_the_login_page_renders_and_logs_in(client, alice):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content
    response = client.post(reverse("login"), {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 302
    assert response.url == reverse("chat")


def test_a_wrong_password_shows_an_error(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": "nope"})
    assert response.status_code == 200
    assert b"didn't match" in response.content


def test_logout_is_a_post(client, alice):
    client.force_login(alice)
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("chat")).status_code == 302


def test_the_page_serves_htmx_from_our_static_files(client, alice):
    client.force_login(alice)
    html = client.get(reverse("chat")).content.decode()
    assert "/static/vendor/htmx.min.js" in html
    assert "/static/vendor/ws.js" in html
    assert "//unpkg" not in html and "cdn" not in html.lower()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
    assert 'ws-connect="/ws/chat/"' in html


def test_static_vendor_files_are_served(client):
    for path in ("/static/vendor/htmx.min.js", "/static/vendor/ws.js", "/static/css/app.css", "/static/js/chat.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        b"".join(response.streaming_content if response.streaming else [response.content])


def test_the_device_choice_lists_only_my_speakers(client, alice, bob, alice_kitchen):
    Device.objects.create(home=alice.home, kind="light", name="Desk lamp", room="office")
    Device.objects.create(home=bob.home, kind="speaker", name="Bob's speaker", room="garage")
    client.force_login(alice)
    html = client.get(reverse("chat")).content.decode()
    select = html.split('<select id="device" name="device">')[1].split("</select>")[0]
    assert "Kitchen speaker" in select
    assert "Living room display (screen)" in select
    assert "Desk lamp" not in select
    assert "Bob" not in html
    # The panel shows every device of my home, with its state.
    panel = html.split('id="device-panel"')[1]
    assert "Desk lamp" in panel and "Kitchen speaker" in panel


def test_a_new_user_gets_a_home_with_speakers(client, charlie):
    client.force_login(charlie)  # charlie has no home yet: the page makes one
    html = client.get(reverse("chat")).content.decode()
    assert "Kitchen speaker" in html.split('<select id="device"')[1].split("</select>")[0]


def test_without_speakers_the_choice_is_no_speaker(client, alice):
    alice.home.devices.filter(kind="speaker").update(kind="plug")
    client.force_login(alice)
    html = client.get(reverse("chat")).content.decode()
    assert '<option value="">No speaker</option>' in html


def test_history_shows_my_last_fifty_turns_oldest_first(client, alice, bob, alice_kitchen):
    for i in range(55):
        add_turn(alice, f"utterance number {i}", f"reply number {i}", device=alice_kitchen, minutes_ago=100 - i)
    add_turn(bob, "bob's secret", "bob's reply")
    client.force_login(alice)
    html = client.get(reverse("chat")).content.decode()
    assert "utterance number 4<" not in html  # the five oldest are beyond the window
    positions = [html.index(f"utterance number {i}<") for i in range(5, 55)]
    assert positions == sorted(positions)
    assert "reply number 54" in html
    assert "bob" not in html.lower().replace("bob's", "")  # nothing of bob's
    assert "bob&#x27;s secret" not in html
    # The speaker stays the one of the last turn.
    assert f'<option value="{alice_kitchen.pk}" data-room="kitchen" selected>' in html


def test_history_marks_interrupted_replies_and_feedback(client, alice):
    cut = add_turn(alice, "play some jazz", "Playing jazz on the kitchen speaker now", minutes_ago=2)
    BargeIn.objects.create(turn=cut, offset_words=2, offset_ms=700, source="stop")
    liked = add_turn(alice, "what time is it", "It is noon", minutes_ago=1)
    Feedback.objects.create(turn=liked, kind="thumbs_down")
    Feedback.objects.create(turn=liked, kind="thumbs_up")
    client.force_login(alice)
    html = client.get(reverse("chat")).content.decode()

    cut_html = html.split(f'id="turn-{cut.pk}"')[1].split("</li>")[0]
    assert "Interrupted" in cut_html
    assert f'id="reply-{cut.pk}">Playing jazz</span>' in cut_html
    assert "on the kitchen speaker now</span>" in cut_html  # the unheard rest, still shown

    liked_html = html.split(f'id="turn-{liked.pk}"')[1].split("</li>")[0]
    assert "Interrupted" not in liked_html
    assert f'id="reply-{liked.pk}">It is noon</span>' in liked_html
    assert liked_html.count('aria-pressed="true"') == 1
    assert '"kind": "thumbs_up"}\'' in liked_html.split('aria-pressed="true"')[0].rsplit("<button", 1)[1]


def test_user_text_is_escaped(client, alice):
    add_turn(alice, "<script>alert(1)</script>", "I don't know <b>that</b>")
    Device.objects.create(home=alice.home, kind="light", name="<img src=x onerror=alert(2)>", room="office")
    client.force_login(alice)
    html = client.get(reverse("chat")).content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>that</b>" not in html
    assert "<img src=x" not in html


def test_the_chat_page_refuses_post(client, alice):
    client.force_login(alice)
    assert client.post(reverse("chat")).status_code == 405


def test_the_device_panel_says_which_understanding_model_is_serving(client, alice, nlu_model):
    nlu_model.manifest = {**nlu_model.manifest, "recipe": "best"}
    nlu_model.save(update_fields=["manifest"])
    client.force_login(alice)
    page = client.get(reverse("chat")).content.decode()
    assert nlu_model.version in page
    assert "the seed utterances and public data" in page
