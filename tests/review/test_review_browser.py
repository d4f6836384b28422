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


@pytest.mark.celery
def test_a_reviewer_corrects_a_turn_approves_a_rule_and_the_next_cycle_uses_both(
    nlu_model, alice, tmp_path, celery_worker_process
):
    """The review target's flow, in Chromium with a real worker: open the inbox, correct a turn's intent,
    approve a rule, run a learning cycle; the NLU it trains learned the label, and the rule still serves."""
    from playwright.sync_api import expect, sync_playwright

    from assistant.models import ModelVersion
    from assistant.pipeline.turn import handle_turn
    from feedback.models import Label, RewriteRule
    from learning.models import Job
    from tests.review.test_review_pages import _rule

    _, worker_log = celery_worker_process
    alice.is_staff = True
    alice.save(update_fields=["is_staff"])
    misread = _turn(alice, "make the kitchen dark", defect=0.95, intent="out_of_scope", at=NOON)
    rule = _rule(source_text="zap the cooking room glow", target_text="turn off the kitchen lights")
    first_nlu = ModelVersion.objects.get(kind="nlu", status=ModelVersion.Status.ACTIVE)
    with browser_server(alice, tmp_path) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            log_in_as_alice(page, url)
            page.goto(f"{url}/review/?view=turns")
            page.click("text=21 Nov 2026, 12:00")
            expect(page).to_have_url(f"{url}/review/turns/{misread.pk}/")
            page.fill("#intent", "iot_hue_lightoff")
            page.fill("#slots", "room = kitchen")
            page.click("text=Save label")
            expect(page.locator("text=not learned yet")).to_be_visible()

            page.goto(f"{url}/review/rules/")
            page.locator(f"#rule-{rule.pk}").locator("text=Approve").click()
            expect(page.locator(f"#rule-{rule.pk}")).to_contain_text("Active")

            page.goto(f"{url}/review/models/")
            page.click("text=Run a learning cycle now")
            # The worker runs it; htmx refreshes the job list on the page every few seconds.
            cycle_row = page.locator("#jobs tr", has_text="learning_cycle").first
            expect(cycle_row).to_contain_text("Done", timeout=900_000)

            # The NLU the cycle trained learned the correction; the approved rule is still there to serve.
            page.goto(f"{url}/review/turns/{misread.pk}/")
            expect(page.locator("text=which learned it")).to_be_visible()
            page.goto(f"{url}/review/rules/")
            expect(page.locator(f"#rule-{rule.pk}")).to_contain_text("Active")
        finally:
            browser.close()
    cycle = Job.objects.filter(kind="learning_cycle").latest("id")
    assert cycle.status == Job.Status.DONE, f"{cycle.message}\n{worker_log.read_text()[-3000:]}"
    served = ModelVersion.objects.get(kind="nlu", status=ModelVersion.Status.ACTIVE)
    assert served.pk != first_nlu.pk and Label.objects.get(turn=misread).intent == "iot_hue_lightoff"
    assert RewriteRule.objects.get(pk=rule.pk).status == RewriteRule.Status.ACTIVE
    rewritten = handle_turn(alice, text="zap the cooking room glow")
    assert rewritten.rewrite and rewritten.rewrite["kept"] and rewritten.rewrite["rule_id"] == rule.pk
