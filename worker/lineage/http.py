"""JSON over the one outbound client (worker/outbound.py) for the lineage connectors. No Django here.

The caller passes a `worker.outbound.Client` (address policy checked before the request, when the socket connects
and on every redirect; retries, time and size caps) carrying the headers (credentials) to send.
"""
from __future__ import annotations

import json
import urllib.parse

from worker.outbound import Client, OutboundError, shown

HttpError = OutboundError  # a request failed for good, or the answer is not what was expected; names the URL


class JsonClient:
    def __init__(self, base_url: str, client: Client):
        self.base_url = base_url.rstrip("/")
        self.client = client

    @property
    def requests(self) -> int:
        return self.client.requests

    def url(self, path: str, params: dict | None = None) -> str:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        return f"{self.base_url}/{path.lstrip('/')}{query}"

    def get(self, path: str, params: dict | None = None):
        return self._json(self.url(path, params), self.client.request("GET", self.url(path, params), headers=_ACCEPT))

    def post(self, path: str, body: dict):
        headers = {**_ACCEPT, "Content-Type": "application/json"}
        return self._json(self.url(path), self.client.request("POST", self.url(path), body=json.dumps(body).encode(),
                                                              headers=headers))

    @staticmethod
    def _json(url: str, body: bytes):
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:  # the decoder's complaint and position, never the text itself
            raise HttpError(f"{shown(url)}: the response is not JSON ({exc.msg} at line {exc.lineno} column "
                            f"{exc.colno})") from exc
        except ValueError as exc:
            raise HttpError(f"{shown(url)}: the response is not JSON (not UTF-8 text)") from exc


_ACCEPT = {"Accept": "application/json"}
