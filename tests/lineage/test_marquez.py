"""Marquez connector against a local server answering like Marquez; failures isolated; outbound URL checks."""
from __future__ import annotations

import json
import socket
import time
from datetime import datetime
from pathlib import Path

import pytest

from governance.audit.models import AuditEvent
from governance.lineage import connectors
from governance.lineage.connectors import ConnectorError, connector_run, connector_save, connectors_run_due
from governance.lineage.models import Connector, LineageEvent
from governance.lineage.services import events_process
from tests.lineage.conftest import graph_dump

pytestmark = pytest.mark.django_db
DATA = Path(__file__).resolve().parent.parent / "data" / "lineage" / "marquez"


def load(name: str) -> list[dict]:
    return json.loads((DATA / name).read_text())


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def marquez_route(store: list[dict]):
    """Marquez's getLineageEvents: after <= eventTime < before, ascending, limit/offset, {events, totalCount}."""
    def route(query, body):
        after, before = parse_time(query.get("after", "1970-01-01T00:00:00+00:00")), parse_time(query.get("before", "2030-01-01T00:00:00+00:00"))
        chosen = sorted((e for e in store if after <= parse_time(e["eventTime"]) < before), key=lambda e: parse_time(e["eventTime"]))
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
        return 200, {"events": chosen[offset:offset + limit], "totalCount": len(chosen)}
    return route


@pytest.fixture(autouse=True)
def fast_http(monkeypatch):
    monkeypatch.setattr(connectors, "HTTP_OPTIONS", {"timeout": 1.0, "retries": 2, "backoff": 0.01})


def make(ciso, name: str, url: str, kind: str = "marquez", credential: str | None = None, **extra) -> Connector:
    data = {"kind": kind, "name": name, "base_url": url, "auth": "bearer" if credential else "none",
            "every_minutes": 30, "system_mapping": [], "enabled": True, **extra}
    return connector_save(actor=ciso, data=data, credential=credential)


def test_incremental_sync(ciso, json_server, monkeypatch):
    store = load("events-1.json")
    server = json_server()
    server.routes["/api/v1/events/lineage"] = marquez_route(store)
    connector = make(ciso, "marquez-prod", server.url, credential="s3cret-token")
    from worker.lineage import marquez

    monkeypatch.setattr(marquez, "iter_event_pages", _small_pages(marquez.iter_event_pages))

    assert connector_run(connector_id=connector.pk) == "5 new events of 5 read"
    connector.refresh_from_db()
    assert connector.last_error == "" and connector.last_success_at and connector.last_summary == "5 new events of 5 read"
    assert parse_time(connector.state["cursor"]) == parse_time("2026-11-20T03:55:30.25Z")
    assert LineageEvent.objects.filter(origin="marquez").count() == 5
    first_requests = list(server.requests)
    assert all(r[3]["Authorization"] == "Bearer s3cret-token" for r in first_requests)
    assert {r[2]["sortDirection"] for r in first_requests} == {"asc"}
    assert len(first_requests) == 3  # pages of 2: 2 + 2 + 1

    store.extend(load("events-2.json"))
    assert connector_run(connector_id=connector.pk).startswith("2 new events of")
    assert LineageEvent.objects.count() == 7
    later_requests = server.requests[len(first_requests):]
    # The second sync starts from the cursor (less a small overlap for late arrivals), not from the beginning.
    assert parse_time(later_requests[0][2]["after"]) == parse_time("2026-11-20T03:45:30.25Z")

    events_process()
    nodes, edges = graph_dump()
    orders = "dataset:postgres://orders-db:5432/shop.public.orders"
    assert nodes[orders][1:] == (parse_time("2026-11-20T02:00:01.641Z"), parse_time("2026-11-21T02:06:58Z"))
    assert ("job:airflow-prod/training.fit_recommender", "model:basket-recommender@12", "output") in edges
    from governance.lineage.models import LineageNode

    assert LineageNode.objects.get(key=orders).attributes["contains_pii"] is True
    assert connector_run(connector_id=connector.pk).startswith("0 new events")


def _small_pages(original):
    def pages(client, **kw):
        return original(client, **{**kw, "limit": 2})
    return pages


def test_failing_connectors_record_their_error_and_do_not_block_others(ciso, json_server):
    good, broken, slow = json_server(), json_server(), json_server()
    good.routes["/api/v1/events/lineage"] = marquez_route(load("events-1.json"))
    broken.routes["/api/v1/events/lineage"] = lambda q, b: (500, {"code": 500, "message": "database is down"})

    def sleepy(q, b):
        time.sleep(2.5)
        return 200, {"events": []}
    slow.routes["/api/v1/events/lineage"] = sleepy
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        refused_url = f"http://127.0.0.1:{s.getsockname()[1]}"
    make(ciso, "a-broken", broken.url)
    make(ciso, "b-refused", refused_url)
    make(ciso, "c-slow", slow.url)
    make(ciso, "d-good", good.url)
    not_json = json_server()
    not_json.routes["/api/v1/events/lineage"] = lambda q, b: (200, b"<html>login</html>")
    make(ciso, "e-not-json", not_json.url)

    results = connectors_run_due()
    by_name = {c.name: c for c in Connector.objects.all()}
    assert "HTTP 500 Internal Server Error" in by_name["a-broken"].last_error
    assert "database is down" not in by_name["a-broken"].last_error  # what the server sent is never echoed
    assert "gave up after 3 attempts" in by_name["a-broken"].last_error
    assert len([r for r in broken.requests]) == 3  # retried with backoff
    assert "refused" in by_name["b-refused"].last_error.lower()
    assert "timed out" in by_name["c-slow"].last_error
    assert "not JSON" in by_name["e-not-json"].last_error
    assert by_name["d-good"].last_error == "" and by_name["d-good"].last_summary == "5 new events of 5 read"
    assert all(c.last_run_at and c.running_since is None for c in by_name.values())
    assert len(results) == 5
    assert LineageEvent.objects.count() == 5
    # Not due again until their schedule comes round.
    assert connectors.connectors_due() == []


def test_beat_enqueues_one_task_per_due_connector(ciso, json_server, queued):
    from worker import tasks

    a = make(ciso, "one", "http://127.0.0.1:9")
    b = make(ciso, "two", "http://127.0.0.1:9")
    make(ciso, "paused", "http://127.0.0.1:9", enabled=False)
    assert tasks.lineage_connectors_due() == 2
    assert sorted(queued.args_of("lineage_connector_run")) == [a.pk, b.pk]
    queued.clear()
    queued.down = True  # the broker is down: nothing sent, nothing claimed; the next tick sends them
    assert tasks.lineage_connectors_due() == 0 and sorted(connectors.connectors_due()) == [a.pk, b.pk]


def test_a_running_connector_is_not_run_twice(ciso):
    from django.utils import timezone

    c = make(ciso, "busy", "http://127.0.0.1:9")
    Connector.objects.filter(pk=c.pk).update(running_since=timezone.now())
    assert connector_run(connector_id=c.pk) == "skipped: already running"


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://169.254.10.1:8080/", "http://[fe80::1]/",
    "http://[::ffff:169.254.169.254]/", "http://[fd00:ec2::254]/", "http://100.100.100.200/",
    "http://0.0.0.0:5000/", "http://127.0.0.2:5000/", "http://10.1.2.3/", "file:///etc/passwd", "ftp://example.com/x", "gopher://127.0.0.1/", "javascript:alert(1)",
    "http:///nohost",
])
def test_refused_urls(url, ciso):
    with pytest.raises(ConnectorError):
        make(ciso, "x", url)


def test_admin_allowed_host_passes(settings, ciso):
    def save(url):
        return make(ciso, url[:60], url)

    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["169.254.169.254"]
    assert save("http://169.254.169.254/latest/").pk
    with pytest.raises(ConnectorError):
        save("http://169.254.169.253/")
    for url in ("http://127.0.0.1:5000/", "http://10.0.0.5/"):  # loopback and private addresses: only when allowed
        with pytest.raises(ConnectorError, match="RAMPART_OUTBOUND_ALLOWED_HOSTS"):
            save(url)


def test_redirect_to_metadata_is_refused(ciso):
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/iam/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass
    httpd = http.server.HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        c = make(ciso, "redirector", f"http://127.0.0.1:{httpd.server_address[1]}")
        connector_run(connector_id=c.pk)
        c.refresh_from_db()
        assert "ConnectorError" in c.last_error and "169.254.169.254" in c.last_error
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_save_refuses_a_metadata_url(ciso):
    with pytest.raises(ConnectorError):
        make(ciso, "imds", "http://169.254.169.254/")
    assert not Connector.objects.exists()


def test_credentials_encrypted_env_referenced_and_never_audited(ciso, json_server, monkeypatch):
    server = json_server()
    server.routes["/api/v1/events/lineage"] = marquez_route([])
    c = make(ciso, "enc", server.url, credential="plain-secret-value")
    c.refresh_from_db()
    assert c.credential_encrypted and "plain-secret-value" not in c.credential_encrypted
    assert not any("plain-secret-value" in json.dumps([a.before, a.after]) or c.credential_encrypted in json.dumps([a.before, a.after])
                   for a in AuditEvent.objects.all())

    # Blank keeps the credential on edit; env:NAME switches to a reference resolved on the worker only.
    c = connector_save(actor=ciso, connector=c, data={"every_minutes": 5}, credential=None)
    assert c.credential_encrypted
    c = connector_save(actor=ciso, connector=c, data={}, credential="env:RAMPART_CONNECTOR_MARQUEZ_TOKEN")
    assert (c.credential_env, c.credential_encrypted) == ("RAMPART_CONNECTOR_MARQUEZ_TOKEN", "")
    connector_run(connector_id=c.pk)
    c.refresh_from_db()
    assert "Environment variable RAMPART_CONNECTOR_MARQUEZ_TOKEN is not set" in c.last_error
    monkeypatch.setenv("RAMPART_CONNECTOR_MARQUEZ_TOKEN", "from-env")
    connector_run(connector_id=c.pk)
    c.refresh_from_db()
    assert c.last_error == "" and server.requests[-1][3]["Authorization"] == "Bearer from-env"


def test_changed_key_is_reported_not_crashed(ciso, json_server, settings):
    server = json_server()
    server.routes["/api/v1/events/lineage"] = marquez_route([])
    c = make(ciso, "rotated", server.url, credential="tok")
    settings.RAMPART_FIELD_KEY = "a-different-key"
    connector_run(connector_id=c.pk)
    c.refresh_from_db()
    assert "cannot be decrypted" in c.last_error and "tok" not in c.last_error.replace("token", "")
