"""Connectors UI on /lineage/: CISO/admin only, credentials write-only, Run now queues the connector's task."""
from __future__ import annotations

import pytest

from governance.audit.models import AuditEvent
from governance.lineage.connectors import connector_save
from governance.lineage.models import Connector
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def login(client, user):
    assert client.login(email=user.email, password=PASSWORD)
    return client


def form(**over) -> dict:
    data = {"kind": "marquez", "name": "marquez-prod", "base_url": "http://127.0.0.1:5000", "auth": "bearer",
            "credential": "tok-SECRET-123", "every_minutes": "30", "system_mapping": "", "enabled": "on"}
    data.update(over)
    return data


@pytest.fixture
def connector(ciso):
    return connector_save(actor=ciso, data={"kind": "mlflow", "name": "mlflow", "base_url": "http://127.0.0.1:5001",
                                            "auth": "bearer", "every_minutes": 60, "system_mapping": [], "enabled": True},
                          credential="tok-SECRET-123")


@pytest.mark.parametrize("role", ["engineer", "owner", "facilitator", "nobody"])
def test_others_get_403(client, request, role, connector):
    login(client, request.getfixturevalue(role))
    assert client.get("/lineage/connectors/new/").status_code == 403
    assert client.post("/lineage/connectors/new/", form()).status_code == 403
    assert client.get(f"/lineage/connectors/{connector.pk}/edit/").status_code == 403
    assert client.post(f"/lineage/connectors/{connector.pk}/run/").status_code == 403
    assert client.post(f"/lineage/connectors/{connector.pk}/delete/").status_code == 403
    page = client.get("/lineage/")
    assert page.status_code == 200 and b'id="connectors"' not in page.content
    assert Connector.objects.count() == 1


@pytest.mark.parametrize("role", ["ciso", "admin_user"])
def test_managers_create_edit_and_never_see_the_credential(client, request, role, connector, system):
    login(client, request.getfixturevalue(role))
    response = client.post("/lineage/connectors/new/", form())
    assert response.status_code == 302
    created = Connector.objects.get(name="marquez-prod")
    assert created.credential_encrypted and created.auth == "bearer"
    for url in ("/lineage/", f"/lineage/connectors/{created.pk}/edit/", f"/lineage/connectors/{connector.pk}/edit/"):
        body = client.get(url).content.decode()
        assert "tok-SECRET-123" not in body and created.credential_encrypted not in body
    assert "stored encrypted (not shown)" in client.get(f"/lineage/connectors/{created.pk}/edit/").content.decode()

    # Editing without a credential keeps it; a mapping line must name a real system.
    cipher = created.credential_encrypted
    bad = client.post(f"/lineage/connectors/{created.pk}/edit/", form(credential="", system_mapping="fraud-* = nope"))
    assert bad.status_code == 400 and "no AI system with slug" in bad.content.decode()
    ok = client.post(f"/lineage/connectors/{created.pk}/edit/",
                     form(credential="", every_minutes="5", system_mapping=f"support-* = {system.slug}"))
    assert ok.status_code == 302
    created.refresh_from_db()
    assert created.credential_encrypted == cipher and created.every_minutes == 5
    assert created.system_mapping == [["support-*", system.slug]]
    client.post(f"/lineage/connectors/{created.pk}/edit/", form(credential="env:RAMPART_CONNECTOR_MARQUEZ_TOKEN"))
    created.refresh_from_db()
    assert (created.credential_env, created.credential_encrypted) == ("RAMPART_CONNECTOR_MARQUEZ_TOKEN", "")


def test_form_refuses_metadata_urls_and_duplicates(client, ciso, connector):
    login(client, ciso)
    for url, message in [("http://169.254.169.254/", "169.254.169.254 is a cloud metadata address"),
                         ("http://10.0.0.5:5000/", "10.0.0.5 is a private address"), ("file:///etc/passwd", "only http:// and https://")]:
        response = client.post("/lineage/connectors/new/", form(base_url=url))
        assert response.status_code == 400 and message in response.content.decode()
    response = client.post("/lineage/connectors/new/", form(name="mlflow"))
    assert response.status_code == 400 and "Another connector has this name" in response.content.decode()
    assert Connector.objects.count() == 1


def test_overview_lists_last_error_and_run_now_queues(client, ciso, connector, queued):
    Connector.objects.filter(pk=connector.pk).update(last_error="HttpError: http://127.0.0.1:5001/api: HTTP 500 <b>x</b>")
    login(client, ciso)
    body = client.get("/lineage/").content.decode()
    assert 'id="connectors"' in body and "HTTP 500 &lt;b&gt;x&lt;/b&gt;" in body and "Run now" in body
    response = client.post(f"/lineage/connectors/{connector.pk}/run/")
    assert response.status_code == 302 and queued == [("lineage_connector_run", connector.pk)]
    assert AuditEvent.objects.filter(action="lineage.connector.run_now", object_id=str(connector.pk)).count() == 1
    assert client.get(f"/lineage/connectors/{connector.pk}/run/").status_code == 405


def test_connector_edit_form_is_filled_with_the_saved_values(client, django_user_model):
    from django.contrib.auth.models import Group

    from governance.accounts.models import Role
    from governance.lineage.models import Connector

    ciso = django_user_model.objects.create_user(email="ciso-form@example.com", password="x-correct-horse-9")
    ciso.groups.add(Group.objects.get(name=Role.CISO))
    connector = Connector.objects.create(kind="marquez", name="prod-marquez", base_url="http://127.0.0.1:5000",
                                         every_minutes=30)
    client.force_login(ciso)
    page = client.get(f"/lineage/connectors/{connector.pk}/edit/").content.decode()
    assert 'value="prod-marquez"' in page and 'value="http://127.0.0.1:5000"' in page


@pytest.mark.parametrize("name", ["SECRET_KEY", "DATABASE_URL", "RAMPART_FIELD_KEY", "PATH", "RAMPART_CONNECTOR_"])
def test_a_credential_can_reference_only_the_allowed_variables(client, ciso, connector, name, monkeypatch):
    """env:NAME read any variable of the worker and sent it to the connector's URL."""
    monkeypatch.setenv(name, "would-leak")
    login(client, ciso)
    response = client.post(f"/lineage/connectors/{connector.pk}/edit/", form(credential=f"env:{name}"))
    assert response.status_code == 400 and "RAMPART_CREDENTIAL_ENV_PREFIX" in response.content.decode()
    connector.refresh_from_db()
    assert connector.credential_env != name


def test_a_stored_reference_outside_the_prefix_is_refused_at_send_time(ciso, connector, monkeypatch):
    """A reference stored before the rule (or written to the database directly) is refused by the worker too."""
    from governance.lineage.connectors import connector_run

    monkeypatch.setenv("SECRET_KEY", "would-leak")
    Connector.objects.filter(pk=connector.pk).update(credential_env="SECRET_KEY", credential_encrypted="")
    connector_run(connector_id=connector.pk)
    connector.refresh_from_db()
    assert "RAMPART_CREDENTIAL_ENV_PREFIX" in connector.last_error and "would-leak" not in connector.last_error
