"""Screens: upload, import page, bulk triage with roles, finding detail with hostile scanner text and secrets."""
from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from governance.audit.models import AuditEvent
from governance.findings import services
from governance.findings.models import Finding, FindingState, FindingTransition, ImportRun, MappingRule
from tests.findings.conftest import DATA, PLAIN_SECRETS, run_import, sarif_n

pytestmark = pytest.mark.django_db
S = FindingState
BANDIT = DATA / "sarif" / "bandit.sarif"


def upload(client, path: Path = BANDIT, **fields):
    data = {"file": SimpleUploadedFile(path.name, path.read_bytes()), "format": "auto", "source": "", "repository": ""}
    data.update(fields)
    return client.post("/findings/imports/new/", data)


# --- upload ------------------------------------------------------------------------------------

def test_upload_stores_the_file_and_redirects_to_the_run(client, engineer, system, django_capture_on_commit_callbacks,
                                                         monkeypatch):
    sent = []
    monkeypatch.setattr("governance.findings.imports.import_run_send", sent.append)
    client.force_login(engineer)
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, system=system.slug, source="bandit-main")
    run = ImportRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/findings/imports/{run.pk}/"
    content = BANDIT.read_bytes()
    assert run.sha256 == hashlib.sha256(content).hexdigest() and run.size == len(content)
    with run.report.open("rb") as stored:
        assert stored.read() == content
    assert (run.status, run.system, run.source, run.via, run.created_by) == (
        ImportRun.Status.QUEUED, system, "bandit-main", ImportRun.Via.UPLOAD, engineer)
    assert sent == [run.pk]  # handed to the worker after commit; nothing parsed in the request
    assert not Finding.objects.exists()
    assert AuditEvent.objects.filter(action="import.create", object_id=str(run.pk)).exists()
    page = client.get(response["Location"])
    assert page.status_code == 200 and run.sha256 in page.content.decode() and "waiting for a worker" in page.content.decode()


def test_import_page_shows_counts_after_the_worker(client, engineer, system):
    run = run_import(BANDIT, system=system)
    client.force_login(engineer)
    body = client.get(f"/findings/imports/{run.pk}/").content.decode()
    assert "Done" in body and "created" in body
    history = client.get(f"/findings/imports/?system={system.slug}").content.decode()
    assert f"/findings/imports/{run.pk}/" in history


def test_upload_form_errors(client, engineer, system, settings):
    client.force_login(engineer)
    response = upload(client, system=system.slug, format="nope")
    assert response.status_code == 400 and not ImportRun.objects.exists()
    settings.RAMPART_MAX_REPORT_BYTES = 100
    response = upload(client, system=system.slug)
    assert response.status_code == 400 and "limit" in response.content.decode()
    assert not ImportRun.objects.exists()


@pytest.mark.parametrize("role,target,allowed", [
    ("engineer", "system", True), ("engineer", "other_system", True),
    ("ciso", "system", True), ("ciso", "other_system", True),
    ("owner", "system", True), ("owner", "other_system", False),
    ("facilitator", "system", False), ("nobody", "system", False),
])
def test_who_may_upload(request, client, role, target, allowed):
    user, system = request.getfixturevalue(role), request.getfixturevalue(target)
    client.force_login(user)
    response = upload(client, system=system.slug)
    assert response.status_code == (302 if allowed else 403)
    assert ImportRun.objects.exists() == allowed


@pytest.mark.parametrize("role,status", [("engineer", 200), ("owner", 200), ("facilitator", 403), ("nobody", 403)])
def test_upload_page_by_role(request, client, system, role, status):
    client.force_login(request.getfixturevalue(role))
    assert client.get("/findings/imports/new/").status_code == status


def test_owner_cannot_upload_for_routing(client, owner, system):
    client.force_login(owner)
    assert upload(client).status_code == 403  # no system: only triagers may feed the routed queue


# --- bulk triage -------------------------------------------------------------------------------

@pytest.fixture
def findings(system):
    run_import(sarif_n(5), system=system)
    return list(Finding.objects.filter(system=system).order_by("id"))


@pytest.fixture
def other_findings(other_system):
    run_import(sarif_n(2), system=other_system)
    return list(Finding.objects.filter(system=other_system).order_by("id"))


def bulk(client, ids, **data):
    return client.post("/findings/bulk/", {"ids": [str(i) for i in ids], "next": "/findings/", **data})


def test_bulk_confirm_writes_transitions_and_audit(client, engineer, findings):
    client.force_login(engineer)
    response = bulk(client, [f.pk for f in findings[:3]], action="confirm", reason="seen it")
    assert response.status_code == 302 and response["Location"] == "/findings/"
    assert Finding.objects.filter(state=S.CONFIRMED).count() == 3
    transitions = FindingTransition.objects.filter(to_state=S.CONFIRMED)
    assert transitions.count() == 3
    for t in transitions:
        assert (t.from_state, t.actor, t.reason, t.import_run) == (S.NEW, engineer, "seen it", None) and t.at
    events = AuditEvent.objects.filter(action="finding.transition")
    assert events.count() == 3 and {e.actor for e in events} == {engineer}
    assert {e.after["state"] for e in events} == {S.CONFIRMED} and {e.before["state"] for e in events} == {S.NEW}


def test_false_positive_requires_a_reason(client, engineer, findings):
    client.force_login(engineer)
    before = list(Finding.objects.order_by("id").values_list("id", "state"))
    audit = AuditEvent.objects.count()
    response = bulk(client, [f.pk for f in findings], action="false_positive", reason="   ")
    assert response.status_code == 302
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("reason" in m for m in messages), messages
    assert list(Finding.objects.order_by("id").values_list("id", "state")) == before
    assert not FindingTransition.objects.exists() and AuditEvent.objects.count() == audit
    with pytest.raises(services.TriageError):
        services.findings_transition(actor=engineer, findings=findings, to_state=S.FALSE_POSITIVE, reason="")

    bulk(client, [findings[0].pk], action="false_positive", reason="test fixture, not shipped")
    f = Finding.objects.get(pk=findings[0].pk)
    assert f.state == S.FALSE_POSITIVE
    assert f.transitions.get().reason == "test fixture, not shipped"


def test_bulk_assign(client, ciso, engineer, findings):
    client.force_login(ciso)
    response = bulk(client, [f.pk for f in findings[:2]], action="assign", assignee=str(engineer.pk))
    assert response.status_code == 302
    assert Finding.objects.filter(assignee=engineer).count() == 2
    events = AuditEvent.objects.filter(action="finding.assign")
    assert events.count() == 2 and {e.actor for e in events} == {ciso}
    assert {e.after["assignee"] for e in events} == {engineer.email}
    response = bulk(client, [findings[2].pk], action="assign")
    assert Finding.objects.filter(assignee=engineer).count() == 2  # no assignee chosen: nothing changed


def test_disallowed_transitions_are_skipped(client, engineer, findings):
    client.force_login(engineer)
    bulk(client, [findings[0].pk], action="fixed")
    response = bulk(client, [findings[0].pk, findings[1].pk], action="risk_accepted", reason="compensating control")
    assert Finding.objects.get(pk=findings[0].pk).state == S.FIXED  # fixed cannot go to risk accepted
    assert Finding.objects.get(pk=findings[1].pk).state == S.RISK_ACCEPTED
    assert any("skipped" in str(m) for m in response.wsgi_request._messages)


def test_bulk_rejects_foreign_next(client, engineer, findings):
    client.force_login(engineer)
    response = client.post("/findings/bulk/", {"ids": [findings[0].pk], "action": "confirm", "next": "//evil.example/"})
    assert response["Location"] == "/findings/"


@pytest.mark.parametrize("role,target,allowed", [
    ("engineer", "findings", True), ("engineer", "other_findings", True),
    ("ciso", "findings", True), ("ciso", "other_findings", True),
    ("owner", "findings", True), ("owner", "other_findings", False),
    ("facilitator", "findings", False), ("nobody", "findings", False),
])
def test_who_may_triage(request, client, role, target, allowed):
    user, rows = request.getfixturevalue(role), request.getfixturevalue(target)
    client.force_login(user)
    response = bulk(client, [f.pk for f in rows], action="confirm")
    assert response.status_code == (302 if allowed else 403)
    assert Finding.objects.filter(state=S.CONFIRMED).count() == (len(rows) if allowed else 0)


def test_owner_cannot_triage_a_mix_of_own_and_foreign(client, owner, findings, other_findings):
    client.force_login(owner)
    assert bulk(client, [findings[0].pk, other_findings[0].pk], action="confirm").status_code == 403
    assert not Finding.objects.filter(state=S.CONFIRMED).exists()


def test_detail_shows_triage_form_only_to_who_may_triage(client, owner, other_owner, facilitator, findings):
    url = f"/findings/{findings[0].pk}/"
    for user, shown in ((owner, True), (other_owner, False), (facilitator, False)):
        client.force_login(user)
        body = client.get(url).content.decode()
        assert ('action="/findings/bulk/"' in body) == shown, user


def test_history_on_the_detail_page(client, engineer, findings):
    client.force_login(engineer)
    bulk(client, [findings[0].pk], action="false_positive", reason="vendored code")
    body = client.get(f"/findings/{findings[0].pk}/").content.decode()
    assert "vendored code" in body and (engineer.full_name in body or engineer.email in body)


# --- hostile scanner text ------------------------------------------------------------------------

HOSTILE_SARIF = {
    "version": "2.1.0",
    "runs": [{"tool": {"driver": {"name": "<script>alert('tool')</script>", "rules": [{
        "id": "XSS<img src=x onerror=alert('rule')>",
        "shortDescription": {"text": "<script>alert('title')</script> Title"},
        "fullDescription": {"text": "<iframe src=javascript:alert('full')></iframe>"},
        "helpUri": "javascript:alert('help')",
        "properties": {"security-severity": "9.8"},
    }]}},
        "results": [{
            "ruleId": "XSS<img src=x onerror=alert('rule')>",
            "message": {"text": "<img src=x onerror=alert('msg')>\n<a href=\"javascript:alert('link')\">click</a>"},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": "javascript:alert('uri')//<svg onload=alert('loc')>"},
                "region": {"startLine": 3, "snippet": {"text": "</pre><script>alert('snippet')</script>"}}}}],
            "properties": {"note": "\"><script>alert('raw')</script>"},
        }]}],
}


class LiveParts(HTMLParser):
    """Collects what a browser would treat as live: script bodies, on* handlers, javascript: URLs."""

    def __init__(self):
        super().__init__()
        self.scripts, self.handlers, self.urls, self.tags = [], [], [], []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self._in_script = tag == "script"
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, name, value))
            if name in ("href", "src", "action", "formaction", "xlink:href") and value:
                self.urls.append(value.strip().lower())

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)


def live_parts(html: str) -> LiveParts:
    parser = LiveParts()
    parser.feed(html)
    return parser


def test_detail_page_escapes_hostile_scanner_text(client, engineer, system):
    run = run_import(json.dumps(HOSTILE_SARIF).encode(), system=system, source="hostile")
    assert run.status == ImportRun.Status.DONE, run.error
    finding = Finding.objects.get()
    client.force_login(engineer)
    for url in (f"/findings/{finding.pk}/", "/findings/", "/findings/?state=all&q=alert"):
        body = client.get(url).content.decode()
        live = live_parts(body)
        assert not [s for s in live.scripts if "alert" in s], url
        assert not [h for h in live.handlers if "alert" in (h[2] or "")], url
        assert not [u for u in live.urls if u.startswith("javascript:")], url
        assert "iframe" not in live.tags and "svg" not in live.tags, url
        assert "<script>alert" not in body and "onerror=alert" not in body.replace("&#x27;", "'").split("&lt;img")[0]
    detail = client.get(f"/findings/{finding.pk}/").content.decode()
    assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;" in detail  # shown, as text
    assert "&lt;img src=x onerror=alert(&#x27;msg&#x27;)&gt;" in detail
    assert "javascript:alert(&#x27;help&#x27;)" in detail  # remediation shown as text, never a link


def test_api_returns_hostile_text_as_json_data(client, engineer, system):
    run_import(json.dumps(HOSTILE_SARIF).encode(), system=system, source="hostile")
    client.force_login(engineer)
    response = client.get("/api/v1/findings/")
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["results"][0]["title"].startswith("<script>")


# --- secrets -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["gitleaks/gitleaks-report.json", "trufflehog/trufflehog-git.jsonl"])
def test_secrets_never_reach_the_database_or_the_page(client, engineer, system, path):
    run = run_import(DATA / path, system=system, source="secrets")
    assert run.status == ImportRun.Status.DONE and run.counts["created"] == 3
    raw_text = (DATA / path).read_text()
    present = [s for s in PLAIN_SECRETS if s in raw_text]
    assert present  # the sample does hold them
    with connection.cursor() as cursor:
        cursor.execute("SELECT row_to_json(f)::text FROM findings_finding f")
        rows = [r[0] for r in cursor.fetchall()]
        cursor.execute("SELECT row_to_json(t)::text FROM findings_findingtransition t")
        rows += [r[0] for r in cursor.fetchall()]
        cursor.execute("SELECT row_to_json(a)::text FROM audit_auditevent a")
        rows += [r[0] for r in cursor.fetchall()]
        cursor.execute("SELECT row_to_json(r)::text FROM findings_importrun r")
        rows += [r[0] for r in cursor.fetchall()]
    assert len(rows) > 3
    for secret in PLAIN_SECRETS:
        for row in rows:
            assert secret not in row, f"{secret} stored in the database"
            assert json.dumps(secret)[1:-1] not in row
    for f in Finding.objects.all():
        assert "secret_sha256" in f.raw  # kept: a hash to recognise it
    client.force_login(engineer)
    pages = [client.get(f"/findings/{f.pk}/").content.decode() for f in Finding.objects.all()]
    pages += [client.get("/findings/?state=all").content.decode(), client.get("/api/v1/findings/").content.decode()]
    for secret in PLAIN_SECRETS:
        for page in pages:
            assert secret not in page
