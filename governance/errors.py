"""Error pages: HTML for people, JSON under /api/ (a client of the API never gets an HTML page)."""
from __future__ import annotations

from django.http import JsonResponse
from django.views import defaults


def _api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception):
    if _api(request):
        return JsonResponse({"detail": "The request is malformed."}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if _api(request):
        return JsonResponse({"detail": str(exception) or "You may not do this."}, status=403)
    return defaults.permission_denied(request, exception)


def not_found(request, exception):
    if _api(request):
        return JsonResponse({"detail": "No such API endpoint or object."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _api(request):
        return JsonResponse({"detail": "The server failed on this request; it was logged."}, status=500)
    return defaults.server_error(request)
