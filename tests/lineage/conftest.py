"""Lineage test helpers: OpenLineage event builders, graph dumps, a local JSON HTTP server, bearer tokens."""
from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from governance.accounts.services import api_token_create
from governance.lineage.models import LineageEdge, LineageNode

BASE = datetime(2026, 10, 1, 12, 0, tzinfo=timezone.utc)
PRODUCER = "https://example.com/rampart-tests"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def ds(path: str, *, pii: bool = False, licence: str = "", owners: tuple = ()) -> dict:
    namespace, name = path.split("/", 1)
    facets = {}
    if pii:
        facets["schema"] = {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
                            "fields": [{"name": "email", "type": "string", "tags": [{"name": "PII", "source": "MANUAL"}]}]}
    if licence:
        facets["license"] = {"_producer": PRODUCER, "name": licence}
    if owners:
        facets["ownership"] = {"_producer": PRODUCER, "owners": [{"name": o, "type": "MAINTAINER"} for o in owners]}
    return {"namespace": namespace, "name": name, "facets": facets}


def run_event(job: str, inputs: list, outputs: list, *, state: str = "COMPLETE", at: datetime | None = None,
              run_id: str | None = None, namespace: str = "training") -> dict:
    return {"eventType": state, "eventTime": (at or BASE).isoformat(), "producer": PRODUCER, "schemaURL": SCHEMA,
            "run": {"runId": run_id or str(uuid.uuid4())}, "job": {"namespace": namespace, "name": job},
            "inputs": [i if isinstance(i, dict) else ds(i) for i in inputs],
            "outputs": [o if isinstance(o, dict) else ({"namespace": "models", "name": o} if o.startswith("models:/") else ds(o))
                        for o in outputs]}


def graph_dump() -> tuple[dict, dict]:
    """({key: (kind, first_seen, last_seen)}, {(src key, dst key, kind): (first_seen, last_seen)}) — ids excluded."""
    nodes = {n.key: (n.kind, n.first_seen, n.last_seen) for n in LineageNode.objects.all()}
    edges = {(e.src.key, e.dst.key, e.kind): (e.first_seen, e.last_seen)
             for e in LineageEdge.objects.select_related("src", "dst")}
    return nodes, edges


def bearer(user) -> str:
    return api_token_create(user=user, name=f"lineage-{uuid.uuid4().hex[:8]}")[1]


class JsonServer:
    """A local HTTP server on 127.0.0.1; `routes[path] = fn(query: dict, body: bytes) -> (status, obj)` or
    `(status, obj, headers)` or `(status, obj, headers, reason phrase)`; obj is sent as JSON unless it is bytes."""

    def __init__(self):
        self.routes: dict = {}
        self.requests: list[tuple[str, str, dict, dict]] = []  # (method, path, query, headers)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append((self.command, parts.path, query, dict(self.headers)))
                route = outer.routes.get(parts.path)
                status, obj, *more = route(query, body) if route else (404, {"error_code": "ENDPOINT_NOT_FOUND"})
                headers, reason = (more[0] if more else {}), (more[1] if len(more) > 1 else None)
                data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
                self.send_response(status, reason)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def outbound_loopback(settings):
    """The servers these tests run (JsonServer, MLflow) listen on 127.0.0.1, which the outbound policy refuses
    unless an operator allows it: allow exactly that address."""
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    """Record the worker wake-ups instead of sending them to the shared test broker; tests apply events in-process."""
    calls = []
    monkeypatch.setattr("governance.lineage.services._enqueue", lambda: calls.append("process_lineage"))
    return calls


@pytest.fixture
def json_server():
    servers = []

    def make() -> JsonServer:
        servers.append(JsonServer())
        return servers[-1]

    yield make
    for s in servers:
        s.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """live_server flushes every table after the test; put the RMF catalogues back for later tests."""
    yield
    if nextitem is not None and "live_server" in getattr(item, "fixturenames", ()):
        from pytest_django.plugin import blocking_manager_key

        from governance.rmf.catalogues import load_catalogues

        with item.config.stash[blocking_manager_key].unblock():
            load_catalogues()


def later(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)
