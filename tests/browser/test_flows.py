"""End-to-end in a real browser: log in, register a system, assess it inline, filter, and the owner rules."""
from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from governance.audit.models import AuditEvent
from governance.inventory.models import AISystem
from governance.rmf.models import RmfAssessment
from tests.conftest import PASSWORD, make_user, system_data
from tests.browser.conftest import login

pytestmark = pytest.mark.browser


@pytest.fixture
def people(transactional_db):
    from governance.accounts.models import Role

    return {
        "ciso": make_user("ciso@example.com", Role.CISO),
        "owner": make_user("owner@example.com", Role.PRODUCT_OWNER),
        "other_owner": make_user("other-owner@example.com", Role.PRODUCT_OWNER),
    }


def _create(actor, **data):
    from governance.inventory import services

    return services.system_create(actor=actor, data=data)


def _mark_window(page) -> None:
    page.evaluate("window.__noReload = 'still here'")


def _not_reloaded(page) -> bool:
    return page.evaluate("window.__noReload") == "still here"


def _chart_drawn(page, selector: str) -> None:
    chart = page.locator(selector)
    expect(chart).to_have_attribute("data-drawn", "1")
    expect(chart.locator("svg.main-svg").first).to_be_attached()


def test_ciso_logs_in_and_registers_a_system_fixing_an_inline_error(page, shot, people, live_server):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    shot(page, "login")
    login(page, "ciso@example.com", PASSWORD)
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("ciso@example.com")
    shot(page, "dashboard")

    page.goto("/systems/")
    page.get_by_role("link", name="Register a system").click()
    expect(page.get_by_role("heading", name="Register an AI system")).to_be_visible()
    page.get_by_label("Name").fill("Claims Triage Assistant")
    page.get_by_label("Business unit").fill("Insurance operations")
    page.get_by_label("Lifecycle stage").select_option("verify")
    page.get_by_label("Risk tier").select_option("high")
    page.get_by_label("Design approach").select_option("rag")
    page.get_by_label("Uses generative AI").check()
    page.get_by_label("Third-party provider").fill("Anthropic")
    page.get_by_label("Personal data (PII)").check()
    # purpose left empty on purpose
    page.get_by_role("button", name="Register system").click()

    expect(page.locator(".message.error")).to_contain_text("nothing was saved")
    purpose_field = page.locator(".field.has-error", has=page.locator("#id_purpose"))
    expect(purpose_field.locator(".error")).to_have_text("This field is required.")
    expect(page.get_by_label("Name")).to_have_value("Claims Triage Assistant")  # the rest is kept
    assert AISystem.objects.count() == 0
    assert not AuditEvent.objects.filter(action="system.create").exists()
    shot(page, "form-with-error")

    page.locator("#id_purpose").fill("Suggests a triage queue and drafts a summary for each incoming claim.")
    page.get_by_role("button", name="Register system").click()

    expect(page).to_have_url(re.compile(r"/systems/claims-triage-assistant/$"))
    expect(page.get_by_role("heading", name="Claims Triage Assistant")).to_be_visible()
    expect(page.locator(".message.success")).to_contain_text("registered")
    system = AISystem.objects.get(slug="claims-triage-assistant")
    assert (system.business_owner.email, system.risk_tier, system.data_categories) == ("ciso@example.com", "high", ["pii"])
    assert RmfAssessment.objects.filter(system=system).count() == 72
    _chart_drawn(page, "[data-figure]")
    shot(page, "system-page")
    assert page.js_errors == []


def test_assessment_edited_inline_updates_coverage_and_chart(page, shot, people, live_server):
    system = _create(people["ciso"], **system_data(people["owner"]))
    login(page, "ciso@example.com", PASSWORD)
    page.goto(f"/rmf/systems/{system.slug}/")
    _chart_drawn(page, "#coverage-chart")
    shot(page, "profile-before")

    govern_kpi = page.locator("#coverage-card .kpi").first
    kpi_before = govern_kpi.inner_text()
    figure_before = page.locator("#coverage-chart").get_attribute("data-figure")
    plotted_before = page.evaluate("document.querySelector('#coverage-chart').data.map(t => t.x)")
    _mark_window(page)

    page.locator("details.rmf-category summary").first.click()  # categories start folded
    row = page.locator("table.rmf tbody tr").first
    row_id = row.get_attribute("id")
    row.get_by_role("link", name="Edit").click()
    editing = page.locator(f"#{row_id}.editing")
    expect(editing).to_be_visible()
    shot(page, "editing-row")
    editing.get_by_label("Status").select_option("implemented")
    editing.get_by_label("Evidence notes").fill("Policy AI-01 approved by the board, reviewed yearly.")
    editing.get_by_role("button", name="Save").click()

    saved = page.locator(f"#{row_id}")
    expect(saved.locator(".status-pill")).to_have_text("Implemented")
    expect(saved).to_contain_text("Policy AI-01")
    expect(govern_kpi).not_to_have_text(kpi_before)
    _chart_drawn(page, "#coverage-chart")
    assert _not_reloaded(page), "saving an assessment reloaded the page"

    figure_after = page.locator("#coverage-chart").get_attribute("data-figure")
    plotted_after = page.evaluate("document.querySelector('#coverage-chart').data.map(t => t.x)")
    assert figure_after != figure_before
    statuses = [t["name"] for t in json.loads(figure_after)["data"]]
    implemented = statuses.index("Implemented")
    assert sum(plotted_after[implemented]) == sum(plotted_before[implemented]) + 1
    assert re.search(r"\d+%", govern_kpi.inner_text())
    shot(page, "profile-after")

    assessment = RmfAssessment.objects.get(pk=int(row_id.split("-")[1]))
    assert assessment.status == "implemented"
    assert page.js_errors == []


def test_inventory_list_filters_without_reload(page, shot, people, live_server):
    ciso, owner = people["ciso"], people["owner"]
    _create(ciso, **system_data(owner, name="Alpha Chat", slug="alpha", lifecycle_stage="deploy", risk_tier="high"))
    _create(ciso, **system_data(owner, name="Beta Scorer", slug="beta", lifecycle_stage="operate", risk_tier="low"))
    _create(ciso, **system_data(people["other_owner"], name="Gamma Agent", slug="gamma", lifecycle_stage="build",
                                risk_tier="critical", business_unit="Claims"))
    login(page, "ciso@example.com", PASSWORD)
    page.goto("/systems/")
    rows = page.locator("#results tbody tr")
    expect(rows).to_have_count(3)
    shot(page, "list-all")
    _mark_window(page)

    page.get_by_label("Risk tier").select_option("critical")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Gamma Agent")
    expect(page).to_have_url(re.compile(r"tier=critical"))

    page.get_by_label("Risk tier").select_option("")
    expect(rows).to_have_count(3)
    page.get_by_label("Search").fill("beta")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Beta Scorer")
    page.get_by_label("Search").fill("no such system")
    expect(page.locator("#results")).to_contain_text("No")
    shot(page, "list-filtered")
    assert _not_reloaded(page), "filtering reloaded the page"

    page.goto("/systems/?stage=deploy")  # the pushed URL works as a plain link, too
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Alpha Chat")
    assert page.js_errors == []


def test_product_owner_cannot_edit_someone_elses_system(page, shot, people, live_server):
    ciso = people["ciso"]
    mine = _create(ciso, **system_data(people["owner"]))
    theirs = _create(ciso, **system_data(people["other_owner"], name="Fraud Scoring", slug="fraud-scoring"))
    login(page, "owner@example.com", PASSWORD)

    page.goto(mine.get_absolute_url())
    expect(page.get_by_role("link", name="Edit", exact=True)).to_be_visible()

    page.goto(theirs.get_absolute_url())
    expect(page.get_by_role("heading", name="Fraud Scoring")).to_be_visible()
    expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
    shot(page, "other-owners-system")

    response = page.goto(f"/systems/{theirs.slug}/edit/")
    assert response.status == 403
    expect(page.get_by_role("heading", name="You cannot open this")).to_be_visible()
    expect(page.locator(".error-page")).to_contain_text("You may not edit this system.")
    shot(page, "edit-forbidden")
    theirs.refresh_from_db()
    assert theirs.name == "Fraud Scoring"
