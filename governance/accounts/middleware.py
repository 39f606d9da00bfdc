"""Steps an account must take before anything else: change a password an admin chose (and, with two-factor
required for one's role, enrol a device). Until then every page sends the person to that step's page; signing out,
the step's own page and the health check still work. Session use of the API answers 403 saying why. API tokens
are not concerned: a script is not the person at a keyboard (a Bearer request is passed through untouched).
"""
from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, resolve_url
from django.utils.http import urlencode

ALWAYS_OPEN = {"accounts:logout", "healthz"}  # by name: DRF marks its views login_required=False, api-docs too
STEP_MESSAGES = {
    "accounts:password-change": "Change your password first: an administrator set it.",
}


def pending_step(user) -> str | None:
    """The URL name of the step this signed-in person must take before anything else, or None."""
    if user.must_change_password:
        return "accounts:password-change"
    return None


class AccountStepMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.headers.get("Authorization", "").lower().startswith("bearer "):
            return None
        user = request.user
        if not user.is_authenticated:
            return None
        step = pending_step(user)
        if step is None:
            return None
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": STEP_MESSAGES[step]}, status=403)
        if request.resolver_match.view_name in ALWAYS_OPEN | {step}:
            return None
        url = resolve_url(step)
        if request.method == "GET" and not request.htmx:
            url += "?" + urlencode({"next": request.get_full_path()})
        if request.htmx:  # a fragment request: have htmx load the whole page instead of swapping it in
            return HttpResponse(status=204, headers={"HX-Redirect": url})
        return redirect(url)
