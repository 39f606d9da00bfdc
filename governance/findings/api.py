from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.pagination import LimitOffsetPagination
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


RUN_FIELDS = {
    "id": serializers.IntegerField(), "status": serializers.ChoiceField(ImportRun.Status.choices),
    "error": serializers.CharField(allow_null=True), "incomplete": serializers.CharField(allow_null=True),
    "counts": serializers.DictField(child=serializers.IntegerField()),
    "system": serializers.SlugField(allow_null=True), "source": serializers.CharField(),
    "format": serializers.CharField(), "detected_format": serializers.CharField(allow_null=True),
    "sha256": serializers.CharField(), "size": serializers.IntegerField(), "created_at": serializers.DateTimeField(),
    "finished_at": serializers.DateTimeField(allow_null=True), "url": serializers.URLField(),
}
RunSerializer = inline_serializer("ImportRun", RUN_FIELDS)


@extend_schema(methods=["GET"], responses=inline_serializer("ImportRunPage", {
    "count": serializers.IntegerField(), "next": serializers.URLField(allow_null=True),
    "previous": serializers.URLField(allow_null=True), "results": inline_serializer("ImportRun", RUN_FIELDS, many=True)}), parameters=[
    OpenApiParameter("system", str, description="a system's slug, or 'unassigned' (routed by rules)"),
    OpenApiParameter("status", str, enum=ImportRun.Status.values), OpenApiParameter("source", str),
    OpenApiParameter("limit", int), OpenApiParameter("offset", int)])
@extend_schema(methods=["POST"], request={"multipart/form-data": inline_serializer("ImportUpload", {
    "file": serializers.FileField(), "format": serializers.CharField(), "system": serializers.SlugField(required=False),
    "source": serializers.CharField(required=False), "repository": serializers.CharField(required=False)})},
    responses={202: RunSerializer})
@login_not_required
@api_view(["GET", "POST"])
@parser_classes([MultiPartParser])
def import_list(request: Request) -> Response:
    """GET: import runs, newest first, filtered by system, status or source. POST: store the report and answer 202
    at once; poll the returned url for the result."""
    if request.method == "GET":
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(selectors.import_runs(**_run_filters(request.query_params)), request)
        return paginator.get_paginated_response([run_body(run, request) for run in page])
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


def _run_filters(params) -> dict:
    status_ = params.get("status", "")
    if status_ and status_ not in ImportRun.Status.values:
        raise ValidationError({"status": [f"One of {', '.join(ImportRun.Status.values)}."]})
    return {"system": params.get("system", ""), "status": status_, "source": params.get("source", "")}


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
