from __future__ import annotations

import logging

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.cache import never_cache

from governance.dashboard import board, liveness, pdf, selectors, trends

log = logging.getLogger(__name__)


def home(request: HttpRequest) -> HttpResponse:
    days = trends.parse_range(request.GET.get("range"))
    if request.htmx and "range" in request.GET:  # the range switch redraws the trends only
        return render(request, "dashboard/home.html#trends", {"trends": trends.trend_figures(timezone.now(), days)})
    show_all = request.GET.get("all") == "1"
    figures = selectors.posture(show_all=show_all)
    figures["show_all"] = show_all
    figures["mom"] = trends.month_over_month(figures["at"], figures)
    figures["trends"] = trends.trend_figures(figures["at"], days)
    return render(request, "dashboard/home.html", figures)


def _period(request: HttpRequest) -> int:
    try:
        return int(request.GET.get("days", board.DEFAULT_PERIOD))
    except ValueError:
        return board.DEFAULT_PERIOD


def board_report(request: HttpRequest) -> HttpResponse:
    """The board report: whoever may read the posture page (every signed-in person) may read it; each exercise's
    lessons only for those who may read its after-action report."""
    context = board.board_report(request.user, days=_period(request))
    return render(request, "dashboard/board.html", {**context, "base_template": "base.html", "standalone": False})


def board_pdf(request: HttpRequest) -> HttpResponse:
    """The board report as a PDF file: the same context, rendered as a self-contained document and printed by
    headless Chromium in this request (bounded by RAMPART_PDF_TIMEOUT); without Chromium, a page that says so."""
    days = _period(request)
    context = board.board_report(request.user, days=days)
    html = render_to_string("dashboard/board.html", {**context, "base_template": "dashboard/standalone.html",
                                                     "standalone": True, "files": pdf.static_uris()}, request=request)
    try:
        data = pdf.html_to_pdf(html)
    except pdf.PdfUnavailable as exc:
        return render(request, "dashboard/pdf_unavailable.html", {"reason": str(exc), "days": days}, status=503)
    response = HttpResponse(data, content_type="application/pdf")
    name = f"rampart-board-report-{timezone.localdate(context['at']):%Y-%m-%d}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _reason(exc: Exception) -> str:
    """A short cause safe to show anyone: never hosts, users or passwords from the message."""
    text = str(exc).lower()
    for needle, reason in (("refused", "connection refused"), ("timed out", "timed out"), ("timeout", "timed out"),
                           ("authentication", "authentication failed"), ("does not exist", "database does not exist")):
        if needle in text:
            return reason
    return type(exc).__name__


def _database_ok() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, connection.vendor
    except Exception as exc:  # report any failure as the health state, do not raise
        log.warning("healthz: database check failed: %s", exc)
        return False, f"{connection.vendor}: {_reason(exc)}"  # the message may name hosts and users


def _broker_ok() -> tuple[bool, str]:
    from worker.celery import app

    url = app.conf.broker_write_url or app.conf.broker_url or ""
    scheme = url.split("://", 1)[0] or "broker"  # name the transport, never the URL (it may hold a password)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            return True, conn.transport.driver_name
    except Exception as exc:
        log.warning("healthz: broker check failed: %s", exc)
        return False, f"{scheme}: {_reason(exc)}"  # details go to the log, not to anonymous callers


def _worker_and_imports(db_ok: bool) -> tuple[dict, dict]:
    """From the workers' heartbeats: ages and counts only, never a worker's name (anyone may call /healthz)."""
    if not db_ok:
        return {"ok": False, "detail": "unknown: the database is down"}, {}
    try:
        return liveness.workers_seen(), liveness.imports_waiting()
    except Exception as exc:  # e.g. the table is missing before `migrate`
        log.warning("healthz: worker check failed: %s", exc)
        return {"ok": False, "detail": _reason(exc)}, {}


@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    db_ok, db_detail = _database_ok()
    broker_ok, broker_detail = _broker_ok()
    worker, imports = _worker_and_imports(db_ok)
    healthy = db_ok and broker_ok and worker["ok"]
    body = {
        "status": "ok" if healthy else "unavailable",
        "database": {"ok": db_ok, "detail": db_detail},
        "broker": {"ok": broker_ok, "detail": broker_detail},
        "worker": worker,
        "imports": imports,
    }
    return JsonResponse(body, status=200 if healthy else 503)
