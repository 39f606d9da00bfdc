from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from governance.accounts import permissions as perms
from governance.inventory.models import AISystem
from governance.rmf import selectors, services
from governance.rmf.charts import coverage_figure_json, portfolio_heatmap_json
from governance.rmf.forms import AssessmentForm
from governance.rmf.models import AssessmentStatus, RmfAssessment


def profile(request: HttpRequest, slug: str) -> HttpResponse:
    system = get_object_or_404(AISystem.objects.select_related("business_owner"), slug=slug)
    status = request.GET.get("status", "")
    status = status if status in AssessmentStatus.values else ""
    coverage = selectors.coverage_by_function(system)
    context = {
        "system": system, "groups": selectors.profile(system, status), "status": status,
        "statuses": AssessmentStatus.choices, "coverage": coverage,
        "coverage_figure": coverage_figure_json(coverage), "can_assess": perms.can_assess(request.user, system),
    }
    return render(request, "rmf/profile.html", context)


def _assessment(pk: int) -> RmfAssessment:
    return get_object_or_404(
        RmfAssessment.objects.select_related("system", "subcategory__category__function", "owner"), pk=pk
    )


def assessment_row(request: HttpRequest, pk: int) -> HttpResponse:
    """The read-only row (used by 'cancel')."""
    a = _assessment(pk)
    return render(request, "rmf/profile.html#row", {"a": a, "can_assess": perms.can_assess(request.user, a.system)})


def assessment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    a = _assessment(pk)
    if not perms.can_assess(request.user, a.system):
        raise PermissionDenied("You may not assess this system.")
    form = AssessmentForm(request.POST or None, instance=a)
    if request.method == "POST" and form.is_valid():
        a = services.assessment_update(actor=request.user, assessment=a, data=form.cleaned_data)
        a = _assessment(a.pk)
        coverage = selectors.coverage_by_function(a.system)
        return render(request, "rmf/assessment_saved.html", {
            "a": a, "can_assess": True, "coverage": coverage, "coverage_figure": coverage_figure_json(coverage),
        })
    if request.method == "POST":
        a = _assessment(pk)
    status = 400 if form.errors else 200
    return render(request, "rmf/profile.html#edit-row", {"a": a, "form": form}, status=status)


def portfolio(request: HttpRequest) -> HttpResponse:
    systems = list(AISystem.objects.filter(archived_at__isnull=True).select_related("business_owner").order_by("name"))
    coverage_map = selectors.portfolio_coverage(systems)
    functions = selectors.function_codes()
    rows = [(s, [coverage_map.get(s.pk, {}).get(f) for f in functions]) for s in systems]
    return render(request, "rmf/portfolio.html", {
        "rows": rows, "functions": functions,
        "figure": portfolio_heatmap_json(systems, coverage_map, functions) if systems else None,
    })
