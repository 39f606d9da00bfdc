"""Append to the audit chain. Call inside the transaction of the write being audited."""
from __future__ import annotations

import json
import logging

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from governance.audit.chain import event_digest, head_seal, signing_key
from governance.audit.models import AuditEvent, AuditHead

logger = logging.getLogger("governance.audit")


def snapshot(instance: models.Model, fields: list[str] | None = None) -> dict:
    """A JSON-ready dict of an instance's concrete fields (foreign keys as ids)."""
    data = {}
    for f in instance._meta.concrete_fields:
        if fields is not None and f.name not in fields:
            continue
        data[f.attname if f.is_relation else f.name] = f.value_from_object(instance)
    return _jsonable(data)


def _jsonable(value):
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def changed(before: dict | None, after: dict | None) -> bool:
    return before != after


def audit_record(
    *,
    actor,
    action: str,
    obj: models.Model,
    system=None,
    before: dict | None = None,
    after: dict | None = None,
    object_repr: str | None = None,
) -> AuditEvent:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record() must run inside the write's transaction")
    head, _ = AuditHead.objects.select_for_update().get_or_create(pk=1)
    user = actor if getattr(actor, "pk", None) else None
    event = AuditEvent(
        seq=head.seq + 1,
        at=timezone.now(),
        actor=user,
        actor_key=str(user.pk) if user is not None else "",
        actor_label=getattr(actor, "email", None) or "system",
        action=action,
        object_type=obj._meta.label_lower,
        object_id=str(obj.pk),
        object_repr=(object_repr or str(obj))[:200],
        system=system,
        system_key=str(system.pk) if system is not None else "",
        before=_jsonable(before),
        after=_jsonable(after),
        prev_hash=head.last_hash,
    )
    key = signing_key()
    event.hash = event_digest(event, key)
    event.save(force_insert=True)
    head.seq, head.last_hash = event.seq, event.hash
    head.seal = head_seal(head, key)
    head.save(update_fields=["seq", "last_hash", "seal"])
    return event


def verification_record(*, actor, result) -> AuditEvent | None:
    """Record a check of the trail (audit.verify) with its result: the next event after the ones it verified.

    Only an intact trail gets the event. Appending reseals the head, which would vouch for a head the check has just
    found edited (its seal, its legacy boundary), and after a head moved back it would collide with the events
    beyond it; a failed check goes to the `governance.audit` log instead, naming who ran it and what it found.
    """
    if not result.ok:
        logger.error("audit trail verification by %s failed: %s", getattr(actor, "email", actor),
                     "; ".join((result.problems + result.decisions)[:20]))
        return None
    report, checkpoint = result.report, result.report.latest_checkpoint
    with transaction.atomic():
        head, _ = AuditHead.objects.get_or_create(pk=1)
        return audit_record(actor=actor, action="audit.verify", obj=head, object_repr="audit trail", after={
            "result": "intact", "events": report.checked, "last_seq": report.last_seq,
            "checkpoint": checkpoint.seq if checkpoint else None,
            "checkpoints_matched": report.checkpoints_matched})
