"""Every write to the risk register: audited, in a transaction, levels computed from the matrix."""
from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from governance.accounts import permissions as perms
from governance.audit.services import audit_record, snapshot
from governance.inventory.models import AISystem, RiskTier
from governance.risks import gate as release_gate
from governance.risks import notify
from governance.risks.matrix import gate_policy, get_matrix
from governance.risks.models import (
    BLOCKING_SEVERITIES, Decision, GatePolicy, MitigationAction, ReleaseSignoff, Risk, RiskMatrix, RiskStatus,
)
from governance.rmf.models import RmfSubcategory

class RiskClosed(ValidationError):
    """A write that a closed risk refuses (the API answers 409)."""


RISK_FIELDS = [
    "title", "description", "owner", "due_date", "source", "source_ref", "treatment", "treatment_plan",
    "inherent_likelihood", "inherent_impact", "residual_likelihood", "residual_impact",
]


def apply_levels(risk: Risk, matrix: RiskMatrix) -> None:
    rows, cols = matrix.size
    for name, top in (("inherent_likelihood", rows), ("residual_likelihood", rows),
                      ("inherent_impact", cols), ("residual_impact", cols)):
        value = getattr(risk, name)
        if value is not None and not 1 <= value <= top:
            raise ValidationError({name: f"Must be between 1 and {top} on the current matrix (empty means not rated)."})
    risk.inherent_level = matrix.level_for(risk.inherent_likelihood, risk.inherent_impact)
    risk.residual_level = matrix.level_for(risk.residual_likelihood, risk.residual_impact)
    risk.residual_rank = matrix.rank(risk.residual_level)


def _risk_state(risk: Risk) -> dict:
    data = snapshot(risk)
    data["rmf_subcategories"] = sorted(risk.rmf_subcategories.values_list("ident", flat=True))
    data["references"] = sorted(risk.references.values_list("ident", flat=True))
    data["findings"] = sorted(risk.findings.values_list("id", flat=True))
    return data


def _set_relations(risk: Risk, relations: dict) -> None:
    if relations.get("findings"):
        _own_findings(risk, relations["findings"])
    for name in ("rmf_subcategories", "references", "findings"):
        if name in relations and relations[name] is not None:
            getattr(risk, name).set(relations[name])


def _own_findings(risk: Risk, findings) -> None:
    """A risk gathers findings of its own system only (every path that links findings comes through here)."""
    foreign = sorted(f.pk for f in findings if f.system_id != risk.system_id)
    if foreign:
        raise ValidationError({"findings": "A risk only gathers findings of its own system; "
                                           f"{', '.join(f'#{pk}' for pk in foreign[:10])} belong to another system."})


@transaction.atomic
def risk_create(*, actor, system, data: dict, relations: dict | None = None) -> Risk:
    risk = Risk(system=system, created_by=actor if getattr(actor, "pk", None) else None, ref=f"TMP-{uuid.uuid4().hex[:16]}")  # fits max_length=20; replaced below
    for name in RISK_FIELDS:
        if name in data:
            setattr(risk, name, data[name])
    apply_levels(risk, get_matrix())
    risk.save()
    risk.ref = f"RISK-{risk.pk:04d}"
    risk.save(update_fields=["ref"])
    _set_relations(risk, relations or {})
    audit_record(actor=actor, action="risk.create", obj=risk, system=system, after=_risk_state(risk))
    return risk


@transaction.atomic
def risk_update(*, actor, risk: Risk, data: dict, relations: dict | None = None) -> Risk:
    risk = Risk.objects.select_for_update().get(pk=risk.pk)
    if risk.status == RiskStatus.CLOSED:
        raise ValidationError("This risk is closed; closed risks are kept as they were.")
    before = _risk_state(risk)
    rank_before = risk.residual_rank
    for name in RISK_FIELDS:
        if name in data:
            setattr(risk, name, data[name])
    apply_levels(risk, get_matrix())
    if risk.residual_rank < rank_before and not perms.can_decide(actor, risk.system) and \
            Decision.objects.in_force(timezone.now()).filter(risk=risk).exists():
        raise PermissionDenied("This risk is signed off: lowering its residual rating is the product owner's or a "
                               "CISO's decision (it would outlast the acceptance). Raising it is open to you.")
    risk.save()
    _set_relations(risk, relations or {})
    after = _risk_state(risk)
    changed = {k: v for k, v in after.items() if before.get(k) != v and k != "updated_at"}
    if changed:
        audit_record(actor=actor, action="risk.update", obj=risk, system=risk.system,
                     before={k: before.get(k) for k in changed}, after=changed)
    _acceptance_recheck(actor=actor, risk=risk)
    return risk


def _acceptance_recheck(*, actor, risk: Risk) -> None:
    """An acceptance covers the rating that was signed: a residual rating raised above it withdraws the acceptance
    and asks the product owner again (the risk is awaiting decision). Lowering the rating keeps it."""
    stale = list(Decision.objects.select_for_update().filter(
        risk=risk, status=Decision.Status.ACCEPTED, accepted_rank__lt=risk.residual_rank))
    if not stale:
        return
    matrix = get_matrix()
    now_label = (matrix.level(risk.residual_level) or {"label": risk.residual_level or "not rated"})["label"]
    for d in stale:
        was = matrix.level_for_rank(d.accepted_rank)
        note = f"Residual risk raised to {now_label.lower()}, above the {was.lower()} that was accepted."
        Decision.objects.filter(pk=d.pk).update(status=Decision.Status.WITHDRAWN)
        audit_record(actor=actor, action="decision.withdraw", obj=d, system=risk.system,
                     before={"status": Decision.Status.ACCEPTED},
                     after={"status": Decision.Status.WITHDRAWN, "risk": risk.ref, "reason": note})
    if not Decision.objects.filter(risk=risk, status=Decision.Status.PENDING).exists():
        request = Decision.objects.create(risk=risk, kind=Decision.Kind.RESIDUAL_RISK,
                                          requested_by=actor if getattr(actor, "pk", None) else None, request_note=note)
        audit_record(actor=actor, action="decision.request", obj=request, system=risk.system,
                     after={"risk": risk.ref, "kind": request.kind, "note": note})
        transaction.on_commit(lambda: notify.decision_requested(request))
    risk.status = RiskStatus.AWAITING_DECISION
    risk.save(update_fields=["status", "updated_at"])


@transaction.atomic
def risk_close(*, actor, risk: Risk, reason: str) -> Risk:
    """Closing a risk withdraws its pending requests and acceptances (a closed risk is nobody's decision any more).
    It never closes its findings; the page keeps showing those still open."""
    risk = Risk.objects.select_for_update().select_related("system").get(pk=risk.pk)
    if risk.status == RiskStatus.CLOSED:
        return risk
    before = risk.status
    live = list(Decision.objects.select_for_update().filter(
        risk=risk, status__in=(Decision.Status.PENDING, Decision.Status.ACCEPTED)).order_by("pk"))
    Decision.objects.filter(pk__in=[d.pk for d in live]).update(status=Decision.Status.WITHDRAWN)
    risk.status = RiskStatus.CLOSED
    risk.save(update_fields=["status", "updated_at"])
    audit_record(actor=actor, action="risk.close", obj=risk, system=risk.system,
                 before={"status": before}, after={"status": risk.status, "reason": reason,
                                                   "decisions_withdrawn": [d.pk for d in live]})
    return risk


@transaction.atomic
def risk_link_findings(*, actor, risk: Risk, findings) -> int:
    _own_findings(risk, findings)
    ids = [f.pk for f in findings]
    already = set(risk.findings.filter(pk__in=ids).values_list("id", flat=True))
    new = [i for i in ids if i not in already]
    risk.findings.add(*new)
    if new:
        audit_record(actor=actor, action="risk.link_findings", obj=risk, system=risk.system, after={"findings": new})
    return len(new)


@transaction.atomic
def matrix_update(*, actor, likelihood_labels, impact_labels, levels, cells) -> int:
    """Replace the matrix and recompute every risk's levels in the same transaction. Returns risks changed."""
    _validate_matrix(likelihood_labels, impact_labels, levels, cells)
    matrix = get_matrix()
    before = {"likelihood_labels": matrix.likelihood_labels, "impact_labels": matrix.impact_labels,
              "levels": matrix.levels, "cells": matrix.cells}
    matrix.likelihood_labels, matrix.impact_labels, matrix.levels, matrix.cells = likelihood_labels, impact_labels, levels, cells
    matrix.save()
    changed = []
    for risk in Risk.objects.select_for_update().only(
        "id", "inherent_likelihood", "inherent_impact", "residual_likelihood", "residual_impact",
        "inherent_level", "residual_level", "residual_rank",
    ):
        old = (risk.inherent_level, risk.residual_level, risk.residual_rank)
        apply_levels(risk, matrix)
        if old != (risk.inherent_level, risk.residual_level, risk.residual_rank):
            changed.append(risk)
    Risk.objects.bulk_update(changed, ["inherent_level", "residual_level", "residual_rank"], batch_size=1000)
    for risk in Risk.objects.filter(pk__in=[r.pk for r in changed]).open().select_related("system"):
        _acceptance_recheck(actor=actor, risk=risk)
    audit_record(actor=actor, action="risk_matrix.update", obj=matrix, before=before,
                 after={"likelihood_labels": likelihood_labels, "impact_labels": impact_labels, "levels": levels,
                        "cells": cells, "risks_recomputed": len(changed)})
    return len(changed)


_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def _validate_matrix(likelihood_labels, impact_labels, levels, cells) -> None:
    """Refuse anything the screens, the gate or apply_levels() could not use; nothing is saved before this passes."""
    for name, labels in (("likelihood", likelihood_labels), ("impact", impact_labels)):
        if not isinstance(labels, list) or not 2 <= len(labels) <= 10:
            raise ValidationError("A matrix has 2 to 10 likelihood and impact levels.")
        if any(not isinstance(lb, str) or not lb.strip() for lb in labels):
            raise ValidationError(f"Every {name} level needs a label.")
    if not isinstance(levels, list) or not levels:
        raise ValidationError("A matrix needs at least one level.")
    for lv in levels:
        if not (isinstance(lv, dict) and isinstance(lv.get("key"), str) and lv["key"].strip()
                and isinstance(lv.get("label"), str) and lv["label"].strip()
                and isinstance(lv.get("colour"), str) and _COLOUR.match(lv["colour"])
                and isinstance(lv.get("rank"), int) and not isinstance(lv["rank"], bool) and lv["rank"] >= 1):
            raise ValidationError(f"Each level needs a key, a label, a colour as #rrggbb and a rank of 1 or more: {lv!r:.100}.")
    keys = [lv["key"] for lv in levels]
    if len(set(keys)) != len(keys) or len({lv["rank"] for lv in levels}) != len(levels):
        raise ValidationError("Level keys and ranks must each be different.")
    if (not isinstance(cells, list) or len(cells) != len(likelihood_labels)
            or any(not isinstance(row, list) or len(row) != len(impact_labels) for row in cells)):
        raise ValidationError("The cells must form a likelihood × impact grid.")
    unknown = {str(c) for row in cells for c in row if c not in keys}
    if unknown:
        raise ValidationError(f"Cells use unknown levels: {', '.join(sorted(unknown))}.")
    rows, cols = len(likelihood_labels), len(impact_labels)
    beyond = list(
        Risk.objects.filter(Q(inherent_likelihood__gt=rows) | Q(residual_likelihood__gt=rows)
                            | Q(inherent_impact__gt=cols) | Q(residual_impact__gt=cols))
        .order_by("ref").values_list("ref", flat=True)[:11]
    )
    if beyond:
        shown = ", ".join(beyond[:10]) + (" …" if len(beyond) > 10 else "")
        raise ValidationError(f"These risks are rated beyond a {rows}×{cols} matrix; re-rate them first: {shown}.")


@transaction.atomic
def mitigation_add(*, actor, risk: Risk, data: dict) -> MitigationAction:
    action = MitigationAction.objects.create(risk=risk, **data)
    audit_record(actor=actor, action="mitigation.add", obj=action, system=risk.system, after=snapshot(action))
    return action


@transaction.atomic
def mitigation_set_status(*, actor, action: MitigationAction, status: str) -> MitigationAction:
    before = action.status
    action.status = status
    action.save(update_fields=["status"])
    audit_record(actor=actor, action="mitigation.status", obj=action, system=action.risk.system,
                 before={"status": before}, after={"status": status})
    return action


# --- sign-off -----------------------------------------------------------------------------------

def _sha256_of(frozen: dict) -> str:
    """The hash of frozen JSON (sorted keys, no spaces): what the audit trail records of a snapshot."""
    return hashlib.sha256(json.dumps(frozen, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def decision_snapshot(risk: Risk) -> dict:
    """What the product owner saw and signed: frozen in the decision, hashed into the audit trail."""
    state = _risk_state(risk)
    state["system"] = {"slug": risk.system.slug, "name": risk.system.name}
    state["actions"] = [
        {"title": a.title, "status": a.status, "due_date": a.due_date, "owner": getattr(a.owner, "email", None)}
        for a in risk.actions.select_related("owner")
    ]
    state["open_findings"] = list(risk.findings.filter(state__in=("new", "confirmed")).values_list("id", flat=True))
    return json.loads(json.dumps(state, cls=DjangoJSONEncoder))


@transaction.atomic
def decision_request(*, actor, risk: Risk, kind: str, note: str = "") -> Decision:
    risk = Risk.objects.select_for_update().select_related("system__business_owner").get(pk=risk.pk)
    if risk.status == RiskStatus.CLOSED:
        raise RiskClosed(f"{risk.ref} is closed: decisions on a closed risk are refused.")
    Decision.objects.filter(risk=risk, status=Decision.Status.PENDING).update(status=Decision.Status.WITHDRAWN)
    decision = Decision.objects.create(risk=risk, kind=kind, requested_by=actor, request_note=note)
    risk.status = RiskStatus.AWAITING_DECISION
    risk.save(update_fields=["status", "updated_at"])
    audit_record(actor=actor, action="decision.request", obj=decision, system=risk.system,
                 after={"risk": risk.ref, "kind": kind, "note": note})
    transaction.on_commit(lambda: notify.decision_requested(decision))
    return decision


@transaction.atomic
def decision_decide(*, actor, risk: Risk, accept: bool, justification: str, expires_at: datetime | None,
                    kind: str = Decision.Kind.RESIDUAL_RISK) -> Decision:
    risk = Risk.objects.select_for_update().select_related("system").get(pk=risk.pk)
    if not perms.can_decide(actor, risk.system):
        raise PermissionDenied("Only the product owner of this system or a CISO can decide.")
    if risk.status == RiskStatus.CLOSED:
        raise RiskClosed(f"{risk.ref} is closed: decisions on a closed risk are refused.")
    if not justification.strip():
        raise ValidationError({"justification": "Give the reason for this decision."})
    now = timezone.now()
    if accept and (expires_at is None or expires_at <= now):
        raise ValidationError({"expires_at": "An acceptance needs an expiry date in the future."})
    decision = Decision.objects.filter(risk=risk, status=Decision.Status.PENDING).first()
    if decision is None:
        decision = Decision(risk=risk, kind=kind, requested_by=actor, requested_at=now)
    Decision.objects.filter(risk=risk, status=Decision.Status.ACCEPTED).update(status=Decision.Status.WITHDRAWN)
    decision.status = Decision.Status.ACCEPTED if accept else Decision.Status.REJECTED
    decision.decided_by, decision.decided_at, decision.justification = actor, now, justification.strip()
    decision.expires_at = expires_at if accept else None
    decision.accepted_rank = risk.residual_rank
    decision.snapshot = decision_snapshot(risk)
    decision.snapshot_sha256 = _sha256_of(decision.snapshot)
    decision.save()
    risk.status = RiskStatus.ACCEPTED if accept else RiskStatus.REJECTED
    risk.save(update_fields=["status", "updated_at"])
    audit_record(actor=actor, action="decision.accept" if accept else "decision.reject", obj=decision,
                 system=risk.system, after={"risk": risk.ref, "kind": decision.kind, "justification": decision.justification,
                                           "expires_at": decision.expires_at, "snapshot_sha256": decision.snapshot_sha256})
    transaction.on_commit(lambda: notify.decision_made(decision))
    return decision


def acceptances_expire(*, now: datetime | None = None) -> int:
    """Reopen risks whose acceptance has expired; run by Celery beat. Returns how many."""
    now = now or timezone.now()
    expired = 0
    for decision in Decision.objects.filter(status=Decision.Status.ACCEPTED, expires_at__lte=now).select_related("risk"):
        with transaction.atomic():
            d = Decision.objects.select_for_update().get(pk=decision.pk)
            if d.status != Decision.Status.ACCEPTED:
                continue
            d.status = Decision.Status.EXPIRED
            d.save(update_fields=["status"])
            risk = Risk.objects.select_for_update().select_related("system").get(pk=d.risk_id)
            if risk.status == RiskStatus.ACCEPTED:
                risk.status = RiskStatus.OPEN
                risk.save(update_fields=["status", "updated_at"])
            audit_record(actor=None, action="decision.expire", obj=d, system=risk.system,
                         after={"risk": risk.ref, "expired_at": d.expires_at, "risk_status": risk.status})
            transaction.on_commit(lambda d=d: notify.acceptance_expired(d))
            expired += 1
    return expired


def acceptances_warn(*, now: datetime | None = None, days: int = 14) -> int:
    now = now or timezone.now()
    soon = Decision.objects.filter(status=Decision.Status.ACCEPTED, expiry_warned_at__isnull=True,
                                   expires_at__gt=now, expires_at__lte=now + timezone.timedelta(days=days))
    count = 0
    for decision in soon.select_related("risk__system__business_owner", "risk__owner"):
        # Claim with a conditional UPDATE first, so two beat runs at once never warn twice.
        if Decision.objects.filter(pk=decision.pk, expiry_warned_at__isnull=True).update(expiry_warned_at=now):
            notify.acceptance_expiring(decision)
            count += 1
    return count


RELEASE_NAME = re.compile(r"[\w.+\-/: ]{1,100}")


@transaction.atomic
def release_signoff_record(*, actor, system, release: str, verdict: str, justification: str) -> ReleaseSignoff:
    """Record the product owner's go / no-go for a release, with the gate as it stands now, frozen and hashed.

    A "go" is refused while the gate says no-go: the blocking items are resolved, triaged or accepted first (each
    of those is its own audited decision). The system row is locked so that two sign-offs are recorded in order."""
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    if not perms.can_decide(actor, system):
        raise PermissionDenied("Only the product owner of this system or a CISO signs its releases off.")
    release, justification = (release or "").strip(), (justification or "").strip()
    errors = {}
    if not RELEASE_NAME.fullmatch(release):
        errors["release"] = "Name the release (up to 100 letters, digits, spaces and . + - / : _), e.g. v2.3.0."
    if verdict not in ReleaseSignoff.Verdict.values:
        errors["verdict"] = "Choose go or no-go."
    if not justification:
        errors["justification"] = "Say why."
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    result = release_gate.evaluate(system, at=now)
    if verdict == ReleaseSignoff.Verdict.GO and result.decision != "go":
        raise ValidationError({"verdict": f"The release gate says no-go ({result.blocking_items} blocking "
                                          f"item{'s' if result.blocking_items != 1 else ''}): a go cannot be signed "
                                          "until they are resolved, triaged or accepted."})
    frozen = json.loads(json.dumps({"result": result.as_dict(), "policy": gate_policy(system.risk_tier).as_dict()},
                                   cls=DjangoJSONEncoder))
    signoff = ReleaseSignoff.objects.create(system=system, release=release, verdict=verdict,
                                            justification=justification, signed_by=actor, signed_at=now,
                                            gate=frozen, gate_sha256=_sha256_of(frozen))
    audit_record(actor=actor, action="release.signoff", obj=signoff, system=system, after={
        "release": release, "verdict": verdict, "justification": justification, "gate_decision": result.decision,
        "blocking_items": result.blocking_items, "counts": result.counts, "gate_sha256": signoff.gate_sha256})
    return signoff


# --- the release gate's policy --------------------------------------------------------------------------------------

def _loosened(before: dict, after: dict, matrix) -> list[str]:
    """What the change lets through that was blocked before (said in the audit trail and to the CISO)."""
    said = []
    for key, words in (("blocking_finding_severities", "past-SLA findings no longer block"),
                       ("blocking_open_severities", "open findings no longer block at once"),
                       ("required_subcategories", "no longer required")):
        gone = [v for v in before[key] if v not in after[key]]
        if gone:
            said.append(f"{', '.join(gone)}: {words}")
    rank = lambda key: matrix.rank(key) if key else 0  # noqa: E731 - "" = every rated risk needs an acceptance
    if rank(after["max_unaccepted_level"]) > rank(before["max_unaccepted_level"]):
        said.append(f"risks up to {after['max_unaccepted_level']} no longer need an acceptance")
    if before["block_unrated_risks"] and not after["block_unrated_risks"]:
        said.append("unrated risks no longer block")
    return said


@transaction.atomic
def gate_policy_update(*, actor, tier: str, data: dict) -> tuple[GatePolicy, list[str]]:
    """Set a tier's release gate policy (a CISO's decision, audited with what it loosens). Returns the policy and the
    loosenings."""
    if not perms.can_edit_gate_policy(actor):
        raise PermissionDenied("Only a CISO sets what blocks a release.")
    if tier not in RiskTier.values:
        raise ValidationError(f"Unknown risk tier {tier!r}.")
    matrix = get_matrix()
    errors = {}
    after = {
        "blocking_finding_severities": [s for s in BLOCKING_SEVERITIES if s in data.get("blocking_finding_severities", [])],
        "blocking_open_severities": [s for s in BLOCKING_SEVERITIES if s in data.get("blocking_open_severities", [])],
        "max_unaccepted_level": data.get("max_unaccepted_level") or "",
        "required_subcategories": list(dict.fromkeys(data.get("required_subcategories", []))),
        "block_unrated_risks": bool(data.get("block_unrated_risks")),
    }
    for key in ("blocking_finding_severities", "blocking_open_severities"):
        unknown = set(data.get(key, [])) - set(BLOCKING_SEVERITIES)
        if unknown:
            errors[key] = f"Unknown severities: {', '.join(sorted(unknown))}."
    if after["max_unaccepted_level"] and matrix.level(after["max_unaccepted_level"]) is None:
        errors["max_unaccepted_level"] = "Choose a level of the risk matrix."
    known = set(RmfSubcategory.objects.filter(ident__in=after["required_subcategories"]).values_list("ident", flat=True))
    if set(after["required_subcategories"]) - known:
        errors["required_subcategories"] = "Not NIST AI RMF subcategories: " + ", ".join(
            sorted(set(after["required_subcategories"]) - known))
    if errors:
        raise ValidationError(errors)
    policy = GatePolicy.objects.select_for_update().filter(tier=tier).first() or gate_policy(tier)
    before = policy.as_dict()
    for key, value in after.items():
        setattr(policy, key, value)
    policy.save()
    loosened = _loosened(before, after, matrix)
    audit_record(actor=actor, action="gate_policy.update", obj=policy, before=before,
                 after={**policy.as_dict(), "loosened": loosened})
    return policy, loosened


@transaction.atomic
def decisions_decide_bulk(*, actor, decisions: list[Decision], accept: bool, justification: str,
                          expires_at: datetime | None) -> list[Decision]:
    """The same decision on several sign-offs: each is recorded as its own decision (snapshot, hash, audit event), all
    or none — one that is refused refuses the lot, named."""
    decided = []
    for pending in sorted(decisions, key=lambda d: d.pk):
        try:
            decided.append(decision_decide(actor=actor, risk=pending.risk, accept=accept, justification=justification,
                                           expires_at=expires_at, kind=pending.kind))
        except ValidationError as exc:
            said = "; ".join(exc.messages)
            raise ValidationError(f"{pending.risk.ref}: {said} Nothing was recorded.") from exc
        except PermissionDenied as exc:
            raise PermissionDenied(f"{pending.risk.ref}: {exc} Nothing was recorded.") from exc
    return decided
