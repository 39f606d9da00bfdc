"""Human triage of findings: every change is a transition with who, when and why, and is audited."""
from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from governance.audit.services import audit_record
from governance.findings.ingest import lock_scopes
from governance.findings.models import (HUMAN_DECISIONS, MOVES_BY_HAND, Finding, FindingScope, FindingState,
                                        FindingTransition, ImportRun, MappingRule)
from governance.findings.selectors import with_reported_at


class TriageError(ValueError):
    pass


@transaction.atomic
def findings_transition(*, actor, findings: list[Finding], to_state: str, reason: str = "") -> int:
    """Move findings to a state; findings already there or not allowed to move are skipped. Returns count moved."""
    reason = (reason or "").strip()
    if to_state not in MOVES_BY_HAND:
        raise TriageError(f"Findings cannot be moved to {to_state!r} by hand.")
    if to_state in HUMAN_DECISIONS and not reason:
        raise TriageError(f"Say why: a reason is required for “{FindingState(to_state).label}”.")
    now, moved = timezone.now(), []
    locked = Finding.objects.select_for_update().filter(pk__in=[f.pk for f in findings])
    for finding in locked:
        if finding.state in MOVES_BY_HAND[to_state]:
            moved.append(FindingTransition(finding=finding, from_state=finding.state, to_state=to_state, at=now,
                                           actor=actor, reason=reason))
            finding.state, finding.state_changed_at = to_state, now
    Finding.objects.bulk_update([t.finding for t in moved], ["state", "state_changed_at"])
    FindingTransition.objects.bulk_create(moved)
    for t in moved:
        audit_record(actor=actor, action="finding.transition", obj=t.finding, system=t.finding.system,
                     before={"state": t.from_state}, after={"state": to_state, "reason": reason})
    return len(moved)


@transaction.atomic
def findings_assign(*, actor, findings: list[Finding], assignee) -> int:
    ids = [f.pk for f in findings]
    count = Finding.objects.filter(pk__in=ids).update(assignee=assignee)
    for f in Finding.objects.filter(pk__in=ids).select_related("system"):
        audit_record(actor=actor, action="finding.assign", obj=f, system=f.system,
                     after={"assignee": getattr(assignee, "email", None)})
    return count


@transaction.atomic
def mapping_rule_create(*, actor, system, kind: str, pattern: str) -> MappingRule:
    rule = MappingRule.objects.create(system=system, kind=kind, pattern=pattern.strip())
    audit_record(actor=actor, action="mapping_rule.create", obj=rule, system=system, after={"kind": kind, "pattern": rule.pattern})
    return rule


@transaction.atomic
def mapping_rule_delete(*, actor, rule: MappingRule) -> None:
    audit_record(actor=actor, action="mapping_rule.delete", obj=rule, system=rule.system,
                 before={"kind": rule.kind, "pattern": rule.pattern})
    rule.delete()


@transaction.atomic
def findings_route(*, actor, findings: list[Finding], system) -> int:
    """Move unassigned findings to a system (keeps their state and history).

    In the system's scope the finding is gone (no import of that scope reported it) until one does, and it keeps
    the time it was last reported.
    """
    moved = 0
    rows = list(with_reported_at(Finding.objects.select_for_update(of=("self",)).filter(
        pk__in=[f.pk for f in findings], system__isnull=True)))
    keys = {f.pk: FindingScope.key_of(system.pk, f.source) for f in rows}
    lock_scopes(set(keys.values()))  # an import of that scope may be adding the same key
    taken = Q(pk__in=[])
    for f in rows:
        taken |= Q(scope_key=keys[f.pk], fingerprint=f.fingerprint)
    already = set(Finding.objects.filter(taken).values_list("scope_key", "fingerprint"))
    for f in rows:
        if (keys[f.pk], f.fingerprint) in already:
            continue  # the system already has this finding from the same source
        reported = f.reported_at
        f.system, f.scope_key, f.last_seen, f.gone = system, keys[f.pk], reported, True
        f.save(update_fields=["system", "scope_key", "last_seen", "gone"])
        audit_record(actor=actor, action="finding.route", obj=f, system=system, after={"system": system.slug})
        moved += 1
    return moved


class HeldFindingsError(ValueError):
    pass


@transaction.atomic
def import_run_close_held(*, actor, run: ImportRun) -> int:
    """A person confirms that an incomplete report's silence means fixed: close the open findings of its scopes that
    it no longer lists (ingest.write._reconcile held them open). Only while it is still its scopes' latest import."""
    keys = list(FindingScope.objects.filter(last_import=run).values_list("key", flat=True))
    if not keys:
        raise HeldFindingsError("A later import of this feed has run since: its result is what counts now.")
    lock_scopes(keys)
    now = timezone.now()
    held = list(Finding.objects.select_for_update().filter(scope_key__in=keys, gone=True).open().order_by("id"))
    reason = f"Closed by hand: import #{run.pk} no longer lists it and was confirmed to have examined it."
    FindingTransition.objects.bulk_create([
        FindingTransition(finding=f, from_state=f.state, to_state=FindingState.CLOSED, at=now, actor=actor, reason=reason,
                          import_run=run) for f in held])
    Finding.objects.filter(pk__in=[f.pk for f in held]).update(state=FindingState.CLOSED, state_changed_at=now)
    ImportRun.objects.filter(pk=run.pk).update(counts={**run.counts, "held_open": 0, "closed_by_hand": len(held)})
    audit_record(actor=actor, action="import.close_held", obj=run, system=run.system,
                 after={"closed": [f.pk for f in held], "reason": reason})
    return len(held)
