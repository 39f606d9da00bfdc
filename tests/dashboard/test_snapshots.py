"""Daily posture snapshots: the live one equals the posture page, a re-run the same day updates, and the backfill
replays a small history with known dates to the numbers counted by hand."""
from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from governance.dashboard import selectors
from governance.dashboard.models import PortfolioDay, PostureSnapshot
from governance.dashboard.snapshots import FIGURES, day_bounds, live_figures, snapshot_take, snapshots_backfill
from governance.findings.models import Finding, FindingState, FindingTransition
from governance.inventory import services as inventory_services
from governance.risks.matrix import get_matrix
from governance.risks.models import Decision, Risk
from governance.rmf.models import AssessmentStatus, RmfAssessment
from governance.rmf.services import assessment_update
from governance.rmf.selectors import Coverage, SystemCoverage, portfolio_percent
from tests.conftest import system_data
from tests.risks.conftest import accept, make_finding, rated

pytestmark = pytest.mark.django_db


def test_snapshot_matches_the_posture_page(ciso, owner, engineer, system, other_system):
    get_matrix()
    make_finding(system, severity="critical", sla_due=timezone.now() - timedelta(days=1))
    make_finding(other_system, severity="high")
    accept(rated(engineer, system, residual=(4, 4)), owner)
    rated(engineer, other_system, residual=(4, 4))
    now = timezone.now()
    snapshot_take(at=now)
    page = selectors.posture(now)
    snaps = PostureSnapshot.objects.filter(day=timezone.localdate(now))
    assert sum(s.open_critical + s.open_high for s in snaps) == page["critical_high_findings"] == 2
    assert sum(s.past_sla for s in snaps) == page["breached"] == 1
    assert sum(s.high_risks for s in snaps) == page["high_risks"] == 1
    assert sum(s.accepted_in_force for s in snaps) == Risk.objects.accepted_in_force(now).count() == 1
    assert sum(s.expiring for s in snaps) == page["expiring"]
    day = PortfolioDay.objects.get(day=timezone.localdate(now))  # the day's totals, written with the rows
    assert (day.open_critical + day.open_high, day.past_sla, day.high_risks, day.awaiting, day.expiring,
            day.coverage, day.systems, day.never_exercised) == (
        page["critical_high_findings"], page["breached"], page["high_risks"], page["awaiting"], page["expiring"],
        page["avg_coverage"], page["system_count"], page["never_exercised"])
    assert portfolio_percent([SystemCoverage([Coverage("ALL", {
        "implemented": s.rmf_implemented, "partial": s.rmf_partial,
        "gap": s.rmf_applicable - s.rmf_implemented - s.rmf_partial})]) for s in snaps]) == page["avg_coverage"]


def test_snapshot_is_idempotent_per_day(ciso, owner, system, other_system):
    make_finding(system, severity="critical")
    morning = timezone.now()
    assert snapshot_take(at=morning) == 2
    make_finding(system, severity="critical")
    assert snapshot_take(at=morning + timedelta(seconds=5)) == 2
    assert snapshot_take(at=morning + timedelta(seconds=6)) == 2
    rows = PostureSnapshot.objects.filter(day=timezone.localdate(morning))
    assert rows.count() == 2
    assert rows.get(system=system).open_critical == 2
    inventory_services.system_archive(actor=ciso, system=other_system)
    snapshot_take(at=timezone.now())
    assert list(rows.values_list("system_id", flat=True)) == [system.pk]  # archived: out of the portfolio


def _at(day, hour: int):
    return timezone.make_aware(datetime.combine(day, time(hour)), timezone.get_default_timezone())


def _finding(system, severity, first_seen, sla_days, state=FindingState.NEW, moves=()):
    f = make_finding(system, severity=severity, state=state)
    Finding.objects.filter(pk=f.pk).update(first_seen=first_seen, sla_due=first_seen + timedelta(days=sla_days))
    FindingTransition.objects.bulk_create([FindingTransition(finding=f, from_state=a, to_state=b, at=at)
                                           for at, a, b in moves])
    return f


@pytest.fixture
def history(ciso, owner, engineer, system, other_system):
    """A small portfolio with known dates, D0 = ten days ago (comments: which days each item counts on)."""
    get_matrix()
    today = timezone.localdate()
    d0 = today - timedelta(days=10)
    old = d0 - timedelta(days=30)
    for s in (system, other_system):
        type(s).objects.filter(pk=s.pk).update(created_at=_at(old, 0))
    days = [d0 + timedelta(days=i) for i in range(11)]
    N, C, FX, CL, FP = (FindingState.NEW, FindingState.CONFIRMED, FindingState.FIXED, FindingState.CLOSED,
                        FindingState.FALSE_POSITIVE)
    # critical, open D0..D2, fixed on D3 after 3 d 2 h; due after 7 days: never late
    _finding(system, "critical", _at(days[0], 10), 7, FX, [(_at(days[3], 12), N, FX)])
    # high, first seen before D0, due a day later: late every day it is open (D0..D4); confirmed D1, FP on D5
    _finding(system, "high", _at(d0 - timedelta(days=5), 0), 1, FP,
             [(_at(days[1], 9), N, C), (_at(days[5], 9), C, FP)])
    # medium, open D2..D3, closed by an import on D4 after 47 h, reopened D6: open D6..today
    _finding(system, "medium", _at(days[2], 9), 90, N, [(_at(days[4], 8), N, CL), (_at(days[6], 8), CL, N)])
    # low, of no system (unassigned feed), open from D1 on
    f = _finding(system, "low", _at(days[1], 9), 180)
    Finding.objects.filter(pk=f.pk).update(system=None, scope_key="unassigned:test")
    # critical of the other system, open from D0; the system is archived on D5 (noon)
    _finding(other_system, "critical", _at(days[0], 1), 7)
    AISystemModel = type(other_system)
    inventory_services.system_archive(actor=ciso, system=other_system)
    AISystemModel.objects.filter(pk=other_system.pk).update(archived_at=_at(days[5], 12))
    # a high residual risk from D0, accepted on D2 until D8 (noon): high D0, D1, D8..; in force D2..D7
    risk = rated(engineer, system, residual=(4, 4))
    Risk.objects.filter(pk=risk.pk).update(created_at=_at(days[0], 8))
    decision = accept(risk, owner)
    Decision.objects.filter(pk=decision.pk).update(requested_at=_at(days[2], 9), decided_at=_at(days[2], 10),
                                                   expires_at=_at(days[8], 12))
    # RMF: one subcategory implemented today (audited): counts only on today's figures
    a = RmfAssessment.objects.filter(system=system).first()
    assessment_update(actor=ciso, assessment=a, data={"status": AssessmentStatus.IMPLEMENTED})
    return {"days": days, "system": system, "other": other_system}


def test_backfill_replays_history_to_the_hand_count(history):
    days, system, other = history["days"], history["system"], history["other"]
    snapshots_backfill(first=days[0], last=days[9])
    snap = {(s.system_id, s.day): s for s in PostureSnapshot.objects.all()}
    sys = [snap[(system.pk, d)] for d in days[:10]]
    assert [s.open_critical for s in sys] == [1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    assert [s.open_high for s in sys] == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    assert [s.open_medium for s in sys] == [0, 0, 1, 1, 0, 0, 1, 1, 1, 1]
    assert [s.past_sla for s in sys] == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    assert [s.remediated_critical for s in sys] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert sys[3].remediated_critical_hours == pytest.approx(3 * 24 + 2)
    assert [s.remediated_medium for s in sys] == [0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert sys[4].remediated_medium_hours == pytest.approx(47)
    assert [s.high_risks for s in sys] == [1, 1, 0, 0, 0, 0, 0, 0, 1, 1]
    assert [s.accepted_in_force for s in sys] == [0, 0, 1, 1, 1, 1, 1, 1, 0, 0]
    assert [s.expiring for s in sys] == [0, 0, 1, 1, 1, 1, 1, 1, 0, 0]  # the 30-day window covers D8 from D2 on
    assert {s.rmf_implemented for s in sys} == {0}
    assert all(s.backfilled for s in sys)
    # the archived system counts until its archive (D5 noon: its end-of-day figures are gone from D5)
    assert [(other.pk, d) in snap for d in days[:10]] == [True] * 5 + [False] * 5
    assert snap[(other.pk, days[4])].open_critical == 1
    assert [snap[(None, d)].open_low if (None, d) in snap else 0 for d in days[:10]] == [0] + [1] * 9


def test_backfill_of_today_equals_the_live_figures_read_at_the_same_moment(history):
    today = history["days"][10]
    snapshots_backfill(first=today, last=today)
    end = day_bounds(today)[1]
    live = live_figures(end)
    for snap in PostureSnapshot.objects.filter(day=today):
        assert {k: getattr(snap, k) for k in FIGURES} == pytest.approx({k: live[snap.system_id][k] for k in FIGURES})
    assert PostureSnapshot.objects.get(day=today, system=history["system"]).rmf_implemented == 1


def test_backfill_is_idempotent_and_keeps_live_days(history):
    days = history["days"]
    snapshot_take(at=day_bounds(days[9])[1] - timedelta(minutes=5))  # a live snapshot of D9
    live = PostureSnapshot.objects.get(day=days[9], system=history["system"])
    first = snapshots_backfill(first=days[0], last=days[9])
    again = snapshots_backfill(first=days[0], last=days[9])
    assert first == again
    # system D0-D8, other D0-D4, unassigned D1-D8, and D9 live (system and unassigned)
    assert PostureSnapshot.objects.filter(day__range=(days[0], days[9])).count() == 9 + 5 + 8 + 2
    kept = PostureSnapshot.objects.get(pk=live.pk)
    assert not kept.backfilled and kept.taken_at == live.taken_at


def test_backfill_command(history, queued):
    call_command("posture_backfill", "--days", "3")
    assert PostureSnapshot.objects.filter(backfilled=True).values("day").distinct().count() == 3
    call_command("posture_backfill", "--days", "3", "--queue")
    assert queued[0][0] == "posture_backfill"


def test_beat_schedules_the_snapshot(settings):
    assert settings.CELERY_BEAT_SCHEDULE["posture-snapshot"]["task"] == "worker.tasks.posture_snapshot"


def test_a_second_system_made_later_counts_from_its_creation(ciso, owner, system):
    today = timezone.localdate()
    later = inventory_services.system_create(actor=ciso, data=system_data(owner, name="Later", slug="later"))
    type(system).objects.filter(pk=system.pk).update(created_at=_at(today - timedelta(days=5), 0))
    type(later).objects.filter(pk=later.pk).update(created_at=_at(today - timedelta(days=2), 12))
    snapshots_backfill(first=today - timedelta(days=4), last=today - timedelta(days=1))
    per_day = [PostureSnapshot.objects.filter(day=today - timedelta(days=i)).count() for i in (4, 3, 2, 1)]
    assert per_day == [1, 1, 2, 2]


def test_the_beat_task_takes_todays_snapshot(system):
    from worker.tasks import posture_snapshot

    make_finding(system, severity="high")
    assert posture_snapshot() == posture_snapshot() == 1  # the same day again: the row is updated
    assert PostureSnapshot.objects.get(day=timezone.localdate()).open_high == 1


def test_days_before_any_system_have_no_snapshot(ciso, owner, system):
    today = timezone.localdate()
    type(system).objects.filter(pk=system.pk).update(created_at=_at(today - timedelta(days=3), 12))
    snapshots_backfill(first=today - timedelta(days=10), last=today - timedelta(days=1))
    assert sorted(PortfolioDay.objects.values_list("day", flat=True)) == [today - timedelta(days=i) for i in (3, 2, 1)]
