"""A page as a PDF file, printed by headless Chromium from a self-contained document.

The document is our own rendering (every text escaped by the templates) written to a temporary folder and opened as
file://; its styles and scripts are our static files by file:// path, so no session, no server and no network: the
document's Content-Security-Policy allows file: only, host names resolve to nothing (--host-resolver-rules) and
links to the app are absolute (they are never fetched). One Chromium at a time (a lock file), each bounded by
RAMPART_PDF_TIMEOUT seconds; anything that goes wrong is a PdfUnavailable with a reason people can read.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage

log = logging.getLogger(__name__)

PAGE_WIDTH_PX = 688  # A4 less 14 mm margins (print.css's @page) at 96 px per inch: charts are drawn at this width
FILES = {"css": "css/rampart.css", "print_css": "css/print.css", "js": "js/rampart.js", "plotly": "vendor/plotly.min.js"}


class PdfUnavailable(Exception):
    """The PDF could not be made; the message says why, in words for the person who asked."""


def chromium() -> str | None:
    """The Chromium executable, or None when this machine has none."""
    configured = settings.RAMPART_CHROMIUM
    found = shutil.which(configured) if not os.path.isabs(configured) else configured
    return found if found and os.access(found, os.X_OK) else None


def static_uris() -> dict[str, str]:
    """file:// URIs of the static files the document uses (source files; collected ones where there are none)."""
    uris = {}
    for key, name in FILES.items():
        path = finders.find(name) or staticfiles_storage.path(name)
        uris[key] = Path(path).resolve().as_uri()
    return uris


def absolute_links(html: str) -> str:
    """Links to the app's pages point at RAMPART_BASE_URL in the file (a file:// document has no server)."""
    return html.replace(' href="/', f' href="{settings.BASE_URL.rstrip("/")}/')


def _args(executable: str, profile: Path, out: Path, page: Path) -> list[str]:
    return [
        executable, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
        "--no-sandbox",  # our own document, no network; the sandbox needs privileges containers rarely give
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
        "--disable-default-apps", "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://0.0.0.0:9",
        f"--user-data-dir={profile}", f"--window-size={PAGE_WIDTH_PX},1100", "--run-all-compositor-stages-before-draw",
        "--virtual-time-budget=15000", "--no-pdf-header-footer", f"--print-to-pdf={out}", page.as_uri(),
    ]


class _OneAtATime:
    """An exclusive lock file in VAR_DIR, waited for at most `seconds`: two Chromiums at once on a small machine
    slow everything down."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __enter__(self):
        self.file = open(settings.VAR_DIR / "pdf.lock", "w")
        deadline = time.monotonic() + self.seconds
        while True:
            try:
                fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self.file.close()
                    raise PdfUnavailable("Another PDF is being made right now. Try again in a moment.") from None
                time.sleep(0.2)

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def html_to_pdf(html: str, *, timeout: float | None = None) -> bytes:
    """Print `html` (a complete document whose resources are file:// URIs) to PDF bytes."""
    executable = chromium()
    if executable is None:
        raise PdfUnavailable("This server has no Chromium to make the PDF with (RAMPART_CHROMIUM is "
                             f"{settings.RAMPART_CHROMIUM}). Use your browser's Print (Save as PDF) instead, or ask "
                             "the administrator to install Chromium.")
    timeout = settings.RAMPART_PDF_TIMEOUT if timeout is None else timeout
    with _OneAtATime(timeout), tempfile.TemporaryDirectory(prefix="rampart-pdf-") as tmp:
        folder = Path(tmp)
        page, out = folder / "report.html", folder / "report.pdf"
        page.write_text(absolute_links(html), encoding="utf-8")
        # its own session: on a timeout the whole process group (renderer, GPU and utility processes) is ended
        proc = subprocess.Popen(_args(executable, folder / "profile", out, page), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise PdfUnavailable(f"Making the PDF took longer than {timeout:g} seconds and was stopped. Try again, "
                                 "or use your browser's Print (Save as PDF).") from None
        data = out.read_bytes() if out.exists() else b""
        if proc.returncode != 0 or not data.startswith(b"%PDF"):
            log.warning("chromium print-to-pdf failed (exit %s): %s", proc.returncode, err.decode(errors="replace")[-2000:])
            raise PdfUnavailable("Chromium could not make the PDF (the server's log says why). Use your browser's "
                                 "Print (Save as PDF) instead.")
        return data
