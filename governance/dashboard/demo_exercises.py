"""Demo tabletop exercises for `make run`: one played weeks ago on the fraud-scoring and demand-forecast systems
(injects released, responses, observer scores, hot wash, an improvement promoted to a rated risk) and one planned for
next week on the support copilot. Written through the tabletop services with the times passed in, so the record reads
as if it had been played then; only the rows' `created_at` (set by the database) are dated back afterwards.
Runs before demo_history.seed_history, whose snapshot replay then shows the systems exercised from that day."""
from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from governance.accounts.models import User
from governance.inventory.models import AISystem
from governance.risks.models import Risk
from governance.tabletop import services as tabletop
from governance.tabletop.models import Exercise, ExpectedAction, ImprovementItem, ParticipantRole, Scenario

COMPLETED_TITLE = "Q3 model supply-chain drill: poisoned community checkpoint"
PLANNED_TITLE = "Support Copilot prompt-injection drill"
PLAYED_DAYS_AGO = 38

# (inject order, player email, text, decision rationale or "") — minutes after the release
RESPONSES = [
    (1, "ciso@rampart.local", "Cordoned gpu-node-17 and cut its egress; snapshot of the disk kept for forensics. "
     "Incident INC-2291 opened, I am incident commander.", ""),
    (1, "ciso@rampart.local", "Rotate the training service-account keys now, before we know the scope.",
     "The node had the role's credentials in memory; rotating costs one failed nightly job, a stolen key costs far more."),
    (2, "engineer@rampart.local", "The job loaded community/llama-ft-ckpt with torch.load (pickle). Stopped the two "
     "jobs still using it and blocked the repository on our hub mirror; the file is kept for analysis.", ""),
    (3, "engineer@rampart.local", "Registry shows a write to fraud-xgb 7.2.0 by the training role at 02:14. We cannot "
     "say yet whether the artefact changed: hashes were not pinned for that version.", ""),
    (3, "ciso@rampart.local", "Freeze every promotion out of the model registry until the production hashes are "
     "checked against the validated ones.", "A write from the training role means a production model may have been "
     "replaced; scoring keeps running on the model already loaded."),
    (3, "po2@rampart.local", "Fraud scoring keeps serving the in-memory model. Told payments ops that a rollback to "
     "7.1.0 may be needed within the hour; go/no-go at 11:30.", ""),
    (5, "engineer@rampart.local", "A scanning gate: no third-party pickle loads in a job unless modelscan passed; "
     "safetensors only for new hub downloads.", ""),
    (5, "po2@rampart.local", "Someone has to own the model registry: nobody could say who approves writes to it.", ""),
]
# rating per expected action, in the scenario's order (0 not met … 3 fully met), and what the observer saw
SCORES = [3, 2, 3, 1, 2, 2, 3, 0, 0, 2, 1]
SEEN = {3: "Done without prompting.", 2: "Done, after a reminder from the facilitator.",
        1: "Started, not finished within the exercise.", 0: "Not done: nobody in the room picked it up."}


def _played(users, systems, now) -> Exercise:
    fac, ciso, eng, po, po2 = (users[e] for e in ("facilitator@rampart.local", "ciso@rampart.local",
                                                  "engineer@rampart.local", "po@rampart.local", "po2@rampart.local"))
    scenario = Scenario.objects.get(slug="malicious-pickle-model")
    t0 = timezone.localtime(now - timedelta(days=PLAYED_DAYS_AGO)).replace(hour=10, minute=0, second=0, microsecond=0)
    ex = tabletop.exercise_create(actor=fac, systems=systems, data={
        "title": COMPLETED_TITLE, "scenario": scenario, "facilitator": fac, "scheduled_for": t0})
    players = {u.email: tabletop.participant_add(actor=fac, exercise=ex, user=u, role=ParticipantRole.PLAYER,
                                                 function=f)
               for u, f in ((ciso, "security"), (eng, "ml_engineer"), (po2, "product_owner"))}
    observer = tabletop.participant_add(actor=fac, exercise=ex, user=po, role=ParticipantRole.OBSERVER)
    ex = tabletop.exercise_transition(actor=fac, exercise=ex, action="start", now=t0)
    injects = list(scenario.injects.order_by("order"))
    actions = list(ExpectedAction.objects.filter(inject__scenario=scenario).order_by("inject__order", "order", "id"))
    releases = {}
    for inject in injects:
        at = t0 + timedelta(minutes=inject.offset_minutes if inject.offset_minutes is not None else 50)
        releases[inject.order] = (tabletop.inject_release(actor=fac, exercise=ex, inject=inject, now=at), at)
    for i, (order, email, text, rationale) in enumerate(RESPONSES):
        release, at = releases[order]
        tabletop.response_record(participant=players[email], release=release, text=text, rationale=rationale,
                                 kind="decision" if rationale else "response", now=at + timedelta(minutes=2 + i % 3))
    for action, rating in zip(actions, SCORES):
        _, at = releases[action.inject.order]
        tabletop.score_record(observer=observer, action=action, rating=rating, observation=SEEN[rating],
                              now=at + timedelta(minutes=6))
    for minute, kind, text in (
            (8, "strength", "Containment was fast: the node was cordoned within eight minutes, evidence kept."),
            (24, "note", "Nobody knew who owns the model registry; the write was found by chance in the audit log."),
            (40, "improvement", "The legal inject went unanswered for ten minutes: legal was not in the room.")):
        tabletop.observation_add(author=po, exercise=ex, kind=kind, text=text, now=t0 + timedelta(minutes=minute))
    ex = tabletop.exercise_transition(actor=fac, exercise=ex, action="hot_wash", now=t0 + timedelta(minutes=60))
    tabletop.hotwash_update(actor=fac, exercise=ex, strengths=(
        "A clear incident commander from the first inject.\nThe promotion freeze was decided early, with its "
        "rationale written down."), areas_for_improvement=(
        "Third-party pickle checkpoints load without any scan.\nThe model registry has no owner: nobody approves or "
        "reviews writes to it.\nNobody started the breach-assessment clock."))
    fraud = next(s for s in systems if s.slug == "fraud-scoring")
    item = tabletop.improvement_add(actor=fac, exercise=ex, data={
        "kind": ImprovementItem.Kind.RISK, "system": fraud, "owner": eng, "due_date": (t0 + timedelta(days=60)).date(),
        "title": "Writes to the model registry are neither owned nor reviewed",
        "description": "The training role could replace fraud-xgb in the registry and nobody would be told."})
    hot_wash_end = t0 + timedelta(minutes=85)
    tabletop.improvement_promote(actor=fac, item=item, rating={"likelihood": 3, "impact": 4}, now=hot_wash_end)
    pickle_risk = Risk.objects.filter(system=fraud, title__startswith="Pickle model artefact").first()
    if pickle_risk is not None:  # left open: the facilitator can promote it in the demo
        tabletop.improvement_add(actor=fac, exercise=ex, data={
            "kind": ImprovementItem.Kind.MITIGATION, "target_risk": pickle_risk, "system": fraud, "owner": eng,
            "due_date": timezone.localdate(now) + timedelta(days=14),
            "title": "Scan third-party pickles with modelscan before any job may load them"})
    ex = tabletop.exercise_transition(actor=fac, exercise=ex, action="complete", now=t0 + timedelta(minutes=90))
    Exercise.objects.filter(pk=ex.pk).update(created_at=t0 - timedelta(days=14))
    ImprovementItem.objects.filter(exercise=ex).update(created_at=hot_wash_end)
    return ex


def _planned(users, now) -> Exercise:
    fac = users["facilitator@rampart.local"]
    when = timezone.localtime(now + timedelta(days=7)).replace(hour=14, minute=0, second=0, microsecond=0)
    ex = tabletop.exercise_create(
        actor=fac, systems=list(AISystem.objects.filter(slug="support-copilot")),
        data={"title": PLANNED_TITLE, "scenario": Scenario.objects.get(slug="rag-prompt-injection-exfiltration"),
              "facilitator": fac, "scheduled_for": when})
    for email, role, function in (("po@rampart.local", ParticipantRole.PLAYER, "product_owner"),
                                  ("ciso@rampart.local", ParticipantRole.PLAYER, "security"),
                                  ("engineer@rampart.local", ParticipantRole.OBSERVER, "")):
        tabletop.participant_add(actor=fac, exercise=ex, user=users[email], role=role, function=function)
    return ex


@transaction.atomic
def seed_exercises(now=None) -> int:
    """Create the two demo exercises once (idempotent: by title). Returns how many it created."""
    now = now or timezone.now()
    users = {u.email: u for u in User.objects.filter(email__endswith="@rampart.local")}
    systems = list(AISystem.objects.filter(slug__in=("fraud-scoring", "demand-forecast")).order_by("name"))
    if not {"facilitator@rampart.local", "ciso@rampart.local", "engineer@rampart.local", "po@rampart.local",
            "po2@rampart.local"} <= set(users) or len(systems) < 2:
        return 0
    created = 0
    if not Exercise.objects.filter(title=COMPLETED_TITLE).exists():
        _played(users, systems, now)
        created += 1
    if not Exercise.objects.filter(title=PLANNED_TITLE).exists():
        _planned(users, now)
        created += 1
    return created
