"""The board report: its figures are the posture page's; the systems that need attention, the acceptances in force
and the exercises of the period are checked against what a small scenario was built to contain."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from governance.dashboard import selectors
from governance.dashboard.board import BOARD_TOP, board_report
from governance.inventory import services as inventory
from governance.risks.models import Decision
from governance.tabletop.models import Scenario
from tests.conftest import system_data
from tests.dashboard.conftest import exercise_done
from tests.risks.conftest import accept, make_finding, rated

pytestmark = pytest.mark.django_db
BOARD_QUERIES = 50  # the posture page's figures (its RMF coverage pooled per system: one), the snapshot a month
#                     ago, the gate of each of the BOARD_TOP systems (5 queries each), the acceptances and the
#                     matrix, the exercises and their 4 prefetches,
#                     the sign-offs waiting (sidebar badge)


def test_figures_are_the_posture_pages(scenario_world, ciso):
    now = timezone.now()
    report, posture = board_report(ciso, at=now), selectors.posture(now)
    for key in ("system_count", "critical_high_findings", "breached", "high_risks", "awaiting", "expiring",
                "avg_coverage", "never_exercised"):
        assert report[key] == posture[key], key
    # and what the scenario holds, counted by hand
    assert (report["system_count"], report["critical_high_findings"], report["breached"]) == (2, 2, 1)
    assert (report["high_risks"], report["expiring"], report["never_exercised"]) == (1, 1, 1)
    assert report["mom"]["critical_high"]["now"] == 2 and report["mom"]["critical_high"]["month_ago"] is None


def test_systems_needing_attention_with_reasons_in_words(scenario_world, ciso, system, other_system):
    w = scenario_world
    attention = board_report(ciso)["attention"]
    assert [a.system for a in attention] == [system, other_system]  # past SLA first
    first, second = attention
    assert first.why[:3] == ["1 open finding past its SLA", "1 open critical finding",
                             "1 high+ residual risk without an acceptance in force"]
    assert first.gate.decision == "no-go"
    assert "1 critical finding past its SLA" in first.gate_why
    assert f"1 risk above the limit without an acceptance in force: {w['unaccepted'].ref}" in first.gate_why
    assert "3 required RMF subcategories not assessed: MAP 1.1, MEASURE 2.7, MANAGE 1.1" in first.gate_why
    assert second.why == ["1 acceptance ending within 30 days"]
    assert not any(w["expiring"].ref in line for line in second.gate_why)  # accepted: not blocking
    assert sum(first.gate.counts.values()) == first.gate.blocking_items == 5


def test_acceptances_in_force_who_and_until_when(scenario_world, ciso, other_owner):
    w = scenario_world
    report = board_report(ciso)
    assert [d.risk for d in report["accepted"]] == [w["expiring"], w["lasting"]]  # soonest to end first
    assert {d.decided_by for d in report["accepted"]} == {other_owner}
    assert report["accepted"][0].level_label == "Critical" and report["accepted"][1].level_label == "Medium"
    independent = Decision.objects.filter(status="accepted", risk__system__archived_at__isnull=True,
                                          expires_at__gt=timezone.now()).count()
    assert report["accepted_risks"] == independent == 2


def test_exercises_of_the_period_and_who_reads_their_lessons(scenario_world, ciso, engineer, nobody, facilitator):
    w = scenario_world
    report = board_report(ciso)
    assert [e.exercise for e in report["exercises"]] == [w["recent"]]
    lessons = report["exercises"][0]
    assert lessons.strengths == ["Fast containment", "<script>alert(1)</script>"]
    assert lessons.areas == ["No revocation runbook"]
    assert [i.title for i in lessons.items] == ["Write the revocation runbook"]
    year = board_report(ciso, days=365)
    assert [e.exercise for e in year["exercises"]] == [w["recent"], w["older"]]
    assert board_report(facilitator)["exercises_completed"] == 1
    # the after-action report's rule: an engineer who took no part reads no lessons; a player of it does
    assert (board_report(engineer)["exercises"], board_report(engineer)["exercises_hidden"]) == ([], 1)
    assert [e.exercise for e in board_report(nobody)["exercises"]] == [w["recent"]]


def _kpis(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-kpi="(\w+)">([^<]+)<', html))


def test_page_shows_the_posture_figures_escaped(scenario_world, client, ciso):
    w = scenario_world
    client.force_login(ciso)
    board = client.get(reverse("dashboard:board")).content.decode()
    posture = client.get(reverse("dashboard:home")).content.decode()
    assert _kpis(board) == _kpis(posture) and len(_kpis(board)) == 8
    assert f'href="{reverse("dashboard:board")}"' in posture  # the posture page leads to it
    assert w["unaccepted"].ref in board and w["expiring"].ref in board and "Other-Owner" in board
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in board and "<script>alert(1)" not in board
    assert "Spring leak drill" not in board
    assert "Spring leak drill" in client.get(reverse("dashboard:board"), {"days": "365"}).content.decode()
    assert client.get(reverse("dashboard:board"), {"days": "x"}).context["days"] == 90  # unknown: the default


def test_query_count_is_pinned_and_constant(scenario_world, client, ciso, owner, engineer, facilitator):
    client.force_login(ciso)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("dashboard:board")).status_code == 200
        return len(ctx.captured_queries)

    scenario = Scenario.objects.order_by("slug").first()

    def grow(n: int, start: int) -> None:
        for i in range(start, start + n):
            s = inventory.system_create(actor=ciso, data=system_data(owner, name=f"Grow {i}", slug=f"grow-{i}"))
            make_finding(s, severity="critical", sla_due=timezone.now() - timedelta(days=2))
            accept(rated(engineer, s, residual=(3, 3)), owner)
            exercise_done(facilitator, scenario, f"Drill {i}", 5 + i, systems=[s], strengths="ok", areas="more")

    grow(BOARD_TOP - 2, 0)  # the gate is read for the first BOARD_TOP systems: a full board
    few = count()
    grow(6, 10)
    assert count() == few == BOARD_QUERIES
