"""Helpers for the risk register tests: risks made through the services, decisions, findings, API clients."""
from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from governance.accounts.services import api_token_create
from governance.findings.models import SEVERITY_RANK, Finding, FindingState, Severity
from governance.risks import services
from governance.risks.models import Risk
from governance.rmf.models import AssessmentStatus, RmfAssessment

_serial = itertools.count()


def make_risk(actor, system, **data) -> Risk:
    data.setdefault("title", f"Prompt injection #{next(_serial)}")
    relations = {k: data.pop(k) for k in ("rmf_subcategories", "references", "findings") if k in data}
    return services.risk_create(actor=actor, system=system, data=data, relations=relations)


def rated(actor, system, residual=(2, 2), inherent=(4, 4), **data) -> Risk:
    """A risk with inherent and residual ratings (defaults: inherent critical, residual medium)."""
    return make_risk(actor, system, inherent_likelihood=inherent[0], inherent_impact=inherent[1],
                     residual_likelihood=residual[0], residual_impact=residual[1], **data)


def accept(risk, by, *, days: int = 90, justification: str = "Compensating controls are in place."):
    return services.decision_decide(actor=by, risk=risk, accept=True, justification=justification,
                                    expires_at=timezone.now() + timedelta(days=days))


def make_finding(system, *, severity: str = "critical", sla_due=None, state: str = FindingState.NEW,
                 title: str = "Hard-coded API key") -> Finding:
    now, n = timezone.now(), next(_serial)
    return Finding.objects.create(
        scope_key=f"{system.pk}:test", system=system, source="test", tool="test", fingerprint=f"fp-{n}",
        fingerprint_version="test-1", content_hash="0" * 32, title=f"{title} {n}", severity=severity,
        severity_rank=SEVERITY_RANK[severity], state=state, first_seen=now, last_seen=now, state_changed_at=now,
        sla_due=sla_due,
    )


def assess_all(system, status: str = AssessmentStatus.IMPLEMENTED) -> None:
    """Mark every RMF subcategory of the system assessed (so the RMF gate reason does not show)."""
    RmfAssessment.objects.filter(system=system).update(status=status)


def bearer_client(user) -> APIClient:
    _, plain = api_token_create(user=user, name=f"risk-test-{next(_serial)}")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def session_client(user) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    return client


@pytest.fixture
def api_as():
    return bearer_client


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run on_commit callbacks (e-mails) of the block inside a test transaction."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


__all__ = ["Severity"]
