from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from governance.accounts import permissions as perms
from governance.audit.models import AuditEvent


def event_list(request: HttpRequest) -> HttpResponse:
    if not perms.can_view_audit(request.user):
        raise PermissionDenied("Only CISOs and admins can read the whole audit trail.")
    events = AuditEvent.objects.select_related("system").order_by("-seq")
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "audit/list.html", {"page": page})
