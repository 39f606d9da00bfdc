"""POST /api/v1/imports/ answers 202 at once; GET shows status and counts; bearer tokens; roles."""
from __future__ import annotations

import hashlib
import os
import time

import pytest
import redis
from django.conf import settings as django_settings

from governance.accounts.services import api_token_create
from governance.findings.imports import import_run_execute
from governance.findings.models import Finding, ImportRun
from tests.findings.conftest import DATA, sarif_n

pytestmark = pytest.mark.django_db
BANDIT = DATA / "sarif" / "bandit.sarif"


def bearer(user) -> dict:
    _, plain = api_token_create(user=user, name="ci")
    return {"HTTP_AUTHORIZATION": f"Bearer {plain}"}


def post_import(client, headers, path=BANDIT, **fields):
    with open(path, "rb") as f:
        return client.post("/api/v1/imports/", {"file": f, "format": "auto", **fields}, **headers)


@pytest.fixture
def broker_queue(monkeypatch):
    """The test broker, with a queue of this test's own (the Redis database may be shared: never FLUSHDB)."""
    from governance import queueing

    url = django_settings.CELERY_BROKER_URL
    if not url.startswith("redis://"):
        pytest.skip("needs a Redis broker")
    r = redis.Redis.from_url(url)
    name = f"rampart-test-{os.getpid()}-api"
    r.delete(name)
    send = queueing.send
    monkeypatch.setattr(queueing, "send", lambda task, *args, **kw: send(task, *args, **{**kw, "queue": name}))
    yield r, name
    r.delete(name)


def test_post_answers_202_and_does_not_parse(client, engineer, system, django_capture_on_commit_callbacks,
                                             broker_queue):
    headers = bearer(engineer)
    start = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True):
        response = post_import(client, headers, system=system.slug, source="bandit-ci")
    elapsed = time.monotonic() - start
    assert response.status_code == 202, response.content
    body = response.json()
    run = ImportRun.objects.get()
    assert {"id", "status", "url"} <= body.keys()
    assert body["id"] == run.pk and body["status"] == "queued"
    assert body["url"] == f"http://testserver/api/v1/imports/{run.pk}/"
    assert elapsed < 5
    # no worker runs: the run waits in the queue and the task sits in the broker
    assert not Finding.objects.exists()
    run.refresh_from_db()
    assert run.status == ImportRun.Status.QUEUED and run.via == ImportRun.Via.API and run.created_by == engineer
    assert run.sha256 == hashlib.sha256(BANDIT.read_bytes()).hexdigest()
    broker, queue = broker_queue
    assert broker.llen(queue) == 1

    detail = client.get(body["url"], **headers).json()
    assert detail["status"] == "queued" and detail["error"] is None
    assert detail["counts"] == {"created": 0, "updated": 0, "unchanged": 0, "closed": 0, "reopened": 0, "merged": 0,
                                 "held_open": 0, "repaired": 0}

    import_run_execute(run.pk)  # what the worker does
    detail = client.get(body["url"], **headers).json()
    assert detail["status"] == "done"
    assert detail["counts"] == {"created": 9, "updated": 0, "unchanged": 0, "closed": 0, "reopened": 0, "merged": 0,
                                 "held_open": 0, "repaired": 0}
    assert detail["system"] == system.slug and detail["source"] == "bandit-ci" and detail["detected_format"] == "sarif"


def test_failed_run_shape(client, engineer, system, tmp_path):
    headers = bearer(engineer)
    bad = tmp_path / "bad.sarif"
    bad.write_bytes(BANDIT.read_bytes()[:3000])
    body = post_import(client, headers, path=bad, system=system.slug).json()
    import_run_execute(body["id"])
    detail = client.get(f"/api/v1/imports/{body['id']}/", **headers).json()
    assert detail["status"] == "failed" and "truncated" in detail["error"]
    assert detail["counts"] == {"created": 0, "updated": 0, "unchanged": 0, "closed": 0, "reopened": 0, "merged": 0,
                                 "held_open": 0, "repaired": 0}


def test_validation_errors(client, engineer, system, settings):
    headers = bearer(engineer)
    response = post_import(client, headers, system=system.slug, format="docx")
    assert response.status_code == 400 and "format" in response.json()
    response = client.post("/api/v1/imports/", {"format": "auto", "system": system.slug}, **headers)
    assert response.status_code == 400 and "file" in response.json()
    response = post_import(client, headers, system="no-such-system")
    assert response.status_code == 400 and "system" in response.json()
    settings.RAMPART_MAX_REPORT_BYTES = 100
    response = post_import(client, headers, system=system.slug)
    assert response.status_code == 400 and "limit" in str(response.json())
    assert not ImportRun.objects.exists()


def test_authentication(client, engineer, system):
    assert post_import(client, {}, system=system.slug).status_code in (401, 403)
    assert post_import(client, {"HTTP_AUTHORIZATION": "Bearer rmp_not-a-token"}, system=system.slug).status_code == 401
    assert client.get("/api/v1/imports/1/").status_code in (401, 403)
    assert client.get("/api/v1/findings/").status_code in (401, 403)
    assert not ImportRun.objects.exists()
    client.force_login(engineer)  # a browser session works too
    assert post_import(client, {}, system=system.slug).status_code == 202


def test_revoked_token(client, engineer, system):
    from governance.accounts.services import api_token_revoke

    token, plain = api_token_create(user=engineer, name="old")
    api_token_revoke(token=token, actor=engineer)
    assert post_import(client, {"HTTP_AUTHORIZATION": f"Bearer {plain}"}, system=system.slug).status_code == 401


@pytest.mark.parametrize("role,target,status", [
    ("engineer", "system", 202), ("engineer", "other_system", 202), ("engineer", None, 202),
    ("ciso", "other_system", 202),
    ("owner", "system", 202), ("owner", "other_system", 403), ("owner", None, 403),
    ("facilitator", "system", 403), ("nobody", "system", 403),
])
def test_who_may_import(request, client, role, target, status):
    user = request.getfixturevalue(role)
    fields = {"system": request.getfixturevalue(target).slug} if target else {}
    response = post_import(client, bearer(user), **fields)
    assert response.status_code == status, response.content
    assert ImportRun.objects.exists() == (status == 202)


def test_finding_list_filters_and_pages(client, engineer, system, other_system):
    from tests.findings.conftest import run_import

    run_import(sarif_n(60), system=system)
    run_import(sarif_n(3), system=other_system)
    headers = bearer(engineer)
    page = client.get(f"/api/v1/findings/?system={system.slug}", **headers).json()
    assert len(page["results"]) == 50 and page["next"]
    rest = client.get(f"/api/v1/findings/?system={system.slug}&after={page['next']}", **headers).json()
    assert len(rest["results"]) == 10 and rest["next"] is None
    ids = [r["id"] for r in page["results"] + rest["results"]]
    assert len(set(ids)) == 60
    row = page["results"][0]
    assert {"id", "title", "severity", "state", "system", "fingerprint", "sla_due", "past_sla"} <= row.keys()
    other = client.get(f"/api/v1/findings/?system={other_system.slug}", **headers).json()
    assert len(other["results"]) == 3
