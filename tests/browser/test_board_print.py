"""The board report and the posture page in print, in a real browser: nothing wider than its card (charts included)
on a wide screen and at a paper's width, and the board report as a PDF both from the browser (page.pdf) and from
the download endpoint (headless Chromium on the server), read back with pypdf."""
from __future__ import annotations

import io
import re
import unicodedata

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from governance.accounts.models import Role
from tests.browser.conftest import SHOTS, login
from tests.conftest import PASSWORD, make_user, system_data
from tests.dashboard.conftest import build_board_world

pytestmark = pytest.mark.browser

OVERFLOW = """() => {
  const out = [];
  for (const card of document.querySelectorAll('.card')) {
    const edge = card.getBoundingClientRect().right + 0.5;
    for (const el of card.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > edge) {
        out.push(`${el.tagName.toLowerCase()}.${el.getAttribute('class') || ''} ends at ${Math.round(r.right)}, `
                 + `its card at ${Math.round(edge)} (${(card.querySelector('h2, h3') || card).textContent.trim().slice(0, 40)})`);
      }
    }
  }
  return out;
}"""


@pytest.fixture
def world(transactional_db):
    from governance.inventory import services

    people = {role: make_user(f"{role}@example.com", group) for role, group in (
        ("ciso", Role.CISO), ("owner", Role.PRODUCT_OWNER), ("other_owner", Role.PRODUCT_OWNER),
        ("engineer", Role.ENGINEER), ("facilitator", Role.FACILITATOR), ("nobody", None))}
    system = services.system_create(actor=people["ciso"], data=system_data(people["owner"]))
    other = services.system_create(actor=people["ciso"], data=system_data(
        people["other_owner"], name="Fraud Scoring", slug="fraud-scoring", design_approach="classical_ml"))
    return build_board_world(system=system, other_system=other, **people)


def _words(data: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(data))
    text = " ".join(page.extract_text() for page in reader.pages)
    return len(reader.pages), " ".join(unicodedata.normalize("NFKC", text).split())


def _charts_drawn(page) -> int:
    charts = page.locator("[data-figure]")
    for i in range(charts.count()):
        expect(charts.nth(i)).to_have_attribute("data-drawn", "1")
        expect(charts.nth(i).locator("svg.main-svg").first).to_have_attribute("viewBox", re.compile(r"^0 0 [1-9]"))
    return charts.count()


def _fits_in_print(page, shot, name: str) -> None:
    """Drawn on screen at 1440 px, then printed: on the wide page and at an A4 page's width (the charts re-draw at
    the narrower window, as a browser does before its print preview)."""
    for width in (1440, 720):
        page.emulate_media(media="screen")
        page.set_viewport_size({"width": width, "height": 1000})
        page.wait_for_timeout(300)  # Plotly's responsive re-draw on the window's resize
        page.emulate_media(media="print")
        assert page.locator("nav.sidebar").is_hidden()
        assert page.evaluate(OVERFLOW) == [], f"{name} at {width} px in print"
        shot(page, f"{name}-print-{width}")
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1440, "height": 900})


def test_board_report_and_posture_print_within_their_cards(page, shot, world, live_server):
    login(page, "ciso@example.com", PASSWORD)
    page.goto("/report/board/")
    expect(page.get_by_role("heading", name="AI risk: board report")).to_be_visible()
    expect(page.locator("[data-system]").first).to_contain_text("Support Copilot")
    assert _charts_drawn(page) == 3
    shot(page, "board-screen")
    _fits_in_print(page, shot, "board")
    assert page.js_errors == []

    page.goto("/")
    assert _charts_drawn(page) >= 3
    _fits_in_print(page, shot, "posture")
    assert page.js_errors == []


def test_board_report_as_pdf_from_the_browser_and_the_download(page, world, live_server):
    w = world
    login(page, "ciso@example.com", PASSWORD)
    page.goto("/report/board/")
    _charts_drawn(page)
    printed = page.pdf(format="A4", print_background=True)
    (SHOTS / "board-report-page.pdf").write_bytes(printed)

    response = page.context.request.get(f"{live_server.url}/report/board.pdf", timeout=120_000)
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"
    downloaded = response.body()
    (SHOTS / "board-report-download.pdf").write_bytes(downloaded)

    for data in (printed, downloaded):
        pages, text = _words(data)
        assert pages >= 4, pages
        for words in ("AI risk: board report", "Headline figures", "Systems that need attention first",
                      "Support Copilot", w["unaccepted"].ref, "Risks accepted: who signed, until when",
                      w["expiring"].ref, w["lasting"].ref, "Q4 poisoned model drill", "No revocation runbook",
                      "How these figures are counted"):
            assert words in text, words
        assert "Rampart" not in text.split("AI risk: board report")[0]  # no sidebar before the title
