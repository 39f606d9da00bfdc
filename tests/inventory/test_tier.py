"""The risk tier drives the release gate: lowering it is the owner's or a CISO's decision, audited and shown."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from governance.accounts.services import api_token_create
from governance.audit.models import AuditEvent
from governance.inventory.models import AISystem
from governance.risks import gate
from tests.risks.conftest import assess_all, make_finding

pytestmark = pytest.mark.django_db


def _api(user) -> APIClient:
    _, plain = api_token_create(user=user, name="tier")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def test_an_engineer_cannot_turn_a_no_go_into_a_go_by_lowering_the_tier(engineer, system):
    """PATCH /api/v1/systems/<slug>/ {"risk_tier": "low"} by an engineer used to flip the gate."""
    assess_all(system)
    make_finding(system, severity="critical")  # open: blocks the critical tier at once, not the low tier
    system.risk_tier = "critical"
    system.save()
    assert gate.evaluate(system).decision == "no-go"
    response = _api(engineer).patch(f"/api/v1/systems/{system.slug}/", {"risk_tier": "low"}, format="json")
    assert response.status_code == 403 and "lower its risk tier" in response.json()["detail"]
    system.refresh_from_db()
    assert system.risk_tier == "critical" and gate.evaluate(system).decision == "no-go"
    assert not AuditEvent.objects.filter(action="system.tier_lowered").exists()


def test_an_engineer_may_raise_the_tier(engineer, system):
    response = _api(engineer).patch(f"/api/v1/systems/{system.slug}/", {"risk_tier": "critical"}, format="json")
    assert response.status_code == 200 and AISystem.objects.get(pk=system.pk).risk_tier == "critical"


@pytest.mark.parametrize("who", ["owner", "ciso"])
def test_the_owner_or_a_ciso_lowers_it_audited_and_shown(client, who, request, system):
    user = request.getfixturevalue(who)
    response = _api(user).patch(f"/api/v1/systems/{system.slug}/", {"risk_tier": "low"}, format="json")
    assert response.status_code == 200
    event = AuditEvent.objects.get(action="system.tier_lowered")
    assert event.before == {"risk_tier": "high"} and event.after == {"risk_tier": "low"} and event.actor == user
    client.force_login(user)
    page = client.get(f"/systems/{system.slug}/").content.decode()
    assert "Tier lowered" in page and f"by {user.email}" in page


def test_the_edit_form_says_why_on_the_field(client, engineer, system):
    client.force_login(engineer)
    form = client.get(f"/systems/{system.slug}/edit/").content.decode()
    assert 'name="risk_tier"' in form
    data = {"name": system.name, "slug": system.slug, "purpose": system.purpose, "lifecycle_stage": system.lifecycle_stage,
            "risk_tier": "low", "deployment": system.deployment, "autonomy": system.autonomy,
            "design_approach": system.design_approach}
    response = client.post(f"/systems/{system.slug}/edit/", data)
    assert response.status_code == 400 and "lower its risk tier" in response.content.decode()
    assert AISystem.objects.get(pk=system.pk).risk_tier == "high"
