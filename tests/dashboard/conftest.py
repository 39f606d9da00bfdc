"""A small portfolio for the board report's tests (tests/dashboard/test_board*.py and the browser test)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from governance.inventory import services as inventory
from governance.risks.matrix import get_matrix
from governance.tabletop import services as tabletop
from governance.tabletop.loader import load_builtin_scenarios
from governance.tabletop.models import Scenario
from tests.conftest import system_data
from tests.risks.conftest import accept, make_finding, rated


def exercise_done(facilitator, scenario, title, days_ago, *, systems=(), strengths="", areas="", complete=True,
              player=None):
    start = timezone.now() - timedelta(days=days_ago)
    ex = tabletop.exercise_create(actor=facilitator, data={"title": title, "scenario": scenario,
                                                            "facilitator": facilitator, "scheduled_for": start},
                                  systems=list(systems))
    if player is not None:
        tabletop.participant_add(actor=facilitator, exercise=ex, user=player, role="player", function="security")
    tabletop.exercise_transition(actor=facilitator, exercise=ex, action="start", now=start)
    if complete:
        tabletop.exercise_transition(actor=facilitator, exercise=ex, action="hot_wash", now=start + timedelta(hours=1))
        tabletop.hotwash_update(actor=facilitator, exercise=ex, strengths=strengths, areas_for_improvement=areas)
        tabletop.exercise_transition(actor=facilitator, exercise=ex, action="complete", now=start + timedelta(hours=2))
    return ex


def build_board_world(*, ciso, owner, other_owner, engineer, facilitator, nobody, system, other_system) -> dict:
    """Support Copilot: a critical finding past its SLA, a high one within it, a high+ risk nobody accepted.
    Fraud Scoring: a high+ risk accepted for 10 days (expiring), a medium one accepted for 200 days.
    Old Bot (archived): an accepted risk, left out everywhere. Exercises: one 10 days ago with a player, one 200
    days ago, one still running."""
    get_matrix()
    now = timezone.now()
    make_finding(system, severity="critical", sla_due=now - timedelta(days=1))
    make_finding(system, severity="high", sla_due=now + timedelta(days=20))
    unaccepted = rated(engineer, system, residual=(4, 4), title="Prompt injection leaks tickets")
    expiring = rated(engineer, other_system, residual=(4, 4), title="Model drift on holidays")
    accept(expiring, other_owner, days=10)
    lasting = rated(engineer, other_system, residual=(2, 2), title="Feature store outage")
    accept(lasting, other_owner, days=200)
    old = inventory.system_create(actor=ciso, data=system_data(owner, name="Old Bot", slug="old-bot"))
    accept(rated(engineer, old, residual=(2, 2), title="Retired"), owner, days=50)
    inventory.system_archive(actor=ciso, system=old)
    load_builtin_scenarios()
    scenario = Scenario.objects.order_by("slug").first()
    recent = exercise_done(facilitator, scenario, "Q4 poisoned model drill", 10, systems=[system], player=nobody,
                       strengths="Fast containment\n<script>alert(1)</script>", areas="No revocation runbook")
    tabletop.improvement_add(actor=facilitator, exercise=recent, data={
        "title": "Write the revocation runbook", "kind": "mitigation", "target_risk": unaccepted, "owner": ciso})
    older = exercise_done(facilitator, scenario, "Spring leak drill", 200, areas="Slow legal review")
    exercise_done(facilitator, scenario, "Still running", 1, complete=False)
    return {"unaccepted": unaccepted, "expiring": expiring, "lasting": lasting, "recent": recent, "older": older}


@pytest.fixture
def scenario_world(ciso, owner, other_owner, engineer, facilitator, nobody, system, other_system):
    return build_board_world(ciso=ciso, owner=owner, other_owner=other_owner, engineer=engineer,
                             facilitator=facilitator, nobody=nobody, system=system, other_system=other_system)
