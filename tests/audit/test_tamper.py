"""Each way of rewriting the audit trail in the database, and what `verify_audit` says about it."""
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from governance.audit.models import AuditEvent, AuditHead
from governance.audit.services import audit_record
from governance.inventory import services
from governance.inventory.models import AISystem
from tests.audit.attacks import rechain_plain_sha256, rechain_with_key, renumber
from tests.audit.conftest import grow
from tests.conftest import system_data

pytestmark = pytest.mark.django_db


def broken(*args) -> str:
    with pytest.raises(CommandError) as info:
        call_command("verify_audit", *args)
    return str(info.value)


def intact(capsys, *args) -> str:
    call_command("verify_audit", *args)
    return capsys.readouterr().out


# One change per column of event #2. `id` (the row's storage key, referred to by nothing) is the only column
# left out of the MAC; test_every_column_is_covered fails when a column is added without a line here.
MUTATIONS = {
    "seq": lambda e, c: {"seq": 10},
    "at": lambda e, c: {"at": e.at + timedelta(microseconds=1)},
    "actor_id": lambda e, c: {"actor": c["engineer"]},
    "actor_key": lambda e, c: {"actor_key": str(c["engineer"].pk)},
    "actor_label": lambda e, c: {"actor_label": "engineer@example.com"},
    "action": lambda e, c: {"action": "system.view"},
    "object_type": lambda e, c: {"object_type": "inventory.aimodel"},
    "object_id": lambda e, c: {"object_id": "999"},
    "object_repr": lambda e, c: {"object_repr": "Something else"},
    "system_id": lambda e, c: {"system": c["other_system"]},
    "system_key": lambda e, c: {"system_key": str(c["other_system"].pk)},
    "before": lambda e, c: {"before": {"risk_tier": "low"}},
    "after": lambda e, c: {"after": {"risk_tier": "low"}},
    "prev_hash": lambda e, c: {"prev_hash": "f" * 64},
    "hash": lambda e, c: {"hash": "e" * 64},
    "hash_version": lambda e, c: {"hash_version": 1},
}
CONTENT = ["at", "actor_id", "actor_key", "actor_label", "action", "object_type", "object_id", "object_repr",
           "system_id", "system_key", "before", "after"]


@pytest.fixture
def others(engineer, other_system):
    return {"engineer": engineer, "other_system": other_system}


def tamper(column: str, others: dict, seq: int = 2) -> None:
    event = AuditEvent.objects.get(seq=seq)
    AuditEvent.objects.filter(pk=event.pk).update(**MUTATIONS[column](event, others))


def test_every_column_is_covered():
    assert {f.attname for f in AuditEvent._meta.concrete_fields} == {f"{c}" for c in MUTATIONS} | {"id"}


@pytest.mark.parametrize("column", sorted(MUTATIONS))
def test_changing_any_column_is_named(trail, others, column):
    tamper(column, others)
    assert "event #2" in broken()


@pytest.mark.parametrize("column", CONTENT)
def test_changing_a_column_then_recomputing_the_chain_with_sha256_is_detected(trail, others, column, capsys):
    tamper(column, others)
    rechain_plain_sha256(downgrade=True)
    message = broken()
    assert "event #1 carries the legacy SHA-256 hash where the keyed MAC is required (this trail has none)" in message
    assert "the chain head's seal is invalid" in capsys.readouterr().err


def test_recomputing_with_sha256_but_keeping_the_version_fails_the_mac(trail, others):
    tamper("after", others)
    rechain_plain_sha256(downgrade=False)
    assert "event #1 was altered (MAC mismatch)" in broken()


def test_recomputing_with_a_guessed_key_fails_the_mac(trail, others, settings):
    tamper("actor_label", others)
    settings.RAMPART_AUDIT_KEY = "an-attacker-guess-0123456789abcdef0123"
    rechain_with_key()
    settings.RAMPART_AUDIT_KEY = "test-audit-key-0123456789abcdef0123456789abcdef"
    assert "event #1 was altered (MAC mismatch)" in broken()


def test_the_actor_or_system_set_to_null_while_it_exists_is_named(trail):
    AuditEvent.objects.filter(seq=2).update(actor=None)
    AuditEvent.objects.filter(seq=3).update(system=None)
    message = broken()
    assert "event #2: its actor was removed, but actor" in message
    assert "event #3: its system was removed, but system" in message


def test_deleted_user_and_system_null_the_keys_and_the_trail_still_verifies(trail, owner, engineer, capsys):
    throwaway = services.system_create(actor=engineer, data=system_data(owner, slug="throwaway", name="Throwaway"))
    grow(throwaway, engineer)
    AISystem.objects.filter(pk=throwaway.pk).delete()
    engineer.delete()
    assert AuditEvent.objects.filter(seq__gte=5, actor=None, system=None).count() == 2
    assert "6 events verified" in intact(capsys)


def test_a_middle_event_deleted_and_the_rest_renumbered_and_recomputed_is_detected(trail):
    AuditEvent.objects.filter(seq=2).delete()
    renumber({3: 2, 4: 3})
    rechain_plain_sha256()
    assert "event #1 carries the legacy SHA-256 hash where the keyed MAC" in broken()


def test_a_middle_event_deleted_is_named(trail):
    AuditEvent.objects.filter(seq=3).delete()
    assert "event #3 is missing (next is #4)" in broken()


@pytest.mark.parametrize("recompute", [False, True])
def test_reordered_events_are_detected(trail, recompute):
    renumber({2: 3, 3: 2})
    if recompute:
        rechain_plain_sha256()
    assert "event #2" in broken()


def test_a_tail_cut_with_the_head_moved_back_is_detected_by_the_seal(trail):
    second = AuditEvent.objects.get(seq=2)
    AuditEvent.objects.filter(seq__gt=2).delete()
    AuditHead.objects.filter(pk=1).update(seq=2, last_hash=second.hash)
    assert "the chain head's seal is invalid" in broken()


def test_a_tail_cut_with_a_saved_head_restored_is_detected_by_a_checkpoint(trail, checkpoint_file, capsys):
    saved = AuditHead.objects.values("seq", "last_hash", "seal").get(pk=1)  # the head as it was at #4
    grow(trail)
    grow(trail)
    call_command("audit_checkpoint")  # records #6
    AuditEvent.objects.filter(seq__gt=4).delete()
    AuditHead.objects.filter(pk=1).update(**saved)
    message = broken()
    assert "the chain ends at #4, but the checkpoint" in message
    assert "recorded event #6: events were removed from its end" in message


def test_a_tail_cut_after_the_last_checkpoint_goes_unnoticed(trail, checkpoint_file, capsys):
    """The documented limit: the MAC proves each event, only a checkpoint proves none followed."""
    call_command("audit_checkpoint")  # records #4
    saved = AuditHead.objects.values("seq", "last_hash", "seal").get(pk=1)
    grow(trail)
    AuditEvent.objects.filter(seq=5).delete()
    AuditHead.objects.filter(pk=1).update(**saved)
    assert "4 events verified" in intact(capsys)


def test_deleting_the_head_is_detected(trail):
    AuditHead.objects.all().delete()
    assert "the chain head (AuditHead) is missing" in broken()


def test_deleting_every_event_is_detected_by_a_checkpoint(trail, checkpoint_file):
    call_command("audit_checkpoint")
    AuditEvent.objects.all().delete()
    AuditHead.objects.all().delete()
    assert "the chain ends at #0, but the checkpoint" in broken()


def test_events_inserted_past_the_head_are_named(trail):
    AuditHead.objects.filter(pk=1).update(seq=3)
    assert "events #4-#4 lie beyond the chain head (#3)" in broken()


def test_a_rewrite_by_someone_holding_the_key_is_caught_only_by_a_checkpoint(trail, others, checkpoint_file, capsys):
    call_command("audit_checkpoint")  # records #5 (others added the other system)
    tamper("after", others)
    rechain_with_key()
    checkpoint_file.rename(checkpoint_file.with_suffix(".moved"))
    assert "5 events verified" in intact(capsys)  # without the checkpoint the MAC cannot tell
    message = broken("--checkpoints", str(checkpoint_file.with_suffix(".moved")))
    assert "event #5 differs from the checkpoint" in message and "the chain was rewritten" in message


def test_values_come_back_from_the_database_as_they_were_hashed(system, ciso, capsys):
    after = {"one": 1.0, "big": 1e16, "huge": 1.2345678901234567e19, "tenth": 0.1, "tiny": 1.5e-10, "neg": -0.0,
             "text": "é\u2028\"", "nested": [{"b": 2, "a": [1.0, None, True]}]}
    with transaction.atomic():
        audit_record(actor=ciso, action="test.values", obj=system, system=system, before=None, after=after)
    assert "2 events verified" in intact(capsys)


def test_legacy_events_verify_as_before_and_the_keyed_chain_freezes_them(trail, capsys):
    import importlib

    from django.apps import apps

    # The state before the upgrade: SHA-256 events, an unsealed head; then the migration seals it.
    AuditEvent.objects.update(actor_key="")
    rechain_plain_sha256(downgrade=True)
    AuditHead.objects.update(legacy_seq=0, seal="")
    importlib.import_module("governance.audit.migrations.0002_keyed_chain").seal_legacy_head(apps, None)
    assert "4 events verified (4 written before the keyed chain, with plain SHA-256)" in intact(capsys)

    grow(trail)
    assert AuditEvent.objects.get(seq=5).hash_version == 2
    assert "5 events verified (4 written before" in intact(capsys)

    AuditEvent.objects.filter(seq=2).update(object_repr="Something else")
    rechain_plain_sha256(downgrade=True)  # rewrite the legacy part and downgrade the rest
    message = broken()
    assert "event #5 carries the legacy SHA-256 hash where the keyed MAC is required (legacy events end at #4)" in message


def test_moving_the_legacy_boundary_breaks_the_seal(trail):
    AuditHead.objects.update(legacy_seq=4)
    assert "the chain head's seal is invalid" in broken()


def test_audit_record_still_costs_the_same_queries(system, ciso, django_assert_num_queries):
    # the savepoint, lock the head, insert the event, update the head (with its seal), release the savepoint
    with django_assert_num_queries(5), transaction.atomic():
        audit_record(actor=ciso, action="test.cost", obj=system, system=system)
