"""Human triage of findings: every change is a transition with who, when and why, and is audited."""
from __future__ import annotations

import re

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from governance.accounts.models import User
from governance.audit.services import audit_record
from governance.findings import notify
from governance.findings.ingest import lock_scopes
from governance.findings.models import (HUMAN_DECISIONS, MOVES_BY_HAND, Finding, FindingBulkAction, FindingComment,
                                        FindingScope, FindingState, FindingTransition, ImportRun, MappingRule,
                                        SavedView)
from governance.findings.selectors import with_reported_at
from governance.risks import services as risk_services


class TriageError(ValueError):
    pass


def _check_move(to_state: str, reason: str) -> None:
    if to_state not in MOVES_BY_HAND:
        raise TriageError(f"Findings cannot be moved to {to_state!r} by hand.")
    if to_state in HUMAN_DECISIONS and not reason:
        raise TriageError(f"Say why: a reason is required for “{FindingState(to_state).label}”.")


@transaction.atomic
def findings_transition(*, actor, findings: list[Finding], to_state: str, reason: str = "") -> int:
    """Move findings to a state; findings already there or not allowed to move are skipped. Returns count moved."""
    reason = (reason or "").strip()
    _check_move(to_state, reason)
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


# --- one action on every finding a queue filter matches ------------------------------------------------------

BULK_BATCH = 500


class CountChanged(TriageError):
    """The filter no longer matches the number of findings the person confirmed."""

    def __init__(self, confirmed: int, now: int):
        self.confirmed, self.now = confirmed, now
        super().__init__(f"This filter now matches {now} finding{'s' if now != 1 else ''}, not the {confirmed} you "
                         "confirmed: nothing was changed. Look at the list again, then apply to the new count.")


@transaction.atomic
def findings_apply_to_matching(*, actor, matching, confirmed: int, described: str, action: str, to_state: str = "",
                               reason: str = "", assignee=None, risk=None) -> FindingBulkAction:
    """Apply one action (`to_state`, `assign` with `assignee` or none, or `link_risk` with `risk`) to every finding of
    `matching` (selectors.queue_matching), if it still matches the `confirmed` count; else CountChanged, nothing done.

    Bounded in queries whatever the count: one locking read of the ids, a few statements per BULK_BATCH findings, and
    one audit event for the whole action, with the filter (`described`) and the counts. Each state change is also a
    transition of its finding (who, when, why), as by hand."""
    reason = (reason or "").strip()
    if to_state:
        _check_move(to_state, reason)
    ids = list(matching.select_for_update(of=("self",)).order_by("id").values_list("id", flat=True))
    if len(ids) != confirmed:
        raise CountChanged(confirmed, len(ids))
    now, changed = timezone.now(), 0
    for start in range(0, len(ids), BULK_BATCH):
        batch = ids[start:start + BULK_BATCH]
        if to_state:
            rows = list(Finding.objects.filter(pk__in=batch, state__in=MOVES_BY_HAND[to_state]).values_list("id", "state"))
            Finding.objects.filter(pk__in=[pk for pk, _ in rows]).update(state=to_state, state_changed_at=now)
            FindingTransition.objects.bulk_create([
                FindingTransition(finding_id=pk, from_state=state, to_state=to_state, at=now, actor=actor, reason=reason)
                for pk, state in rows])
            changed += len(rows)
        elif action in ("assign", "unassign"):
            changed += Finding.objects.filter(pk__in=batch).exclude(assignee=assignee).update(assignee=assignee)
        elif action == "link_risk":
            same = list(Finding.objects.filter(pk__in=batch, system_id=risk.system_id).only("id", "system_id"))
            changed += risk_services.risk_link_findings(actor=actor, risk=risk, findings=same)
        else:
            raise TriageError(f"“{action}” cannot be applied to a whole filter.")
    record = FindingBulkAction.objects.create(actor=actor if getattr(actor, "pk", None) else None, action=action,
                                              filter=described[:1000], matched=len(ids), changed=changed, at=now)
    audit_record(actor=actor, action="finding.bulk", obj=record, system=risk.system if risk else None, after={
        "action": action, "filter": described, "matched": len(ids), "changed": changed, "state": to_state or None,
        "reason": reason or None, "assignee": getattr(assignee, "email", None), "risk": risk.ref if risk else None})
    return record


# --- comments -------------------------------------------------------------------------------------------------

# "@ana" (an address's local part, when only one person's address has it) or "@ana@example.com" (the address)
MENTION = re.compile(r"(?<![\w@.])@([a-z0-9][a-z0-9._%+-]*(?:@[a-z0-9-]+(?:\.[a-z0-9-]+)+)?)", re.IGNORECASE)


def comment_mentions(body: str) -> tuple[list, dict[str, list[str]]]:
    """The people a comment @mentions, and the mentions that name several people (with their addresses: to be
    written out in full).
    A word that names nobody is left as text. One query, whatever the number of mentions."""
    names = {m.rstrip(".").lower() for m in MENTION.findall(body)}
    if not names:
        return [], {}
    which = Q(pk__in=[])
    for name in names:
        which |= Q(email__iexact=name) if "@" in name else Q(email__istartswith=f"{name}@")
    people = list(User.objects.filter(which, is_active=True).order_by("email"))
    found, ambiguous = {}, {}
    for name in sorted(names):
        if "@" in name:
            hits = [p for p in people if p.email.lower() == name]
        else:
            hits = [p for p in people if p.email.lower().split("@", 1)[0] == name]
        if len(hits) > 1:
            ambiguous[name] = [p.email for p in hits]
        elif hits:
            found[hits[0].pk] = hits[0]
    return list(found.values()), ambiguous


def ambiguous_mention(name: str, addresses: list[str]) -> str:
    return f"@{name} could be {' or '.join(addresses)}: write the whole address, e.g. @{addresses[0]}."


@transaction.atomic
def comment_add(*, actor, finding: Finding, body: str) -> FindingComment:
    """Add a comment; everyone it @mentions (but its author) is e-mailed once it is saved."""
    body = body.strip()
    mentioned, ambiguous = comment_mentions(body)
    for name, addresses in ambiguous.items():
        raise TriageError(ambiguous_mention(name, addresses))
    comment = FindingComment.objects.create(finding=finding, author=actor, body=body)
    to = [p for p in mentioned if p.pk != actor.pk]
    audit_record(actor=actor, action="finding.comment", obj=finding, system=finding.system,
                 after={"comment": comment.pk, "body": body, "mentioned": [p.email for p in to]})
    if to:
        transaction.on_commit(lambda: notify.mentioned(comment, to))
    return comment


# --- saved views ----------------------------------------------------------------------------------------------

@transaction.atomic
def saved_view_save(*, actor, name: str, query: str) -> SavedView:
    """Save the filter under a name of the person's; the same name again replaces its filter."""
    view, created = SavedView.objects.update_or_create(owner=actor, name=name.strip(), defaults={"query": query})
    audit_record(actor=actor, action="saved_view.save", obj=view, after={"name": view.name, "query": query,
                                                                       "replaced": not created})
    return view


@transaction.atomic
def saved_view_delete(*, actor, view: SavedView) -> None:
    if view.owner_id != actor.pk:
        raise TriageError("Only its owner deletes a saved view.")
    audit_record(actor=actor, action="saved_view.delete", obj=view, before={"name": view.name, "query": view.query})
    view.delete()


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
