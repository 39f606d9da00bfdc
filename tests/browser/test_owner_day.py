"""The product owner's day in a real browser: decide several sign-offs at once, then sign a release off on the
system page (a go refused while the gate says no-go, shown in place; a no-go recorded and read back by the API)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from governance.risks.models import Decision, ReleaseSignoff
from tests.browser.conftest import login
from tests.conftest import PASSWORD, make_user, system_data

pytestmark = pytest.mark.browser


@pytest.fixture
def world(transactional_db):
    from governance.accounts.models import Role
    from governance.inventory import services as inventory
    from governance.risks import services as risks

    ciso = make_user("ciso@example.com", Role.CISO)
    owner = make_user("owner@example.com", Role.PRODUCT_OWNER)
    engineer = make_user("engineer@example.com", Role.ENGINEER)
    system = inventory.system_create(actor=ciso, data=system_data(owner))
    pending = []
    for title in ("Prompt injection via tickets", "Model inversion of embeddings", "Stale eval set"):
        risk = risks.risk_create(actor=engineer, system=system, relations={}, data={
            "title": title, "inherent_likelihood": 4, "inherent_impact": 4,
            "residual_likelihood": 3, "residual_impact": 3})
        pending.append(risks.decision_request(actor=engineer, risk=risk, kind=Decision.Kind.RESIDUAL_RISK))
    return {"owner": owner, "system": system, "pending": pending}


def test_owner_decides_two_sign_offs_at_once_and_signs_a_release_off(page, shot, world, live_server):
    login(page, "owner@example.com", PASSWORD)
    page.goto("/risks/inbox/")
    first, _, third = world["pending"]
    page.get_by_label(f"Tick {first.risk.ref}").check()
    page.get_by_label(f"Tick {third.risk.ref}").check()
    bulk = page.locator("#bulk-decide")
    bulk.get_by_label("Accept", exact=True).check()
    bulk.get_by_label("Justification for the ticked sign-offs").fill("Compensating controls reviewed on 4 Dec.")
    shot(page, "inbox-ticked")
    bulk.get_by_role("button", name="Record for the ticked").click()
    expect(page.locator(".messages")).to_contain_text("2 sign-offs accepted")
    accepted = Decision.objects.filter(status=Decision.Status.ACCEPTED)
    assert {d.risk_id for d in accepted} == {first.risk_id, third.risk_id}
    assert all(d.justification == "Compensating controls reviewed on 4 Dec." for d in accepted)
    shot(page, "inbox-after")

    # The system page: a go is refused in place while the gate says no-go (RMF subcategories not assessed).
    page.goto(world["system"].get_absolute_url())
    card = page.locator("#release-signoff")
    card.get_by_label("Release").fill("v2.3.0")
    card.get_by_label("Go", exact=True).check()
    card.get_by_label("Why").fill("Ready to ship.")
    card.get_by_role("button", name="Record sign-off").click()
    expect(page.locator("#release-signoff")).to_contain_text("a go cannot be signed")
    assert not ReleaseSignoff.objects.exists()
    shot(page, "go-refused")

    card = page.locator("#release-signoff")
    card.get_by_label("No-go").check()
    card.get_by_label("Why").fill("The RMF profile is not assessed yet.")
    card.get_by_role("button", name="Record sign-off").click()
    expect(page.locator("#release-signoff table")).to_contain_text("v2.3.0")
    expect(page.locator("#release-signoff table")).to_contain_text("NO-GO")
    signoff = ReleaseSignoff.objects.get()
    assert signoff.verdict == "no-go" and signoff.gate_decision == "no-go"
    shot(page, "signed-off")

    latest = page.request.get(f"/api/v1/systems/{world['system'].slug}/signoffs/latest?release=v2.3.0")
    assert latest.status == 200 and latest.json()["verdict"] == "no-go"
    gate = page.request.get(f"/api/v1/systems/{world['system'].slug}/gate?release=v2.3.0")
    assert gate.status == 409 and "SIGNOFF_NO_GO" in gate.json()["counts"]
    assert page.js_errors == []
