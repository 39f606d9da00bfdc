from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers

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
        "status_label": AssessmentStatus(status).label if status else "",
        "status_links": _status_links(coverage), "coverage": coverage,
        "coverage_figure": coverage_figure_json(coverage), "can_assess": perms.can_assess(request.user, system),
    }
    return render(request, "rmf/profile.html", context)


def _status_links(coverage) -> list[tuple[str, str, int]]:
    """Every status with the system's count (the coverage card's figures), in the profile's order."""
    return [(s.value, s.label, coverage.overall.counts.get(s, 0)) for s in selectors.STATUS_ORDER]


def _status_of_page(request) -> str:
    """The status filter of the profile the htmx request came from (its URL)."""
    current = request.htmx.current_url or ""
    status = parse_qs(urlsplit(current).query).get("status", [""])[0]
    return status if status in AssessmentStatus.values else ""


def _assessment(pk: int) -> RmfAssessment:
    return get_object_or_404(
        RmfAssessment.objects.select_related("system", "subcategory__category__function", "owner"), pk=pk
    )


def _in_profile(a: RmfAssessment) -> str:
    return f"{reverse('rmf:profile', args=[a.system.slug])}#assessment-{a.pk}"


def assessment_row(request: HttpRequest, pk: int) -> HttpResponse:
    """The read-only row (used by 'cancel'); without htmx, the row in its profile."""
    a = _assessment(pk)
    if not request.htmx:
        return redirect(_in_profile(a))
    return render(request, "rmf/profile.html#row", {"a": a, "can_assess": perms.can_assess(request.user, a.system)})


def assessment_edit(request: HttpRequest, pk: int) -> HttpResponse:
    a = _assessment(pk)
    if not perms.can_assess(request.user, a.system):
        raise PermissionDenied("You may not assess this system.")
    form = AssessmentForm(request.POST if request.method == "POST" else None, instance=a)
    if request.method == "POST" and form.is_valid():
        a = services.assessment_update(actor=request.user, assessment=a, data=form.cleaned_data)
        if not request.htmx:  # a plain form post (no JavaScript): back to the profile
            messages.success(request, f"{a.subcategory.ident} saved.")
            return redirect(_in_profile(a))
        a = _assessment(a.pk)
        coverage = selectors.coverage_by_function(a.system)
        group = next(g for g in selectors.profile(a.system) if g.function.pk == a.subcategory.category.function_id)
        category = next(c for c in group.categories if c.category.pk == a.subcategory.category_id)
        return render(request, "rmf/assessment_saved.html", {
            "a": a, "can_assess": True, "coverage": coverage, "coverage_figure": coverage_figure_json(coverage),
            "system": a.system, "status": _status_of_page(request), "status_links": _status_links(coverage),
            "group": group, "category": category,
        })
    if request.method == "POST":
        a = _assessment(pk)
    status = 400 if form.errors else 200
    # htmx swaps the row in place; a plain link or form post gets a whole page around the same row
    template = "rmf/profile.html#edit-row" if request.htmx else "rmf/assessment_page.html"
    response = render(request, template, {"a": a, "form": form}, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def portfolio(request: HttpRequest) -> HttpResponse:
    systems = list(AISystem.objects.active().select_related("business_owner").order_by("name"))
    coverage_map = selectors.portfolio_coverage(systems)
    functions = [c.function for c in next(iter(coverage_map.values()))] if systems else selectors.function_codes()
    rows = [(s, [coverage_map[s.pk].get(f) for f in functions], coverage_map[s.pk]) for s in systems]
    return render(request, "rmf/portfolio.html", {
        "rows": rows, "functions": functions, "portfolio_percent": selectors.portfolio_percent(coverage_map.values()),
        
        "figure": portfolio_heatmap_json(systems, coverage_map, functions) if systems else None,
    })
