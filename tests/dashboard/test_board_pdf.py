"""The board report's PDF: printed by the machine's Chromium (tests marked browser), a clear page when there is none,
and nothing fetched over the network while printing."""
from __future__ import annotations

import io
import threading
import unicodedata
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.urls import reverse
from pypdf import PdfReader

from governance.dashboard import pdf

pytestmark = pytest.mark.django_db


def _text(data: bytes) -> tuple[int, str]:
    """The page count and the words of every page (ligatures such as 'ﬁ' undone, any run of spaces one space)."""
    reader = PdfReader(io.BytesIO(data))
    text = " ".join(page.extract_text() for page in reader.pages)
    return len(reader.pages), " ".join(unicodedata.normalize("NFKC", text).split())


def test_without_chromium_the_download_says_so(scenario_world, client, ciso, settings):
    settings.RAMPART_CHROMIUM = "/nonexistent/chromium"
    client.force_login(ciso)
    response = client.get(reverse("dashboard:board-pdf"), {"days": "365"})
    assert response.status_code == 503
    body = response.content.decode()
    assert "This server has no Chromium to make the PDF with" in body and "Print (Save as PDF)" in body
    assert f'{reverse("dashboard:board")}?days=365' in body
    assert client.get(reverse("dashboard:board")).status_code == 200  # the report and the browser's print still work


def test_the_document_is_self_contained(settings):
    """Styles and scripts by file:// path, a CSP that allows nothing else, links absolute to the app."""
    settings.BASE_URL = "https://rampart.example"
    uris = pdf.static_uris()
    assert all(uri.startswith("file:///") for uri in uris.values())
    html = pdf.absolute_links('<a href="/risks/RISK-0001/">x</a><link href="file:///a.css">')
    assert html == '<a href="https://rampart.example/risks/RISK-0001/">x</a><link href="file:///a.css">'


@pytest.mark.browser
def test_the_download_is_the_report_as_pdf(scenario_world, client, ciso):
    w = scenario_world
    client.force_login(ciso)
    response = client.get(reverse("dashboard:board-pdf"))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('attachment; filename="rampart-board-report-')
    pages, text = _text(response.content)
    assert pages >= 4  # a page per section: figures, attention, charts, acceptances, exercises
    for words in ("AI risk: board report", "Systems that need attention first", "Support Copilot", w["unaccepted"].ref,
                  w["expiring"].ref, "Q4 poisoned model drill", "No revocation runbook", "<script>alert(1)</script>"):
        assert words in text, words
    assert "Download PDF" not in text and "Spring leak drill" not in text


@pytest.mark.browser
def test_a_print_that_takes_too_long_is_stopped():
    with pytest.raises(pdf.PdfUnavailable, match="took longer than"):
        pdf.html_to_pdf("<!doctype html><p>slow</p>", timeout=0.05)


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.seen.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.browser
def test_printing_fetches_nothing(scenario_world, client, ciso, owner, engineer, settings):
    """A risk title that would load an image, and links to the app, on a server we run: no request reaches it."""
    from tests.risks.conftest import accept, rated

    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    settings.BASE_URL = url
    accept(rated(engineer, scenario_world["unaccepted"].system, title=f'<img src="{url}/leak.png"> styled'), owner)
    _Recorder.seen = []
    try:
        client.force_login(ciso)
        response = client.get(reverse("dashboard:board-pdf"))
    finally:
        server.shutdown()
    assert response.status_code == 200
    assert _Recorder.seen == []
    assert f'<img src="{url}/leak.png"> styled' in _text(response.content)[1]  # shown as text, never loaded
