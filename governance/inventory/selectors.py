"""Reads for the inventory screens; query counts do not grow with the number of rows."""
from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from governance.inventory.models import AISystem

SORTS = {
    "name": ("name",), "-name": ("-name",),
    "tier": ("-tier_rank", "name"), "-tier": ("tier_rank", "name"),
    "stage": ("lifecycle_stage", "name"), "-stage": ("-lifecycle_stage", "name"),
    "owner": ("business_owner__email", "name"), "-owner": ("-business_owner__email", "name"),
    "updated": ("updated_at", "name"), "-updated": ("-updated_at", "name"),
}
PAGE_SIZE = 25
TIER_RANK = Case(
    When(risk_tier="critical", then=Value(4)), When(risk_tier="high", then=Value(3)),
    When(risk_tier="medium", then=Value(2)), default=Value(1), output_field=IntegerField(),
)


@dataclass
class SystemFilters:
    q: str = ""
    stage: str = ""
    tier: str = ""
    owner: int | None = None
    archived: bool = False
    never_exercised: bool = False
    sort: str = "name"


def system_queryset(filters: SystemFilters) -> QuerySet[AISystem]:
    qs = AISystem.objects.select_related("business_owner", "technical_owner").annotate(tier_rank=TIER_RANK)
    qs = qs.filter(archived_at__isnull=not filters.archived)
    if filters.q:
        qs = qs.filter(
            Q(name__icontains=filters.q) | Q(slug__icontains=filters.q) | Q(purpose__icontains=filters.q)
            | Q(business_unit__icontains=filters.q) | Q(third_party_provider__icontains=filters.q)
        )
    if filters.stage:
        qs = qs.filter(lifecycle_stage=filters.stage)
    if filters.tier:
        qs = qs.filter(risk_tier=filters.tier)
    if filters.owner:
        qs = qs.filter(business_owner_id=filters.owner)
    if filters.never_exercised:
        qs = qs.never_exercised()
    return qs.order_by(*SORTS.get(filters.sort, SORTS["name"]))


def system_page(filters: SystemFilters, page_number) -> Page:
    qs = system_queryset(filters).annotate(
        model_count=Count("models", distinct=True), dataset_count=Count("datasets", distinct=True)
    )
    return Paginator(qs, PAGE_SIZE).get_page(page_number)


def system_detail(slug: str) -> AISystem:
    return (
        AISystem.objects.select_related("business_owner", "technical_owner")
        .prefetch_related("models", "datasets")
        .get(slug=slug)
    )


def last_tier_lowering(system):
    """The latest audited lowering of the system's risk tier (it loosened the release gate), or None."""
    from governance.audit.models import AuditEvent

    return (AuditEvent.objects.filter(system=system, action="system.tier_lowered").select_related("actor")
            .order_by("-seq").first())
