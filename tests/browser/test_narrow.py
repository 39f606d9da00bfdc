"""Long unbroken names and narrow screens: every main page, seeded with names of the longest length their fields
take and no space in them, fits a 390 px wide phone (and a desktop) without the page scrolling sideways; wide
tables scroll inside their card instead. Screenshots of each page go to $RAMPART_SHOTS_DIR."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from governance.accounts.models import Role
from governance.inventory import services as inventory_services
from governance.risks import services as risks_services
from governance.tabletop import services as tabletop_services
from governance.tabletop.loader import load_builtin_scenarios
from governance.tabletop.models import Scenario
from tests.browser.conftest import SHOTS, login
from tests.conftest import PASSWORD, make_user, system_data
from tests.risks.conftest import make_finding, rated

pytestmark = pytest.mark.browser


def long_name(length: int, stem: str = "Unbroken") -> str:
    """`length` characters and not one place a line may break at (no space, no hyphen)."""
    return (stem + "_Name" * 80)[:length]


@pytest.fixture
def world(transactional_db):
    boss = make_user("boss@example.com", Role.CISO)
    boss.groups.add(Group.objects.get(name=Role.ADMIN))  # audit trail and people too
    boss.full_name = long_name(150, "Person")
    boss.save()
    owner = make_user("owner@example.com", Role.PRODUCT_OWNER)
    owner.full_name = long_name(150, "Owner")
    owner.save()
    system = inventory_services.system_create(actor=boss, data=system_data(
        boss, name=long_name(120, "System"), slug="long-name-system", third_party_provider=long_name(100, "Provider")))
    inventory_services.model_register(actor=boss, system=system, data={
        "name": long_name(200, "Model"), "version": "1", "format": "pytorch", "provider": "hub",
        "source_uri": "https://hub.example/" + long_name(150, "path")})
    finding = make_finding(system, severity="critical", title=long_name(200, "Finding"))
    risk = rated(boss, system, residual=(4, 4), title=long_name(300, "Risk"), owner=owner,
                 rmf_subcategories=[])
    risks_services.decision_request(actor=owner, risk=risk, kind="residual_risk", note=long_name(200, "Note"))
    load_builtin_scenarios()
    exercise = tabletop_services.exercise_create(actor=boss, data={
        "title": long_name(200, "Exercise"), "scenario": Scenario.objects.get(slug="malicious-pickle-model"),
        "facilitator": boss}, systems=[system])
    tabletop_services.participant_add(actor=boss, exercise=exercise, user=owner, role="player", function="legal")
    tabletop_services.improvement_add(actor=boss, exercise=exercise, data={  # rated before it becomes a risk
        "title": long_name(300, "Improvement"), "kind": "risk", "system": system, "owner": owner})
    return {"system": system, "finding": finding, "risk": risk, "exercise": exercise}


def pages(w) -> dict[str, str]:
    slug, ex = w["system"].slug, w["exercise"].pk
    return {
        "posture": "/", "systems": "/systems/", "system": f"/systems/{slug}/", "findings": "/findings/",
        "finding": f"/findings/{w['finding'].pk}/", "risks": "/risks/", "risk": f"/risks/{w['risk'].ref}/",
        "inbox": "/risks/inbox/", "rmf-profile": f"/rmf/systems/{slug}/", "exercises": "/exercises/",
        "exercise": f"/exercises/{ex}/console/", "exercise-edit": f"/exercises/{ex}/edit/",
        "exercise-report": f"/exercises/{ex}/report/", "audit": "/audit/", "people": "/accounts/users/",
    }


@pytest.mark.parametrize("width", [390, 1440])
def test_no_page_scrolls_sideways_with_long_names(browser, live_server, world, width):
    SHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(base_url=live_server.url, viewport={"width": width, "height": 844})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, "boss@example.com", PASSWORD)
    too_wide = {}
    for name, path in pages(world).items():
        response = page.goto(path)
        assert response.status == 200, (name, response.status)
        page.wait_for_load_state("networkidle")
        assert "_Name_Name_Name_Name" in page.content(), f"{name} does not show a long name"
        if name == "exercise-report":
            page.locator("details.promote summary").click()  # the rating form, open
        page.screenshot(path=str(SHOTS / f"narrow-{width}-{name}.png"), full_page=True)
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width:
            too_wide[name] = scroll_width
    assert too_wide == {}, f"pages wider than {width} px: {too_wide}"
    assert errors == []
    context.close()
