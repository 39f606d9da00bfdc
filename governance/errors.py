"""Error pages: HTML for people, JSON under /api/ (a client of the API never gets an HTML page)."""
from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render
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
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return defaults.permission_denied(request, exception)
    return render(request, "403.html", {"reason": str(exception) or "Your role does not allow this.",
                                        "helpers": _who_can_help(exception)}, status=403)


def _who_can_help(exception) -> list:
    named = getattr(exception, "who_can_help", None)
    if named:
        return named
    from governance.accounts.models import Role, User

    return list(User.objects.filter(is_active=True, groups__name__in=[Role.ADMIN, Role.CISO]).distinct()
                .order_by("email")[:5])


def not_found(request, exception):
    if _api(request):
        return JsonResponse({"detail": "No such API endpoint or object."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _api(request):
        return JsonResponse({"detail": "The server failed on this request; it was logged."}, status=500)
    return defaults.server_error(request)
