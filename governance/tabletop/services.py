"""Every write of the tabletop app: in a transaction, audited, with the time passed in (`now`) so tests control the clock."""
from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance.audit.services import audit_record, snapshot
from governance.inventory.models import AISystem
from governance.rmf.models import AssessmentStatus, ReferenceItem, RmfAssessment, RmfSubcategory
from governance.tabletop import scenario_io, visibility
from governance.tabletop.models import (
    Exercise, ExerciseState, ExpectedAction, ImprovementItem, Inject, InjectRelease, Observation, Participant,
    ParticipantRole, Response, Scenario, ScenarioOrigin, Score, VisibilityGap,
)

DEFAULT_ATLAS_SUBCATEGORIES = ["GOVERN 4.3", "MEASURE 2.7", "MANAGE 2.3", "MANAGE 4.1", "MANAGE 4.3"]


def _now(now: datetime | None) -> datetime:
    return now or timezone.now()


# --- scenarios -----------------------------------------------------------------------------------

def _references(data: dict) -> list[ReferenceItem]:
    """One item per ident (the newest catalogue version), ATLAS techniques and AI 600-1 risks."""
    wanted = {ReferenceItem.Catalogue.ATLAS_TECHNIQUE: data.get("atlas_techniques", []),
              ReferenceItem.Catalogue.GENAI_RISK: data.get("genai_risks", [])}
    items: dict[tuple, ReferenceItem] = {}
    for catalogue, idents in wanted.items():
        for item in ReferenceItem.objects.filter(catalogue=catalogue, ident__in=idents).order_by("version"):
            items[(catalogue, item.ident)] = item
    return list(items.values())


def _fill_scenario(scenario: Scenario, data: dict) -> None:
    scenario.injects.all().delete()
    for order, spec in enumerate(data["injects"], 1):
        visibility_spec = spec.get("visibility") or {}
        inject = Inject.objects.create(
            scenario=scenario, order=order, offset_minutes=spec.get("offset_minutes"),
            audience=spec.get("audience", "all"), channel=spec.get("channel", "email"), title=spec["title"],
            body=spec["body"], attachments=spec.get("attachments", []), questions=spec.get("questions", []),
            facilitator_notes=spec.get("facilitator_notes", ""),
            visibility_question=visibility_spec.get("question", ""), visibility_param=visibility_spec.get("param", ""),
        )
        ExpectedAction.objects.bulk_create([
            ExpectedAction(inject=inject, order=i, text=a["text"], checked_by=a.get("checked_by", ""),
                           objective=a.get("objective"))
            for i, a in enumerate(spec.get("expected_actions", []))
        ])
    scenario.rmf_subcategories.set(RmfSubcategory.objects.filter(version="1.0", ident__in=data.get("rmf_subcategories", [])))
    scenario.references.set(_references(data))


@transaction.atomic
def scenario_import(*, actor, data: dict, origin: str = ScenarioOrigin.IMPORTED, source_ref: str = "") -> Scenario:
    """Create a scenario from a dict that scenario_io.parse() accepted."""
    if Scenario.objects.filter(slug=data["slug"]).exists():
        raise scenario_io.ScenarioFileError([f"slug: a scenario {data['slug']!r} already exists"])
    scenario = Scenario.objects.create(
        slug=data["slug"], title=data["title"], summary=data.get("summary", ""), narrative=data["narrative"],
        objectives=data.get("objectives", []), origin=origin, source_ref=source_ref,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    _fill_scenario(scenario, data)
    audit_record(actor=actor, action="scenario.import", obj=scenario,
                 after={"slug": scenario.slug, "origin": origin, "injects": len(data["injects"])})
    return scenario


@transaction.atomic
def scenario_replace(*, actor, scenario: Scenario, data: dict) -> Scenario:
    """Replace a scenario's content (only while no exercise used it: releases point at its injects)."""
    scenario = Scenario.objects.select_for_update().get(pk=scenario.pk)
    if scenario.exercises.exists():
        raise ValidationError("This scenario has been used by an exercise; import a copy under a new slug instead.")
    for name in ("title", "narrative"):
        setattr(scenario, name, data[name])
    scenario.summary, scenario.objectives = data.get("summary", ""), data.get("objectives", [])
    scenario.save()
    _fill_scenario(scenario, data)
    audit_record(actor=actor, action="scenario.replace", obj=scenario, after={"slug": scenario.slug, "injects": len(data["injects"])})
    return scenario


def scenario_draft_from_atlas(*, actor, case_study: ReferenceItem) -> Scenario:
    """A draft scenario whose injects are the case study's procedure steps, for a facilitator to edit and run."""
    if case_study.catalogue != ReferenceItem.Catalogue.ATLAS_CASE_STUDY:
        raise ValidationError("Not a MITRE ATLAS case study.")
    steps = case_study.data.get("procedure", [])[:40]
    if not steps:
        raise ValidationError("This case study has no procedure steps to turn into injects.")
    techniques = {t.ident: t for t in ReferenceItem.objects.filter(
        catalogue=ReferenceItem.Catalogue.ATLAS_TECHNIQUE, ident__in=[s.get("technique", "") for s in steps])}
    tactics = {t.ident: t for t in ReferenceItem.objects.filter(
        catalogue=ReferenceItem.Catalogue.ATLAS_TACTIC, ident__in=[s.get("tactic", "") for s in steps])}
    base = "atlas-" + case_study.ident.lower().replace(".", "-")
    slug, n = base, 1
    while Scenario.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    injects = []
    for i, step in enumerate(steps):
        technique = techniques.get(step.get("technique", ""))
        tactic = tactics.get(step.get("tactic", ""))
        name = technique.title if technique else step.get("technique", "Step")
        injects.append({
            "title": f"Step {i + 1}: {name}"[:200],
            "offset_minutes": i * 10, "audience": "all", "channel": "ticket",
            "body": (step.get("description") or "")[:10000] or name,
            "expected_actions": [
                {"text": f"Say how we would detect this ({name}) in our own systems"[:500], "checked_by": "observer", "objective": 0},
                {"text": "Name who is told, through which channel, and how fast", "checked_by": "observer", "objective": 1},
            ],
            "questions": [f"Which of our AI systems are exposed to {name}?"[:500],
                          "What evidence would we have, and where is it kept?"],
            "facilitator_notes": (f"ATLAS {tactic.title if tactic else step.get('tactic', '')} · "
                                  f"{step.get('technique', '')}. Adapt the wording to our systems before running.")[:5000],
        })
    data = {
        "format": scenario_io.FORMAT, "version": scenario_io.FORMAT_VERSION, "slug": slug,
        "title": f"Draft: {case_study.title}"[:200], "summary": f"Drafted from MITRE ATLAS case study {case_study.ident}.",
        "narrative": case_study.text or case_study.title,
        "objectives": ["Detect each step of the attack in our own telemetry",
                       "Escalate and communicate within the agreed times",
                       "Decide on containment with the system owners"],
        "rmf_subcategories": DEFAULT_ATLAS_SUBCATEGORIES,
        "atlas_techniques": sorted(techniques), "genai_risks": [], "injects": injects,
    }
    return scenario_import(actor=actor, data=data, origin=ScenarioOrigin.ATLAS, source_ref=case_study.ident)


# --- planning --------------------------------------------------------------------------------------

@transaction.atomic
def exercise_create(*, actor, data: dict, systems=()) -> Exercise:
    data = dict(data)
    scenario = data["scenario"]
    if not data.get("objectives"):
        data["objectives"] = list(scenario.objectives)
    exercise = Exercise.objects.create(created_by=actor, **data)
    exercise.systems.set(systems)
    Participant.objects.create(exercise=exercise, user=exercise.facilitator, role=ParticipantRole.FACILITATOR)
    audit_record(actor=actor, action="exercise.create", obj=exercise,
                 after={**snapshot(exercise), "systems": sorted(s.pk for s in systems)})
    return exercise


EDITABLE_FIELDS = ("title", "scenario", "scheduled_for", "facilitator", "objectives")


@transaction.atomic
def exercise_update(*, actor, exercise: Exercise, data: dict, systems=()) -> Exercise:
    """Change a planned exercise (title, scenario, schedule, facilitator, objectives, systems). Once the clock has
    started, what was played is the record: refused with code "started". A new facilitator takes the old one's
    place among the participants."""
    exercise = Exercise.objects.select_for_update().get(pk=exercise.pk)
    if exercise.edit_refusal:
        raise ValidationError(exercise.edit_refusal, code="started")
    data = {k: v for k, v in data.items() if k in EDITABLE_FIELDS}
    if not data.get("objectives"):
        data["objectives"] = list(data.get("scenario", exercise.scenario).objectives)
    before = {**snapshot(exercise, list(EDITABLE_FIELDS)), "systems": sorted(exercise.systems.values_list("pk", flat=True))}
    old_facilitator_id = exercise.facilitator_id
    for name, value in data.items():
        setattr(exercise, name, value)
    exercise.save()
    exercise.systems.set(systems)
    if exercise.facilitator_id != old_facilitator_id:
        Participant.objects.filter(exercise=exercise, user_id=old_facilitator_id, role=ParticipantRole.FACILITATOR).delete()
        Participant.objects.update_or_create(exercise=exercise, user=exercise.facilitator,
                                             defaults={"role": ParticipantRole.FACILITATOR, "function": ""})
    after = {**snapshot(exercise, list(EDITABLE_FIELDS)), "systems": sorted(s.pk for s in systems)}
    changed = {k: v for k, v in after.items() if before.get(k) != v}
    if changed:
        audit_record(actor=actor, action="exercise.update", obj=exercise,
                     before={k: before.get(k) for k in changed}, after=changed)
    return exercise


@transaction.atomic
def participant_add(*, actor, exercise: Exercise, user, role: str, function: str = "") -> Participant:
    if role == ParticipantRole.PLAYER and not function:
        raise ValidationError({"function": "A player needs a function: injects are addressed to functions."})
    participant, created = Participant.objects.update_or_create(
        exercise=exercise, user=user, defaults={"role": role, "function": function})
    audit_record(actor=actor, action="exercise.participant_add" if created else "exercise.participant_change",
                 obj=exercise, after={"user": user.email, "role": role, "function": function})
    return participant


@transaction.atomic
def participant_remove(*, actor, participant: Participant) -> None:
    if participant.responses.exists() or participant.scores.exists():
        raise ValidationError("This participant has already responded or scored; they stay on the record.")
    audit_record(actor=actor, action="exercise.participant_remove", obj=participant.exercise,
                 before={"user": participant.user.email, "role": participant.role})
    participant.delete()


# --- the clock ----------------------------------------------------------------------------------------

TRANSITIONS = {
    "start": ({ExerciseState.PLANNED}, ExerciseState.RUNNING),
    "pause": ({ExerciseState.RUNNING}, ExerciseState.PAUSED),
    "resume": ({ExerciseState.PAUSED}, ExerciseState.RUNNING),
    "hot_wash": ({ExerciseState.RUNNING, ExerciseState.PAUSED}, ExerciseState.HOT_WASH),
    "complete": ({ExerciseState.HOT_WASH}, ExerciseState.COMPLETED),
}


@transaction.atomic
def exercise_transition(*, actor, exercise: Exercise, action: str, now: datetime | None = None) -> Exercise:
    """planned → running ↔ paused → hot wash → completed. Pausing stops the exercise clock; resuming shifts
    every timed inject still to come by the length of the pause."""
    now = _now(now)
    exercise = Exercise.objects.select_for_update().get(pk=exercise.pk)
    if action not in TRANSITIONS:
        raise ValidationError(f"Unknown action {action!r}.")
    allowed, target = TRANSITIONS[action]
    if exercise.state not in allowed:
        raise ValidationError(f"Cannot {action.replace('_', ' ')} an exercise that is {exercise.get_state_display().lower()}.")
    before = {"state": exercise.state, "clock_minutes": round(exercise.clock_minutes(now), 2)}
    if action == "start":
        exercise.started_at = now
    elif action == "pause":
        exercise.paused_at = now
    elif action == "resume":
        exercise.paused_seconds += max(0.0, (now - exercise.paused_at).total_seconds())
        exercise.paused_at = None
    elif action == "hot_wash":
        if exercise.paused_at:
            exercise.paused_seconds += max(0.0, (now - exercise.paused_at).total_seconds())
            exercise.paused_at = None
        exercise.ended_at = now
    elif action == "complete":
        exercise.completed_at = now
    exercise.state = target
    exercise.save()
    audit_record(actor=actor, action=f"exercise.{action}", obj=exercise, before=before,
                 after={"state": exercise.state, "clock_minutes": round(exercise.clock_minutes(now), 2)})
    return exercise


# --- injects --------------------------------------------------------------------------------------------

@transaction.atomic
def inject_release(*, actor, exercise: Exercise, inject: Inject, now: datetime | None = None) -> InjectRelease:
    """Hand an inject to its audience. Idempotent: a second release returns the first one."""
    now = _now(now)
    exercise = Exercise.objects.select_for_update().get(pk=exercise.pk)
    if inject.scenario_id != exercise.scenario_id:
        raise ValidationError("This inject belongs to another scenario.")
    existing = InjectRelease.objects.filter(exercise=exercise, inject=inject).first()
    if existing:
        return existing
    if not exercise.is_live:
        raise ValidationError("Injects are released only while the exercise runs.")
    answer = visibility.answer(inject.visibility_question, inject.visibility_param) if inject.visibility_question else None
    release = InjectRelease.objects.create(
        exercise=exercise, inject=inject, released_at=now, released_by=actor if getattr(actor, "pk", None) else None,
        clock_minute=round(exercise.clock_minutes(now), 3), visibility_answer=answer.as_dict() if answer else None,
    )
    if answer:
        for gap in answer.gaps:
            VisibilityGap.objects.get_or_create(
                exercise=exercise, question=inject.visibility_question, detail=gap.detail[:500],
                defaults={"release": release, "system_id": gap.system_id, "created_at": now},
            )
    audit_record(actor=actor, action="exercise.inject_release", obj=exercise,
                 after={"inject": inject.order, "title": inject.title, "clock_minute": release.clock_minute,
                        "by": "clock" if release.released_by_id is None else "facilitator",
                        "visibility_gaps": len(answer.gaps) if answer else 0})
    return release


def due_injects(exercise: Exercise, now: datetime | None = None) -> list[Inject]:
    minute = exercise.clock_minutes(_now(now))
    released = InjectRelease.objects.filter(exercise=exercise).values("inject_id")
    return list(Inject.objects.filter(scenario_id=exercise.scenario_id, offset_minutes__isnull=False,
                                      offset_minutes__lte=minute).exclude(pk__in=released).order_by("order"))


def exercises_release_due(*, now: datetime | None = None) -> int:
    """Release every timed inject whose offset has passed on its exercise's clock. Run by Celery beat; safe to run
    concurrently (the release is unique per exercise and inject, claimed under the exercise's row lock)."""
    now = _now(now)
    count = 0
    for exercise in Exercise.objects.filter(state=ExerciseState.RUNNING):
        for inject in due_injects(exercise, now):
            try:
                release = inject_release(actor=None, exercise=exercise, inject=inject, now=now)
            except (ValidationError, IntegrityError):
                continue  # paused or ended meanwhile, or released by a concurrent run
            count += release.released_at == now
    return count


# --- play ---------------------------------------------------------------------------------------------------

@transaction.atomic
def response_record(*, participant: Participant, release: InjectRelease, text: str, rationale: str = "",
                    kind: str = Response.Kind.RESPONSE, now: datetime | None = None) -> Response:
    now = _now(now)
    exercise = Exercise.objects.get(pk=release.exercise_id)
    if participant.exercise_id != exercise.pk or participant.role != ParticipantRole.PLAYER:
        raise PermissionDenied("Only the exercise's players respond.")
    if not release.inject.is_for(participant.function):
        raise PermissionDenied("This inject was not released to your function.")
    if not exercise.is_live:
        raise ValidationError("The exercise is not running.")
    if not text.strip():
        raise ValidationError({"text": "Write your response or decision."})
    if kind == Response.Kind.DECISION and not rationale.strip():
        raise ValidationError({"rationale": "A decision needs its rationale."})
    response = Response.objects.create(exercise=exercise, release=release, participant=participant, kind=kind,
                                       text=text.strip(), rationale=rationale.strip(), created_at=now,
                                       clock_minute=round(exercise.clock_minutes(now), 3))
    audit_record(actor=participant.user, action=f"exercise.{kind}", obj=exercise,
                 after={"inject": release.inject.order, "text": response.text, "rationale": response.rationale,
                        "clock_minute": response.clock_minute})
    return response


@transaction.atomic
def score_record(*, observer: Participant, action: ExpectedAction, rating: int, observation: str = "",
                 now: datetime | None = None) -> Score:
    now = _now(now)
    exercise = Exercise.objects.get(pk=observer.exercise_id)
    if observer.role not in (ParticipantRole.OBSERVER, ParticipantRole.FACILITATOR):
        raise PermissionDenied("Only observers and the facilitator score expected actions.")
    if action.inject.scenario_id != exercise.scenario_id:
        raise ValidationError("This expected action belongs to another scenario.")
    if exercise.state in (ExerciseState.PLANNED, ExerciseState.COMPLETED):
        raise ValidationError("Scores are recorded while the exercise runs and during the hot wash.")
    if rating not in Score.Rating.values:
        raise ValidationError({"rating": "Rate 0 (not met) to 3 (fully met)."})
    score, _ = Score.objects.update_or_create(exercise=exercise, action=action, observer=observer,
                                              defaults={"rating": rating, "observation": observation.strip(), "scored_at": now})
    audit_record(actor=observer.user, action="exercise.score", obj=exercise,
                 after={"action": action.text, "rating": rating, "observation": score.observation})
    return score


@transaction.atomic
def observation_add(*, author, exercise: Exercise, kind: str, text: str, release: InjectRelease | None = None,
                    now: datetime | None = None) -> Observation:
    now = _now(now)
    if not text.strip():
        raise ValidationError({"text": "Write the observation."})
    obs = Observation.objects.create(exercise=exercise, author=author, kind=kind, text=text.strip(), release=release,
                                     created_at=now, clock_minute=round(exercise.clock_minutes(now), 3))
    audit_record(actor=author, action="exercise.observation", obj=exercise, after={"kind": kind, "text": obs.text})
    return obs


@transaction.atomic
def hotwash_update(*, actor, exercise: Exercise, strengths: str, areas_for_improvement: str) -> Exercise:
    exercise = Exercise.objects.select_for_update().get(pk=exercise.pk)
    before = {"strengths": exercise.strengths, "areas_for_improvement": exercise.areas_for_improvement}
    exercise.strengths, exercise.areas_for_improvement = strengths.strip(), areas_for_improvement.strip()
    exercise.save(update_fields=["strengths", "areas_for_improvement", "updated_at"])
    audit_record(actor=actor, action="exercise.hotwash", obj=exercise, before=before,
                 after={"strengths": exercise.strengths, "areas_for_improvement": exercise.areas_for_improvement})
    return exercise


# --- lessons into tracked work ----------------------------------------------------------------------------

@transaction.atomic
def improvement_add(*, actor, exercise: Exercise, data: dict) -> ImprovementItem:
    item = ImprovementItem(exercise=exercise, **data)
    if item.kind in (ImprovementItem.Kind.RISK, ImprovementItem.Kind.RMF_GAP) and item.system is None:
        raise ValidationError({"system": "Choose the AI system this applies to."})
    if item.kind == ImprovementItem.Kind.RMF_GAP and item.subcategory is None:
        raise ValidationError({"subcategory": "Choose the NIST AI RMF subcategory that is a gap."})
    if item.kind == ImprovementItem.Kind.MITIGATION and item.target_risk is None:
        raise ValidationError({"target_risk": "Choose the risk this mitigation action treats."})
    item.save()
    audit_record(actor=actor, action="exercise.improvement_add", obj=item, system=item.system, after=snapshot(item))
    return item


@transaction.atomic
def improvement_promote(*, actor, item: ImprovementItem, rating: dict | None = None,
                        now: datetime | None = None) -> ImprovementItem:
    """Put the item into the register it belongs to, linked back to the exercise: a risk (source tabletop), a
    mitigation action on a risk, or the RMF subcategory marked as a gap on the system's profile.

    A risk goes in rated: `rating` holds its likelihood and impact (inherent and residual start equal: no treatment
    yet) and may set its owner and due date. Without one it is refused rather than left unrated for the gate."""
    from governance.risks import services as risks
    from governance.rmf import services as rmf

    now = _now(now)
    item = ImprovementItem.objects.select_for_update(of=("self",)).select_related(
        "exercise__scenario", "system", "subcategory", "target_risk__system").get(pk=item.pk)
    if item.is_promoted:
        return item
    exercise = item.exercise
    source_ref = f"{exercise.ref} {exercise.title}"[:100]
    if item.kind == ImprovementItem.Kind.RISK:
        rating = rating or {}
        missing = {name: f"Rate the {name}: an unrated risk blocks the release gate."
                   for name in ("likelihood", "impact") if not rating.get(name)}
        if missing:
            raise ValidationError(missing)
        if "owner" in rating:
            item.owner = rating["owner"]
        if "due_date" in rating:
            item.due_date = rating["due_date"]
        description = (f"{item.description}\n\nRaised by tabletop exercise {exercise.ref} ({exercise.title}, "
                       f"scenario: {exercise.scenario.title}).").strip()
        item.risk = risks.risk_create(
            actor=actor, system=item.system,
            data={"title": item.title, "description": description[:10000], "owner": item.owner, "due_date": item.due_date,
                  "source": "tabletop", "source_ref": source_ref,
                  "inherent_likelihood": rating["likelihood"], "inherent_impact": rating["impact"],
                  "residual_likelihood": rating["likelihood"], "residual_impact": rating["impact"]},
            relations={"rmf_subcategories": list(exercise.scenario.rmf_subcategories.all()),
                       "references": list(exercise.scenario.references.all())},
        )
    elif item.kind == ImprovementItem.Kind.MITIGATION:
        item.mitigation = risks.mitigation_add(actor=actor, risk=item.target_risk, data={
            "title": item.title, "owner": item.owner, "due_date": item.due_date, "source_ref": source_ref})
        item.risk = item.target_risk
    else:
        assessment = RmfAssessment.objects.get(system=item.system, subcategory=item.subcategory)
        note = f"Gap found in tabletop exercise {exercise.ref} ({exercise.title}): {item.title}"
        notes = f"{assessment.evidence_notes}\n{note}".strip()[-5000:]
        item.assessment = rmf.assessment_update(actor=actor, assessment=assessment, data={
            "status": AssessmentStatus.GAP, "evidence_notes": notes, "owner": item.owner or assessment.owner})
    item.promoted_at = now
    item.status = ImprovementItem.Status.IN_PROGRESS
    item.save()
    audit_record(actor=actor, action="exercise.improvement_promote", obj=item, system=item.system,
                 after={"kind": item.kind, "risk": item.risk.ref if item.risk else None,
                        "mitigation": item.mitigation_id, "assessment": item.assessment_id})
    return item


@transaction.atomic
def improvement_set_status(*, actor, item: ImprovementItem, status: str) -> ImprovementItem:
    if status not in ImprovementItem.Status.values:
        raise ValidationError({"status": "Unknown status."})
    before = item.status
    item.status = status
    item.save(update_fields=["status"])
    audit_record(actor=actor, action="exercise.improvement_status", obj=item, system=item.system,
                 before={"status": before}, after={"status": status})
    return item


def system_choices(exercise: Exercise):
    return exercise.systems.all() if exercise.systems.exists() else AISystem.objects.active()
