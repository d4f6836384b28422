"""The review pages in Chromium: j / k walk the list, Enter opens a turn, l jumps to its label form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.chat.test_browser_chat import CHROMIUM, CHROMIUM_ARGS, browser_server, log_in_as_alice
from tests.review.test_review_pages import _turn

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def test_a_reviewer_walks_the_inbox_with_the_keyboard_and_labels_a_turn(nlu_model, alice, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from feedback.models import Label

    alice.is_staff = True
    alice.save(update_fields=["is_staff"])
    first = _turn(alice, "turn of the kitchn lights", defect=0.95, intent="out_of_scope", at=NOON)
    _turn(alice, "wake me up at seven", defect=0.9, intent="out_of_scope", at=NOON)
    with browser_server(alice, tmp_path) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            log_in_as_alice(page, url)
            page.goto(f"{url}/review/?view=turns")
            page.keyboard.press("/")
            expect(page.locator("#q")).to_be_focused()
            page.keyboard.press("Escape")
            page.locator("h1").click()  # back to the page, out of the search box
            page.keyboard.press("j")
            expect(page.locator("tr.selected")).to_contain_text("turn of the kitchn lights")
            page.keyboard.press("j")
            expect(page.locator("tr.selected")).to_contain_text("wake me up at seven")
            page.keyboard.press("k")
            expect(page.locator("tr.selected")).to_contain_text("turn of the kitchn lights")
            page.keyboard.press("Enter")
            expect(page).to_have_url(f"{url}/review/turns/{first.pk}/")
            page.wait_for_load_state()  # the deferred script listens once the page has loaded
            page.keyboard.press("l")
            expect(page.locator("#intent")).to_be_focused()
            page.fill("#intent", "iot_hue_lightoff")
            page.fill("#slots", "room = kitchn")  # words of the turn, typo and all
            page.select_option("#failure_point", "nlu")
            page.click("text=Save label")
            expect(page.locator("text=room = “kitchn”")).to_be_visible()
        finally:
            browser.close()
    assert Label.objects.filter(turn=first, intent="iot_hue_lightoff", failure_point="nlu").exists()
