from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils import timezone

from governance.audit.chain import KEYED, LEGACY, event_authentic, head_sealed, verification_keys
from governance.audit.models import GENESIS_HASH, AuditEvent, AuditEventQuerySet, AuditHead

if TYPE_CHECKING:
    from governance.audit.checkpoints import Checkpoint

MAX_PROBLEMS = 50
SYSTEM_ACTOR = "system"  # the worker and scheduled jobs: events written without a user


def audit_events(*, actor=None, kind: str = "", system=None, since: date | None = None, until: date | None = None,
                 people: bool = False) -> AuditEventQuerySet:
    """The audit page's list, its total and its exports, newest first. actor is a user or SYSTEM_ACTOR; since and
    until are days (both included) in the site's time zone."""
    qs: QuerySet = AuditEvent.objects.select_related("system").order_by("-seq")
    if actor == SYSTEM_ACTOR:
        qs = qs.filter(actor_key="")
    elif actor is not None:
        qs = qs.filter(actor=actor)
    if kind:
        qs = qs.of_kind(kind)
    if system is not None:
        qs = qs.filter(system=system)
    if since:
        qs = qs.filter(at__gte=_day_start(since))
    if until:
        qs = qs.filter(at__lt=_day_start(until + timedelta(days=1)))
    if people:
        qs = qs.by_people()
    return qs


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass
class ChainProblem:
    seq: int
    reason: str


@dataclass
class ChainReport:
    checked: int = 0
    legacy: int = 0  # version 1 events (plain SHA-256, written before the keyed chain)
    keyed_failed: int = 0  # version 2 events whose MAC does not verify under any configured key
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    checkpoints_matched: int = 0
    latest_checkpoint: Checkpoint | None = None  # the matched checkpoint with the highest seq
    problems: list[ChainProblem] = field(default_factory=list)
    more_problems: int = 0

    @property
    def problem(self) -> ChainProblem | None:
        return min(self.problems, key=lambda p: p.seq) if self.problems else None

    @property
    def wrong_key(self) -> bool:
        """Every keyed event fails: more likely the configured key than a rewrite of each one."""
        return self.keyed_failed > 0 and self.keyed_failed == self.checked - self.legacy

    def add(self, seq: int, reason: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(ChainProblem(seq, reason))
        else:
            self.more_problems += 1


class _Walk:
    """State of one pass over the events in seq order."""

    def __init__(self, report: ChainReport, *, legacy_seq: int, checkpoints, expected_prev: str | None):
        self.report, self.legacy_seq, self.keys = report, legacy_seq, verification_keys()
        self.expected_prev = expected_prev
        self.checkpoints = defaultdict(list)
        for cp in checkpoints:
            self.checkpoints[cp.seq].append(cp)
        self.orphans = {"actor": {}, "system": {}}  # recorded key -> first event whose foreign key is now NULL

    def check(self, event: AuditEvent) -> None:
        r, seq = self.report, event.seq
        expected_seq = r.last_seq + 1
        if seq != expected_seq:
            gap = f"event #{expected_seq} is" if seq == expected_seq + 1 else f"events #{expected_seq}-#{seq - 1} are"
            r.add(expected_seq, f"{gap} missing (next is #{seq})")
            self.expected_prev = None  # the gap is the finding; do not report the broken link again
        if self.expected_prev is not None and event.prev_hash != self.expected_prev:
            r.add(seq, f"event #{seq} does not follow its predecessor")
        if event.hash_version == LEGACY:
            r.legacy += 1
            if seq > self.legacy_seq:
                legacy = f"legacy events end at #{self.legacy_seq}" if self.legacy_seq else "this trail has none"
                r.add(seq, f"event #{seq} carries the legacy SHA-256 hash where the keyed MAC is required "
                           f"({legacy}): the chain was recomputed")
            elif not event_authentic(event, self.keys):
                r.add(seq, f"event #{seq} was altered (hash mismatch)")
        elif event.hash_version == KEYED:
            if not event_authentic(event, self.keys):
                r.keyed_failed += 1
                r.add(seq, f"event #{seq} was altered (MAC mismatch)")
            self._link(event, "actor", event.actor_id, event.actor_key)
        else:
            r.add(seq, f"event #{seq} has an unknown hash version {event.hash_version}")
        self._link(event, "system", event.system_id, event.system_key)
        for cp in self.checkpoints.get(seq, ()):
            if cp.hash == event.hash:
                r.checkpoints_matched += 1
                r.latest_checkpoint = cp
            else:
                r.add(seq, f"event #{seq} differs from the checkpoint {cp.source} written at {cp.at}: "
                           "the chain was rewritten")
        r.checked, r.last_seq, r.last_hash, self.expected_prev = r.checked + 1, seq, event.hash, event.hash

    def _link(self, event: AuditEvent, kind: str, fk_id, key: str) -> None:
        """The foreign key must be the recorded one, or NULL because that row was deleted (SET_NULL)."""
        if fk_id is None:
            if key:
                self.orphans[kind].setdefault(key, event.seq)
        elif str(fk_id) != key:
            self.report.add(event.seq, f"event #{event.seq}: its {kind} was changed "
                                       f"(recorded {kind} {key or 'none'}, now {fk_id})")

    def check_orphans(self) -> None:
        from governance.inventory.models import AISystem

        for kind, model in (("actor", get_user_model()), ("system", AISystem)):
            keys = {}
            for key, seq in self.orphans[kind].items():
                try:
                    keys[model._meta.pk.to_python(key)] = seq
                except ValidationError:
                    self.report.add(seq, f"event #{seq}: its recorded {kind} {key!r} is not an id")
            for pk in model.objects.filter(pk__in=list(keys)).values_list("pk", flat=True):
                self.report.add(keys[pk], f"event #{keys[pk]}: its {kind} was removed, but {kind} {pk} still exists")


def verify_chain(*, checkpoints=(), from_seq: int = 1, chunk_size: int = 2000) -> ChainReport:
    """Walk the chain in order: links, hashes/MACs, foreign keys, head, checkpoints.

    With from_seq (a checkpoint's), only the events from there on are walked, linked to the event before.
    """
    head = AuditHead.objects.filter(pk=1).first()
    report = ChainReport()
    before = AuditEvent.objects.filter(seq__lt=from_seq).order_by("-seq").values_list("seq", "hash").first()
    if before is not None:
        report.last_seq, report.last_hash = before
    walk = _Walk(report, legacy_seq=head.legacy_seq if head else 0, checkpoints=checkpoints,
                 expected_prev=report.last_hash)
    for _ in range(3):  # another pass only when events were appended while walking
        for event in AuditEvent.objects.filter(seq__gt=report.last_seq).order_by("seq").iterator(chunk_size=chunk_size):
            walk.check(event)
        head = AuditHead.objects.filter(pk=1).first()
        if head is None or head.seq <= report.last_seq:
            break
    walk.check_orphans()
    _check_head(report, head, walk.keys)
    beyond = [cp for cp in checkpoints if cp.seq > report.last_seq]
    if beyond:
        cp = max(beyond, key=lambda c: c.seq)
        report.add(cp.seq, f"the chain ends at #{report.last_seq}, but the checkpoint {cp.source} written at {cp.at} "
                           f"recorded event #{cp.seq}: events were removed from its end")
    return report


def _check_head(report: ChainReport, head: AuditHead | None, keys) -> None:
    last = report.last_seq
    if head is None:
        if last:
            report.add(last, "the chain head (AuditHead) is missing")
        return
    if not head_sealed(head, keys):
        report.add(head.seq, "the chain head's seal is invalid: it was edited, or sealed with another key")
    if head.seq > last:
        report.add(last + 1, f"events after #{last} were removed (chain head is #{head.seq})")
    elif head.seq < last:
        report.add(head.seq + 1, f"events #{head.seq + 1}-#{last} lie beyond the chain head (#{head.seq})")
    elif head.last_hash != report.last_hash:
        report.add(last, f"the chain head does not match event #{last}")


def system_history(system, limit: int = 50):
    return list(
        AuditEvent.objects.filter(system=system).select_related("actor").order_by("-seq")[:limit]
    )
