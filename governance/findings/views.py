from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST

from governance.accounts import permissions as perms
from governance.findings import pull, selectors, services, sources
from governance.findings.forms import (BulkForm, CommentForm, LinkRiskForm, MappingRuleForm, PullSourceForm,
                                      SavedViewForm, UploadForm)
from governance.findings.imports import import_run_create
from governance.findings.models import Finding, FindingState, ImportRun, MappingRule, PullSource, SavedView, Severity
from governance.inventory.models import AISystem
from governance.risks import services as risk_services
from governance.risks.models import Risk


SEVERITY_SETS = [("critical,high", "Critical + high"), ("critical,high,medium", "Medium and above")]
# The queue's filter, as its URL writes it: what a saved view keeps and "apply to all N matching" sends back.
FILTER_KEYS = ("q", "system", "tool", "severity", "state", "breached", "archived", "assignee", "assigned", "sort")


def _filters_from(g, user) -> selectors.QueueFilters:
    states = {"open", "all", *FindingState.values}
    assignee = g.get("assignee", "")
    mine = g.get("assigned") == "me"
    return selectors.QueueFilters(
        system=g.get("system", "")[:80], tool=g.get("tool", "")[:60],
        severities=selectors.parse_severities(g.get("severity", "")[:100]),
        state=g.get("state", "open") if g.get("state", "open") in states else "open",
        breached=g.get("breached") == "1", q=g.get("q", "").strip()[:100], archived=g.get("archived") == "1",
        # "me" without a person (never expected: every view and API call is signed in) matches nobody, not everyone
        assignee=(user.pk or -1) if mine else (int(assignee) if assignee.isdecimal() else None), mine=mine,
        sort=g.get("sort", "severity") if g.get("sort") in selectors.SORTS else "severity",
    )


def _queue_filters(request: HttpRequest) -> selectors.QueueFilters:
    return _filters_from(request.GET, request.user)


FILTER_DEFAULTS = {"state": "open", "sort": "severity"}


def _filter_query(g) -> str:
    """The filter as a query string, the keys in one order, defaults left out: "severity=high&assigned=me"."""
    return urlencode([(key, g.get(key)[:200]) for key in FILTER_KEYS if g.get(key, FILTER_DEFAULTS.get(key)) not in
                      ("", None, FILTER_DEFAULTS.get(key))])


def queue(request: HttpRequest) -> HttpResponse:
    filters = _queue_filters(request)
    filters.at = timezone.now()  # the list, its total and each row's "breached" read at the same moment
    if request.htmx and request.GET.get("partial") == "rows":  # "load more": the total is already on the page
        (rows, next_cursor), total = selectors.queue_page(filters, request.GET.get("after", "")), None
    else:
        page = selectors.queue_list(filters, request.GET.get("after", ""))
        rows, next_cursor, total = page.rows, page.next_cursor, page.total
    filter_query = _filter_query(request.GET)
    context = {
        "rows": rows, "next_cursor": next_cursor, "filters": filters, "querystring": request.GET.copy(),
        "total": total, "filter_query": filter_query, "back": request.get_full_path(),
        "systems": AISystem.objects.active().only("slug", "name"),
        "tools": selectors.queue_tools(), "severities": Severity.choices, "severity_sets": SEVERITY_SETS, "states": FindingState.choices,
        "can_triage": perms.can_triage(request.user), "bulk_form": BulkForm(),
        "saved_views": selectors.saved_views(request.user), "view_form": SavedViewForm(initial={"query": filter_query}),
    }
    if request.htmx and request.GET.get("partial") == "rows":
        return render(request, "findings/queue.html#rows", context)
    if request.htmx and not request.htmx.boosted:
        return render(request, "findings/queue.html#results", context)
    return render(request, "findings/queue.html", context)


def _back(request: HttpRequest) -> str:
    back = request.POST.get("next") or "/findings/"
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = "/findings/"  # "//evil", "/\\evil" and "https://evil" would leave the site
    return back


def _done(request: HttpRequest, back: str) -> HttpResponse:
    """After a bulk action: the page it came from, loaded again (the queue posts with htmx, the finding page not)."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = back
        return response
    return redirect(back)


def _refused(request: HttpRequest, form: BulkForm, back: str, status: int = 400) -> HttpResponse:
    """A bulk action not done: with htmx its bar comes back with the errors beside the fields and every choice kept
    (the selection is untouched: only the bar is swapped); without, the errors are said on the page it came from."""
    if request.htmx:
        return render(request, "findings/queue.html#bulkbar", {"bulk_form": form, "back": back,
                                                               "total": form.data.get("confirmed", "")}, status=status)
    for errors in form.errors.values():
        for e in errors:
            messages.error(request, e)
    return redirect(back)


@require_POST
def bulk(request: HttpRequest) -> HttpResponse:
    if not perms.can_triage(request.user) and not request.user.owned_systems.exists():
        raise PermissionDenied("Your role cannot triage findings.")
    ids = [int(i) for i in request.POST.getlist("ids") if i.isdecimal()]
    form = BulkForm(request.POST, id_list=ids)
    back = _back(request)
    if not form.is_valid():
        return _refused(request, form, back)
    if form.whole_filter:
        return _bulk_matching(request, form, back)
    findings = list(Finding.objects.filter(pk__in=ids).select_related("system"))
    if not perms.can_triage(request.user) and not all(perms.can_triage_system(request.user, f.system) for f in findings):
        raise PermissionDenied("You may triage only the findings of the systems you own.")
    action = form.cleaned_data["action"]
    if action in ("assign", "unassign"):
        assignee = form.cleaned_data["assignee"] if action == "assign" else None
        n = services.findings_assign(actor=request.user, findings=findings, assignee=assignee)
        messages.success(request, f"{n} finding{'s' if n != 1 else ''} " + (f"assigned to {assignee}." if assignee else "unassigned."))
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
    return _done(request, back)


def _bulk_matching(request: HttpRequest, form: BulkForm, back: str) -> HttpResponse:
    """One action on every finding the submitted filter matches now, read again here (never a list from the page),
    if that is still the number the person confirmed."""
    if not perms.can_triage(request.user):
        raise PermissionDenied("Only engineers, CISOs and admins apply an action to a whole filter.")
    params = QueryDict(form.cleaned_data["filter"])
    filters = _filters_from(params, request.user)
    filters.at = timezone.now()
    data, action, risk = form.cleaned_data, form.cleaned_data["action"], None
    if action == "link_risk":
        risk = Risk.objects.select_related("system").filter(ref=data["risk"].strip().upper()).first()
        if risk is None:
            form.add_error("risk", f"No risk “{data['risk'].strip()}” in the register.")
            return _refused(request, form, back)
        if not perms.can_manage_risks(request.user, risk.system):
            raise PermissionDenied("You may not change risks of this system.")
    try:
        done = services.findings_apply_to_matching(
            actor=request.user, matching=selectors.queue_matching(filters), confirmed=data["confirmed"],
            described=_filter_query(params), action=action, to_state=BulkForm.ACTION_STATES.get(action, ""),
            reason=data["reason"], assignee=data["assignee"] if action == "assign" else None, risk=risk)
    except services.CountChanged as exc:
        form.add_error(None, str(exc))
        return _refused(request, form, back, status=409)
    except services.TriageError as exc:
        form.add_error(None, str(exc))
        return _refused(request, form, back)
    left = done.matched - done.changed
    what = {"assign": f"assigned to {data['assignee']}", "unassign": "unassigned",
            "link_risk": f"linked to {risk.ref if risk else ''}"}.get(action) or f"moved to “{FindingState(BulkForm.ACTION_STATES[action]).label}”"
    why = {"link_risk": f"already linked or of another system than {risk.system.name if risk else ''}",
           "assign": "already so", "unassign": "already so"}.get(action, "already there or not allowed from their state")
    messages.success(request, f"{done.changed} of the {done.matched} findings matching the filter {what}"
                     + (f"; {left} left as they were ({why})." if left else "."))
    return _done(request, back)


def _link_to_risk(request: HttpRequest, findings: list, ref: str, back: str) -> HttpResponse:
    """Link findings to a risk of the same system; findings of other systems are skipped and counted."""
    risk = Risk.objects.select_related("system").filter(ref=ref.strip().upper()).first()
    if risk is None:
        messages.error(request, f"No risk “{ref.strip()}” in the register.")
        return _done(request, back)
    if not perms.can_manage_risks(request.user, risk.system):
        raise PermissionDenied("You may not change risks of this system.")
    same = [f for f in findings if f.system_id == risk.system_id]
    n = risk_services.risk_link_findings(actor=request.user, risk=risk, findings=same)
    skipped = len(findings) - len(same)
    messages.success(request, f"{n} finding{'s' if n != 1 else ''} linked to {risk.ref}"
                     + (f"; {skipped} skipped (another system than {risk.system.name})." if skipped else "."))
    return _done(request, back)


# ---------------------------------------------------------------- saved views


def _saved_views(request: HttpRequest, form: SavedViewForm, status: int = 200) -> HttpResponse:
    return render(request, "findings/queue.html#saved_views", {
        "saved_views": selectors.saved_views(request.user), "view_form": form}, status=status)


@require_POST
def saved_view_create(request: HttpRequest) -> HttpResponse:
    form = SavedViewForm(request.POST)
    if form.is_valid():
        query = _filter_query(QueryDict(form.cleaned_data["query"]))
        view = services.saved_view_save(actor=request.user, name=form.cleaned_data["name"], query=query)
        if not request.htmx:
            messages.success(request, f"View “{view.name}” saved.")
            return redirect(view)
        return _saved_views(request, SavedViewForm(initial={"query": query}))
    if not request.htmx:
        for e in form.errors.get("name", []):
            messages.error(request, e)
        return redirect(reverse("findings:queue") + "?" + _filter_query(QueryDict(request.POST.get("query", ""))))
    return _saved_views(request, form, status=400)


@require_POST
def saved_view_delete(request: HttpRequest, pk: int) -> HttpResponse:
    view = get_object_or_404(SavedView, pk=pk, owner=request.user)  # another person's views are not there
    services.saved_view_delete(actor=request.user, view=view)
    if not request.htmx:
        messages.success(request, f"View “{view.name}” deleted.")
        return redirect("findings:queue")
    return _saved_views(request, SavedViewForm(initial={"query": request.POST.get("query", "")}))


# ---------------------------------------------------------------- one finding


def _finding(pk: int) -> Finding:
    try:
        return selectors.finding_detail(pk)
    except Finding.DoesNotExist:
        raise Http404("No such finding.")


def _detail_context(request: HttpRequest, finding: Finding, **forms) -> dict:
    may = perms.can_triage_system(request.user, finding.system)
    return {
        "f": finding, "can_triage": may, "risks": selectors.finding_risks(finding),
        "risks_to_link": selectors.risks_to_link(finding) if may else [],
        "link_form": forms.get("link_form") or LinkRiskForm(finding=finding),
        "comments": selectors.finding_comments(finding),
        "comment_form": forms.get("comment_form") or CommentForm(),
    }


def detail(request: HttpRequest, pk: int) -> HttpResponse:
    finding = _finding(pk)
    return render(request, "findings/detail.html", {
        **_detail_context(request, finding), "transitions": selectors.finding_transitions(finding),
        "bulk_form": BulkForm(),
    })


def _finding_part(request: HttpRequest, finding: Finding, part: str, status: int, **forms) -> HttpResponse:
    """The changed part of the finding page (htmx), or the whole page (the form posted without JavaScript)."""
    context = _detail_context(request, finding, **forms)
    if request.htmx:
        return render(request, f"findings/detail.html#{part}", context, status=status)
    context.update(transitions=selectors.finding_transitions(finding), bulk_form=BulkForm())
    return render(request, "findings/detail.html", context, status=status)


@require_POST
def link_risk(request: HttpRequest, pk: int) -> HttpResponse:
    finding = _finding(pk)
    if not perms.can_triage_system(request.user, finding.system):
        raise PermissionDenied("You may not triage this finding.")
    form = LinkRiskForm(request.POST, finding=finding)
    if not form.is_valid():
        return _finding_part(request, finding, "risks", 400, link_form=form)
    risk = form.cleaned_data["risk"]
    if not perms.can_manage_risks(request.user, risk.system):
        raise PermissionDenied(f"You may not change the risks of {risk.system.name}.")
    risk_services.risk_link_findings(actor=request.user, risk=risk, findings=[finding])
    if not request.htmx:
        messages.success(request, f"Linked to {risk.ref}.")
        return redirect(finding)
    return _finding_part(request, finding, "risks", 200)


@require_POST
def comment_add(request: HttpRequest, pk: int) -> HttpResponse:
    finding = _finding(pk)
    if not perms.can_triage_system(request.user, finding.system):
        raise PermissionDenied("Only who may triage this finding comments on it.")
    form = CommentForm(request.POST)
    if form.is_valid():
        try:
            services.comment_add(actor=request.user, finding=finding, body=form.cleaned_data["body"])
        except services.TriageError as exc:  # a mention became ambiguous since the form checked it
            form.add_error("body", str(exc))
    if form.errors:
        return _finding_part(request, finding, "comments", 400, comment_form=form)
    if not request.htmx:
        return redirect(reverse("findings:detail", args=[pk]) + "#comments")
    return _finding_part(request, finding, "comments", 200)


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
