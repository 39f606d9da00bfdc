from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from governance.accounts import permissions as perms
from governance.findings import pull, selectors, services, sources
from governance.findings.forms import BulkForm, MappingRuleForm, PullSourceForm, UploadForm
from governance.findings.imports import import_run_create
from governance.findings.models import Finding, FindingState, ImportRun, MappingRule, PullSource, Severity
from governance.inventory.models import AISystem
from governance.risks import services as risk_services
from governance.risks.models import Risk


SEVERITY_SETS = [("critical,high", "Critical + high"), ("critical,high,medium", "Medium and above")]


def _queue_filters(request: HttpRequest) -> selectors.QueueFilters:
    g = request.GET
    states = {"open", "all", *FindingState.values}
    assignee = g.get("assignee", "")
    return selectors.QueueFilters(
        system=g.get("system", "")[:80], tool=g.get("tool", "")[:60],
        severities=selectors.parse_severities(g.get("severity", "")[:100]),
        state=g.get("state", "open") if g.get("state", "open") in states else "open",
        breached=g.get("breached") == "1", q=g.get("q", "").strip()[:100], archived=g.get("archived") == "1",
        assignee=int(assignee) if assignee.isdecimal() else None,
        sort=g.get("sort", "severity") if g.get("sort") in selectors.SORTS else "severity",
    )


def queue(request: HttpRequest) -> HttpResponse:
    filters = _queue_filters(request)
    filters.at = timezone.now()  # the list, its total and each row's "breached" read at the same moment
    if request.htmx and request.GET.get("partial") == "rows":  # "load more": the total is already on the page
        (rows, next_cursor), total = selectors.queue_page(filters, request.GET.get("after", "")), None
    else:
        page = selectors.queue_list(filters, request.GET.get("after", ""))
        rows, next_cursor, total = page.rows, page.next_cursor, page.total
    context = {
        "rows": rows, "next_cursor": next_cursor, "filters": filters, "querystring": request.GET.copy(),
        "total": total,
        "systems": AISystem.objects.active().only("slug", "name"),
        "tools": selectors.queue_tools(), "severities": Severity.choices, "severity_sets": SEVERITY_SETS, "states": FindingState.choices,
        "can_triage": perms.can_triage(request.user), "bulk_form": BulkForm(),
    }
    if request.htmx and request.GET.get("partial") == "rows":
        return render(request, "findings/queue.html#rows", context)
    if request.htmx and not request.htmx.boosted:
        return render(request, "findings/queue.html#results", context)
    return render(request, "findings/queue.html", context)


@require_POST
def bulk(request: HttpRequest) -> HttpResponse:
    if not perms.can_triage(request.user) and not request.user.owned_systems.exists():
        raise PermissionDenied("Your role cannot triage findings.")
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdecimal()]
    form = BulkForm(request.POST, id_list=ids)
    back = request.POST.get("next") or "/findings/"
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = "/findings/"  # "//evil", "/\\evil" and "https://evil" would leave the site
    if not form.is_valid():
        for errors in form.errors.values():
            for e in errors:
                messages.error(request, e)
        return redirect(back)
    findings = list(Finding.objects.filter(pk__in=ids).select_related("system"))
    if not perms.can_triage(request.user) and not all(perms.can_triage_system(request.user, f.system) for f in findings):
        raise PermissionDenied("You may triage only the findings of the systems you own.")
    action = form.cleaned_data["action"]
    if action == "assign":
        n = services.findings_assign(actor=request.user, findings=findings, assignee=form.cleaned_data["assignee"])
        messages.success(request, f"{n} finding{'s' if n != 1 else ''} assigned to {form.cleaned_data['assignee']}.")
    elif action == "link_risk":
        return _link_to_risk(request, findings, form.cleaned_data["risk"], back)
    elif action == "create_risk":
        systems = {f.system.slug for f in findings if f.system_id}
        query = urlencode({"system": systems.pop() if len(systems) == 1 else "", "findings": ",".join(str(f.pk) for f in findings)})
        return redirect(f"{reverse('risks:create')}?{query}")
    else:
        to_state = BulkForm.ACTION_STATES[action]
        n = services.findings_transition(actor=request.user, findings=findings, to_state=to_state,
                                         reason=form.cleaned_data["reason"])
        skipped = len(findings) - n
        messages.success(request, f"{n} finding{'s' if n != 1 else ''} moved to “{FindingState(to_state).label}”"
                         + (f"; {skipped} skipped (not allowed from their state)." if skipped else "."))
    return redirect(back)


def _link_to_risk(request: HttpRequest, findings: list, ref: str, back: str) -> HttpResponse:
    """Link findings to a risk of the same system; findings of other systems are skipped and counted."""
    risk = Risk.objects.select_related("system").filter(ref=ref.strip().upper()).first()
    if risk is None:
        messages.error(request, f"No risk “{ref.strip()}” in the register.")
        return redirect(back)
    if not perms.can_manage_risks(request.user, risk.system):
        raise PermissionDenied("You may not change risks of this system.")
    same = [f for f in findings if f.system_id == risk.system_id]
    n = risk_services.risk_link_findings(actor=request.user, risk=risk, findings=same)
    skipped = len(findings) - len(same)
    messages.success(request, f"{n} finding{'s' if n != 1 else ''} linked to {risk.ref}"
                     + (f"; {skipped} skipped (another system than {risk.system.name})." if skipped else "."))
    return redirect(back)


def detail(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        finding = selectors.finding_detail(pk)
    except Finding.DoesNotExist:
        raise Http404("No such finding.")
    return render(request, "findings/detail.html", {
        "f": finding, "transitions": selectors.finding_transitions(finding),
        "can_triage": perms.can_triage_system(request.user, finding.system), "bulk_form": BulkForm(),
    })


def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None, initial={"system": request.GET.get("system")})
    if request.method == "POST" and form.is_valid():
        system = form.cleaned_data["system"]
        if not perms.can_import(request.user, system):
            raise PermissionDenied("You may not import findings for this system.")
        upload_file = form.cleaned_data["file"]
        run = import_run_create(
            actor=request.user, stream=upload_file, filename=upload_file.name, fmt=form.cleaned_data["format"],
            system=system, source=form.cleaned_data["source"],
            repository=form.cleaned_data["repository"], via=ImportRun.Via.UPLOAD,
        )
        messages.success(request, f"Report stored (sha256 {run.sha256[:12]}…); the worker is importing it.")
        return redirect(run)
    if not perms.can_triage(request.user) and not request.user.owned_systems.exists():
        raise PermissionDenied("Your role cannot import findings.")
    return render(request, "findings/upload.html", {"form": form}, status=400 if form.errors else 200)


def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(ImportRun.objects.select_related("system", "created_by"), pk=pk)
    template = "findings/import_detail.html#status" if request.htmx else "findings/import_detail.html"
    return render(request, template, {"run": run, "can_triage": perms.can_triage_system(request.user, run.system)})


@require_POST
def import_close_held(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(ImportRun.objects.select_related("system"), pk=pk)
    if not perms.can_triage_system(request.user, run.system):
        raise PermissionDenied("You may not triage the findings of this feed.")
    try:
        n = services.import_run_close_held(actor=request.user, run=run)
    except services.HeldFindingsError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{n} finding{'s' if n != 1 else ''} closed.")
    return redirect(run)


def import_list(request: HttpRequest) -> HttpResponse:
    slug = request.GET.get("system", "")
    system = get_object_or_404(AISystem, slug=slug) if slug else None
    runs = selectors.system_imports(system) if system else selectors.recent_imports()
    return render(request, "findings/import_list.html", {"runs": runs, "system": system})


def mapping_rules(request: HttpRequest, slug: str) -> HttpResponse:
    system = get_object_or_404(AISystem, slug=slug)
    may_edit = perms.can_triage(request.user) or perms.can_edit_system(request.user, system)
    form = MappingRuleForm(request.POST or None)
    if request.method == "POST":
        if not may_edit:
            raise PermissionDenied("You may not change the mapping rules of this system.")
        if form.is_valid():
            services.mapping_rule_create(actor=request.user, system=system, **form.cleaned_data)
            messages.success(request, "Mapping rule added.")
            return redirect("findings:rules", slug=slug)
    return render(request, "findings/rules.html", {"system": system, "rules": system.mapping_rules.all(),
                                                   "form": form, "may_edit": may_edit}, status=400 if form.errors else 200)


@require_POST
def mapping_rule_delete(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    rule = get_object_or_404(MappingRule.objects.select_related("system"), pk=pk, system__slug=slug)
    if not (perms.can_triage(request.user) or perms.can_edit_system(request.user, rule.system)):
        raise PermissionDenied("You may not change the mapping rules of this system.")
    services.mapping_rule_delete(actor=request.user, rule=rule)
    return redirect("findings:rules", slug=slug)


# ---------------------------------------------------------------- scheduled pull sources


def _require_sources(request: HttpRequest) -> None:
    if not perms.can_triage(request.user):
        raise PermissionDenied("Only engineers, CISOs and admins configure scheduled sources.")


def source_list(request: HttpRequest) -> HttpResponse:
    _require_sources(request)
    rows = sources.source_rows()
    return render(request, "findings/sources.html", {"sources": rows, "drop_root": pull.drop_root(),
                                                     "now": timezone.now()})


def _source_form(request: HttpRequest, source: PullSource | None) -> HttpResponse:
    _require_sources(request)
    form = PullSourceForm(request.POST or None, instance=source)
    if request.method == "POST" and form.is_valid():
        try:
            saved = sources.source_save(actor=request.user, source=source, data=form.cleaned_data)
        except pull.PullError as exc:  # the address or folder changed since the form checked it
            form.add_error("location", str(exc))
        else:
            messages.success(request, f"Source {saved.name} saved." + (" It is pulled within a minute." if saved.enabled and saved.last_pulled_at is None else ""))
            return redirect("findings:sources")
    status = 400 if request.method == "POST" else 200
    return render(request, "findings/source_form.html", {"form": form, "source": source, "drop_root": pull.drop_root()},
                  status=status)


def source_new(request: HttpRequest) -> HttpResponse:
    return _source_form(request, None)


def source_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _require_sources(request)
    return _source_form(request, get_object_or_404(PullSource.objects.select_related("system"), pk=pk))


@require_POST
def source_enabled(request: HttpRequest, pk: int) -> HttpResponse:
    _require_sources(request)
    source = get_object_or_404(PullSource.objects.select_related("system"), pk=pk)
    enabled = request.POST.get("enabled") == "1"
    sources.source_set_enabled(actor=request.user, source=source, enabled=enabled)
    messages.success(request, f"{source.name} {'enabled' if enabled else 'paused: it is not pulled on schedule'}.")
    return redirect("findings:sources")


@require_POST
def source_pull_request(request: HttpRequest, pk: int) -> HttpResponse:
    _require_sources(request)
    source = get_object_or_404(PullSource.objects.select_related("system"), pk=pk)
    if sources.source_pull_request(actor=request.user, source=source):
        messages.success(request, f"Pull of {source.name} queued; refresh to see its result.")
    else:
        messages.error(request, f"Could not queue {source.name}: the task queue is unreachable. The schedule will retry.")
    return redirect("findings:sources")


@require_POST
def source_delete(request: HttpRequest, pk: int) -> HttpResponse:
    _require_sources(request)
    source = get_object_or_404(PullSource.objects.select_related("system"), pk=pk)
    sources.source_delete(actor=request.user, source=source)
    messages.success(request, f"Source {source.name} deleted; its imports and findings stay.")
    return redirect("findings:sources")
