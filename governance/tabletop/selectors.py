"""Reads for the exercise screens; the polled ones stay at a handful of queries whatever the exercise size."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, QuerySet, Subquery

from governance.tabletop.models import (
    AUDIENCE_ALL, Exercise, ExerciseState, ExpectedAction, ImprovementItem, Inject, InjectRelease, Observation,
    Participant, ParticipantRole, Response, Score, VisibilityGap,
)


def exercise_list(user) -> QuerySet[Exercise]:
    from governance.tabletop.permissions import can_plan

    qs = Exercise.objects.select_related("scenario", "facilitator").annotate(
        n_participants=Count("participants", distinct=True),
        taking_part=Exists(Participant.objects.filter(exercise=OuterRef("pk"), user=user)))
    if not can_plan(user):
        qs = qs.filter(participants__user=user)
    return qs.order_by("-scheduled_for", "-id")


def releases_for(exercise: Exercise, participant: Participant | None) -> list[InjectRelease]:
    """The injects released so far that this participant may see: a player only those for everyone or their
    function; observers and the facilitator all of them. Newest first."""
    qs = InjectRelease.objects.filter(exercise=exercise).select_related("inject").order_by("-released_at", "-id")
    if participant is None or participant.role == ParticipantRole.PLAYER:
        function = participant.function if participant else "-"
        qs = qs.filter(inject__audience__in=[AUDIENCE_ALL, function])
    return list(qs)


def _latest(model, field_name: str, **filters):
    return Subquery(model.objects.filter(exercise=OuterRef("pk"), **filters).order_by(f"-{field_name}").values(field_name)[:1])


def feed_version(exercise_id: int, participant: Participant | None = None) -> str:
    """A cheap fingerprint of what a polled panel shows (one query of index-backed subqueries): when it has not
    changed the poll answers 204 and htmx swaps nothing."""
    qs = Exercise.objects.filter(pk=exercise_id).annotate(release=_latest(InjectRelease, "id"))
    if participant is not None and participant.role == ParticipantRole.PLAYER:
        row = qs.annotate(mine=_latest(Response, "id", participant=participant)).values("state", "release", "mine").first()
    else:
        people = Subquery(Participant.objects.filter(exercise=OuterRef("pk")).values("exercise")
                          .annotate(n=Count("id")).values("n")[:1])
        row = qs.annotate(response=_latest(Response, "id"), score=_latest(Score, "scored_at"), gap=_latest(VisibilityGap, "id"),
                          obs=_latest(Observation, "id"), people=people).values(
            "state", "release", "response", "score", "gap", "obs", "people").first()
    if row is None:
        return ""
    return ".".join(str(v or 0) for v in row.values())


@dataclass
class ConsoleState:
    exercise: Exercise
    releases: list[InjectRelease]
    pending: list[Inject]
    responses_by_release: dict[int, list[Response]]
    response_count: int
    gaps: list[VisibilityGap]
    participants: list[Participant]
    clock_minute: float
    due: set[int] = field(default_factory=set)


def console_state(exercise: Exercise, now=None) -> ConsoleState:
    releases = list(InjectRelease.objects.filter(exercise=exercise).select_related("inject", "released_by")
                    .order_by("-released_at", "-id"))
    released_ids = {r.inject_id for r in releases}
    pending = [i for i in Inject.objects.filter(scenario_id=exercise.scenario_id).order_by("order") if i.pk not in released_ids]
    responses = Response.objects.filter(exercise=exercise).select_related("participant__user").order_by("-created_at", "-id")
    by_release: dict[int, list[Response]] = defaultdict(list)
    count = 0
    for r in responses:
        by_release[r.release_id].append(r)
        count += 1
    minute = exercise.clock_minutes(now)
    due = {i.pk for i in pending if i.offset_minutes is not None and i.offset_minutes <= minute}
    return ConsoleState(
        exercise=exercise, releases=releases, pending=pending, responses_by_release=dict(by_release),
        response_count=count, gaps=list(VisibilityGap.objects.filter(exercise=exercise).select_related("system")),
        participants=list(exercise.participants.select_related("user")), clock_minute=minute, due=due,
    )


def observer_state(exercise: Exercise, observer: Participant) -> dict:
    releases = list(InjectRelease.objects.filter(exercise=exercise).select_related("inject").order_by("-released_at", "-id"))
    actions = ExpectedAction.objects.filter(inject_id__in=[r.inject_id for r in releases])
    by_inject: dict[int, list[ExpectedAction]] = defaultdict(list)
    for a in actions:
        by_inject[a.inject_id].append(a)
    mine = {s.action_id: s for s in Score.objects.filter(exercise=exercise, observer=observer)}
    responses: dict[int, list[Response]] = defaultdict(list)
    for r in Response.objects.filter(exercise=exercise).select_related("participant__user").order_by("created_at", "id"):
        responses[r.release_id].append(r)
    rows = [{"release": r, "actions": [(a, mine.get(a.pk)) for a in by_inject[r.inject_id]],
             "responses": responses.get(r.pk, [])} for r in releases]
    return {"rows": rows, "observations": list(Observation.objects.filter(exercise=exercise, author=observer.user)
                                               .order_by("-created_at")[:20])}


def last_exercised(system) -> Exercise | None:
    """The most recent completed exercise that included this system (one query): what "last exercised" means on
    the system page, the posture page and the inventory's "never exercised" filter."""
    return (Exercise.objects.filter(systems=system, completed_at__isnull=False)
            .only("id", "title", "completed_at", "state").order_by("-completed_at", "-id").first())


# --- after-action report ---------------------------------------------------------------------------------

@dataclass
class Report:
    exercise: Exercise
    timeline: list[dict]
    decisions: list[Response]
    by_objective: list[dict]
    actions: list[dict]
    first_response: list[dict]
    strengths: list[str]
    improvements_text: list[str]
    gaps: list[VisibilityGap]
    items: list[ImprovementItem]
    participants: list[Participant]
    totals: dict


def _pct(ratings: list[int]) -> int | None:
    return round(100 * sum(ratings) / (3 * len(ratings))) if ratings else None


def _rated_pct(rows: list[dict]) -> tuple[int | None, int]:
    """(score, how many actions are rated) over expected-action rows: the mean of the rated actions' scores (each
    action the mean of its observers' ratings); unrated actions are left out, not counted as 0."""
    rated = [sum(s.rating for s in row["scores"]) / (3 * len(row["scores"])) for row in rows if row["scores"]]
    return (round(100 * sum(rated) / len(rated)) if rated else None), len(rated)


def lessons(exercise: Exercise, observations) -> tuple[list[str], list[str]]:
    """What went well and what to improve (the after-action report and the board report): the hot wash's lines,
    then the observations of that kind, in the order given."""
    strengths = [line for line in exercise.strengths.splitlines() if line.strip()]
    strengths += [o.text for o in observations if o.kind == Observation.Kind.STRENGTH]
    areas = [line for line in exercise.areas_for_improvement.splitlines() if line.strip()]
    areas += [o.text for o in observations if o.kind == Observation.Kind.IMPROVEMENT]
    return strengths, areas


def report(exercise: Exercise) -> Report:
    releases = list(InjectRelease.objects.filter(exercise=exercise).select_related("inject", "released_by").order_by("clock_minute", "id"))
    responses = list(Response.objects.filter(exercise=exercise).select_related("participant__user", "release__inject")
                     .order_by("clock_minute", "id"))
    observations = list(Observation.objects.filter(exercise=exercise).select_related("author").order_by("clock_minute", "id"))
    scores = list(Score.objects.filter(exercise=exercise).select_related("observer__user"))
    actions = list(ExpectedAction.objects.filter(inject__scenario_id=exercise.scenario_id).select_related("inject"))

    timeline = [{"minute": r.clock_minute, "at": r.released_at, "kind": "inject", "title": f"Inject {r.inject.order}: {r.inject.title}",
                 "detail": f"{r.inject.get_channel_display()} to {r.inject.get_audience_display()}"
                           f" · {'released by ' + str(r.released_by) if r.released_by else 'released on time by the clock'}"}
                for r in releases]
    timeline += [{"minute": r.clock_minute, "at": r.created_at, "kind": r.kind,
                  "title": f"{r.get_kind_display()} by {r.participant.user} ({r.participant.get_function_display()})",
                  "detail": r.text} for r in responses]
    timeline += [{"minute": o.clock_minute, "at": o.created_at, "kind": "observation",
                  "title": f"{o.get_kind_display()} from {o.author}", "detail": o.text} for o in observations]
    timeline.sort(key=lambda e: (e["minute"], e["at"]))

    ratings_by_action: dict[int, list[Score]] = defaultdict(list)
    for s in scores:
        ratings_by_action[s.action_id].append(s)
    action_rows = []
    for a in actions:
        ss = ratings_by_action.get(a.pk, [])
        action_rows.append({"action": a, "scores": ss, "pct": _pct([s.rating for s in ss]),
                            "objective": exercise.objectives[a.objective] if a.objective is not None and a.objective < len(exercise.objectives) else ""})
    by_objective = []
    for i, objective in enumerate(exercise.objectives):
        rows = [row for row in action_rows if row["action"].objective == i]
        pct, rated = _rated_pct(rows)
        by_objective.append({"objective": objective, "pct": pct, "rated": rated, "actions": len(rows)})
    score_pct, rated_actions = _rated_pct(action_rows)

    first: dict[int, Response] = {}
    for r in responses:
        first.setdefault(r.release_id, r)
    first_response = [{"release": r, "first": first.get(r.pk),
                       "minutes": round(first[r.pk].clock_minute - r.clock_minute, 1) if r.pk in first else None,
                       "count": sum(1 for x in responses if x.release_id == r.pk)} for r in releases]
    answered = [row["minutes"] for row in first_response if row["minutes"] is not None]

    strengths, areas = lessons(exercise, observations)
    return Report(
        exercise=exercise, timeline=timeline, decisions=[r for r in responses if r.kind == Response.Kind.DECISION],
        by_objective=by_objective, actions=action_rows, first_response=first_response, strengths=strengths,
        improvements_text=areas,
        gaps=list(VisibilityGap.objects.filter(exercise=exercise).select_related("system", "release__inject")),
        items=list(ImprovementItem.objects.filter(exercise=exercise).select_related(
            "owner", "system", "subcategory", "risk", "mitigation", "assessment", "target_risk")),
        participants=list(exercise.participants.select_related("user")),
        totals={"injects": len(releases), "responses": len(responses), "decisions": sum(1 for r in responses if r.kind == "decision"),
                "score_pct": score_pct, "scored_actions": rated_actions, "actions": len(actions),
                "median_first_response": sorted(answered)[len(answered) // 2] if answered else None,
                "duration": round(exercise.clock_minutes(), 1)},
    )


def open_improvements_count(exercise: Exercise) -> int:
    return ImprovementItem.objects.filter(exercise=exercise).exclude(status=ImprovementItem.Status.CLOSED).count()


