"""What someone who can write the database (but holds no key and cannot reach the checkpoints) can do."""
from __future__ import annotations

import hashlib

from governance.audit.models import GENESIS_HASH, AuditEvent, AuditHead


def rechain_plain_sha256(*, downgrade: bool = True) -> None:
    """Recompute every link and hash as plain SHA-256 (the legacy scheme) and move the head to match.

    downgrade also marks every event as a legacy one, so that a verifier trusting the row would use SHA-256.
    """
    prev, last = GENESIS_HASH, 0
    stores_version = "hash_version" in {f.name for f in AuditEvent._meta.fields}
    for event in AuditEvent.objects.order_by("seq"):
        event.prev_hash, event.hash_version = prev, 1
        digest = hashlib.sha256((prev + event.payload()).encode()).hexdigest()
        update = {"prev_hash": prev, "hash": digest}
        if downgrade and stores_version:
            update["hash_version"] = 1
        AuditEvent.objects.filter(pk=event.pk).update(**update)
        prev, last = digest, event.seq
    AuditHead.objects.filter(pk=1).update(seq=last, last_hash=prev)


def rechain_with_key() -> None:
    """The same with the MAC key in hand (the limit of the MAC: only checkpoints catch this)."""
    from governance.audit.chain import event_digest, head_seal

    prev, last = GENESIS_HASH, 0
    for event in AuditEvent.objects.order_by("seq"):
        event.prev_hash = prev
        event.hash = event_digest(event)
        event.save(update_fields=["prev_hash", "hash"])
        prev, last = event.hash, event.seq
    head = AuditHead.objects.get(pk=1)
    head.seq, head.last_hash = last, prev
    head.seal = head_seal(head)
    head.save()


def renumber(moves: dict[int, int]) -> None:
    """Give events new seq numbers (through negative ones, so the unique index never sees two at once)."""
    for old in moves:
        AuditEvent.objects.filter(seq=old).update(seq=-old)
    for old, new in moves.items():
        AuditEvent.objects.filter(seq=-old).update(seq=new)
