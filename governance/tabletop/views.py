"""Exercise screens: scenario library, planning and console (facilitator), player and observer views, report.

Polled panels carry a version of what they show; an unchanged poll answers 204 so htmx swaps nothing.
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from governance.accounts.permissions import Denied
from governance.rmf.models import ReferenceItem
from governance.tabletop import permissions as tperms
from governance.tabletop import report_md, scenario_io, selectors, services
from governance.tabletop.forms import (
    ExerciseForm, HotwashForm, ImprovementForm, ObservationForm, ParticipantForm, PromoteRiskForm, ResponseForm,
    ScenarioImportForm, ScoreForm,
)
from governance.tabletop.models import (
    Exercise, ExpectedAction, ImprovementItem, Inject, InjectRelease, Participant, Response, Scenario,
)

POLL_SECONDS = 2


def _exercise(pk: int) -> Exercise:
    return get_object_or_404(Exercise.objects.select_related("scenario", "facilitator"), pk=pk)


def _require_runner(request, exercise: Exercise) -> None:
    if not tperms.can_run(request.user, exercise):
        raise Denied("Only this exercise's facilitator (or a CISO) runs it.", who_can_help=[exercise.facilitator])


def _error_text(exc: ValidationError) -> str:
    return " ".join(m for msgs in (exc.message_dict.values() if hasattr(exc, "error_dict") else [exc.messages]) for m in msgs)


# --- scenario library -------------------------------------------------------------------------------

def scenario_list(request: HttpRequest) -> HttpResponse:
    if not tperms.can_plan(request.user):
        raise PermissionDenied("The scenario library is for facilitators.")
    scenarios = Scenario.objects.prefetch_related("rmf_subcategories", "references").order_by("origin", "title").annotate(n_injects=Count("injects", distinct=True), n_exercises=Count("exercises", distinct=True))
    return render(request, "tabletop/scenarios.html", {"scenarios": scenarios, "import_form": ScenarioImportForm()})


def scenario_detail(request: HttpRequest, slug: str) -> HttpResponse:
    if not tperms.can_plan(request.user):
        raise PermissionDenied("The scenario library is for facilitators.")
    scenario = get_object_or_404(Scenario, slug=slug)
    injects = scenario.injects.prefetch_related("expected_actions")
    return render(request, "tabletop/scenario_detail.html", {
        "scenario": scenario, "injects": injects, "subcategories": scenario.rmf_subcategories.all(),
        "references": scenario.references.all()})


def scenario_export(request: HttpRequest, slug: str) -> HttpResponse:
    if not tperms.can_plan(request.user):
        raise PermissionDenied("The scenario library is for facilitators.")
    scenario = get_object_or_404(Scenario, slug=slug)
    response = JsonResponse(scenario_io.export(scenario), json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="{scenario.slug}.json"'
    return response


@require_POST
def scenario_import(request: HttpRequest) -> HttpResponse:
    if not tperms.can_plan(request.user):
        raise PermissionDenied("Only facilitators import scenarios.")
    form = ScenarioImportForm(request.POST, request.FILES)
    errors: list[str] = []
    if form.is_valid():
        raw = form.cleaned_data["file"].read(scenario_io.MAX_BYTES + 1)
        try:
            scenario = services.scenario_import(actor=request.user, data=scenario_io.parse(raw))
        except scenario_io.ScenarioFileError as exc:
            errors = exc.errors
        else:
            messages.success(request, f"Scenario “{scenario.title}” imported with {scenario.injects.count()} injects.")
            return redirect(scenario)
    else:
        errors = [e for es in form.errors.values() for e in es]
    scenarios = Scenario.objects.order_by("title")
    return render(request, "tabletop/scenarios.html", {"scenarios": scenarios, "import_form": form,
                                                       "import_errors": errors[:50]}, status=400)


def atlas_drafts(request: HttpRequest) -> HttpResponse:
    if not tperms.can_plan(request.user):
        raise PermissionDenied("Only facilitators draft scenarios.")
    if request.method == "POST":
        case = get_object_or_404(ReferenceItem, pk=request.POST.get("case_study", "0") if request.POST.get("case_study", "").isdecimal() else 0,
                                 catalogue=ReferenceItem.Catalogue.ATLAS_CASE_STUDY)
        try:
            scenario = services.scenario_draft_from_atlas(actor=request.user, case_study=case)
        except (ValidationError, scenario_io.ScenarioFileError) as exc:
            messages.error(request, str(exc))
            return redirect("tabletop:atlas")
        messages.success(request, f"Draft scenario created from {case.ident}: edit it by exporting, changing and re-importing.")
        return redirect(scenario)
    cases = ReferenceItem.objects.filter(catalogue=ReferenceItem.Catalogue.ATLAS_CASE_STUDY).order_by("ident")
    return render(request, "tabletop/atlas.html", {"cases": cases})


# --- planning -------------------------------------------------------------------------------------------

def exercise_list(request: HttpRequest) -> HttpResponse:
    exercises = list(selectors.exercise_list(request.user))
    for ex in exercises:  # planners see every exercise; they open those they run or take part in
        ex.may_open = ex.taking_part or tperms.can_run(request.user, ex)
    return render(request, "tabletop/list.html", {"exercises": exercises, "can_plan": tperms.can_plan(request.user)})


def exercise_create(request: HttpRequest) -> HttpResponse:
    if not tperms.can_plan(request.user):
        raise PermissionDenied("Only facilitators plan exercises.")
    initial = {"facilitator": request.user}
    if request.GET.get("scenario"):
        initial["scenario"] = Scenario.objects.filter(slug=request.GET["scenario"]).first()
    form = ExerciseForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = {k: form.cleaned_data[k] for k in services.EDITABLE_FIELDS}
        exercise = services.exercise_create(actor=request.user, data=data, systems=form.cleaned_data["systems"])
        messages.success(request, "Exercise planned. Add the players and observers, then start it from the console.")
        return redirect("tabletop:console", exercise.pk)
    return render(request, "tabletop/form.html", {"form": form, "exercise": None, "locked": ""},
                  status=400 if form.errors else 200)


def exercise_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Edit a planned exercise; once its clock has started, 409 with the reason in place of the form."""
    exercise = _exercise(pk)
    _require_runner(request, exercise)
    if exercise.edit_refusal:
        return render(request, "tabletop/form.html", {"form": None, "exercise": exercise,
                                                      "locked": exercise.edit_refusal}, status=409)
    form = ExerciseForm(request.POST if request.method == "POST" else None, instance=exercise)
    if request.method == "POST" and form.is_valid():
        data = {k: form.cleaned_data[k] for k in services.EDITABLE_FIELDS}
        try:
            services.exercise_update(actor=request.user, exercise=exercise, data=data, systems=form.cleaned_data["systems"])
        except ValidationError as exc:
            if exc.code != "started":
                raise
            return render(request, "tabletop/form.html", {"form": None, "exercise": _exercise(pk),
                                                          "locked": _error_text(exc)}, status=409)
        messages.success(request, "Exercise updated.")
        return redirect("tabletop:console", pk)
    return render(request, "tabletop/form.html", {"form": form, "exercise": _exercise(pk), "locked": ""},
                  status=400 if form.errors else 200)


def exercise_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Send each person to their screen for this exercise."""
    exercise = _exercise(pk)
    if tperms.can_run(request.user, exercise):
        return redirect("tabletop:console", pk)
    participant = tperms.participation(request.user, exercise)
    if participant is None:
        raise Denied(f"You are not taking part in “{exercise.title}”: only its participants, its facilitator and "
                     "CISOs open it. Its facilitator can add you as a participant or an observer.",
                     who_can_help=[exercise.facilitator])
    if exercise.is_over:
        return redirect("tabletop:report", pk)
    return redirect("tabletop:observe" if tperms.can_observe(participant) else "tabletop:play", pk)


def _participants_panel(request, exercise, *, form=None, message="", error="", status=200) -> HttpResponse:
    """The participant panel alone (htmx), left open for the next person; errors shown in it."""
    return render(request, "tabletop/console.html#participants", {
        "exercise": exercise, "participants": list(exercise.participants.select_related("user")), "adding": True,
        "participant_form": form or ParticipantForm(), "participant_message": message, "participant_error": error},
                  status=status)


def _back_to_participants(pk: int) -> HttpResponse:
    return redirect(reverse("tabletop:console", args=[pk]) + "?adding=1#participants")


@require_POST
def participant_add(request: HttpRequest, pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    _require_runner(request, exercise)
    form = ParticipantForm(request.POST)
    if form.is_valid():
        d = form.cleaned_data
        services.participant_add(actor=request.user, exercise=exercise, user=d["user"], role=d["role"], function=d["function"])
        if request.htmx:
            return _participants_panel(request, exercise, message=f"{d['user']} added.")
        messages.success(request, f"{d['user']} added.")
    elif request.htmx:
        return _participants_panel(request, exercise, form=form, status=400)
    else:
        for errors in form.errors.values():
            for e in errors:
                messages.error(request, e)
    return _back_to_participants(pk)


@require_POST
def participant_remove(request: HttpRequest, pk: int, participant_pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    _require_runner(request, exercise)
    participant = get_object_or_404(Participant, pk=participant_pk, exercise=exercise)
    error = ""
    if participant.user_id == exercise.facilitator_id:
        error = "The facilitator stays on the exercise."
    else:
        try:
            services.participant_remove(actor=request.user, participant=participant)
        except ValidationError as exc:
            error = _error_text(exc)
    if request.htmx:
        return _participants_panel(request, exercise, message="" if error else f"{participant.user} removed.",
                                   error=error, status=409 if error else 200)
    if error:
        messages.error(request, error)
    return _back_to_participants(pk)


# --- facilitator console ---------------------------------------------------------------------------------

def console(request: HttpRequest, pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    _require_runner(request, exercise)
    version = selectors.feed_version(exercise.pk)
    if request.htmx and request.GET.get("partial") == "feed":
        if request.GET.get("v") == version:
            return HttpResponse(status=204)
        return render(request, "tabletop/console.html#feed", {"state": selectors.console_state(exercise), "version": version,
                                                              "exercise": exercise})
    state = selectors.console_state(exercise)
    return render(request, "tabletop/console.html", {
        "exercise": exercise, "state": state, "version": version, "participant_form": ParticipantForm(),
        "participants": state.participants, "adding": request.GET.get("adding") == "1", "participant_message": "",
        "participant_error": "",
        "hotwash_form": HotwashForm(initial={"strengths": exercise.strengths,
                                             "areas_for_improvement": exercise.areas_for_improvement}),
        "poll_seconds": POLL_SECONDS, "systems": exercise.systems.all(),
    })


@require_POST
def exercise_control(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    exercise = _exercise(pk)
    _require_runner(request, exercise)
    try:
        services.exercise_transition(actor=request.user, exercise=exercise, action=action)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    if action == "complete":
        return redirect("tabletop:report", pk)
    return redirect("tabletop:console", pk)


@require_POST
def inject_release(request: HttpRequest, pk: int, inject_pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    _require_runner(request, exercise)
    inject = get_object_or_404(Inject, pk=inject_pk, scenario_id=exercise.scenario_id)
    try:
        services.inject_release(actor=request.user, exercise=exercise, inject=inject)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    return redirect("tabletop:console", pk)


@require_POST
def hotwash(request: HttpRequest, pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    _require_runner(request, exercise)
    form = HotwashForm(request.POST)
    if form.is_valid():
        services.hotwash_update(actor=request.user, exercise=exercise, **form.cleaned_data)
        messages.success(request, "Hot wash notes saved.")
    return redirect("tabletop:console", pk)


# --- players ---------------------------------------------------------------------------------------------------

def _player(request, exercise) -> Participant:
    participant = tperms.participation(request.user, exercise)
    if not tperms.can_play(participant):
        raise PermissionDenied("This view is for the exercise's players.")
    return participant


def _player_cards(exercise, participant, after: int = 0):
    releases = selectors.releases_for(exercise, participant)
    mine: dict[int, list[Response]] = {}
    for r in Response.objects.filter(participant=participant).order_by("created_at", "id"):
        mine.setdefault(r.release_id, []).append(r)
    return [{"release": r, "responses": mine.get(r.pk, [])} for r in releases if r.pk > after]


def play(request: HttpRequest, pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    participant = _player(request, exercise)
    version = selectors.feed_version(exercise.pk, participant)
    if request.htmx and request.GET.get("partial") == "poll":
        if request.GET.get("v") == version:
            return HttpResponse(status=204)
        after = int(request.GET.get("after", "0")) if request.GET.get("after", "0").isdecimal() else 0
        cards = _player_cards(exercise, participant, after)
        last = max([after, *(c["release"].pk for c in cards)])
        return render(request, "tabletop/play.html#poll", {
            "exercise": exercise, "participant": participant, "cards": cards, "version": version, "last": last,
            "form": ResponseForm(), "oob": True, "poll_seconds": POLL_SECONDS})
    cards = _player_cards(exercise, participant)
    return render(request, "tabletop/play.html", {
        "exercise": exercise, "participant": participant, "cards": cards, "version": version,
        "last": max([0, *(c["release"].pk for c in cards)]), "form": ResponseForm(), "poll_seconds": POLL_SECONDS})


@require_POST
def respond(request: HttpRequest, pk: int, release_pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    participant = _player(request, exercise)
    release = get_object_or_404(InjectRelease.objects.select_related("inject", "exercise"), pk=release_pk, exercise=exercise)
    if not release.inject.is_for(participant.function):
        raise Http404("No such inject for you.")
    form = ResponseForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            services.response_record(participant=participant, release=release, **form.cleaned_data)
        except ValidationError as exc:
            error = _error_text(exc)
    else:
        error = " ".join(e for es in form.errors.values() for e in es)
    if request.htmx:
        responses = Response.objects.filter(participant=participant, release=release).order_by("created_at", "id")
        return render(request, "tabletop/play.html#responses", {"release": release, "responses": responses, "error": error},
                      status=400 if error else 200)
    if error:
        messages.error(request, error)
    return redirect("tabletop:play", pk)


# --- observers ------------------------------------------------------------------------------------------------

def _observer(request, exercise) -> Participant:
    participant = tperms.participation(request.user, exercise)
    if not tperms.can_observe(participant):
        raise PermissionDenied("This view is for the exercise's observers.")
    return participant


def observe(request: HttpRequest, pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    observer = _observer(request, exercise)
    version = selectors.feed_version(exercise.pk)
    context = {"exercise": exercise, "observer": observer, "version": version, "poll_seconds": POLL_SECONDS,
               "ratings": ScoreForm.base_fields["rating"].choices, "observation_form": ObservationForm()}
    if request.htmx and request.GET.get("partial") == "poll":
        if request.GET.get("v") == version:
            return HttpResponse(status=204)
        after = int(request.GET.get("after", "0")) if request.GET.get("after", "0").isdecimal() else 0
        state = selectors.observer_state(exercise, observer)
        context.update(state=state, after=after, oob=True,
                       last=max([after, *(row["release"].pk for row in state["rows"])]))
        return render(request, "tabletop/observe.html#poll", context)
    state = selectors.observer_state(exercise, observer)
    context.update(state=state, after=0, last=max([0, *(row["release"].pk for row in state["rows"])]))
    return render(request, "tabletop/observe.html", context)


@require_POST
def score(request: HttpRequest, pk: int, action_pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    observer = _observer(request, exercise)
    action = get_object_or_404(ExpectedAction.objects.select_related("inject"), pk=action_pk,
                               inject__scenario_id=exercise.scenario_id)
    if not InjectRelease.objects.filter(exercise=exercise, inject=action.inject).exists():
        raise Http404("That inject has not been released.")
    form = ScoreForm(request.POST)
    error, saved = "", None
    if form.is_valid():
        try:
            saved = services.score_record(observer=observer, action=action, **form.cleaned_data)
        except ValidationError as exc:
            error = _error_text(exc)
    else:
        error = "Choose a rating."
    if request.htmx:
        return render(request, "tabletop/observe.html#action", {
            "exercise": exercise, "action": action, "score": saved, "error": error,
            "ratings": ScoreForm.base_fields["rating"].choices}, status=400 if error else 200)
    if error:
        messages.error(request, error)
    return redirect("tabletop:observe", pk)


@require_POST
def observation_add(request: HttpRequest, pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    if not tperms.can_run(request.user, exercise):
        _observer(request, exercise)
    form = ObservationForm(request.POST)
    if form.is_valid():
        services.observation_add(author=request.user, exercise=exercise, **form.cleaned_data)
        messages.success(request, "Observation noted.")
    else:
        messages.error(request, "Write the observation.")
    back = "tabletop:console" if tperms.can_run(request.user, exercise) else "tabletop:observe"
    return redirect(back, pk)


# --- after-action report ---------------------------------------------------------------------------------------

def _report_page(request, exercise: Exercise, *, can_run: bool, improvement_form=None, promote_form=None,
                 status: int = 200) -> HttpResponse:
    """The report; for whoever runs the exercise, a rating form under each improvement that is to become a risk."""
    report = selectors.report(exercise)
    promote_forms = {}
    if can_run:
        promote_forms = {item.pk: PromoteRiskForm(item=item) for item in report.items
                         if item.kind == ImprovementItem.Kind.RISK and not item.is_promoted}
        if promote_form is not None:
            promote_forms[promote_form.item.pk] = promote_form
    return render(request, "tabletop/report.html", {
        "exercise": exercise, "report": report, "can_run": can_run,
        "improvement_form": (improvement_form or ImprovementForm(exercise=exercise)) if can_run else None,
        "promote_forms": promote_forms, "statuses": ImprovementItem.Status.choices}, status=status)


def report(request: HttpRequest, pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    participant = tperms.participation(request.user, exercise)
    if not tperms.can_view_report(request.user, exercise, participant):
        raise PermissionDenied("The report opens to participants once play has stopped.")
    return _report_page(request, exercise, can_run=tperms.can_run(request.user, exercise))


def report_markdown(request: HttpRequest, pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    participant = tperms.participation(request.user, exercise)
    if not tperms.can_view_report(request.user, exercise, participant):
        raise PermissionDenied("The report opens to participants once play has stopped.")
    text = report_md.render(selectors.report(exercise))
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{exercise.ref.lower()}-after-action-report.md"'
    return response


@require_POST
def improvement_add(request: HttpRequest, pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    _require_runner(request, exercise)
    form = ImprovementForm(request.POST, exercise=exercise)
    if form.is_valid():
        data = {k: form.cleaned_data.get(k) for k in ImprovementForm.Meta.fields}
        try:
            services.improvement_add(actor=request.user, exercise=exercise, data=data)
            messages.success(request, "Improvement item added.")
            return redirect(reverse("tabletop:report", args=[pk]) + "#improvements")
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
    return _report_page(request, exercise, can_run=True, improvement_form=form, status=400)


@require_POST
def improvement_promote(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    """Into the register. A new risk needs its rating first: the form's errors come back in place (400)."""
    exercise = _exercise(pk)
    _require_runner(request, exercise)
    item = get_object_or_404(ImprovementItem, pk=item_pk, exercise=exercise)
    rating = None
    if item.kind == ImprovementItem.Kind.RISK and not item.is_promoted:
        form = PromoteRiskForm(request.POST, item=item)
        if not form.is_valid():
            return _report_page(request, exercise, can_run=True, promote_form=form, status=400)
        rating = form.cleaned_data
    try:
        item = services.improvement_promote(actor=request.user, item=item, rating=rating)
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        where = {"risk": f"risk {item.risk.ref if item.risk else ''}", "mitigation": "a mitigation action on "
                 f"{item.risk.ref if item.risk else 'the risk'}", "rmf_gap": "an RMF gap on the system's profile"}[item.kind]
        messages.success(request, f"“{item.title}” is now {where} in the register.")
    if request.htmx:  # the report again, with its message (a redirect to the same page and #anchor would not reload)
        return HttpResponseClientRefresh()
    return redirect(reverse("tabletop:report", args=[pk]) + "#improvements")


@require_POST
def improvement_status(request: HttpRequest, pk: int, item_pk: int) -> HttpResponse:
    exercise = _exercise(pk)
    _require_runner(request, exercise)
    item = get_object_or_404(ImprovementItem, pk=item_pk, exercise=exercise)
    try:
        services.improvement_set_status(actor=request.user, item=item, status=request.POST.get("status", ""))
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    return redirect(reverse("tabletop:report", args=[pk]) + "#improvements")

