from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response

from governance.lineage.services import event_receive, events_receive
from worker.lineage.openlineage import EventError


class RawJSONParser(BaseParser):
    """Hand the raw bytes to the view, which caps the size before decoding."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream


def _bad(message: str) -> Response:
    """"detail" as every API error says it; "error" kept for the clients written against the earlier answers."""
    return Response({"detail": message, "error": message}, status=status.HTTP_400_BAD_REQUEST)


@extend_schema(request=OpenApiTypes.OBJECT, responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT})
@login_not_required
@api_view(["POST"])
@parser_classes([RawJSONParser])
def lineage_receive(request: Request) -> Response:
    """OpenLineage endpoint: point the openlineage-python HTTP transport here (endpoint `api/v1/lineage`).

    One event per request (as the OpenLineage clients send), or a JSON array of events for bulk loads.
    """
    if not request.user.has_perm("lineage.send_lineage"):
        raise PermissionDenied("Your role cannot send lineage events.")
    cap = settings.RAMPART_MAX_LINEAGE_EVENT_BYTES
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if declared.isdecimal() and int(declared) > cap:
        return _bad(f"Event is {int(declared)} bytes; the limit is {cap} bytes (RAMPART_MAX_LINEAGE_EVENT_BYTES).")
    body = request._request.read(cap + 1)
    if len(body) > cap:
        return _bad(f"Event is larger than the limit of {cap} bytes (RAMPART_MAX_LINEAGE_EVENT_BYTES).")
    try:
        payload = json.loads(body)
    except UnicodeDecodeError:
        return _bad("Event is not UTF-8 JSON.")
    except (json.JSONDecodeError, RecursionError) as exc:
        return _bad(f"Event is not valid JSON: {exc}"[:300])
    if isinstance(payload, list):  # a batch: many events in one request, stored all together or not at all
        if len(payload) > settings.RAMPART_MAX_LINEAGE_BATCH:
            return _bad(f"A batch holds at most {settings.RAMPART_MAX_LINEAGE_BATCH} events; this one has {len(payload)}.")
        try:
            stored, duplicates = events_receive(payloads=payload)
        except EventError as exc:
            return _bad(f"Not a valid OpenLineage event, nothing stored: {exc}")
        return Response({"stored": stored, "duplicates": duplicates},
                        status=status.HTTP_201_CREATED if stored else status.HTTP_200_OK)
    try:
        event, created = event_receive(payload=payload)
    except EventError as exc:
        return _bad(f"Not a valid OpenLineage event: {exc}")
    return Response({"id": event.pk, "duplicate": not created}, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
