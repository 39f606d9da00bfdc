"""Refuse a request body larger than any upload Rampart accepts before anything reads it.

Django spools multipart files to disk as it parses them, and the CSRF middleware parses the body of every POST,
so a form's own size check runs only after the whole file is on disk. This middleware sits before them and
answers 413 on the declared Content-Length (WSGI servers give Django no body without one). The per-kind caps
(reports: RAMPART_MAX_REPORT_BYTES, scenarios 1 MB, lineage events: RAMPART_MAX_LINEAGE_EVENT_BYTES) still apply
with their own messages; this is the ceiling above all of them: RAMPART_MAX_REQUEST_BYTES.
"""
from __future__ import annotations

import json
import re

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.urls import is_valid_path


class RequestSizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        declared = request.META.get("CONTENT_LENGTH") or ""
        cap = settings.RAMPART_MAX_REQUEST_BYTES
        if declared.isdecimal() and int(declared) > cap:
            message = (f"The request is {int(declared) / 1e6:.1f} MB; Rampart accepts at most {cap / 1e6:.1f} MB "
                       "(RAMPART_MAX_REPORT_BYTES sets the report limit).")
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class HostileInputMiddleware:
    """Refuse, with 400 and the reason, input no view can store: a NUL character (PostgreSQL text cannot hold one) in
    the path, a query parameter, a form field or a JSON body; a lone UTF-16 surrogate in a JSON string (not valid
    Unicode text); JSON nested deeper than MAX_JSON_DEPTH (Python's parser runs out of stack first). One check for
    every view and API, before any of them (or the CSRF middleware) reads the request. Report files are not looked
    at here: their parsers refuse or skip what they cannot read, per entry."""

    MAX_JSON_DEPTH = 64

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        reason = self._refusal(request)
        if reason:
            status = 413 if reason.startswith("A JSON body") else 400
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": reason}, status=status)
            return HttpResponse(reason, status=status, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    def _refusal(self, request) -> str | None:
        if "\x00" in request.path:
            return "The address contains a NUL character (%00)."
        if any("\x00" in key or any("\x00" in v for v in values) for key, values in request.GET.lists()):
            return "A query parameter contains a NUL character (%00)."
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        if request.content_type == "application/json" or request.content_type.endswith("+json"):
            declared = request.META.get("CONTENT_LENGTH") or ""
            cap = settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # no JSON API takes more (lineage events: 2 MB)
            if declared.isdecimal() and int(declared) > cap:
                return f"A JSON body is limited to {cap / 1e6:.1f} MB; this one is {int(declared) / 1e6:.1f} MB."
            return self._json_refusal(request.body)
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            if any("\x00" in key or any("\x00" in v for v in values) for key, values in request.POST.lists()):
                return "A form field contains a NUL character."
        return None

    def _json_refusal(self, body: bytes) -> str | None:
        """Cheap byte scans first; the body is parsed here only when it has more brackets than the depth allowed or
        escapes of surrogates (the view parses it again: the common case costs nothing)."""
        if _NUL_ESCAPE.search(body):
            return "A JSON string contains a NUL character (\\u0000), which cannot be stored."
        deep = body.count(b"[") + body.count(b"{") > self.MAX_JSON_DEPTH
        surrogates = _SURROGATE_ESCAPE.search(body) is not None
        if not (deep or surrogates):
            return None
        try:
            value = json.loads(body)
        except RecursionError:
            return f"The JSON body is nested too deeply (more than {self.MAX_JSON_DEPTH} levels)."
        except ValueError:
            return None  # malformed JSON: the view says where
        stack = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if depth > self.MAX_JSON_DEPTH:
                return f"The JSON body is nested too deeply (more than {self.MAX_JSON_DEPTH} levels)."
            if type(item) is dict:
                stack.extend((v, depth + 1) for v in item.values() if type(v) in (dict, list) or surrogates)
                if surrogates:
                    stack.extend((k, depth) for k in item)
            elif type(item) is list:
                stack.extend((v, depth + 1) for v in item if type(v) in (dict, list) or surrogates)
            elif type(item) is str and _SURROGATE.search(item):
                return "A JSON string contains half of a UTF-16 surrogate pair (not valid Unicode text)."
        return None


_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)  # \u0000 not itself escaped
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # json.loads joins whole pairs: what is left is half of one


CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",  # no inline script, no eval: behaviour lives in static/js (data attributes)
    "style-src 'self' 'unsafe-inline'",  # Plotly and htmx set inline styles; no script can run from a style
    "img-src 'self' data:",  # Plotly draws some glyphs as data: images
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


class ContentSecurityPolicyMiddleware:
    """Every response says where its page may load code from: only Rampart's own static files, never inline."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response


class ApiSlashMiddleware:
    """Under /api/, a path with or without its trailing slash reaches the same endpoint: the path is corrected in
    place, not redirected (a redirected POST would lose its body, and a client would get HTML). A path that matches
    neither way is left alone: the JSON 404 (governance.errors) answers it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith("/api/") and len(path) > 5:
            urlconf = getattr(request, "urlconf", None)
            if not is_valid_path(path, urlconf):
                other = path[:-1] if path.endswith("/") else f"{path}/"
                if is_valid_path(other, urlconf):
                    request.path_info = other
                    request.path = request.META.get("SCRIPT_NAME", "").rstrip("/") + other
        return self.get_response(request)
