"""The audit page and the sign-off badge in a real browser: filters chosen in the form land in the URL and narrow
the list, "Verify the chain" answers in place (htmx, CSRF header, no inline script), the badge counts the inbox."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from governance.audit.models import AuditEvent
from tests.browser.conftest import SHOTS, login
from tests.conftest import PASSWORD, make_user, system_data

pytestmark = pytest.mark.browser


@pytest.fixture
def world(transactional_db):
    from django.db import transaction

    from governance.accounts.models import Role
    from governance.audit.services import audit_record
    from governance.inventory import services as inventory
    from governance.risks import services as risks

    ciso = make_user("ciso@example.com", Role.CISO)
    owner = make_user("owner@example.com", Role.PRODUCT_OWNER)
    engineer = make_user("engineer@example.com", Role.ENGINEER)
    system = inventory.system_create(actor=ciso, data=system_data(owner))
    other = inventory.system_create(actor=ciso, data=system_data(owner, name="Fraud Scoring", slug="fraud-scoring"))
    for title in ("Prompt injection via tickets", "Model inversion of embeddings"):
        risk = risks.risk_create(actor=engineer, system=system, relations={}, data={"title": title})
        risks.decision_request(actor=engineer, risk=risk, kind="residual_risk")
    for target in (system, other, system):
        with transaction.atomic():
            audit_record(actor=None, action="import.done", obj=target, system=target, after={"created": 4})
    inventory.system_update(actor=owner, system=other, data={"purpose": "Scores card payments."})
    return {"ciso": ciso, "owner": owner, "engineer": engineer, "system": system}


def test_audit_filters_verify_and_export_links(page, shot, world, live_server):
    login(page, "ciso@example.com", PASSWORD)
    page.goto("/audit/")
    total = page.locator("[data-total]")
    expect(total).to_have_text(str(AuditEvent.objects.count()))
    page.get_by_label("Who").select_option(label="engineer@example.com")
    page.get_by_label("What").select_option("decision")
    page.get_by_label("System", exact=True).select_option(label="Support Copilot")
    page.get_by_label("From", exact=True).fill("2020-01-01")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"actor=\d+&kind=decision&system=support-copilot&since=2020-01-01"))
    expect(total).to_have_text("2")
    expect(page.locator(".timeline li")).to_have_count(2)
    csv_link = page.get_by_role("link", name="CSV")
    assert "kind=decision" in csv_link.get_attribute("href") and "format=csv" in csv_link.get_attribute("href")

    page.get_by_role("button", name="Verify the chain").click()
    result = page.locator("#verification [data-verification]")
    expect(result).to_have_attribute("data-verification", "ok")
    expect(result).to_contain_text(f"{AuditEvent.objects.count() - 1} events verified")
    assert "kind=decision" in page.url  # answered in place: the filters stay
    shot(page, "audit-filtered-verified")

    page.goto("/audit/?people=on")
    expect(page.locator(".timeline")).not_to_contain_text("import.done")
    expect(page.locator("#id_people")).to_be_checked()
    shot(page, "audit-people-only")

    page.goto("/")
    latest = page.locator(".latest-changes")
    expect(latest).to_contain_text("owner@example.com")
    expect(latest).not_to_contain_text("import.done")
    SHOTS.mkdir(parents=True, exist_ok=True)
    latest.screenshot(path=str(SHOTS / "audit-trail-posture-latest-changes.png"))

    AuditEvent.objects.filter(seq=3).update(object_repr="Rewritten after the fact")
    page.goto("/audit/")
    page.get_by_role("button", name="Verify the chain").click()
    result = page.locator("#verification [data-verification]")
    expect(result).to_have_attribute("data-verification", "broken")
    expect(result).to_contain_text("event #3 was altered (MAC mismatch)")
    shot(page, "audit-verify-broken")
    assert page.js_errors == []


def test_sign_off_badge_counts_the_inbox(page, shot, world, live_server):
    login(page, "owner@example.com", PASSWORD)
    page.goto("/systems/")
    link = page.get_by_role("link", name=re.compile("My sign-offs"))
    expect(link.locator(".nav-count")).to_have_text("2")
    link.click()
    expect(page.locator("tr.inbox-row")).to_have_count(2)
    shot(page, "badge-owner-inbox")
    page.context.clear_cookies()
    login(page, "engineer@example.com", PASSWORD)
    page.goto("/systems/")
    expect(page.locator(".nav-count")).to_have_count(0)
