"""Posture's "Latest changes": decisions and changes people made (AuditEvent.objects.by_people()), not import noise."""
from __future__ import annotations

import io

import pytest
from django.db import transaction
from django.urls import reverse

from governance.audit.models import AuditEvent
from governance.audit.services import audit_record
from governance.findings.imports import import_run_create
from governance.inventory import services as inventory
from governance.risks import services as risks
from tests.risks.conftest import make_risk


@pytest.fixture
def noisy(ciso, owner, engineer, system):
    """A person's changes buried under imports: one started by a person, the rest written by the worker."""
    inventory.system_update(actor=owner, system=system, data={"purpose": "Owner's words."})
    risk = make_risk(engineer, system)
    risks.decision_request(actor=engineer, risk=risk, kind="residual_risk")
    run = import_run_create(actor=engineer, stream=io.BytesIO(b'{"version": "2.1.0", "runs": []}'),
                            filename="r.sarif", fmt="sarif", system=system)
    for _ in range(10):
        with transaction.atomic():
            audit_record(actor=None, action="import.done", obj=run, system=system, after={"created": 0})
    with transaction.atomic():
        audit_record(actor=None, action="decision.expire", obj=system, system=system)  # the scheduled job
    return risk


@pytest.mark.django_db
def test_latest_changes_are_what_people_did(client, ciso, owner, engineer, noisy):
    client.force_login(ciso)
    response = client.get(reverse("dashboard:home"))
    shown = [(e.actor_label, e.action) for e in response.context["recent"]]
    assert shown == [(engineer.email, "decision.request"), (engineer.email, "risk.create"),
                     (owner.email, "system.update"), (ciso.email, "system.create")]
    assert [e.seq for e in response.context["recent"]] == list(
        AuditEvent.objects.by_people().order_by("-seq").values_list("seq", flat=True)[:8])
    text = response.content.decode()
    assert "import.done" not in text and "import.create" not in text and "decision.expire" not in text
    assert f'href="{reverse("audit:list")}?people=on"' in text  # the whole list, for those who may read it


@pytest.mark.django_db
def test_the_audit_link_is_only_for_audit_readers(client, engineer, noisy):
    client.force_login(engineer)
    text = client.get(reverse("dashboard:home")).content.decode()
    assert "Latest changes" in text and reverse("audit:list") not in text


@pytest.mark.django_db
def test_people_only_on_the_audit_page_is_the_same_list(client, ciso, noisy):
    client.force_login(ciso)
    response = client.get(reverse("audit:list"), {"people": "on"})
    listed = [e.seq for e in response.context["page"]]
    assert listed == list(AuditEvent.objects.by_people().order_by("-seq").values_list("seq", flat=True))
    assert response.context["page"].paginator.count == 4 < AuditEvent.objects.count()
