"""The release gate policy, set by a CISO from the UI: validated, audited with what it loosens, applied at once."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from governance.audit.models import AuditEvent
from governance.risks import gate, services
from governance.risks.matrix import gate_policy
from governance.risks.models import GatePolicy
from tests.risks.conftest import assess_all, make_finding

pytestmark = pytest.mark.django_db

HIGH_DEFAULT = {"blocking_finding_severities": ["critical", "high"], "blocking_open_severities": [],
                "max_unaccepted_level": "medium", "required_subcategories": ["MAP 1.1", "MEASURE 2.7", "MANAGE 1.1"],
                "block_unrated_risks": True}


def page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def form_data(**changes) -> dict:
    data = {**HIGH_DEFAULT, **changes}
    if not data["block_unrated_risks"]:
        data.pop("block_unrated_risks")
    return data


def test_ciso_loosens_the_policy_and_the_gate_follows_at_once(system, ciso):
    assess_all(system)
    make_finding(system, severity="high", sla_due=timezone.now() - timedelta(days=3))
    assert gate.evaluate(system).decision == "no-go"
    client = page_client(ciso)
    response = client.post("/risks/gate-policy/high/", form_data(blocking_finding_severities=["critical"]))
    assert response.status_code == 302
    assert GatePolicy.objects.get(tier="high").blocking_finding_severities == ["critical"]
    assert gate.evaluate(system).decision == "go"
    event = AuditEvent.objects.get(action="gate_policy.update")
    assert event.before["blocking_finding_severities"] == ["critical", "high"]
    assert event.after["loosened"] == ["high: past-SLA findings no longer block"]
    follow = client.get(response["Location"])
    assert b"high: past-SLA findings no longer block" in follow.content


def test_tightening_is_not_called_loosening(ciso):
    _, loosened = services.gate_policy_update(actor=ciso, tier="low", data={
        "blocking_finding_severities": ["critical", "high"], "blocking_open_severities": ["critical"],
        "max_unaccepted_level": "medium", "required_subcategories": ["GOVERN 1.1"], "block_unrated_risks": True})
    assert loosened == []
    assert gate_policy("low").required_subcategories == ["GOVERN 1.1"]


def test_every_loosening_is_named(ciso):
    _, loosened = services.gate_policy_update(actor=ciso, tier="critical", data={
        "blocking_finding_severities": ["critical"], "blocking_open_severities": [], "max_unaccepted_level": "high",
        "required_subcategories": ["GOVERN 1.1"], "block_unrated_risks": False})
    assert loosened == ["high: past-SLA findings no longer block", "critical: open findings no longer block at once",
                        "MAP 1.1, MAP 5.1, MEASURE 2.7, MANAGE 1.1, MANAGE 1.3: no longer required",
                        "risks up to high no longer need an acceptance", "unrated risks no longer block"]


@pytest.mark.parametrize("field,value", [
    ("blocking_finding_severities", ["catastrophic"]), ("max_unaccepted_level", "apocalyptic"),
    ("required_subcategories", ["GOVERN 99.9"]),
])
def test_bad_values_are_refused_on_their_field_and_nothing_changes(ciso, field, value):
    with pytest.raises(ValidationError) as exc:
        services.gate_policy_update(actor=ciso, tier="high", data={**HIGH_DEFAULT, field: value})
    assert field in exc.value.message_dict
    assert not GatePolicy.objects.filter(tier="high").exists() and not AuditEvent.objects.filter(
        action="gate_policy.update").exists()


def test_the_form_shows_errors_in_place(ciso):
    response = page_client(ciso).post("/risks/gate-policy/high/", form_data(required_subcategories=["NOPE 1.1"]))
    assert response.status_code == 400 and b"nothing was saved" in response.content
    assert not GatePolicy.objects.exists()


@pytest.mark.parametrize("role", ["admin_user", "engineer", "owner"])
def test_only_a_ciso_edits(request, role):
    user = request.getfixturevalue(role)
    with pytest.raises(PermissionDenied):
        services.gate_policy_update(actor=user, tier="high", data=HIGH_DEFAULT)
    assert page_client(user).post("/risks/gate-policy/high/", form_data()).status_code == 403
    page = page_client(user).get("/risks/gate-policy/")
    assert page.status_code == 200 and b"Edit high tier" not in page.content


def test_unknown_tier_is_404(ciso):
    assert page_client(ciso).get("/risks/gate-policy/extreme/").status_code == 404


def test_system_page_links_the_policy_for_a_ciso(system, ciso, engineer):
    assert b"/risks/gate-policy/high/" in page_client(ciso).get(system.get_absolute_url()).content
    assert b"/risks/gate-policy/high/" not in page_client(engineer).get(system.get_absolute_url()).content


def test_policy_page_counts_active_systems_per_tier(system, other_system, ciso, django_assert_max_num_queries):
    client = page_client(ciso)
    client.get("/risks/gate-policy/")
    with django_assert_max_num_queries(12):
        content = client.get("/risks/gate-policy/").content.decode()
    tiers = {system.risk_tier, other_system.risk_tier}
    assert "active system" in content and all(f"{t.title()} tier" in content for t in tiers)
