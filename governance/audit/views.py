from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

from governance.accounts import permissions as perms
from governance.audit import export, services
from governance.audit.forms import AuditFilterForm
from governance.audit.selectors import audit_events
from governance.audit.verify import trail_verify

PAGE_SIZE = 50
EXPORTS = {"csv": ("text/csv; charset=utf-8", export.csv_lines), "jsonl": ("application/jsonl", export.jsonl_lines)}


def _require_audit_reader(request: HttpRequest) -> None:
    if not perms.can_view_audit(request.user):
        raise PermissionDenied("Only CISOs and admins can read the whole audit trail.")


def _query(request: HttpRequest, *drop: str) -> str:
    """The filters of this request as a query string, for the pager and the export links."""
    query = request.GET.copy()
    for name in drop:
        query.pop(name, None)
    return query.urlencode()


def event_list(request: HttpRequest) -> HttpResponse:
    _require_audit_reader(request)
    form = AuditFilterForm(request.GET)
    page = None
    if form.is_valid():
        page = Paginator(audit_events(**form.filters()), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "audit/list.html", {
        "form": form, "page": page, "query": _query(request, "page"), "can_verify": perms.can_verify_audit(request.user),
    }, status=200 if page is not None else 400)


def event_export(request: HttpRequest) -> HttpResponse:
    """Exactly the list the page shows with the same filters, every page of it."""
    _require_audit_reader(request)
    form = AuditFilterForm(request.GET)
    fmt = request.GET.get("format", "csv")
    if fmt not in EXPORTS or not form.is_valid():
        return HttpResponse("Unknown format or invalid filters.", status=400, content_type="text/plain; charset=utf-8")
    content_type, lines = EXPORTS[fmt]
    events = audit_events(**form.filters()).iterator(chunk_size=2000)
    response = StreamingHttpResponse(lines(events), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="audit-trail-{timezone.localdate():%Y%m%d}.{fmt}"'
    return response


@require_POST
def verify(request: HttpRequest) -> HttpResponse:
    """The same check as `manage.py verify_audit`; an intact result is itself recorded (audit.verify)."""
    if not perms.can_verify_audit(request.user):
        raise PermissionDenied("Only admins and CISOs can verify the audit chain.")
    result = trail_verify()
    event = services.verification_record(actor=request.user, result=result)
    context = {"verification": result, "recorded": event}
    if request.htmx:
        return render(request, "audit/_verification.html", context)
    return render(request, "audit/verify.html", context)
