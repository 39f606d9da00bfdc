from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST

from governance.accounts import permissions as perms
from governance.audit.selectors import system_history
from governance.inventory import selectors, services
from governance.inventory.forms import AIModelForm, AISystemForm, DatasetForm, product_owners
from governance.inventory.models import AIModel, AISystem, Dataset, LifecycleStage, RiskTier
from governance.rmf.selectors import coverage_by_function
from governance.rmf.charts import coverage_figure_json
from governance.rmf.models import REQUIREMENT_MET, AssessmentStatus
from governance.tabletop.selectors import last_exercised
from governance.risks import gate as release_gate
from governance.risks.views import signoff_card_context
from governance.risks import selectors as risk_selectors
from governance.risks.matrix import gate_policy, get_matrix


def _filters(request: HttpRequest) -> selectors.SystemFilters:
    owner = request.GET.get("owner", "")
    return selectors.SystemFilters(
        q=request.GET.get("q", "").strip()[:100],
        stage=request.GET.get("stage", "") if request.GET.get("stage") in LifecycleStage.values else "",
        tier=request.GET.get("tier", "") if request.GET.get("tier") in RiskTier.values else "",
        owner=int(owner) if owner.isascii() and owner.isdecimal() else None,  # "²".isdecimal() is True
        archived=request.GET.get("archived") == "1", never_exercised=request.GET.get("exercised") == "never",
        sort=request.GET.get("sort", "name") if request.GET.get("sort") in selectors.SORTS else "name",
    )


def system_list(request: HttpRequest) -> HttpResponse:
    filters = _filters(request)
    page = selectors.system_page(filters, request.GET.get("page"))
    context = {
        "page": page, "filters": filters, "stages": LifecycleStage.choices, "tiers": RiskTier.choices,
        "owners": product_owners().order_by("email"), "can_create": perms.can_create_system(request.user),
        "querystring": request.GET.copy(),
    }
    # htmx gets the #results partial, except for boosted links and history restores (they need the whole page)
    partial = request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request
    response = render(request, "inventory/list.html#results" if partial else "inventory/list.html", context)
    patch_vary_headers(response, ["HX-Request"])  # same URL, two bodies: caches must not mix them up
    return response


def system_detail(request: HttpRequest, slug: str) -> HttpResponse:
    system = get_object_or_404(AISystem.objects.select_related("business_owner", "technical_owner"), slug=slug)
    coverage = coverage_by_function(system)
    context = {
        "system": system,
        "models": system.models.all(),
        "datasets": system.datasets.all(),
        "coverage": coverage,
        "coverage_figure": coverage_figure_json(coverage),
        "history": system_history(system, limit=20),
        "last_exercised": last_exercised(system),
        "gate": release_gate.evaluate(system),
        "tier_lowered": selectors.last_tier_lowering(system),
        "gate_policy": (policy := gate_policy(system.risk_tier)),
        "gate_required": [(ident, status, AssessmentStatus(status).label)
                          for ident, status in release_gate.required_subcategories(system, policy)],
        "requirement_met": REQUIREMENT_MET,
        "risk_summary": risk_selectors.system_risk_summary(system),
        "can_add_risk": perms.can_manage_risks(request.user, system) and not system.is_archived,
        "risk_levels": sorted(get_matrix().levels, key=lambda lv: -lv["rank"]),
        "can_edit": perms.can_edit_system(request.user, system),
        "can_archive": perms.can_archive_system(request.user, system),
        "can_assess": perms.can_assess(request.user, system),
        "can_edit_gate_policy": perms.can_edit_gate_policy(request.user),
        "model_form": AIModelForm(system=system),
        "dataset_form": DatasetForm(system=system),
        **signoff_card_context(request.user, system),
    }
    return render(request, "inventory/detail.html", context)


def system_create(request: HttpRequest) -> HttpResponse:
    if not perms.can_create_system(request.user):
        raise PermissionDenied("Your role cannot register AI systems.")
    may_own = perms.can_edit_ownership(request.user)
    form = AISystemForm(request.POST if request.method == "POST" else None, may_edit_ownership=may_own, initial={"business_owner": request.user})
    if request.method == "POST" and form.is_valid():
        system = services.system_create(actor=request.user, data=form.cleaned_data)
        messages.success(request, f"{system.name} registered.")
        return redirect(system)
    return render(request, "inventory/form.html", {"form": form, "system": None}, status=400 if form.errors else 200)


def system_edit(request: HttpRequest, slug: str) -> HttpResponse:
    system = get_object_or_404(AISystem, slug=slug)
    if not perms.can_edit_system(request.user, system):
        raise PermissionDenied("You may not edit this system.")
    form = AISystemForm(request.POST if request.method == "POST" else None, instance=system,
                        may_edit_ownership=perms.can_edit_ownership(request.user, system))
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in form.changed_data if not form.fields[name].disabled}
        try:
            system = services.system_update(actor=request.user, system=system, data=data)
        except PermissionDenied as exc:  # a tier only the owner or a CISO may lower: say so on the field
            form.add_error("risk_tier", str(exc))
        else:
            messages.success(request, "Changes saved.")
            return redirect(system)
    if request.method == "POST":
        system.refresh_from_db()  # the form mutated the instance while validating
    return render(request, "inventory/form.html", {"form": form, "system": system}, status=400 if form.errors else 200)


@require_POST
def system_archive(request: HttpRequest, slug: str) -> HttpResponse:
    system = get_object_or_404(AISystem, slug=slug)
    if not perms.can_archive_system(request.user, system):
        raise PermissionDenied("You may not archive this system.")
    if request.POST.get("restore") == "1":
        services.system_restore(actor=request.user, system=system)
        messages.success(request, f"{system.name} restored.")
    else:
        services.system_archive(actor=request.user, system=system)
        messages.success(request, f"{system.name} archived; it is kept with its history.")
    return redirect(system)


def _component_add(request, slug, form_class, register, label):
    system = get_object_or_404(AISystem, slug=slug)
    if not perms.can_edit_system(request.user, system):
        raise PermissionDenied("You may not change this system.")
    form = form_class(request.POST, system=system)
    if form.is_valid():
        register(actor=request.user, system=system, data=form.cleaned_data)
        messages.success(request, f"{label} registered.")
        return redirect(system)
    return render(request, "inventory/component_form.html",
                  {"form": form, "system": system, "label": label}, status=400)


@require_POST
def model_add(request: HttpRequest, slug: str) -> HttpResponse:
    return _component_add(request, slug, AIModelForm, services.model_register, "Model")


@require_POST
def dataset_add(request: HttpRequest, slug: str) -> HttpResponse:
    return _component_add(request, slug, DatasetForm, services.dataset_register, "Dataset")


@require_POST
def model_remove(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    model = get_object_or_404(AIModel.objects.select_related("system"), pk=pk, system__slug=slug)
    if not perms.can_edit_system(request.user, model.system):
        raise PermissionDenied("You may not change this system.")
    services.model_remove(actor=request.user, model=model)
    return redirect(model.system)


@require_POST
def dataset_remove(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset.objects.select_related("system"), pk=pk, system__slug=slug)
    if not perms.can_edit_system(request.user, dataset.system):
        raise PermissionDenied("You may not change this system.")
    services.dataset_remove(actor=request.user, dataset=dataset)
    return redirect(dataset.system)
