"""Every write to the inventory goes through here, inside a transaction, with an audit event."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from governance.accounts import permissions as perms
from governance.accounts.models import User
from governance.audit.services import audit_record, snapshot
from governance.inventory.models import AIModel, AISystem, Dataset
from governance.rmf.models import RmfAssessment, RmfSubcategory


@transaction.atomic
def system_create(*, actor: User, data: dict) -> AISystem:
    system = AISystem.objects.create(**data)
    subcategories = RmfSubcategory.objects.filter(version=system.rmf_version).only("pk")
    RmfAssessment.objects.bulk_create([RmfAssessment(system=system, subcategory=s) for s in subcategories])
    audit_record(actor=actor, action="system.create", obj=system, system=system, after=snapshot(system))
    return system


TIER_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}


@transaction.atomic
def system_update(*, actor: User, system: AISystem, data: dict) -> AISystem:
    """A lowered risk tier loosens the release gate (governance.risks.gate): only the product owner, a CISO or an
    admin may lower it, and it is audited as such (the system page shows the latest)."""
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    lowered = TIER_RANK.get(data.get("risk_tier"), 99) < TIER_RANK.get(system.risk_tier, 0)
    if lowered and not perms.can_lower_tier(actor, system):
        raise PermissionDenied("Only the system's product owner or a CISO can lower its risk tier: it loosens the "
                               "release gate. Ask them, or raise it instead.")
    before = snapshot(system)
    for field, value in data.items():
        setattr(system, field, value)
    system.save()
    after = snapshot(system)
    changed = {k: v for k, v in after.items() if before.get(k) != v and k != "updated_at"}
    if changed:
        audit_record(
            actor=actor, action="system.update", obj=system, system=system,
            before={k: before.get(k) for k in changed}, after=changed,
        )
    if lowered:
        audit_record(actor=actor, action="system.tier_lowered", obj=system, system=system,
                     before={"risk_tier": before["risk_tier"]}, after={"risk_tier": system.risk_tier})
    return system


@transaction.atomic
def system_archive(*, actor: User, system: AISystem) -> AISystem:
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    if system.archived_at is None:
        system.archived_at = timezone.now()
        system.save(update_fields=["archived_at", "updated_at"])
        audit_record(actor=actor, action="system.archive", obj=system, system=system,
                     after={"archived_at": system.archived_at})
    return system


@transaction.atomic
def system_restore(*, actor: User, system: AISystem) -> AISystem:
    system = AISystem.objects.select_for_update().get(pk=system.pk)
    if system.archived_at is not None:
        before = {"archived_at": system.archived_at}
        system.archived_at = None
        system.save(update_fields=["archived_at", "updated_at"])
        audit_record(actor=actor, action="system.restore", obj=system, system=system, before=before,
                     after={"archived_at": None})
    return system


@transaction.atomic
def model_register(*, actor: User, system: AISystem, data: dict) -> AIModel:
    model = AIModel.objects.create(system=system, **data)
    audit_record(actor=actor, action="model.register", obj=model, system=system, after=snapshot(model))
    return model


@transaction.atomic
def model_remove(*, actor: User, model: AIModel) -> None:
    before, system = snapshot(model), model.system
    audit_record(actor=actor, action="model.remove", obj=model, system=system, before=before)
    model.delete()


@transaction.atomic
def dataset_register(*, actor: User, system: AISystem, data: dict) -> Dataset:
    dataset = Dataset.objects.create(system=system, **data)
    audit_record(actor=actor, action="dataset.register", obj=dataset, system=system, after=snapshot(dataset))
    return dataset


@transaction.atomic
def dataset_remove(*, actor: User, dataset: Dataset) -> None:
    before, system = snapshot(dataset), dataset.system
    audit_record(actor=actor, action="dataset.remove", obj=dataset, system=system, before=before)
    dataset.delete()
