"""Triage at speed in a real browser: select every finding a filter matches (beyond the loaded page), confirm the
count, all of them change; a refused action keeps the selection; saved views; comments and link-to-risk errors in
place on the finding page. No inline script runs (the CSP reports any violation)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from governance.accounts.models import Role
from governance.findings.models import Finding, FindingComment, FindingState, SavedView
from governance.inventory import services as inventory_services
from tests.browser.conftest import login
from tests.browser.test_csp import WATCH
from tests.conftest import PASSWORD, make_user, system_data
from tests.risks.conftest import make_finding, make_risk

pytestmark = pytest.mark.browser
N = 64  # more than a page of the queue (50)


@pytest.fixture
def world(transactional_db):
    ciso = make_user("ciso@example.com", Role.CISO)
    engineer = make_user("engineer@example.com", Role.ENGINEER)
    owner = make_user("owner@example.com", Role.PRODUCT_OWNER)
    system = inventory_services.system_create(actor=ciso, data=system_data(owner))
    other = inventory_services.system_create(actor=ciso, data=system_data(owner, name="Fraud Scoring", slug="fraud-scoring"))
    for i in range(N):
        make_finding(system, severity=("critical", "high", "medium")[i % 3], title="Unsafe pickle load")
    for _ in range(3):
        make_finding(other, severity="low", title="Verbose error")
    return {"ciso": ciso, "engineer": engineer, "system": system, "other": other,
            "risk": make_risk(ciso, system, title="Model supply chain"),
            "foreign_risk": make_risk(ciso, other, title="Score drift")}


def _clean(page) -> None:
    assert page.evaluate("window.__violations") == [] and page.js_errors == []


def test_select_every_finding_matching_the_filter_and_apply_once(page, shot, world, live_server):
    page.add_init_script(WATCH)
    login(page, "engineer@example.com", PASSWORD)
    page.goto(f"/findings/?system={world['system'].slug}")
    results = page.locator("#bulk")
    expect(results.locator("[data-total]")).to_have_text(str(N))
    expect(results.locator("input[name=ids]")).to_have_count(50)
    offer = page.locator("[data-select-matching]")
    expect(offer).to_be_hidden()

    page.get_by_label("Select all", exact=True).check()
    expect(offer).to_be_visible()
    expect(offer).to_contain_text("All 50 findings listed are selected.")
    shot(page, "page-selected")
    offer.get_by_role("button", name=f"Select all {N} findings matching this filter").click()
    expect(page.locator("[data-matching-note]")).to_contain_text(f"All {N} findings matching this filter are selected")
    apply = page.locator("[data-bulk-apply]")
    expect(apply).to_have_text(f"Apply to {N} findings")
    expect(page.locator("[data-selected-count]")).to_have_text(f"All {N} matching")

    page.get_by_role("link", name="Load more").click()  # the rows loaded later are in the selection too
    expect(results.locator("input[name=ids]")).to_have_count(N)
    expect(results.locator("input[name=ids]:not(:checked)")).to_have_count(0)  # ticked as they arrive
    page.get_by_label("Bulk action").select_option("confirm")
    shot(page, "all-matching-selected")

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    apply.click()
    expect(page.locator(".message.success")).to_contain_text(f"{N} of the {N} findings matching the filter moved to “Confirmed”")
    assert asked == [f"Apply “Confirm” to all {N} findings matching this filter?"]
    assert Finding.objects.filter(state=FindingState.CONFIRMED).count() == N
    assert not Finding.objects.filter(system=world["other"]).exclude(state=FindingState.NEW).exists()
    shot(page, "applied")
    _clean(page)


def test_a_refused_action_keeps_the_selection_and_a_changed_count_is_refused(page, shot, world, live_server):
    page.add_init_script(WATCH)
    login(page, "engineer@example.com", PASSWORD)
    page.goto(f"/findings/?system={world['system'].slug}")
    boxes = page.locator("#bulk input[name=ids]")
    for i in (0, 2, 5):
        boxes.nth(i).check()
    expect(page.locator("[data-selected-count]")).to_have_text("3 selected")
    page.get_by_label("Bulk action").select_option("false_positive")
    page.locator("[data-bulk-apply]").click()  # no reason
    expect(page.locator(".bulk-errors")).to_contain_text("Say why: a reason is required.")
    assert [boxes.nth(i).is_checked() for i in range(6)] == [True, False, True, False, False, True]
    expect(page.get_by_label("Bulk action")).to_have_value("false_positive")
    expect(page.locator("[data-selected-count]")).to_have_text("3 selected")
    shot(page, "reason-missing")
    page.get_by_label("Reason").fill("test fixtures, not shipped")
    page.locator("[data-bulk-apply]").click()
    expect(page.locator(".message.success")).to_contain_text("3 findings moved to “False positive”")
    assert Finding.objects.filter(state=FindingState.FALSE_POSITIVE).count() == 3

    # "all matching" confirmed at N - 3 open findings; one more is found before the click: refused, nothing changed
    page.get_by_label("Select all", exact=True).check()
    page.get_by_role("button", name=f"Select all {N - 3} findings matching this filter").click()
    make_finding(world["system"], severity="high", title="Arrived meanwhile")
    page.get_by_label("Bulk action").select_option("fixed")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("[data-bulk-apply]").click()
    expect(page.locator(".bulk-errors")).to_contain_text(
        f"This filter now matches {N - 2} findings, not the {N - 3} you confirmed: nothing was changed")
    expect(page.locator("[data-matching-note]")).to_be_visible()  # still the whole filter, as chosen
    assert not Finding.objects.filter(state=FindingState.FIXED).exists()
    shot(page, "count-changed")
    page.get_by_role("link", name="Show the list as it is now").click()
    expect(page.locator("#bulk [data-total]")).to_have_text(str(N - 2))
    _clean(page)


def test_saved_views_comments_and_link_to_risk(page, shot, world, live_server):
    page.add_init_script(WATCH)
    login(page, "engineer@example.com", PASSWORD)
    page.goto("/findings/?severity=critical")
    page.get_by_label("Assigned to me").check()
    expect(page.locator("#bulk [data-total]")).to_have_text("0")
    page.get_by_label("Assigned to me").uncheck()
    expect(page.locator("#bulk [data-total]")).to_have_text(str(N // 3 + 1))
    page.get_by_label("Name of the view").fill("Critical")
    page.get_by_role("button", name="Save view").click()
    expect(page.locator("#saved-views").get_by_role("link", name="Critical")).to_be_visible()
    assert SavedView.objects.get(owner=world["engineer"]).query == "severity=critical"
    shot(page, "saved-view")

    finding = Finding.objects.filter(system=world["system"]).first()
    page.goto(f"/findings/{finding.pk}/")
    field = page.get_by_label(f"Link to a risk of {world['system'].name}")
    field.fill(world["foreign_risk"].ref)
    page.get_by_role("button", name="Link", exact=True).click()
    expect(page.locator("#finding-risks .error")).to_contain_text(
        f"{world['foreign_risk'].ref} is a risk of Fraud Scoring; this finding is of Support Copilot")
    page.get_by_label("Add a comment").fill("@ciso is this <b>ours</b>?")
    page.get_by_role("button", name="Comment").click()
    expect(page.locator("#comments .comment-body")).to_have_text("@ciso is this <b>ours</b>?")
    expect(page.get_by_label(f"Link to a risk of {world['system'].name}")).to_have_value(world["foreign_risk"].ref)
    shot(page, "finding-errors-and-comment")
    page.get_by_label(f"Link to a risk of {world['system'].name}").fill(world["risk"].ref)
    page.get_by_role("button", name="Link", exact=True).click()
    expect(page.locator("#finding-risks").get_by_role("link", name=world["risk"].ref)).to_be_visible()
    assert list(world["risk"].findings.all()) == [finding]
    assert FindingComment.objects.get().author == world["engineer"]
    shot(page, "linked")
    _clean(page)
