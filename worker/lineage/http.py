"""A small JSON-over-HTTP client for the pull connectors: timeouts, retries with backoff, checked redirects.

No Django here: the caller passes `check_url`, which refuses an address before any request (and before
following any redirect), and the headers (credentials) to send.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_RESPONSE_BYTES = 50 * 1024 * 1024


class HttpError(Exception):
    """A request failed for good (after retries); the message names the URL and why."""


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, check_url: Callable[[str], None]):
        self.check_url = check_url

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        self.check_url(newurl)  # a redirect must not lead to a refused (link-local, metadata) address
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")  # never hand our credentials to another host
        return new


class JsonClient:
    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None, check_url: Callable[[str], None],
                 timeout: float = 15.0, retries: int = 3, backoff: float = 0.5, sleep: Callable[[float], None] = time.sleep):
        self.base_url = base_url.rstrip("/")
        self.headers = {"Accept": "application/json", "User-Agent": "Rampart-lineage/1", **(headers or {})}
        self.check_url, self.timeout, self.retries, self.backoff, self.sleep = check_url, timeout, retries, backoff, sleep
        self.opener = urllib.request.build_opener(_CheckedRedirects(check_url))
        self.requests = 0

    def url(self, path: str, params: dict | None = None) -> str:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return f"{self.base_url}/{path.lstrip('/')}{query}"

    def get(self, path: str, params: dict | None = None):
        return self._send(urllib.request.Request(self.url(path, params), headers=self.headers, method="GET"))

    def post(self, path: str, body: dict):
        headers = {**self.headers, "Content-Type": "application/json"}
        return self._send(urllib.request.Request(self.url(path), data=json.dumps(body).encode(), headers=headers, method="POST"))

    def _send(self, request: urllib.request.Request):
        self.check_url(request.full_url)
        shown = request.full_url.split("?", 1)[0]
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            self.requests += 1
            try:
                with self.opener.open(request, timeout=self.timeout) as response:  # noqa: S310 - scheme checked
                    body = response.read(MAX_RESPONSE_BYTES + 1)
                if len(body) > MAX_RESPONSE_BYTES:
                    raise HttpError(f"{shown}: the response is larger than {MAX_RESPONSE_BYTES // 2**20} MB")
                try:
                    return json.loads(body)
                except ValueError as exc:
                    raise HttpError(f"{shown}: the response is not JSON ({exc})"[:300]) from exc
            except urllib.error.HTTPError as exc:
                detail = exc.read(300).decode("utf-8", "replace").strip()
                last = f"{shown}: HTTP {exc.code} {exc.reason}" + (f" — {detail}" if detail else "")
                if exc.code not in RETRY_STATUSES:
                    raise HttpError(last[:500]) from exc
            except urllib.error.URLError as exc:
                last = f"{shown}: {exc.reason}"
            except TimeoutError:
                last = f"{shown}: timed out after {self.timeout:g} s"
            except OSError as exc:  # connection reset and the like
                last = f"{shown}: {exc}"
        raise HttpError(f"{last} (gave up after {self.retries + 1} attempts)"[:500])
