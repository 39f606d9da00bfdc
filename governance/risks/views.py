"""The register's screens: short views that parse input, call one service or selector, and render.

Roles are enforced here on the server (PermissionDenied); templates only hide what a user may not do.
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from governance.accounts import permissions as perms
from governance.accounts.models import User
from governance.findings.models import Finding
from governance.inventory.models import AISystem, RiskTier
from governance.risks import export, selectors, services
from governance.risks.charts import heatmap_json
from governance.risks.forms import (
    BulkDecideForm, CloseForm, DecideForm, DecisionRequestForm, GatePolicyForm, MatrixForm, MitigationForm,
    MitigationStatusForm, ReleaseSignoffForm,
    RiskForm, parse_ids,
)
from governance.risks.matrix import gate_policy, get_matrix
from governance.risks.models import MitigationAction, ReleaseSignoff, Risk, RiskStatus

PAGE_SIZE = 50


def _add_errors(form, exc: ValidationError) -> None:
    """A service's ValidationError becomes errors on the form's fields (or the form as a whole)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            shown = field in form.fields and not form.fields[field].widget.is_hidden  # a hidden field shows no error
            form.add_error(field if shown else None, errors)
    else:
        form.add_error(None, exc.messages)


def register_filters(params, matrix) -> selectors.RiskFilters:
    """The register's filters from query parameters (the page, the exports and the API read the same ones)."""
    def level(name: str, also=()) -> str:  # the matrix is read only when a level is asked for
        value = params.get(name, "")
        return value if value and (value in also or value in {lv["key"] for lv in matrix.levels}) else ""

    owner, expiring = params.get("owner", ""), params.get("expiring", "")
    return selectors.RiskFilters(
        system=params.get("system", "")[:80],
        level=level("level", also=("unrated",)), min_level=level("min_level"),
        status=params.get("status", "") if params.get("status") in {"all", *RiskStatus.values} else "",
        owner=int(owner) if owner.isdecimal() and len(owner) < 12 else None,
        overdue=params.get("overdue") == "1", awaiting=params.get("awaiting") == "1",
        unaccepted=params.get("unaccepted") == "1", archived=params.get("archived") == "1",
        expiring=int(expiring) if expiring.isdecimal() and 0 < int(expiring[:5]) <= 3650 else None,
        q=params.get("q", "").strip()[:100], cell=_cell(params.get("cell", "")),
    )


def _cell(value: str) -> tuple[str, int, int] | None:
    """A matrix cell, "residual-3-4" (side, likelihood, impact), as the posture page's matrix links it."""
    side, _, rest = value[:30].partition("-")
    likelihood, _, impact = rest.partition("-")
    if side in ("inherent", "residual") and likelihood.isdecimal() and impact.isdecimal():
        return side, int(likelihood), int(impact)
    return None


def _filters(request: HttpRequest, matrix) -> selectors.RiskFilters:
    return register_filters(request.GET, matrix)


def register(request: HttpRequest) -> HttpResponse:
    """The list and its heat map come from the same list of risks, loaded once: they cannot disagree."""
    matrix = get_matrix()
    filters = _filters(request, matrix)
    risks = list(selectors.register_queryset(filters, matrix))
    page = Paginator(risks, PAGE_SIZE).get_page(request.GET.get("page"))
    cells = selectors.heat_counts(risks)
    context = {
        "page": page, "filters": filters, "matrix": matrix, "levels": {lv["key"]: lv for lv in matrix.levels},
        "heatmap": heatmap_json(matrix, cells), "rated": sum(len(v) for v in cells["residual"].values()),
        "total": len(risks), "querystring": request.GET.copy(), "statuses": RiskStatus.choices,
        "systems": AISystem.objects.active().only("slug", "name").order_by("name"),
        "owners": User.objects.filter(is_active=True, owned_risks__isnull=False).distinct().order_by("full_name"),
        "can_create": perms.can_create_risks(request.user), "can_edit_matrix": perms.can_edit_matrix(request.user),
        "today": timezone.localdate(),
    }
    template = "risks/list.html#results" if request.htmx and not request.htmx.boosted else "risks/list.html"
    return render(request, template, context)


def _export_rows(request: HttpRequest):
    matrix = get_matrix()
    return export.rows(selectors.register_queryset(_filters(request, matrix)), matrix)


def export_csv(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(export.to_csv(_export_rows(request)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="risk-register-{timezone.localdate():%Y%m%d}.csv"'
    return response


def export_xlsx(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(export.to_xlsx(_export_rows(request)),
                            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f'attachment; filename="risk-register-{timezone.localdate():%Y%m%d}.xlsx"'
    return response


def _prefill(request: HttpRequest) -> dict:
    """/risks/new/?system=<slug>&findings=1,2,3 — a risk drafted from findings picked in the triage queue."""
    initial = {"system": request.GET.get("system", "")[:80], "owner": request.user.pk}
    ids = parse_ids(request.GET.get("findings", ""))
    if not ids:
        return initial
    findings = list(Finding.objects.filter(pk__in=ids).order_by("-severity_rank", "id")[:100])
    if findings:
        top = findings[0]
        initial["title"] = top.title[:200] + (f" (+{len(findings) - 1} related findings)" if len(findings) > 1 else "")
        initial["description"] = "Raised from findings:\n" + "\n".join(
            f"- #{f.pk} [{f.severity}] {f.title[:160]} ({f.tool}, {f.location[:80]})" for f in findings)
        initial["findings"] = ",".join(str(f.pk) for f in findings)
        if not initial["system"] and top.system_id:
            initial["system"] = top.system.slug
    return initial


def risk_create(request: HttpRequest) -> HttpResponse:
    if not perms.can_create_risks(request.user):
        raise PermissionDenied("Your role cannot create risks.")
    form = RiskForm(request.POST if request.method == "POST" else None, user=request.user, matrix=get_matrix(),
                    initial=None if request.method == "POST" else _prefill(request))
    if request.method == "POST" and form.is_valid():
        system = form.cleaned_data["system"]
        if not perms.can_manage_risks(request.user, system):
            raise PermissionDenied("You may not add risks to this system.")
        try:
            risk = services.risk_create(actor=request.user, system=system, data=form.service_data(),
                                        relations=form.relations())
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"{risk.ref} added to the register.")
            return redirect(risk)
    return render(request, "risks/form.html", {"form": form, "risk": None, "matrix": get_matrix()},
                  status=400 if form.errors else 200)


def risk_edit(request: HttpRequest, ref: str) -> HttpResponse:
    risk = get_object_or_404(Risk.objects.select_related("system"), ref=ref)
    if not perms.can_manage_risks(request.user, risk.system):
        raise PermissionDenied("You may not edit risks of this system.")
    matrix = get_matrix()
    form = RiskForm(request.POST if request.method == "POST" else None, user=request.user, matrix=matrix, risk=risk, initial=RiskForm.initial_for(risk))
    if request.method == "POST" and form.is_valid():
        try:
            risk = services.risk_update(actor=request.user, risk=risk, data=form.service_data(), relations=form.relations())
        except ValidationError as exc:
            _add_errors(form, exc)
        except PermissionDenied as exc:  # a signed-off rating only its decider may lower: say so on the form
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Changes saved.")
            return redirect(risk)
    return render(request, "risks/form.html", {"form": form, "risk": risk, "matrix": matrix},
                  status=400 if form.errors else 200)


def _detail(request: HttpRequest, ref: str, status: int = 200, **forms) -> HttpResponse:
    try:
        page = selectors.risk_page(ref)
    except Risk.DoesNotExist:
        raise Http404("No such risk.")
    risk, matrix = page.risk, get_matrix()
    user = request.user
    pending = next((d for d in page.decisions if d.status == "pending"), None)
    context = {
        "risk": risk, "page": page, "matrix": matrix, "levels": {lv["key"]: lv for lv in matrix.levels},
        "can_manage": perms.can_manage_risks(user, risk.system), "can_decide": perms.can_decide(user, risk.system),
        "request_form": forms.get("request_form") or DecisionRequestForm(),
        "decide_form": forms.get("decide_form") or DecideForm(initial={
            "expires_at": timezone.localdate() + timezone.timedelta(days=180),
            "kind": pending.kind if pending else "residual_risk"}),
        "close_form": forms.get("close_form") or CloseForm(),
        "action_form": forms.get("action_form") or MitigationForm(),
        "action_statuses": MitigationAction.Status.choices,
        "pending": pending,
    }
    return render(request, "risks/detail.html", context, status=status)


def risk_detail(request: HttpRequest, ref: str) -> HttpResponse:
    return _detail(request, ref)


def _risk_for(request: HttpRequest, ref: str, check) -> Risk:
    risk = get_object_or_404(Risk.objects.select_related("system"), ref=ref)
    if not check(request.user, risk.system):
        raise PermissionDenied("You may not do this for risks of this system.")
    return risk


@require_POST
def risk_request(request: HttpRequest, ref: str) -> HttpResponse:
    risk = _risk_for(request, ref, perms.can_manage_risks)
    form = DecisionRequestForm(request.POST)
    if form.is_valid():
        try:
            services.decision_request(actor=request.user, risk=risk, kind=form.cleaned_data["kind"],
                                      note=form.cleaned_data["note"])
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Sign-off requested from {risk.system.business_owner}.")
            return redirect(risk)
    return _detail(request, ref, status=400, request_form=form)


def _safe_next(request: HttpRequest, default: str) -> str:
    nxt = request.POST.get("next", "")
    # also refuses "/\\evil.example", which browsers follow to another site like "//evil.example"
    safe = url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return nxt if safe else default


@require_POST
def risk_decide(request: HttpRequest, ref: str) -> HttpResponse:
    risk = _risk_for(request, ref, perms.can_decide)
    form = DecideForm(request.POST)
    if form.is_valid():
        accept = form.cleaned_data["decision"] == "accept"
        try:
            services.decision_decide(actor=request.user, risk=risk, accept=accept,
                                     justification=form.cleaned_data["justification"],
                                     expires_at=form.expires_datetime(), kind=form.cleaned_data["kind"])
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"{risk.ref} {'accepted' if accept else 'rejected'}; the decision is recorded with a snapshot.")
            return redirect(_safe_next(request, risk.get_absolute_url()))
    return _detail(request, ref, status=400, decide_form=form)


@require_POST
def risk_close(request: HttpRequest, ref: str) -> HttpResponse:
    risk = _risk_for(request, ref, perms.can_manage_risks)
    form = CloseForm(request.POST)
    if form.is_valid():
        services.risk_close(actor=request.user, risk=risk, reason=form.cleaned_data["reason"])
        messages.success(request, f"{risk.ref} closed. Its findings keep their own state.")
        return redirect(risk)
    return _detail(request, ref, status=400, close_form=form)


@require_POST
def action_add(request: HttpRequest, ref: str) -> HttpResponse:
    risk = _risk_for(request, ref, perms.can_manage_risks)
    form = MitigationForm(request.POST)
    if form.is_valid():
        services.mitigation_add(actor=request.user, risk=risk, data=form.cleaned_data)
        messages.success(request, "Mitigation action added.")
        return redirect(risk)
    return _detail(request, ref, status=400, action_form=form)


@require_POST
def action_status(request: HttpRequest, ref: str, pk: int) -> HttpResponse:
    action = get_object_or_404(MitigationAction.objects.select_related("risk__system"), pk=pk, risk__ref=ref)
    if not perms.can_manage_risks(request.user, action.risk.system):
        raise PermissionDenied("You may not change actions of this risk.")
    form = MitigationStatusForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a valid status.")
        return redirect(action.risk)
    services.mitigation_set_status(actor=request.user, action=action, status=form.cleaned_data["status"])
    return redirect(action.risk)


def inbox(request: HttpRequest, bulk_form: BulkDecideForm | None = None) -> HttpResponse:
    """My sign-offs: pending decisions the user may take, and acceptances expiring within 30 days."""
    matrix = get_matrix()
    pending = list(selectors.inbox(request.user).select_related("risk__owner"))
    default_expiry = timezone.localdate() + timezone.timedelta(days=180)
    return render(request, "risks/inbox.html", {
        "pending": pending, "expiring": list(selectors.expiring(request.user).select_related("decided_by")),
        "expiry_window": selectors.EXPIRY_WINDOW_DAYS,
        "levels": {lv["key"]: lv for lv in matrix.levels}, "today": timezone.localdate(),
        "default_expiry": default_expiry,
        "bulk_form": bulk_form or BulkDecideForm(pending=pending, initial={"expires_at": default_expiry}),
        "show_bulk": len(pending) > 1 or bulk_form is not None,  # ticks only where there is a choice (or an error)
    }, status=400 if bulk_form is not None else 200)


@require_POST
def decide_bulk(request: HttpRequest) -> HttpResponse:
    """One decision and one justification on several sign-offs of the user's inbox, all or none."""
    form = BulkDecideForm(request.POST, pending=selectors.inbox(request.user).select_related("risk"))
    if form.is_valid():
        accept = form.cleaned_data["decision"] == "accept"
        try:
            decided = services.decisions_decide_bulk(actor=request.user, decisions=form.chosen(), accept=accept,
                                                     justification=form.cleaned_data["justification"],
                                                     expires_at=form.expires_datetime())
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            refs = ", ".join(d.risk.ref for d in decided)
            messages.success(request, f"{len(decided)} sign-off{'s' if len(decided) != 1 else ''} "
                                      f"{'accepted' if accept else 'rejected'} ({refs}), each recorded with its snapshot.")
            return redirect("risks:inbox")
    return inbox(request, bulk_form=form)


def matrix_settings(request: HttpRequest) -> HttpResponse:
    if not perms.can_edit_matrix(request.user):
        raise PermissionDenied("Only a CISO or an admin can change the risk matrix.")
    matrix = get_matrix()
    form = MatrixForm(request.POST if request.method == "POST" else None, matrix=matrix)
    if request.method == "POST" and form.is_valid():
        try:
            n = services.matrix_update(actor=request.user, **form.matrix_data())
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"Matrix saved; {n} risk{'s' if n != 1 else ''} re-rated.")
            return redirect("risks:matrix")
    return render(request, "risks/matrix.html", {"form": form, "matrix": matrix}, status=400 if form.errors else 200)


# --- release sign-off ----------------------------------------------------------------------------------------------

def signoff_card_context(user, system, form=None) -> dict:
    """What the system page's release sign-off card shows (also re-rendered alone after a sign-off)."""
    return {"system": system, "signoffs": selectors.release_signoffs(system)[:10],
            "signoff_form": form or ReleaseSignoffForm(), "can_sign": perms.can_decide(user, system)}


@require_POST
def signoff_create(request: HttpRequest, slug: str) -> HttpResponse:
    system = get_object_or_404(AISystem.objects.select_related("business_owner"), slug=slug)
    if not perms.can_decide(request.user, system):
        raise PermissionDenied("Only the product owner of this system or a CISO signs its releases off.")
    form = ReleaseSignoffForm(request.POST)
    if form.is_valid():
        try:
            signoff = services.release_signoff_record(actor=request.user, system=system, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, f"{signoff.release} signed off as {signoff.get_verdict_display().lower()}; the "
                                      "gate as it stands now is frozen in the sign-off.")
            if request.htmx:
                return render(request, "risks/_signoff_card.html", signoff_card_context(request.user, system))
            return redirect(f"{system.get_absolute_url()}#release-signoff")
    return render(request, "risks/_signoff_card.html", signoff_card_context(request.user, system, form), status=400)


def signoff_detail(request: HttpRequest, pk: int) -> HttpResponse:
    signoff = get_object_or_404(ReleaseSignoff.objects.select_related("system", "signed_by"), pk=pk)
    return render(request, "risks/signoff.html", {"signoff": signoff, "result": signoff.gate["result"],
                                                  "policy": signoff.gate["policy"]})


# --- the release gate's policy --------------------------------------------------------------------------------------

def gate_policies(request: HttpRequest) -> HttpResponse:
    """Every tier's policy side by side, with how many active systems each applies to."""
    tiers = [(value, label, gate_policy(value)) for value, label in RiskTier.choices]
    per_tier = dict(AISystem.objects.active().values_list("risk_tier").annotate(n=Count("id")))
    matrix = get_matrix()
    return render(request, "risks/gate_policies.html", {"can_edit": perms.can_edit_gate_policy(request.user), "tiers": [
        {"tier": t, "label": label, "policy": p, "systems": per_tier.get(t, 0),
         "level": (matrix.level(p.max_unaccepted_level) or {}).get("label", "")} for t, label, p in tiers]})


def gate_policy_edit(request: HttpRequest, tier: str) -> HttpResponse:
    if tier not in RiskTier.values:
        raise Http404("No such risk tier.")
    if not perms.can_edit_gate_policy(request.user):
        raise PermissionDenied("Only a CISO sets what blocks a release.")
    matrix, policy = get_matrix(), gate_policy(tier)
    form = GatePolicyForm(request.POST if request.method == "POST" else None, matrix=matrix, initial=policy.as_dict())
    if request.method == "POST" and form.is_valid():
        try:
            _, loosened = services.gate_policy_update(actor=request.user, tier=tier, data=form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            said = f" It lets through what it blocked before: {'; '.join(loosened)}." if loosened else ""
            messages.success(request, f"The {tier}-tier release gate policy is saved and recorded in the audit "
                                      f"trail.{said}")
            return redirect("risks:gate-policies")
    return render(request, "risks/gate_policy_form.html", {
        "form": form, "tier": tier, "tier_label": RiskTier(tier).label,
        "systems": AISystem.objects.active().filter(risk_tier=tier).count()}, status=400 if form.errors else 200)
