"""Critical-tier systems: an open critical finding blocks the release even before its SLA is due."""
import pytest
from django.utils import timezone

from governance.findings.models import FindingState
from governance.inventory import services as inventory_services
from governance.risks import gate
from governance.risks.matrix import gate_policy
from tests.risks.conftest import assess_all, make_finding


@pytest.fixture
def critical_system(system, ciso):
    assess_all(system)
    return inventory_services.system_update(actor=ciso, system=system, data={"risk_tier": "critical"})


def test_open_critical_finding_within_sla_blocks_a_critical_tier_system(critical_system):
    finding = make_finding(critical_system, severity="critical", sla_due=timezone.now() + timezone.timedelta(days=1), title="Unsafe pickle")
    result = gate.evaluate(critical_system)
    assert [r.code for r in result.reasons] == ["FINDING_CRITICAL_OPEN"]
    assert result.reasons[0].refs == [f"finding:{finding.pk}"]
    assert "Unsafe pickle" in result.reasons[0].message and "critical-tier" in result.reasons[0].message


def test_a_finding_past_sla_is_reported_once(critical_system):
    make_finding(critical_system, severity="critical", sla_due=timezone.now() - timezone.timedelta(days=1))
    assert [r.code for r in gate.evaluate(critical_system).reasons] == ["FINDING_CRITICAL_PAST_SLA"]


def test_triaged_findings_and_other_tiers_do_not_block(critical_system, ciso):
    make_finding(critical_system, severity="critical", state=FindingState.FALSE_POSITIVE, sla_due=timezone.now() + timezone.timedelta(days=1))
    make_finding(critical_system, severity="high", sla_due=timezone.now() + timezone.timedelta(days=1))
    assert gate.evaluate(critical_system).decision == "go"
    make_finding(critical_system, severity="critical", sla_due=timezone.now() + timezone.timedelta(days=1))
    high_tier = inventory_services.system_update(actor=ciso, system=critical_system, data={"risk_tier": "high"})
    assert gate.evaluate(high_tier).decision == "go"  # the high-tier default only blocks past SLA


def test_the_open_severities_are_a_per_tier_policy(critical_system):
    make_finding(critical_system, severity="high", sla_due=timezone.now() + timezone.timedelta(days=1))
    policy = gate_policy("critical")
    policy.blocking_open_severities = ["critical", "high"]
    policy.save()
    assert [r.code for r in gate.evaluate(critical_system).reasons] == ["FINDING_HIGH_OPEN"]
