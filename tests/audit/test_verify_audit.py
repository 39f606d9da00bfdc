import pytest
from django.core.management import CommandError, call_command

from governance.audit.models import AuditEvent
from governance.inventory import services


@pytest.mark.django_db
def test_intact_chain_verifies(system, ciso, capsys):
    services.system_update(actor=ciso, system=system, data={"risk_tier": "critical"})
    call_command("verify_audit")
    assert "2 events verified" in capsys.readouterr().out


@pytest.mark.django_db
def test_altered_row_is_named(system, ciso):
    services.system_update(actor=ciso, system=system, data={"risk_tier": "critical"})
    first = AuditEvent.objects.order_by("seq").first()
    AuditEvent.objects.filter(pk=first.pk).update(after={"risk_tier": "low"})
    with pytest.raises(CommandError, match=r"event #1 was altered"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_removed_row_is_named(system, ciso):
    for tier in ("critical", "low", "medium"):
        services.system_update(actor=ciso, system=system, data={"risk_tier": tier})
    AuditEvent.objects.filter(seq=2).delete()
    with pytest.raises(CommandError, match=r"event #2 is missing"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_removed_last_row_is_detected(system, ciso):
    services.system_update(actor=ciso, system=system, data={"risk_tier": "critical"})
    AuditEvent.objects.order_by("-seq").first().delete()
    with pytest.raises(CommandError, match=r"removed"):
        call_command("verify_audit")


@pytest.mark.django_db
def test_each_write_is_chained_with_before_and_after(system, ciso):
    services.system_update(actor=ciso, system=system, data={"risk_tier": "critical"})
    last = AuditEvent.objects.order_by("-seq").first()
    assert last.before == {"risk_tier": "high"} and last.after == {"risk_tier": "critical"}
    assert last.prev_hash == AuditEvent.objects.get(seq=last.seq - 1).hash
    assert last.actor_label == ciso.email and last.system_id == system.pk
