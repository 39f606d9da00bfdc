"""A small world for the security tests: one object of every kind a route can name, and a client per role.

Roles: anonymous, CISO, the product owner of `system` ("owner"), the product owner of another system
("other_owner"), engineer, the exercise's facilitator, admin, a logged-in user with no role ("nobody") and a
no-role user who plays in the exercise ("player").
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from governance.accounts.services import api_token_create
from governance.findings.models import ImportRun, MappingRule
from governance.inventory import services as inventory_services
from governance.lineage.models import Connector, LineageNode
from governance.risks import services as risk_services
from governance.rmf.models import RmfAssessment
from governance.tabletop import services as tabletop_services
from governance.tabletop.models import ExpectedAction, ImprovementItem, Inject, Scenario
from tests.conftest import make_user
from tests.risks.conftest import make_finding, make_risk

ROLES = ["anon", "ciso", "owner", "other_owner", "engineer", "facilitator", "admin", "nobody", "player"]
_serial = itertools.count()


@dataclass
class World:
    users: dict
    system: object
    other_system: object
    model: object
    dataset: object
    assessment: object
    finding: object
    run: object
    rule: object
    risk: object
    action: object
    node: object
    connector: object
    scenario: object
    inject: object
    expected: object
    exercise: object
    release: object
    removable: object
    improvement: object
    owner_token: object
    extra: dict = field(default_factory=dict)


def build_world(*, ciso, owner, other_owner, engineer, facilitator, admin_user, nobody, system, other_system,
                text: str = "", uri: str = "") -> World:
    """Every object the routes name. `text` goes into free-text fields and `uri` into link fields (hostile strings
    in the escaping tests)."""
    t = text
    player = make_user("player@example.com", None)
    spare = make_user("spare@example.com", None)
    now = timezone.now()
    model = inventory_services.model_register(actor=ciso, system=system, data={
        "name": f"copilot-llm{t}", "version": "1.0", "format": "safetensors",
        "source_uri": uri or "https://huggingface.co/org/model", "sha256": "", "provider": f"Acme{t}", "licence": f"MIT{t}"})
    dataset = inventory_services.dataset_register(actor=ciso, system=system, data={
        "name": f"tickets{t}", "source_uri": uri or "s3://bucket/tickets", "licence": f"internal{t}",
        "contains_pii": True, "provenance_documented": False})
    assessment = RmfAssessment.objects.filter(system=system).select_related("subcategory").order_by("pk").first()
    finding = make_finding(system, title=f"Hard-coded key{t}")
    run = ImportRun.objects.create(system=system, source="bandit", format="sarif", filename=f"report{t}.sarif",
                                   error=t, created_by=engineer)
    rule = MappingRule.objects.create(system=system, kind=MappingRule.Kind.choices[0][0], pattern=f"models/**{t}")
    risk = make_risk(engineer, system, title=f"Prompt injection{t}", description=f"Retrieved documents{t}")
    action = risk_services.mitigation_add(actor=engineer, risk=risk, data={"title": f"Filter inputs{t}"})
    node = LineageNode.objects.create(key=f"dataset:ns/tickets{next(_serial)}", kind="dataset", namespace=f"ns{t}",
                                      name=f"tickets{t}", first_seen=now, last_seen=now, system=system)
    connector = Connector.objects.create(kind=Connector.Kind.choices[0][0], name=f"marquez{t}"[:100],
                                         base_url="https://marquez.example.com", auth="bearer",
                                         credential_encrypted="not-a-real-fernet-token")
    scenario = Scenario.objects.create(title=f"Pickle model{t}", slug=f"pickle-{next(_serial)}",
                                       narrative=f"A model{t}", objectives=[f"Find the source{t}"])
    inject = Inject.objects.create(scenario=scenario, order=1, title=f"Alert{t}", body=f"The SOC sees{t}",
                                   attachments=[{"label": f"log{t}", "url": uri or "https://example.com/log"}],
                                   questions=[f"Who owns it?{t}"], facilitator_notes="FACILITATOR-ONLY")
    expected = ExpectedAction.objects.create(inject=inject, order=1, text=f"Quarantine the model{t}")
    exercise = tabletop_services.exercise_create(actor=facilitator, data={
        "title": f"Q1 drill{t}", "scenario": scenario, "facilitator": facilitator, "scheduled_for": now},
        systems=[system])
    tabletop_services.participant_add(actor=facilitator, exercise=exercise, user=player, role="player",
                                      function="ml_engineer")
    removable = tabletop_services.participant_add(actor=facilitator, exercise=exercise, user=spare, role="observer")
    tabletop_services.exercise_transition(actor=facilitator, exercise=exercise, action="start")
    exercise.refresh_from_db()
    release = tabletop_services.inject_release(actor=facilitator, exercise=exercise, inject=inject)
    improvement = tabletop_services.improvement_add(actor=facilitator, exercise=exercise, data={
        "title": f"Scan models{t}", "kind": ImprovementItem.Kind.RISK, "system": system, "description": t})
    owner_token, _ = api_token_create(user=owner, name="owner-ci")
    users = {"ciso": ciso, "owner": owner, "other_owner": other_owner, "engineer": engineer,
             "facilitator": facilitator, "admin": admin_user, "nobody": nobody, "player": player}
    return World(users=users, system=system, other_system=other_system, model=model, dataset=dataset,
                 assessment=assessment, finding=finding, run=run, rule=rule, risk=risk, action=action, node=node,
                 connector=connector, scenario=scenario, inject=inject, expected=expected, exercise=exercise,
                 release=release, removable=removable, improvement=improvement, owner_token=owner_token)


@pytest.fixture
def world(settings, tmp_path, monkeypatch, ciso, owner, other_owner, engineer, facilitator, admin_user, nobody,
          system, other_system) -> World:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"security-{next(_serial)}"}}
    # "Run now" and "pull now" would publish to the shared test broker: drop the sends instead.
    monkeypatch.setattr("governance.queueing.send", lambda *a, **kw: True)
    return build_world(ciso=ciso, owner=owner, other_owner=other_owner, engineer=engineer, facilitator=facilitator,
                       admin_user=admin_user, nobody=nobody, system=system, other_system=other_system)


def ui_client(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def api_client(user) -> APIClient:
    client = APIClient()
    if user is not None:
        _, plain = api_token_create(user=user, name=f"security-{next(_serial)}")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client
