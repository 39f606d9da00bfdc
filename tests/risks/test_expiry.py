"""Acceptances expire by the beat task, tested on a frozen clock (time-machine), never by sleeping."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
import time_machine

from governance.audit.models import AuditEvent
from governance.risks import gate, services
from governance.risks.models import Decision, RiskStatus
from tests.risks.conftest import accept, assess_all, rated
from worker import tasks

pytestmark = pytest.mark.django_db

T0 = datetime(2031, 3, 1, 9, 0, tzinfo=dt_timezone.utc)


def _codes(system) -> list[str]:
    return [r.code for r in gate.evaluate(system).reasons]


@pytest.fixture
def accepted(owner, engineer, system):
    """At T0 a high residual risk of a high-tier system is accepted for 30 days; the gate is "go"."""
    assess_all(system)
    with time_machine.travel(T0, tick=False):
        risk = rated(engineer, system, residual=(3, 3), owner=engineer)
        decision = accept(risk, owner, days=30)
        assert gate.evaluate(system).decision == "go"
    return risk, decision


def test_beat_task_reopens_expired_acceptance_and_turns_gate_to_no_go(accepted, owner, engineer, system, mailoutbox,
                                                                     django_capture_on_commit_callbacks):
    risk, decision = accepted
    with time_machine.travel(T0 + timedelta(days=29, hours=23), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            tasks.acceptances_expire()
        decision.refresh_from_db()
        assert decision.status == Decision.Status.ACCEPTED
        assert gate.evaluate(system).decision == "go"
    mailoutbox.clear()  # the upcoming-expiry warning (tested below)

    with time_machine.travel(T0 + timedelta(days=30, seconds=1), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.acceptances_expire() == 1
        decision.refresh_from_db()
        risk.refresh_from_db()
        assert decision.status == Decision.Status.EXPIRED
        assert risk.status == RiskStatus.OPEN
        event = AuditEvent.objects.get(action="decision.expire")
        assert event.object_id == str(decision.pk) and event.actor_label == "system" and event.after["risk"] == risk.ref
        assert len(mailoutbox) == 1
        assert sorted(mailoutbox[0].to) == sorted([owner.email, engineer.email])
        assert "expired" in mailoutbox[0].subject and risk.ref in mailoutbox[0].subject
        result = gate.evaluate(system)
        assert result.decision == "no-go"
        assert [r.code for r in result.reasons] == ["ACCEPTANCE_EXPIRED"]
        assert result.reasons[0].refs == [risk.ref] and "2031-03-31" in result.reasons[0].message

        # Idempotent: a second run changes nothing more.
        events = AuditEvent.objects.count()
        with django_capture_on_commit_callbacks(execute=True):
            assert tasks.acceptances_expire() == 0
        assert AuditEvent.objects.count() == events and len(mailoutbox) == 1
        decision.refresh_from_db()
        assert decision.status == Decision.Status.EXPIRED


def test_gate_says_no_go_as_soon_as_expiry_passes_even_before_the_task_runs(accepted, system):
    with time_machine.travel(T0 + timedelta(days=31), tick=False):
        assert _codes(system) == ["ACCEPTANCE_EXPIRED"]


def test_service_takes_now_explicitly(accepted, system):
    risk, decision = accepted
    assert services.acceptances_expire(now=T0 + timedelta(days=10)) == 0
    assert services.acceptances_expire(now=T0 + timedelta(days=30)) == 1
    decision.refresh_from_db()
    assert decision.status == Decision.Status.EXPIRED


def test_upcoming_expiry_is_warned_once_by_the_beat_task(accepted, owner, engineer, mailoutbox):
    risk, decision = accepted
    with time_machine.travel(T0 + timedelta(days=10), tick=False):
        tasks.acceptances_expire()
    assert mailoutbox == []  # 20 days left: not yet
    with time_machine.travel(T0 + timedelta(days=20), tick=False):
        tasks.acceptances_expire()
        tasks.acceptances_expire()
    assert len(mailoutbox) == 1
    assert sorted(mailoutbox[0].to) == sorted([owner.email, engineer.email])
    assert "2031-03-31" in mailoutbox[0].subject


def test_reaccepting_after_expiry_restores_go(accepted, owner, system):
    risk, _ = accepted
    with time_machine.travel(T0 + timedelta(days=40), tick=False):
        tasks.acceptances_expire()
        assert _codes(system) == ["ACCEPTANCE_EXPIRED"]
        accept(risk, owner, days=90)
        assert gate.evaluate(system).decision == "go"


def test_closing_withdraws_the_acceptance_so_expiry_has_nothing_to_do(accepted, engineer):
    risk, decision = accepted
    services.risk_close(actor=engineer, risk=risk, reason="Feature retired.")
    decision.refresh_from_db()
    assert decision.status == Decision.Status.WITHDRAWN
    assert services.acceptances_expire(now=T0 + timedelta(days=31)) == 0
    risk.refresh_from_db()
    assert risk.status == RiskStatus.CLOSED


def test_beat_schedule_runs_the_task(settings):
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "worker.tasks.acceptances_expire"]
    assert len(entries) == 1 and entries[0]["schedule"] <= 3600
