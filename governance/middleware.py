"""Refuse a request body larger than any upload Rampart accepts before anything reads it.

Django spools multipart files to disk as it parses them, and the CSRF middleware parses the body of every POST,
so a form's own size check runs only after the whole file is on disk. This middleware sits before them and
answers 413 on the declared Content-Length (WSGI servers give Django no body without one). The per-kind caps
(reports: RAMPART_MAX_REPORT_BYTES, scenarios 1 MB, lineage events: RAMPART_MAX_LINEAGE_EVENT_BYTES) still apply
with their own messages; this is the ceiling above all of them: RAMPART_MAX_REQUEST_BYTES.
"""
from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, JsonResponse


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
