from __future__ import annotations

from dataclasses import dataclass

from governance.audit.models import GENESIS_HASH, AuditEvent, AuditHead


@dataclass
class ChainProblem:
    seq: int
    reason: str


def verify_chain(chunk_size: int = 2000) -> tuple[int, ChainProblem | None]:
    """Walk the chain in order; return (events checked, first problem or None)."""
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=chunk_size):
        if event.seq != expected_seq:
            return checked, ChainProblem(expected_seq, f"event #{expected_seq} is missing (next is #{event.seq})")
        if event.prev_hash != expected_prev:
            return checked, ChainProblem(event.seq, f"event #{event.seq} does not follow its predecessor")
        if event.compute_hash() != event.hash:
            return checked, ChainProblem(event.seq, f"event #{event.seq} was altered (hash mismatch)")
        expected_prev, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    head = AuditHead.objects.filter(pk=1).first()
    if head is not None and (head.seq != expected_seq - 1 or head.last_hash != expected_prev):
        return checked, ChainProblem(head.seq, f"events after #{expected_seq - 1} were removed (chain head is #{head.seq})")
    return checked, None


def system_history(system, limit: int = 50):
    return list(
        AuditEvent.objects.filter(system=system).select_related("actor").order_by("-seq")[:limit]
    )
