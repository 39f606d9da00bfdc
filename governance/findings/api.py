from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from governance.accounts import permissions as perms
from governance.findings import selectors
from governance.findings.forms import UploadForm
from governance.findings.imports import import_run_create
from governance.findings.models import ImportRun

COUNT_KEYS = ("created", "updated", "unchanged", "closed", "reopened", "merged", "held_open", "repaired")


def run_body(run: ImportRun, request) -> dict:
    return {
        "id": run.pk,
        "status": run.status,
        "error": run.error or None,
        "incomplete": run.incomplete or None,
        "counts": {k: run.counts.get(k, 0) for k in COUNT_KEYS},
        "system": run.system.slug if run.system else None,
        "source": run.source,
        "format": run.format,
        "detected_format": run.detected_format or None,
        "sha256": run.sha256,
        "size": run.size,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "url": request.build_absolute_uri(f"/api/v1/imports/{run.pk}/"),
    }


RunSerializer = inline_serializer("ImportRun", {
    "id": serializers.IntegerField(), "status": serializers.ChoiceField(ImportRun.Status.choices),
    "error": serializers.CharField(allow_null=True), "counts": serializers.DictField(child=serializers.IntegerField()),
    "url": serializers.URLField(),
})


@extend_schema(request={"multipart/form-data": inline_serializer("ImportUpload", {
    "file": serializers.FileField(), "format": serializers.CharField(), "system": serializers.SlugField(required=False),
    "source": serializers.CharField(required=False), "repository": serializers.CharField(required=False)})},
    responses={202: RunSerializer})
@login_not_required
@api_view(["POST"])
@parser_classes([MultiPartParser])
def import_create(request: Request) -> Response:
    """Store the report and answer 202 at once; poll the returned url for the result."""
    form = UploadForm(request.data, request.FILES)
    if not form.is_valid():
        raise ValidationError({k: [str(e) for e in v] for k, v in form.errors.items()})
    system = form.cleaned_data["system"]
    if not perms.can_import(request.user, system):
        raise PermissionDenied("You may not import findings for this system.")
    upload = form.cleaned_data["file"]
    run = import_run_create(
        actor=request.user, stream=upload, filename=upload.name, fmt=form.cleaned_data["format"], system=system,
        source=form.cleaned_data["source"], repository=form.cleaned_data["repository"],
        via=ImportRun.Via.API,
    )
    return Response(run_body(run, request), status=status.HTTP_202_ACCEPTED)


@extend_schema(responses=RunSerializer)
@login_not_required
@api_view(["GET"])
def import_detail(request: Request, pk: int) -> Response:
    run = get_object_or_404(ImportRun.objects.select_related("system"), pk=pk)
    return Response(run_body(run, request))


@extend_schema(responses=inline_serializer("FindingPage", {"count": serializers.IntegerField(), "results": serializers.ListField(), "next": serializers.CharField(allow_null=True)}))
@login_not_required
@api_view(["GET"])
def finding_list(request: Request) -> Response:
    from governance.findings.views import _queue_filters

    filters = _queue_filters(request._request)
    filters.at = at = timezone.now()  # the list and each row's past_sla read at the same moment
    page = selectors.queue_list(filters, request.query_params.get("after", ""))
    rows, cursor = page.rows, page.next_cursor
    results = [{
        "id": f.pk, "title": f.title, "severity": f.severity, "tool_severity": f.tool_severity, "tool": f.tool,
        "rule_id": f.rule_id, "location": f.location, "state": f.state, "system": f.system.slug if f.system else None,
        "source": f.source, "fingerprint": f.fingerprint, "sla_due": f.sla_due, "past_sla": f.is_past_sla(at),
        "first_seen": f.first_seen, "last_seen": f.reported_at, "gone": f.gone,
    } for f in rows]
    return Response({"count": page.total, "results": results, "next": cursor})
