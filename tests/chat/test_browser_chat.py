"""The chat page in headless Chromium against the real ASGI app served by daphne.

daphne runs in a subprocess on a free localhost port, pointed at this test's
database (transaction=True, so what either side writes the other sees), the
same Redis channel layer and the session's NLU artifact.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings

from assistant.models import Device
from feedback.models import BargeIn, Feedback, Turn
from tests.conftest import server_password
from tests.servers import running_server

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
UTTERANCE = "what's the weather like today"


@contextmanager
def browser_server(alice, tmp_path, **env: str) -> Iterator[str]:
    """daphne serving the app on this test's database, for a browser logging in as alice; yields its
    base URL (the test is skipped without Debian's chromium)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("Debian's chromium is not installed (make browser)")
    server_password(alice, "alice-password-1")  # the server process checks it with the real hashers
    with running_server(tmp_path, **env) as url:
        yield url


def log_in_as_alice(page, url: str) -> None:
    """Sign in on the login form the chat page sends us to, and wait for the chat socket."""
    from playwright.sync_api import expect

    page.goto(f"{url}/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-password-1")
    page.click("button[type=submit]")
    expect(page.locator("#connection")).to_have_attribute("data-state", "open")


@pytest.fixture
def daphne_server(nlu_model, alice, tmp_path):
    # 2 words a second: slow enough for Stop to land mid-reply
    with browser_server(alice, tmp_path, SPEAKING_RATE_WPS="2") as url:
        yield url


@pytest.fixture
def quick_server(nlu_model, alice, tmp_path):
    """Speaking quickly, and confirming every opening of the garage (no reading is sure enough at
    CONFIRM_BELOW_CONFIDENCE=1), so the confirmation does not hang on a model's confidence."""
    with browser_server(alice, tmp_path, SPEAKING_RATE_WPS="12", CONFIRM_BELOW_CONFIDENCE="1") as url:
        yield url


def test_chat_in_a_real_browser(daphne_server, alice):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    seen: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.set_default_timeout(30_000)

            # Log in: the chat page sends us to the login form and back.
            page.goto(f"{daphne_server}/")
            expect(page).to_have_url(re.compile(r"/accounts/login/"))
            page.fill("#id_username", "alice")
            page.fill("#id_password", "alice-password-1")
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{daphne_server}/")
            expect(page.locator("#connection")).to_have_attribute("data-state", "open")

            # Record when each word appears (a page script, so nothing is missed between polls).
            page.evaluate(
                """() => {
                    window.wordTimes = [];
                    new MutationObserver((records) => {
                        for (const r of records) for (const n of r.addedNodes) {
                            if (n.nodeType === 1 && n.classList.contains("w")) window.wordTimes.push(performance.now());
                        }
                    }).observe(document.getElementById("messages"), {childList: true, subtree: true});
                }"""
            )

            # Speak to the kitchen speaker.
            page.select_option("#device", label="Kitchen speaker")
            page.fill("#text", UTTERANCE)
            page.press("#text", "Enter")
            expect(page.locator("#text")).to_have_value("")  # the box clears after sending

            exchange = page.locator("#messages li.exchange").last
            # The server's first turn loads the NLU model: allow for that once.
            expect(exchange.locator(".utterance")).to_have_text(UTTERANCE, timeout=120_000)
            turn_id = int(exchange.get_attribute("id").removeprefix("turn-"))
            stop = page.locator("#stop")
            expect(stop).to_be_visible()

            # Word by word: a partial reply is on screen, then the next word comes.
            page.wait_for_function("window.wordTimes.length >= 1")
            seen["first_word"] = page.locator(f"#reply-{turn_id} .w").first.inner_text()
            page.wait_for_function("window.wordTimes.length >= 2", timeout=10_000)
            seen["partial"] = page.locator(f"#reply-{turn_id}").inner_text()
            seen["word_times"] = page.evaluate("window.wordTimes")
            page.screenshot(path=str(ARTIFACTS / "chat-streaming.png"))

            # Barge in with Stop.
            stop.click()
            expect(exchange.locator(".status")).to_have_text("Interrupted")
            expect(stop).to_be_hidden()
            # The exchange is re-rendered as after a reload: what was heard, then the rest dimmed.
            heard = page.locator(f"#reply-{turn_id}")
            seen["heard_words"] = len(heard.inner_text().split())
            page.wait_for_timeout(1200)  # at 2 words/s, two more words would have come by now
            assert len(heard.inner_text().split()) == seen["heard_words"]

            # Thumbs down on the interrupted reply.
            thumbs_down = exchange.locator("button[aria-label='Bad answer']")
            thumbs_down.click()
            expect(thumbs_down).to_have_attribute("aria-pressed", "true")

            seen["all_word_times"] = page.evaluate("window.wordTimes")

            # Reload: the history is there, the reply marked interrupted, the thumb kept.
            page.reload()
            expect(page.locator("#connection")).to_have_attribute("data-state", "open")
            again = page.locator(f"#turn-{turn_id}")
            expect(again.locator(".utterance")).to_have_text(UTTERANCE)
            expect(again.locator(".status")).to_have_text("Interrupted")
            expect(again.locator("button[aria-label='Bad answer']")).to_have_attribute("aria-pressed", "true")
            seen["reloaded_heard"] = again.locator(f"#reply-{turn_id}").inner_text()
            seen["reloaded_unheard"] = again.locator(".unheard").inner_text()

            # A second request that changes a device: the panel updates live.
            page.fill("#text", "turn on the kitchen light")
            page.press("#text", "Enter")
            second = page.locator("#messages li.exchange").last
            expect(second.locator(".utterance")).to_have_text("turn on the kitchen light")
            expect(page.locator("#stop")).to_be_hidden(timeout=30_000)  # reply finished
            kitchen_light = page.locator("#device-panel li.device", has_text="Kitchen light")
            expect(kitchen_light.locator(".device-state")).to_have_text(re.compile(r"^on\b"))
            seen["panel"] = page.locator("#device-panel").inner_text()
            kitchen_light.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "chat.png"))
        finally:
            browser.close()

    # The database, after the browser is gone (Playwright's sync API runs a loop).
    turn = Turn.objects.get(pk=turn_id)
    assert turn.user_id == alice.pk
    assert turn.raw_text == UTTERANCE
    assert turn.session.channel == "web"
    assert turn.session.device.name == "Kitchen speaker"
    reply = turn.response.split()
    assert seen["first_word"] == reply[0]
    assert 2 <= seen["heard_words"] < len(reply), "Stop must land mid-reply"
    partial = seen["partial"].split()
    assert 2 <= len(partial) < len(reply)
    assert partial == reply[: len(partial)]
    # Paced at 2 words a second: the second word came about half a second after the first.
    first_gap = seen["word_times"][1] - seen["word_times"][0]
    assert first_gap > 250, f"words came in a burst ({first_gap:.0f} ms apart)"
    assert len(seen["all_word_times"]) == seen["heard_words"]

    barge_in = BargeIn.objects.get(turn=turn)
    assert barge_in.source == "stop"
    assert barge_in.offset_words == seen["heard_words"]
    # Word n goes out n/2 s after the first: the stop came after the second word, before the next.
    assert 500 <= barge_in.offset_ms < (barge_in.offset_words * 500) + 1500
    assert seen["reloaded_heard"].split() == reply[: barge_in.offset_words]
    assert seen["reloaded_unheard"].split() == reply[barge_in.offset_words :]

    assert list(Feedback.objects.filter(turn=turn).values_list("kind", flat=True)) == ["thumbs_down"]
    assert Turn.objects.filter(user=alice).count() == 2
    assert "Kitchen light" in seen["panel"]
    assert Device.objects.get(home=alice.home, name="Kitchen light").state["on"] is True


def test_a_phone_sized_screen_shows_the_whole_input_row(daphne_server, alice):
    """390 px wide (a phone): the text box and Send fit the screen, nothing scrolls sideways."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
            page.set_default_timeout(30_000)
            log_in_as_alice(page, daphne_server)
            send = page.locator(".say-row button[type=submit]")
            send.scroll_into_view_if_needed()
            box, text_box = send.bounding_box(), page.locator("#text").bounding_box()
            page.screenshot(path=str(ARTIFACTS / "chat-390px.png"), full_page=True)
            assert box is not None and text_box is not None
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
            assert text_box["x"] >= 0 and text_box["width"] >= 150, text_box
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            # The panel marks the room of the device spoken to, and follows the choice.
            page.select_option("#device", label="Kitchen speaker")
            expect(page.locator("#device-panel .room.spoken-to")).to_have_attribute("data-room", "kitchen")
            expect(page.locator("#device-panel .room.spoken-to")).to_have_count(1)
            # And it works there: a message goes out and is answered.
            page.fill("#text", "what time is it")
            send.click()
            exchange = page.locator("#messages li.exchange").last
            expect(exchange.locator(".utterance")).to_have_text("what time is it", timeout=120_000)
            expect(exchange.locator(".reply .w").first).to_be_visible()
            # A timer counts down in the panel between the server's renders.
            page.fill("#text", "set a timer for 10 minutes")
            send.click()
            countdown = page.locator("#device-panel time.countdown").first
            expect(countdown).to_be_visible(timeout=30_000)
            first = countdown.inner_text()
            page.wait_for_timeout(2100)
            assert countdown.inner_text() != first and re.fullmatch(r"\d+:\d\d", countdown.inner_text())
        finally:
            browser.close()


def _conversation(url: str, texts: tuple[str, ...], check_page, screenshot: str) -> list[str]:
    """Log in as alice, speak to the kitchen speaker, say each text after the last reply finished,
    then `check_page(page)` (the panel) and a screenshot; returns the replies, words single-spaced."""
    from playwright.sync_api import expect, sync_playwright

    replies = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.set_default_timeout(30_000)
            log_in_as_alice(page, url)
            page.select_option("#device", label="Kitchen speaker")
            for text in texts:
                page.fill("#text", text)
                page.press("#text", "Enter")
                exchange = page.locator("#messages li.exchange").last
                expect(exchange.locator(".utterance")).to_have_text(text, timeout=120_000)
                expect(page.locator("#stop")).to_be_hidden(timeout=30_000)  # the reply has finished
                replies.append(" ".join(exchange.locator(".reply").inner_text().split()))
            check_page(page)
            page.screenshot(path=str(ARTIFACTS / screenshot))
        finally:
            browser.close()
    return replies


def _panel_shows(device: str, state: str):
    def check(page) -> None:
        from playwright.sync_api import expect

        row = page.locator("#device-panel li.device", has_text=device)
        expect(row.locator(".device-state")).to_have_text(re.compile(rf"^{state}\b"))

    return check


def test_the_garage_door_follow_up_and_a_confirmed_opening(quick_server, alice):
    """The assistant remembers its own question in the browser: "is it on" -> "Which device…?" ->
    "the garage door" reports the door (closed, and it stays closed). A vague request to open it
    is confirmed first, and "yes" opens it; the panel shows the door open."""
    replies = _conversation(
        quick_server,
        ("is it on", "the garage door", "could you maybe do the garage", "yes"),
        _panel_shows("Garage door", "open"),
        "chat-garage-follow-up.png",
    )
    assert replies[0] == "Which device do you want to know about?"
    assert "garage door is closed" in replies[1].lower()
    assert replies[2] == "Do you want me to open the garage door?"
    assert replies[3] == "Opening the garage door."
    assert Device.objects.get(home=alice.home, kind="garage_door").state["open"] is True


def test_teaching_a_concept_in_the_browser_and_using_it(quick_server, alice):
    """ "turn on study mode" -> "What do you mean by study mode?" -> a definition -> "yes": learnt and
    run; later "study mode on" runs it again, and the panel shows the light it switched off."""
    replies = _conversation(
        quick_server,
        (
            "turn on study mode",
            "turn off the living room lights and set the thermostat to 20 degrees",
            "yes",
            "turn on the living room lights",
            "study mode on",
        ),
        _panel_shows("Living room light", "off"),
        "chat-concept-teaching.png",
    )
    assert replies[0] == "What do you mean by study mode?"
    assert replies[1].startswith("So study mode means: turn off the living room lights, then set the thermostat")
    assert replies[2].startswith("I'll remember study mode:")
    assert replies[4] == "Turning off the living room light. Setting the heating to 20 degrees."
    assert Device.objects.get(home=alice.home, kind="thermostat").state["target_c"] == 20
