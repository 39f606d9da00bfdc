"""Steps an account must take before anything else: change a password an admin chose; with two-factor required for
one's role, set it up (or, for a session older than the device, give a code). Until then every page sends the person
to that step's page; signing out, the step's own page and the health check still work. Session use of the API
answers 403 saying why. API tokens are not concerned: a script is not the person at a keyboard (a Bearer request is
passed through untouched).
"""
from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, resolve_url
from django.utils.http import urlencode

from governance.accounts import twofactor

ALWAYS_OPEN = {"accounts:logout", "healthz"}  # by name: DRF marks its views login_required=False, api-docs too
STEP_MESSAGES = {
    "accounts:password-change": "Change your password first: an administrator set it.",
    "accounts:two-factor": "Your role requires two-factor sign-in: set it up on My account first.",
    "accounts:login-code": "Your role requires two-factor sign-in: this session has not given a code.",
}


def pending_step(user) -> str | None:
    """The URL name of the step this signed-in person must take before anything else, or None. Only a person whose
    role requires two-factor and whose session has not passed it costs a query (is there a device to prove?)."""
    if user.must_change_password:
        return "accounts:password-change"
    if not user.is_verified() and twofactor.is_required(user):  # the free check first: no role query once verified
        return "accounts:login-code" if twofactor.authenticator(user) else "accounts:two-factor"
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
