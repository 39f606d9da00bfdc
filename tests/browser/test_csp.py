"""The Content-Security-Policy in a real browser: every page works under it (charts drawn, confirmations asked,
select-all, htmx swaps) with no violation reported, and an injected inline script does not run."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from governance.accounts.models import Role
from governance.findings.models import Finding
from governance.inventory import services as inventory_services
from tests.browser.conftest import login
from tests.conftest import PASSWORD, make_user, system_data
from tests.risks.conftest import make_finding, rated

pytestmark = pytest.mark.browser

WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || ""));
});
"""


@pytest.fixture
def world(transactional_db):
    ciso = make_user("ciso@example.com", Role.CISO)
    owner = make_user("owner@example.com", Role.PRODUCT_OWNER)
    system = inventory_services.system_create(actor=ciso, data=system_data(owner))
    for severity in ("critical", "high", "medium"):
        make_finding(system, severity=severity)
    risk = rated(ciso, system, residual=(4, 4))
    return {"ciso": ciso, "system": system, "risk": risk}


def test_pages_work_under_the_policy_with_no_violation(page, shot, world, live_server):
    page.add_init_script(WATCH)
    response = page.goto("/accounts/login/")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    login(page, "ciso@example.com", PASSWORD)
    system = world["system"]
    for path in ["/", "/findings/", "/risks/", f"/risks/{world['risk'].ref}/", f"/systems/{system.slug}/",
                 f"/rmf/systems/{system.slug}/", "/rmf/portfolio/", "/risks/inbox/", "/systems/"]:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("window.__violations") == [], path
        assert page.js_errors == [], path
    shot(page, "systems")

    page.goto("/")  # Plotly charts are drawn from our own static files
    expect(page.locator("[data-figure]").first).to_have_attribute("data-drawn", "1")

    page.goto("/findings/")  # select-all (was an inline onclick)
    page.get_by_label("Select all").check()
    boxes = page.locator("input[name=ids]")
    assert boxes.count() == 3 and all(boxes.nth(i).is_checked() for i in range(3))

    page.goto(f"/systems/{system.slug}/")  # the archive confirmation (was an inline onclick): dismissed, nothing done
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Archive").click()
    page.wait_for_timeout(300)
    system.refresh_from_db()
    assert system.archived_at is None

    page.goto("/report/board/")  # the period submits itself (data-autosubmit: was an inline onchange)
    page.locator("select[name=days]").select_option(page.locator("select[name=days] option").last.get_attribute("value"))
    page.wait_for_url("**days=**")
    assert page.evaluate("window.__violations") == [] and page.js_errors == []

    page.goto("/rmf/systems/%s/" % system.slug)  # the RMF status filter is a link; its groups fold without script
    page.get_by_role("link", name=re.compile("^Gap")).click()
    page.wait_for_url("**status=gap**")
    page.get_by_role("link", name=re.compile("^All")).click()
    category = page.locator("details.rmf-category").first
    expect(category.locator("table")).to_be_hidden()
    category.locator("summary").click()
    expect(category.locator("table")).to_be_visible()
    assert page.evaluate("window.__violations") == [] and page.js_errors == []


def test_an_injected_inline_script_does_not_run(page, world, live_server):
    """If scanner text ever escaped its escaping, the policy still stops it."""
    page.add_init_script(WATCH)
    login(page, "ciso@example.com", PASSWORD)
    page.goto("/")
    page.evaluate("""() => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 1';
                            document.body.appendChild(s); }""")
    page.wait_for_timeout(200)
    assert page.evaluate("window.__pwned") is None
    assert any("script-src" in v for v in page.evaluate("window.__violations"))
    assert Finding.objects.count() == 3


def test_the_api_docs_work_offline_under_the_policy(page, shot, world, live_server):
    """Swagger UI comes from our own static files (drf-spectacular-sidecar): no request leaves the server, nothing
    is blocked, and it shows the schema."""
    page.add_init_script(WATCH)
    elsewhere = []
    page.on("request", lambda r: None if r.url.startswith(live_server.url) or r.url.startswith("data:")
            else elsewhere.append(r.url))
    page.goto("/api-docs/")
    expect(page).to_have_url(re.compile("/accounts/login/"))  # pages for people: sign in first
    login(page, "ciso@example.com", PASSWORD)
    page.goto("/api-docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Rampart API")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/imports/").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    shot(page, "swagger")
    assert elsewhere == []
    assert page.evaluate("window.__violations") == [] and page.js_errors == []
