"""Reads for RMF profiles and coverage: a fixed number of queries whatever the data size."""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

from django.db.models import Count

from governance.rmf.models import AssessmentStatus, RmfAssessment, RmfFunction

S = AssessmentStatus


@dataclass
class Coverage:
    function: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def applicable(self) -> int:
        return self.total - self.counts.get(S.NOT_APPLICABLE, 0)

    @property
    def assessed(self) -> int:
        return self.total - self.counts.get(S.NOT_ASSESSED, 0)

    @property
    def percent(self) -> int:
        """Implemented counts fully, partial half; not-applicable items are left out."""
        if not self.applicable:
            return 0
        score = self.counts.get(S.IMPLEMENTED, 0) + 0.5 * self.counts.get(S.PARTIAL, 0)
        return round(100 * score / self.applicable)


def function_codes(version: str = "1.0") -> list[str]:
    return list(RmfFunction.objects.filter(version=version).values_list("code", flat=True))


def coverage_by_function(system) -> list[Coverage]:
    rows = (
        RmfAssessment.objects.filter(system=system)
        .values("subcategory__category__function__code", "status")
        .annotate(n=Count("id"))
    )
    by_function = {code: Coverage(code) for code in function_codes(system.rmf_version)}
    for row in rows:
        cov = by_function.setdefault(row["subcategory__category__function__code"], Coverage(row["subcategory__category__function__code"]))
        cov.counts[row["status"]] = row["n"]
    return list(by_function.values())


def portfolio_coverage(systems) -> dict[int, dict[str, Coverage]]:
    """{system id: {function code: Coverage}} for the given systems, in one query."""
    rows = (
        RmfAssessment.objects.filter(system__in=systems)
        .values("system_id", "subcategory__category__function__code", "status")
        .annotate(n=Count("id"))
    )
    result: dict[int, dict[str, Coverage]] = {}
    for row in rows:
        code = row["subcategory__category__function__code"]
        cov = result.setdefault(row["system_id"], {}).setdefault(code, Coverage(code))
        cov.counts[row["status"]] = row["n"]
    return result


@dataclass
class CategoryGroup:
    category: object
    assessments: list


@dataclass
class FunctionGroup:
    function: object
    categories: list[CategoryGroup]


def profile(system, status: str = "") -> list[FunctionGroup]:
    """All assessments of a system grouped by function, then category, in catalogue order."""
    qs = (
        RmfAssessment.objects.filter(system=system)
        .select_related("subcategory__category__function", "owner")
        .order_by("subcategory__position")
    )
    if status:
        qs = qs.filter(status=status)
    groups = []
    for function, by_fn in groupby(qs, key=lambda a: a.subcategory.category.function):
        categories = [
            CategoryGroup(category, list(items))
            for category, items in groupby(by_fn, key=lambda a: a.subcategory.category)
        ]
        groups.append(FunctionGroup(function, categories))
    return groups
