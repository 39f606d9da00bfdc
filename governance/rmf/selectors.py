"""Reads for RMF profiles and coverage: a fixed number of queries whatever the data size."""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from itertools import groupby

from django.db.models import Count

from governance.rmf.models import AssessmentStatus, RmfAssessment, RmfFunction

S = AssessmentStatus


COVERAGE_DEFINITION = ("Coverage = (implemented + ½ × partial) ÷ applicable subcategories, rounded half up. "
                       "Not-applicable subcategories are left out; not assessed and gaps count 0. A system's figure "
                       "pools all its subcategories (not an average of the functions); the portfolio's is the mean of "
                       "the systems' figures. n/a: nothing applies.")


def percent_half_up(numerator: Fraction) -> int:
    return int(numerator * 100 + Fraction(1, 2))


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
    def ratio(self) -> Fraction | None:
        """Implemented counts fully, partial half, over the applicable subcategories; None when none applies."""
        if not self.applicable:
            return None
        return Fraction(2 * self.counts.get(S.IMPLEMENTED, 0) + self.counts.get(S.PARTIAL, 0), 2 * self.applicable)

    @property
    def percent(self) -> int | None:
        ratio = self.ratio
        return None if ratio is None else percent_half_up(ratio)


class SystemCoverage:
    """A system's coverage per function (iterate it) and as one figure pooled over all its subcategories."""

    def __init__(self, functions: list[Coverage]):
        self.functions = functions
        pooled: dict[str, int] = {}
        for cov in functions:
            for status, n in cov.counts.items():
                pooled[status] = pooled.get(status, 0) + n
        self.overall = Coverage("ALL", pooled)

    def __iter__(self):
        return iter(self.functions)

    def get(self, code: str) -> Coverage | None:
        return next((c for c in self.functions if c.function == code), None)

    @property
    def percent(self) -> int | None:
        return self.overall.percent


def portfolio_percent(coverages: list[SystemCoverage]) -> int | None:
    """The mean of the systems' figures (systems where nothing applies are left out)."""
    ratios = [c.overall.ratio for c in coverages if c.overall.ratio is not None]
    return percent_half_up(sum(ratios) / len(ratios)) if ratios else None


def function_codes(version: str = "1.0") -> list[str]:
    return list(RmfFunction.objects.filter(version=version).values_list("code", flat=True))


def coverage_by_function(system) -> SystemCoverage:
    return portfolio_coverage([system])[system.pk]


def portfolio_coverage(systems) -> dict[int, SystemCoverage]:
    """{system id: SystemCoverage, with every function of the catalogue} for the given systems, in two queries."""
    systems = list(systems)
    rows = (
        RmfAssessment.objects.filter(system__in=systems)
        .values("system_id", "subcategory__category__function__code", "status")
        .annotate(n=Count("id"))
    )
    codes = {version: function_codes(version) for version in {s.rmf_version for s in systems}}
    result = {s.pk: {code: Coverage(code) for code in codes[s.rmf_version]} for s in systems}
    for row in rows:
        code = row["subcategory__category__function__code"]
        cov = result[row["system_id"]].setdefault(code, Coverage(code))
        cov.counts[row["status"]] = row["n"]
    return {pk: SystemCoverage(list(by_code.values())) for pk, by_code in result.items()}


# The order the profile lists statuses in: what is done first, what does not apply last.
STATUS_ORDER = [S.IMPLEMENTED, S.PARTIAL, S.GAP, S.NOT_ASSESSED, S.NOT_APPLICABLE]


def status_counts(counts: dict[str, int]) -> list[tuple[str, str, int]]:
    """[(status, label, n)] in STATUS_ORDER, for the statuses present."""
    return [(s.value, s.label, counts[s]) for s in STATUS_ORDER if counts.get(s)]


class _CountedByStatus:
    counts: dict[str, int]

    @property
    def count_list(self) -> list[tuple[str, str, int]]:
        return status_counts(self.counts)


@dataclass
class CategoryGroup(_CountedByStatus):
    category: object
    assessments: list  # the rows shown: those with the chosen status, or all
    counts: dict[str, int] = field(default_factory=dict)  # every row of the category, by status


@dataclass
class FunctionGroup(_CountedByStatus):
    function: object
    categories: list[CategoryGroup]
    counts: dict[str, int] = field(default_factory=dict)  # every row of the function, by status


def profile(system, status: str = "") -> list[FunctionGroup]:
    """All assessments of a system grouped by function, then category, in catalogue order, each group with its
    counts by status (over all its rows). With a status, only the rows and groups holding that status."""
    qs = (
        RmfAssessment.objects.filter(system=system)
        .select_related("subcategory__category__function", "owner")
        .order_by("subcategory__position")
    )
    groups = []
    for function, by_fn in groupby(qs, key=lambda a: a.subcategory.category.function):
        categories, fn_counts = [], {}
        for category, items in groupby(by_fn, key=lambda a: a.subcategory.category):
            items = list(items)
            counts: dict[str, int] = {}
            for a in items:
                counts[a.status] = counts.get(a.status, 0) + 1
                fn_counts[a.status] = fn_counts.get(a.status, 0) + 1
            shown = [a for a in items if a.status == status] if status else items
            if shown:
                categories.append(CategoryGroup(category, shown, counts))
        if categories:
            groups.append(FunctionGroup(function, categories, fn_counts))
    return groups
