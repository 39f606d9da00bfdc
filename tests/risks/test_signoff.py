"""Release sign-off: the product owner's go / no-go for a named release, with the gate frozen; the API and CI."""
from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.utils import timezone

from governance.audit.models import AuditEvent
from governance.risks import gate, services
from governance.risks.models import ReleaseSignoff
from tests.risks.conftest import assess_all, bearer_client, make_finding, rated

pytestmark = pytest.mark.django_db


@pytest.fixture
def clean(system):
    assess_all(system)
    return system


def page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def sign(actor, system, verdict="go", release="v2.3.0", why="Pen test passed; residual risks accepted."):
    return services.release_signoff_record(actor=actor, system=system, release=release, verdict=verdict,
                                           justification=why)


# --- the service ----------------------------------------------------------------------------------

def test_go_freezes_the_gate_and_policy_and_audits_their_hash(clean, owner):
    signoff = sign(owner, clean)
    assert signoff.verdict == "go" and signoff.gate_decision == "go" and signoff.signed_by == owner
    assert signoff.gate["policy"]["tier"] == clean.risk_tier
    assert signoff.gate["result"]["blocking_items"] == 0
    expected = hashlib.sha256(json.dumps(signoff.gate, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert signoff.gate_sha256 == expected
    event = AuditEvent.objects.get(action="release.signoff")
    assert event.after["gate_sha256"] == expected and event.after["release"] == "v2.3.0"
    assert event.after["verdict"] == "go" and event.actor_id == owner.pk


def test_go_is_refused_while_the_gate_says_no_go(clean, owner):
    make_finding(clean, severity="critical", sla_due=timezone.now() - timedelta(days=40))
    with pytest.raises(ValidationError) as exc:
        sign(owner, clean, "go")
    assert "no-go" in str(exc.value.message_dict["verdict"])
    assert not ReleaseSignoff.objects.exists() and not AuditEvent.objects.filter(action="release.signoff").exists()


def test_no_go_is_recorded_with_the_blocking_items_frozen(clean, owner):
    make_finding(clean, severity="critical", sla_due=timezone.now() - timedelta(days=40))
    signoff = sign(owner, clean, "no-go", why="Critical past SLA.")
    assert signoff.gate_decision == "no-go"
    assert signoff.gate["result"]["counts"] == {"FINDING_CRITICAL_PAST_SLA": 1}
    # The frozen gate stays as it was when the world changes.
    from governance.findings.models import Finding
    Finding.objects.update(state="fixed")
    signoff.refresh_from_db()
    assert signoff.gate["result"]["counts"] == {"FINDING_CRITICAL_PAST_SLA": 1}


def test_only_the_product_owner_or_a_ciso_signs(clean, engineer, other_owner, ciso):
    for stranger in (engineer, other_owner):
        with pytest.raises(PermissionDenied):
            sign(stranger, clean)
    assert sign(ciso, clean).signed_by == ciso


@pytest.mark.parametrize("field,kwargs", [
    ("release", {"release": ""}), ("release", {"release": "v1<script>"}), ("release", {"release": "x" * 101}),
    ("verdict", {"verdict": "maybe"}), ("justification", {"why": "   "}),
])
def test_bad_values_are_refused_on_their_field(clean, owner, field, kwargs):
    with pytest.raises(ValidationError) as exc:
        sign(owner, clean, **kwargs)
    assert field in exc.value.message_dict
    assert not ReleaseSignoff.objects.exists()


# --- the gate with a release ----------------------------------------------------------------------

def test_gate_for_a_release_needs_its_go(clean, owner):
    assert gate.evaluate(clean).decision == "go"
    result = gate.evaluate(clean, release="v2.3.0")
    assert [r.code for r in result.reasons] == ["SIGNOFF_MISSING"]
    sign(owner, clean, "no-go", release="v2.3.0", why="Waiting for the DPIA.")
    assert [r.code for r in gate.evaluate(clean, release="v2.3.0").reasons] == ["SIGNOFF_NO_GO"]
    sign(owner, clean, "go", release="v2.3.0")
    assert gate.evaluate(clean, release="v2.3.0").decision == "go"
    # Another release's go does not count.
    assert [r.code for r in gate.evaluate(clean, release="v2.4.0").reasons] == ["SIGNOFF_MISSING"]


def test_a_go_does_not_outvote_findings_that_block_later(clean, owner):
    sign(owner, clean, "go")
    make_finding(clean, severity="critical", sla_due=timezone.now() - timedelta(days=1))
    codes = {r.code for r in gate.evaluate(clean, release="v2.3.0").reasons}
    assert codes == {"FINDING_CRITICAL_PAST_SLA"}


def test_api_gate_with_release(clean, owner, engineer):
    client = bearer_client(engineer)
    url = f"/api/v1/systems/{clean.slug}/gate?release=v2.3.0"
    response = client.get(url)
    assert response.status_code == 409 and response.json()["counts"] == {"SIGNOFF_MISSING": 1}
    sign(owner, clean)
    assert client.get(url).status_code == 200


# --- the API --------------------------------------------------------------------------------------

def test_api_create_list_and_latest(clean, owner):
    client = bearer_client(owner)
    base = f"/api/v1/systems/{clean.slug}/signoffs/"
    assert client.get(base + "latest").status_code == 404
    created = client.post(base, {"release": "v1.0.0", "verdict": "no-go", "justification": "Not yet."}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["signed_by"] == owner.email and body["gate_decision"] == "go" and body["verdict"] == "no-go"
    assert client.post(base, {"release": "v1.0.0", "verdict": "go", "justification": "Now."},
                       format="json").status_code == 201
    client.post(base, {"release": "v0.9.0", "verdict": "go", "justification": "Old one."}, format="json")
    listed = client.get(base).json()
    assert listed["count"] == 3 and [s["release"] for s in listed["results"]] == ["v0.9.0", "v1.0.0", "v1.0.0"]
    assert client.get(base, {"release": "v1.0.0"}).json()["count"] == 2
    latest = client.get(base + "latest", {"release": "v1.0.0"}).json()
    assert latest["verdict"] == "go" and latest["justification"] == "Now."
    assert client.get(base + "latest").json()["release"] == "v0.9.0"
    assert client.get(base + "latest", {"release": "v9"}).status_code == 404


def test_api_refuses_strangers_and_a_go_on_no_go(clean, owner, engineer):
    base = f"/api/v1/systems/{clean.slug}/signoffs/"
    denied = bearer_client(engineer).post(base, {"release": "v1", "verdict": "go", "justification": "x"},
                                          format="json")
    assert denied.status_code == 403
    make_finding(clean, severity="critical", sla_due=timezone.now() - timedelta(days=1))
    refused = bearer_client(owner).post(base, {"release": "v1", "verdict": "go", "justification": "x"}, format="json")
    assert refused.status_code == 400 and "a go cannot be signed" in json.dumps(refused.json())
    bad = bearer_client(owner).post(base, {"release": "v1", "verdict": "perhaps", "justification": "x"},
                                    format="json")
    assert bad.status_code == 400
    assert not ReleaseSignoff.objects.exists()


def test_api_list_query_count_is_constant(clean, owner, django_assert_max_num_queries):
    for i in range(12):
        sign(owner, clean, "no-go", release=f"v{i}")
    client = bearer_client(owner)
    client.get(f"/api/v1/systems/{clean.slug}/signoffs/")
    with django_assert_max_num_queries(6):
        assert client.get(f"/api/v1/systems/{clean.slug}/signoffs/").json()["count"] == 12


# --- the pages ------------------------------------------------------------------------------------

def test_system_page_form_records_and_htmx_swaps_the_card(clean, owner):
    client = page_client(owner)
    page = client.get(clean.get_absolute_url())
    assert b'id="release-signoff"' in page.content and b"Record sign-off" in page.content
    response = client.post(f"/risks/signoffs/new/{clean.slug}/", {"release": "v3", "verdict": "go",
                                                                   "justification": "Ready."}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"v3" in response.content and b"<html" not in response.content
    signoff = ReleaseSignoff.objects.get()
    detail = client.get(signoff.get_absolute_url())
    assert detail.status_code == 200 and signoff.gate_sha256.encode() in detail.content


def test_system_page_form_shows_errors_in_place(clean, owner):
    make_finding(clean, severity="critical", sla_due=timezone.now() - timedelta(days=1))
    response = page_client(owner).post(f"/risks/signoffs/new/{clean.slug}/", {
        "release": "v3", "verdict": "go", "justification": "Ship it."}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and b"a go cannot be signed" in response.content
    assert not ReleaseSignoff.objects.exists()


def test_engineer_sees_the_history_but_no_form(clean, owner, engineer):
    sign(owner, clean, release="v7")
    page = page_client(engineer).get(clean.get_absolute_url())
    assert b"v7" in page.content and b"Record sign-off" not in page.content
    assert page_client(engineer).post(f"/risks/signoffs/new/{clean.slug}/", {
        "release": "v8", "verdict": "no-go", "justification": "x"}).status_code == 403


def test_scanner_text_in_a_justification_is_escaped(clean, owner):
    signoff = sign(owner, clean, "no-go", why="<img src=x onerror=alert(1)>")
    content = page_client(owner).get(signoff.get_absolute_url()).content
    assert b"<img src=x" not in content and b"&lt;img src=x" in content


def test_rated_risk_counts_are_frozen_too(clean, owner, engineer):
    rated(engineer, clean, residual=(5, 5))
    signoff = sign(owner, clean, "no-go", why="Residual risk too high.")
    assert signoff.gate["result"]["counts"] == {"RISK_RESIDUAL_UNACCEPTED": 1}
