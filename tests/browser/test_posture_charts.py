"""The posture page's charts in a real browser: clicking a bar opens the findings queue filtered to that bar, a
matrix cell the register filtered to that cell, and the trend range switch redraws the trends in place."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from governance.accounts.models import Role
from governance.dashboard.snapshots import snapshot_take
from governance.inventory import services as inventory_services
from governance.risks.matrix import get_matrix
from tests.browser.conftest import login
from tests.conftest import PASSWORD, make_user, system_data
from tests.risks.conftest import make_finding, rated

pytestmark = pytest.mark.browser


@pytest.fixture
def world(transactional_db):
    ciso = make_user("ciso@example.com", Role.CISO)
    owner = make_user("owner@example.com", Role.PRODUCT_OWNER)
    engineer = make_user("engineer@example.com", Role.ENGINEER)
    get_matrix()
    system = inventory_services.system_create(actor=ciso, data=system_data(owner))
    for _ in range(4):
        make_finding(system, severity="critical")
    rated(engineer, system, residual=(4, 4), inherent=(4, 4))
    now = timezone.now()
    for back in (40, 30, 10, 0):
        snapshot_take(at=now - timedelta(days=back))
    return {"ciso": ciso, "system": system}


def _click_centre(page, locator) -> None:
    box = locator.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def test_clicking_a_bar_opens_its_findings(page, shot, world, live_server):
    login(page, world["ciso"].email, PASSWORD)
    page.goto("/")
    chart = page.locator("[data-chart-links][data-linked]").first
    expect(chart).to_be_visible()
    expect(page.locator("[data-trends] .js-plotly-plot")).to_have_count(5)
    shot(page, "posture")
    _click_centre(page, chart.locator(".barlayer .point path").first)
    page.wait_for_url(re.compile(r"/findings/\?system=support-copilot&severity=critical$"))
    expect(page.locator("[data-total]")).to_have_attribute("data-total", "4")
    shot(page, "queue")
    assert page.js_errors == []


def test_clicking_a_matrix_cell_opens_its_risks_and_the_range_switch_swaps_in_place(page, shot, world, live_server):
    login(page, world["ciso"].email, PASSWORD)
    page.goto("/")
    page.evaluate("window.__stayed = 1")
    page.locator("[data-range='30']").click()
    expect(page.locator("[data-range='30'].active")).to_be_visible()
    expect(page.get_by_text("2 days with a snapshot in the last 30 days")).to_be_visible()
    assert page.evaluate("window.__stayed") == 1  # swapped by htmx, not reloaded
    matrix = page.locator("[data-chart-links][data-linked]").nth(1)
    expect(matrix).to_be_visible()
    matrix.scroll_into_view_if_needed()
    # where Plotly drew the residual grid's cell likelihood 4 × impact 4 (category index 3 on both axes)
    x, y = matrix.evaluate("""gd => {
        const xa = gd._fullLayout.xaxis2, ya = gd._fullLayout.yaxis2, trace = gd._fullData[1];
        const r = gd.getBoundingClientRect();
        return [r.left + xa._offset + xa.c2p(3), r.top + ya._offset + ya.c2p(3)];
    }""")
    page.mouse.move(x, y)
    shot(page, "matrix-hover")
    page.mouse.click(x, y)
    page.wait_for_url(re.compile(r"/risks/\?cell=residual-4-4$"))
    expect(page.get_by_text("On the matrix: residual likelihood 4 × impact 4")).to_be_visible()
    shot(page, "register-cell")
    assert page.js_errors == []
