"""Scheduled pull sources: a real HTTP server on 127.0.0.1 (allowed in RAMPART_OUTBOUND_ALLOWED_HOSTS for these
tests) serving a real bandit SARIF report, drop folders on disk, the outbound address checks, the management pages
and who may use them. The address policy itself is tested in tests/security/test_outbound.py."""
from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from governance.audit.models import AuditEvent
from governance.findings import pull, sources
from governance.findings.imports import import_run_execute
from governance.findings.models import Finding, ImportRun, PullSource
from tests.findings.conftest import DATA

pytestmark = pytest.mark.django_db
BANDIT = DATA / "sarif" / "bandit.sarif"
FAST = {"timeout": 0.5, "retries": 1, "backoff": 0.0}  # 2 attempts, no wait between them


# ---------------------------------------------------------------- a local report server


class ReportServer:
    """Serves `routes[path]`: bytes (200), an int status, ("slow", seconds), ("redirect", url),
    ("nolength", bytes) without Content-Length, or a list of those consumed one per request."""

    def __init__(self):
        self.routes: dict[str, object] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                server.hits[path] = server.hits.get(path, 0) + 1
                spec = server.routes.get(path, 404)
                if isinstance(spec, list):
                    spec = spec.pop(0) if len(spec) > 1 else spec[0]
                if isinstance(spec, bytes):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(spec)))
                    self.end_headers()
                    self.wfile.write(spec)
                elif isinstance(spec, int):
                    self.send_error(spec)
                elif spec[0] == "slow":
                    time.sleep(spec[1])
                    try:
                        self.send_error(504)
                    except OSError:
                        pass
                elif spec[0] == "redirect":
                    self.send_response(302)
                    self.send_header("Location", spec[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif spec[0] == "nolength":
                    self.send_response(200)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(spec[1])
                    self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = ReportServer()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _fast_http(monkeypatch, settings, tmp_path):
    monkeypatch.setattr(pull, "HTTP_OPTIONS", FAST)
    settings.RAMPART_DROP_ROOT = tmp_path / "drop"
    (tmp_path / "drop").mkdir()
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]  # the local report server; nothing else private


def url_source(url: str, name: str = "bandit-nightly", system=None, **kw) -> PullSource:
    return PullSource.objects.create(name=name, kind=PullSource.Kind.URL, location=url, format="auto", system=system, **kw)


def folder_source(path: Path, name: str = "ci-drop", system=None, **kw) -> PullSource:
    return PullSource.objects.create(name=name, kind=PullSource.Kind.FOLDER, location=str(path), format="auto",
                                     system=system, **kw)


def refused_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def old(path: Path, seconds: int = 120) -> Path:
    t = time.time() - seconds
    os.utime(path, (t, t))
    return path


# ---------------------------------------------------------------- URL pulls


def test_url_pull_creates_a_run_and_the_worker_makes_findings(server, system):
    content = BANDIT.read_bytes()
    server.routes["/reports/bandit.sarif"] = content
    source = url_source(server.url("/reports/bandit.sarif"), system=system)

    summary = pull.source_pull(source.pk)

    run = ImportRun.objects.get()
    assert "1 import run" in summary
    assert (run.via, run.pull_source, run.system, run.source, run.filename, run.status) == (
        ImportRun.Via.PULL, source, system, "bandit-nightly", "bandit.sarif", ImportRun.Status.QUEUED)
    assert run.sha256 == hashlib.sha256(content).hexdigest() and run.size == len(content)
    import_run_execute(run.pk)
    run.refresh_from_db()
    assert run.status == ImportRun.Status.DONE, run.error
    assert Finding.objects.filter(system=system, source="bandit-nightly").count() == run.counts["created"] > 0
    source.refresh_from_db()
    assert source.last_error == "" and source.last_pulled_at is not None and source.last_sha256 == run.sha256


def test_same_bytes_make_no_new_run_changed_bytes_do(server, system):
    content = BANDIT.read_bytes()
    server.routes["/r.sarif"] = content
    source = url_source(server.url("/r.sarif"), system=system)
    pull.source_pull(source.pk)
    first = PullSource.objects.get().last_pulled_at

    summary = pull.source_pull(source.pk)
    source.refresh_from_db()
    assert ImportRun.objects.count() == 1 and "unchanged" in summary
    assert source.last_pulled_at > first and source.last_error == ""

    server.routes["/r.sarif"] = content.replace(b"subprocess", b"Subprocess", 1)
    pull.source_pull(source.pk)
    assert ImportRun.objects.count() == 2
    source.refresh_from_db()
    assert source.last_sha256 == ImportRun.objects.order_by("-pk").first().sha256 != hashlib.sha256(content).hexdigest()


def test_editing_the_scope_imports_the_same_bytes_again(server, system, engineer):
    server.routes["/r.sarif"] = BANDIT.read_bytes()
    source = url_source(server.url("/r.sarif"))
    pull.source_pull(source.pk)
    sources.source_save(actor=engineer, source=PullSource.objects.get(), data={"system": system})
    assert PullSource.objects.get().last_sha256 == ""
    pull.source_pull(source.pk)
    assert ImportRun.objects.filter(system=system).count() == 1


def test_failures_are_recorded_and_the_next_source_still_pulls(server, system, queued):
    server.routes.update({"/boom": 500, "/slow": ("slow", 2), "/missing": 404, "/ok.sarif": BANDIT.read_bytes()})
    failing = {
        "boom": url_source(server.url("/boom"), name="a-boom"),
        "slow": url_source(server.url("/slow"), name="b-slow"),
        "refused": url_source(f"http://127.0.0.1:{refused_port()}/r.sarif", name="c-refused"),
        "missing": url_source(server.url("/missing"), name="d-missing"),
    }
    good = url_source(server.url("/ok.sarif"), name="e-good", system=system)

    queued.run = lambda task, pk: pull.source_pull(pk)
    assert pull.sources_queue_due() == 5
    sent = queued.args_of("source_pull")
    assert sent == sorted(sent) and len(sent) == 5  # one pull per source, none skipped

    errors = {k: PullSource.objects.get(pk=s.pk).last_error for k, s in failing.items()}
    assert "HTTP 500" in errors["boom"] and "gave up after 2 attempts" in errors["boom"]
    assert "timed out after 0.5 s" in errors["slow"] and "gave up after 2 attempts" in errors["slow"]
    assert "connection refused" in errors["refused"]
    assert "HTTP 404" in errors["missing"] and "gave up" not in errors["missing"]  # a 4xx is not retried
    assert server.hits["/boom"] == 2 and server.hits["/missing"] == 1
    assert not ImportRun.objects.exclude(pull_source=good).exists()
    good.refresh_from_db()
    assert good.last_error == "" and ImportRun.objects.filter(pull_source=good).count() == 1
    assert all(PullSource.objects.get(pk=s.pk).last_pulled_at for s in failing.values())


def test_a_transient_error_is_retried_with_backoff(server, monkeypatch):
    server.routes["/flaky.sarif"] = [503, 502, BANDIT.read_bytes()]
    source = url_source(server.url("/flaky.sarif"))
    waits = []
    monkeypatch.setattr(pull.time, "sleep", waits.append)
    pull.source_pull(source.pk, http_options={"retries": 3, "backoff": 2.0})
    source.refresh_from_db()
    assert source.last_error == "" and ImportRun.objects.count() == 1
    assert server.hits["/flaky.sarif"] == 3 and waits == [2.0, 4.0]


@pytest.mark.parametrize("route", ["with-length", "without-length"])
def test_an_oversized_report_ends_as_a_failed_run(server, settings, route):
    settings.RAMPART_MAX_REPORT_BYTES = 1000
    content = BANDIT.read_bytes()
    assert len(content) > 1000
    server.routes["/big.sarif"] = content if route == "with-length" else ("nolength", content)
    source = url_source(server.url("/big.sarif"))
    pull.source_pull(source.pk)
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.FAILED and "the limit is 0.0 MB" in run.error and not run.report
    source.refresh_from_db()
    assert f"Import #{run.pk} failed" in source.last_error and "RAMPART_MAX_REPORT_BYTES" in source.last_error


REFUSED_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/latest/",
    "http://[fd00:ec2::254]/latest/",
    "http://169.254.170.2/v2/credentials",
    "http://[fe80::1]/report",
    "http://0.0.0.0/report",
]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_link_local_and_metadata_urls_are_refused_at_pull_time(url):
    source = url_source(url)
    pull.source_pull(source.pk)
    source.refresh_from_db()
    assert "refused: " in source.last_error and "RAMPART_OUTBOUND_ALLOWED_HOSTS" in source.last_error
    assert not ImportRun.objects.exists()


def test_a_redirect_to_the_metadata_address_is_refused(server):
    server.routes["/r"] = ("redirect", "http://169.254.169.254/latest/meta-data/")
    server.routes["/ftp"] = ("redirect", "ftp://example.com/report.sarif")
    for name, path in (("meta", "/r"), ("ftp", "/ftp")):
        pull.source_pull(url_source(server.url(path), name=name).pk)
    assert "a redirect: refused: 169.254.169.254 is a cloud metadata address" in PullSource.objects.get(name="meta").last_error
    assert "a redirect: refused: only http:// and https://" in PullSource.objects.get(name="ftp").last_error
    assert not ImportRun.objects.exists()


def test_the_address_is_checked_again_when_the_socket_connects(monkeypatch):
    """DNS rebinding: the name resolved to a public address for the check before the request, then to the metadata
    address when the socket connects."""
    real = socket.getaddrinfo
    answers = iter([[(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80))],
                    [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]])
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda host, *a, **kw: next(answers) if host == "rebind.example" else real(host, *a, **kw))
    source = url_source("http://rebind.example/report.sarif")
    pull.source_pull(source.pk)
    source.refresh_from_db()
    assert "refused: rebind.example resolves to a cloud metadata address" in source.last_error
    assert "(when connecting)" in source.last_error and "gave up" not in source.last_error  # not retried


def test_an_allowed_host_passes_the_check(settings):
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["169.254.169.254"]
    pull.check_location(PullSource.Kind.URL, "http://169.254.169.254/latest/")  # no error


# ---------------------------------------------------------------- drop folders


def test_drop_folder_files_are_imported_and_moved(settings, system):
    folder = settings.RAMPART_DROP_ROOT / "ci"
    folder.mkdir()
    (folder / "bandit.sarif").write_bytes(BANDIT.read_bytes())
    old(folder / "bandit.sarif")
    (folder / "writing.sarif").write_bytes(b'{"version": "2.1.0", "ru')  # modified just now: still being written
    (folder / ".hidden").write_bytes(b"x")
    source = folder_source(folder, system=system)

    summary = pull.source_pull(source.pk)

    run = ImportRun.objects.get()
    assert (run.filename, run.status, run.pull_source, run.system) == ("bandit.sarif", ImportRun.Status.QUEUED, source, system)
    assert "1 file still being written" in summary
    assert sorted(p.name for p in folder.iterdir()) == [".hidden", "imported", "writing.sarif"]
    moved = list((folder / "imported").iterdir())
    assert len(moved) == 1 and moved[0].name.endswith(f"-{run.pk}-bandit.sarif")
    assert moved[0].read_bytes() == BANDIT.read_bytes()
    import_run_execute(run.pk)
    assert Finding.objects.filter(system=system).exists()
    assert PullSource.objects.get().last_error == ""

    old(folder / "writing.sarif")
    pull.source_pull(source.pk)  # finished now: taken, and ends as a failed run (truncated JSON) in the worker
    assert ImportRun.objects.count() == 2 and not (folder / "writing.sarif").exists()


def test_an_oversized_dropped_file_is_a_failed_run_and_still_moved(settings):
    settings.RAMPART_MAX_REPORT_BYTES = 1000
    folder = settings.RAMPART_DROP_ROOT / "big"
    folder.mkdir()
    (folder / "huge.sarif").write_bytes(BANDIT.read_bytes())
    (folder / "empty.sarif").write_bytes(b"")
    old(folder / "huge.sarif"), old(folder / "empty.sarif")
    source = folder_source(folder)
    pull.source_pull(source.pk)
    runs = {r.filename: r for r in ImportRun.objects.all()}
    assert runs["huge.sarif"].status == ImportRun.Status.FAILED and "RAMPART_MAX_REPORT_BYTES" in runs["huge.sarif"].error
    assert runs["empty.sarif"].status == ImportRun.Status.FAILED and "empty" in runs["empty.sarif"].error
    assert [p.name for p in folder.iterdir()] == ["imported"]
    assert len(list((folder / "imported").iterdir())) == 2
    error = PullSource.objects.get().last_error
    assert "huge.sarif" in error and "empty.sarif" in error


def test_a_symlinked_file_in_the_drop_folder_is_not_followed(settings, tmp_path):
    folder = settings.RAMPART_DROP_ROOT / "ci"
    folder.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    (folder / "passwd.sarif").symlink_to(secret)
    source = folder_source(folder)
    pull.source_pull(source.pk)
    assert not ImportRun.objects.exists()
    assert "passwd.sarif: a symlink, not followed" in PullSource.objects.get().last_error
    assert (folder / "passwd.sarif").is_symlink() and secret.read_text() == "root:x:0:0"


def test_folders_outside_the_drop_root_are_refused_at_pull_time(settings, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "r.sarif").write_bytes(BANDIT.read_bytes())
    old(outside / "r.sarif")
    escape = settings.RAMPART_DROP_ROOT / "escape"
    escape.symlink_to(outside)
    for name, location in (("etc", "/etc"), ("escape", str(escape)), ("dotdot", str(settings.RAMPART_DROP_ROOT / ".." / "outside"))):
        pull.source_pull(folder_source(Path(location), name=name).pk)
        assert "must be inside" in PullSource.objects.get(name=name).last_error
    assert not ImportRun.objects.exists() and (outside / "r.sarif").exists()


# ---------------------------------------------------------------- beat


def test_beat_sends_one_task_per_due_source_and_claims_it(server, queued):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    due = url_source(server.url("/a"), name="due")
    recent = url_source(server.url("/b"), name="recent", last_pulled_at=now - timedelta(minutes=10), every_minutes=60)
    late = url_source(server.url("/c"), name="late", last_pulled_at=now - timedelta(minutes=61), every_minutes=60)
    url_source(server.url("/d"), name="paused", enabled=False)
    assert pull.sources_queue_due() == 2
    assert sorted(queued.args_of("source_pull")) == sorted([due.pk, late.pk])
    assert pull.sources_queue_due() == 0  # claimed: the next tick does not send them again
    assert PullSource.objects.get(pk=recent.pk).last_pulled_at == recent.last_pulled_at

    queued.down = True
    PullSource.objects.filter(pk=late.pk).update(last_pulled_at=late.last_pulled_at)
    assert pull.sources_queue_due() == 0
    assert PullSource.objects.get(pk=late.pk).last_pulled_at == late.last_pulled_at  # claim given back


def test_the_beat_task_enqueues_source_pull(queued, server):
    import worker.tasks

    source = url_source(server.url("/a"))
    assert worker.tasks.sources_pull_due() == 1 and queued == [("source_pull", source.pk)]
    assert worker.tasks.source_pull.acks_late


# ---------------------------------------------------------------- pages: form validation


def form_data(**kw):
    data = {"name": "bandit-nightly", "kind": "url", "location": "https://127.0.0.1/report.sarif", "format": "auto",
            "system": "", "every_minutes": "60", "enabled": "on"}
    data.update(kw)
    return data


@pytest.mark.parametrize("url", [*REFUSED_URLS, "file:///etc/passwd", "ftp://example.com/r.sarif", "gopher://x/"])
def test_the_form_refuses_unsafe_urls(client, engineer, url):
    client.force_login(engineer)
    response = client.post("/findings/sources/new/", form_data(location=url))
    assert response.status_code == 400 and not PullSource.objects.exists()
    assert "refused: " in response.content.decode()


def test_the_form_accepts_an_allowed_metadata_host(client, engineer, settings):
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["169.254.169.254"]
    client.force_login(engineer)
    assert client.post("/findings/sources/new/", form_data(location="http://169.254.169.254/r")).status_code == 302


def test_the_form_refuses_folders_outside_the_drop_root(client, engineer, settings, tmp_path):
    client.force_login(engineer)
    outside = tmp_path / "outside"
    outside.mkdir()
    (settings.RAMPART_DROP_ROOT / "escape").symlink_to(outside)
    for location, message in (("/etc", "must be inside"), (str(settings.RAMPART_DROP_ROOT / "escape"), "must be inside"),
                              ("relative/path", "absolute path"), (str(settings.RAMPART_DROP_ROOT / "nope"), "not an existing folder")):
        response = client.post("/findings/sources/new/", form_data(kind="folder", location=location))
        assert response.status_code == 400 and message in response.content.decode(), location
    assert not PullSource.objects.exists()
    (settings.RAMPART_DROP_ROOT / "ci").mkdir()
    assert client.post("/findings/sources/new/", form_data(kind="folder", location=str(settings.RAMPART_DROP_ROOT / "ci"))).status_code == 302


def test_the_form_checks_minutes_and_name(client, engineer):
    client.force_login(engineer)
    url_source("https://127.0.0.1/x", name="taken")
    response = client.post("/findings/sources/new/", form_data(every_minutes="4", name="taken"))
    body = response.content.decode()
    assert response.status_code == 400 and "greater than or equal to 5" in body and "Another source has this name" in body


def test_create_edit_pause_pull_delete_are_audited(client, engineer, system, queued):
    client.force_login(engineer)
    assert client.post("/findings/sources/new/", form_data(system=system.slug, format="sarif")).status_code == 302
    source = PullSource.objects.get()
    assert (source.system, source.format, source.every_minutes, source.enabled) == (system, "sarif", 60, True)
    page = client.get(f"/findings/sources/{source.pk}/edit/")
    assert page.status_code == 200 and 'value="bandit-nightly"' in page.content.decode()
    assert f'<option value="{system.slug}" selected>' in page.content.decode()
    assert client.post(f"/findings/sources/{source.pk}/edit/", form_data(every_minutes="15")).status_code == 302
    source.refresh_from_db()
    assert source.every_minutes == 15 and source.system is None
    assert client.post(f"/findings/sources/{source.pk}/enabled/", {"enabled": "0"}).status_code == 302
    assert PullSource.objects.get().enabled is False
    assert client.post(f"/findings/sources/{source.pk}/enabled/", {"enabled": "1"}).status_code == 302
    assert client.post(f"/findings/sources/{source.pk}/pull/").status_code == 302
    assert queued == [("source_pull", source.pk)]
    assert client.post(f"/findings/sources/{source.pk}/delete/").status_code == 302 and not PullSource.objects.exists()
    actions = list(AuditEvent.objects.filter(object_type="findings.pullsource").order_by("seq").values_list("action", flat=True))
    assert actions == ["pull_source.create", "pull_source.update", "pull_source.disable", "pull_source.enable",
                       "pull_source.pull_now", "pull_source.delete"]
    assert client.get(f"/findings/sources/{source.pk}/delete/").status_code == 405


def test_pull_now_with_the_broker_down_says_so(client, engineer, queued):
    queued.down = True
    source = url_source("https://127.0.0.1/x")
    client.force_login(engineer)
    response = client.post(f"/findings/sources/{source.pk}/pull/", follow=True)
    assert "Could not queue" in response.content.decode()


# ---------------------------------------------------------------- pages: who and how fast


@pytest.mark.parametrize("role, expected", [("engineer", 200), ("ciso", 200), ("admin_user", 200), ("owner", 403),
                                            ("facilitator", 403), ("nobody", 403)])
def test_who_may_manage_sources(client, request, role, expected, queued):
    client.force_login(request.getfixturevalue(role))
    source = url_source("https://127.0.0.1/x")
    assert client.get("/findings/sources/").status_code == expected
    assert client.get("/findings/sources/new/").status_code == expected
    assert client.get(f"/findings/sources/{source.pk}/edit/").status_code == expected
    writes = {f"/findings/sources/{source.pk}/enabled/": 302, f"/findings/sources/{source.pk}/pull/": 302,
              "/findings/sources/new/": 400}
    for url, ok in writes.items():
        assert client.post(url, {}).status_code == (ok if expected == 200 else 403), url
    assert client.post(f"/findings/sources/{source.pk}/delete/").status_code == (302 if expected == 200 else 403)
    assert PullSource.objects.exists() is (expected != 200)


def test_anonymous_is_sent_to_sign_in(client):
    response = client.get("/findings/sources/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_queue_and_history_link_to_sources(client, engineer, owner):
    client.force_login(engineer)
    assert "/findings/sources/" in client.get("/findings/").content.decode()
    assert "/findings/sources/" in client.get("/findings/imports/").content.decode()
    client.force_login(owner)
    assert "/findings/sources/" not in client.get("/findings/").content.decode()


def test_the_list_shows_state_and_its_query_count_does_not_grow(client, engineer, system, settings):
    client.force_login(engineer)

    def make(n: int, start: int):
        for i in range(start, start + n):
            s = url_source(f"https://127.0.0.1/r{i}", name=f"src-{i:02d}", system=system if i % 2 else None,
                           last_error="HTTP 500 boom" if i % 3 == 0 else "")
            ImportRun.objects.create(system=s.system, source=s.name, format="sarif", via=ImportRun.Via.PULL, pull_source=s)

    make(2, 0)
    client.get("/findings/sources/")  # warm caches (session, permissions)
    with CaptureQueriesContext(connection) as two:
        body = client.get("/findings/sources/").content.decode()
    assert "src-00" in body and "src-01" in body and "HTTP 500 boom" in body and "due now" in body
    make(18, 2)
    with CaptureQueriesContext(connection) as twenty:
        body = client.get("/findings/sources/").content.decode()
    assert body.count("Pull now") == 20
    assert len(twenty.captured_queries) == len(two.captured_queries)
