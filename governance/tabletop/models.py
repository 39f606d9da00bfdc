"""Tabletop exercises on AI incidents: scenarios and their injects, exercises run live, and what they teach."""
from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Function(models.TextChoices):
    """What a participant does in the organisation; injects are addressed to functions."""

    ML_ENGINEER = "ml_engineer", "ML engineer"
    DATA_SCIENTIST = "data_scientist", "Data scientist"
    SECURITY = "security", "Security"
    LEGAL = "legal", "Legal"
    COMMUNICATIONS = "communications", "Communications"
    PRODUCT_OWNER = "product_owner", "Product owner"


AUDIENCE_ALL = "all"
AUDIENCE_CHOICES = [(AUDIENCE_ALL, "Everyone"), *Function.choices]


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    CHAT = "chat", "Chat"
    PRESS = "press", "Press"
    REGULATOR = "regulator", "Regulator"
    TICKET = "ticket", "Ticket"


class ScenarioOrigin(models.TextChoices):
    BUILT_IN = "built_in", "Built in"
    IMPORTED = "imported", "Imported"
    ATLAS = "atlas", "Drafted from an ATLAS case study"


class VisibilityQuestion(models.TextChoices):
    """Questions Rampart answers from its own data while the exercise runs (see visibility.py)."""

    DATASET_DEPLOYED = "dataset_deployed", "Which deployed systems used dataset X?"
    MODEL_OWNER_SCAN = "model_owner_scan", "Who owns model Y and when was it last scanned?"
    THIRD_PARTY_PICKLE = "third_party_pickle", "Which systems load pickle models from third parties?"
    GENERATED_CODE = "generated_code", "Which systems execute generated code, and how is it isolated?"
    PROVIDER_DEPENDENCY = "provider_dependency", "Which systems depend on provider Z?"


class Scenario(models.Model):
    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    summary = models.CharField(max_length=500, blank=True)
    narrative = models.TextField(max_length=20000)
    objectives = models.JSONField(default=list, blank=True, help_text="What the exercise should test, in order.")
    rmf_subcategories = models.ManyToManyField("rmf.RmfSubcategory", blank=True, related_name="scenarios")
    references = models.ManyToManyField("rmf.ReferenceItem", blank=True, related_name="scenarios",
                                        help_text="MITRE ATLAS techniques and NIST AI 600-1 risks.")
    origin = models.CharField(max_length=20, choices=ScenarioOrigin.choices, default=ScenarioOrigin.IMPORTED)
    source_ref = models.CharField(max_length=40, blank=True, help_text="e.g. the ATLAS case study it was drafted from")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("tabletop:scenario", args=[self.slug])


class Inject(models.Model):
    """One piece of the story handed to the players: an email, a chat message, a press call…"""

    scenario = models.ForeignKey(Scenario, on_delete=models.CASCADE, related_name="injects")
    order = models.PositiveSmallIntegerField()
    offset_minutes = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="Minutes on the exercise clock; empty = released by hand.")
    audience = models.CharField(max_length=20, choices=AUDIENCE_CHOICES, default=AUDIENCE_ALL)
    channel = models.CharField(max_length=12, choices=Channel.choices, default=Channel.EMAIL)
    title = models.CharField(max_length=200)
    body = models.TextField(max_length=10000)
    attachments = models.JSONField(default=list, blank=True, help_text='[{"label": …, "url": …, "text": …}]')
    questions = models.JSONField(default=list, blank=True, help_text="Discussion questions.")
    facilitator_notes = models.TextField(blank=True, max_length=5000, help_text="Never shown to players.")
    visibility_question = models.CharField(max_length=30, choices=VisibilityQuestion.choices, blank=True)
    visibility_param = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["scenario", "order"]
        constraints = [models.UniqueConstraint(fields=["scenario", "order"], name="inject_order_unique")]

    def __str__(self) -> str:
        return f"#{self.order} {self.title}"

    @property
    def is_timed(self) -> bool:
        return self.offset_minutes is not None

    def is_for(self, function: str) -> bool:
        return self.audience in (AUDIENCE_ALL, function)


class ExpectedAction(models.Model):
    inject = models.ForeignKey(Inject, on_delete=models.CASCADE, related_name="expected_actions")
    order = models.PositiveSmallIntegerField(default=0)
    text = models.CharField(max_length=500)
    checked_by = models.CharField(max_length=100, blank=True, help_text="Who checks it, e.g. 'observer (security)'.")
    objective = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Index into the objectives (0-based).")

    class Meta:
        ordering = ["inject__order", "order", "id"]

    def __str__(self) -> str:
        return self.text


class ExerciseState(models.TextChoices):
    PLANNED = "planned", "Planned"
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    HOT_WASH = "hot_wash", "Hot wash"
    COMPLETED = "completed", "Completed"


class Exercise(models.Model):
    title = models.CharField(max_length=200)
    scenario = models.ForeignKey(Scenario, on_delete=models.PROTECT, related_name="exercises")
    systems = models.ManyToManyField("inventory.AISystem", blank=True, related_name="exercises")
    objectives = models.JSONField(default=list, blank=True)
    scheduled_for = models.DateTimeField(null=True, blank=True)
    facilitator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="facilitated_exercises")
    state = models.CharField(max_length=12, choices=ExerciseState.choices, default=ExerciseState.PLANNED)
    started_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_seconds = models.FloatField(default=0)
    ended_at = models.DateTimeField(null=True, blank=True, help_text="When play stopped and the hot wash began.")
    completed_at = models.DateTimeField(null=True, blank=True)
    strengths = models.TextField(blank=True, max_length=10000)
    areas_for_improvement = models.TextField(blank=True, max_length=10000)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-scheduled_for", "-id"]
        permissions = [("run_exercises", "Plan and facilitate tabletop exercises")]
        indexes = [models.Index(fields=["state"])]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("tabletop:exercise", args=[self.pk])

    @property
    def ref(self) -> str:
        return f"EX-{self.pk:04d}"

    @property
    def is_live(self) -> bool:
        return self.state in (ExerciseState.RUNNING, ExerciseState.PAUSED)

    @property
    def is_over(self) -> bool:
        return self.state in (ExerciseState.HOT_WASH, ExerciseState.COMPLETED)

    @property
    def edit_refusal(self) -> str:
        """Why this exercise can no longer be edited ("" while it can: until its clock starts)."""
        if self.state == ExerciseState.PLANNED:
            return ""
        return (f"{self.ref} is {self.get_state_display().lower()}: an exercise can be edited only until its clock "
                "starts, so that the record shows what was played.")

    def clock_seconds(self, now: datetime | None = None) -> float:
        """The exercise clock: wall time since the start, less the time spent paused. Frozen while paused."""
        if self.started_at is None:
            return 0.0
        if self.state == ExerciseState.PAUSED and self.paused_at:
            until = self.paused_at
        elif self.ended_at:
            until = self.ended_at
        else:
            until = now or timezone.now()
        return max(0.0, (until - self.started_at).total_seconds() - self.paused_seconds)

    def clock_minutes(self, now: datetime | None = None) -> float:
        return self.clock_seconds(now) / 60


class ParticipantRole(models.TextChoices):
    FACILITATOR = "facilitator", "Facilitator"
    PLAYER = "player", "Player"
    OBSERVER = "observer", "Observer / evaluator"


class Participant(models.Model):
    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="participants")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exercise_roles")
    role = models.CharField(max_length=12, choices=ParticipantRole.choices, default=ParticipantRole.PLAYER)
    function = models.CharField(max_length=20, choices=Function.choices, blank=True)

    class Meta:
        ordering = ["role", "function", "id"]
        constraints = [models.UniqueConstraint(fields=["exercise", "user"], name="participant_once_per_exercise")]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()})"


class InjectRelease(models.Model):
    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="releases")
    inject = models.ForeignKey(Inject, on_delete=models.PROTECT, related_name="releases")
    released_at = models.DateTimeField()
    released_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", help_text="Empty when the clock released it.")
    clock_minute = models.FloatField()
    visibility_answer = models.JSONField(null=True, blank=True, help_text="Rampart's answer at release time.")

    class Meta:
        ordering = ["released_at", "id"]
        constraints = [models.UniqueConstraint(fields=["exercise", "inject"], name="inject_released_once")]

    def __str__(self) -> str:
        return f"{self.inject} @ {self.clock_minute:.1f} min"


class Response(models.Model):
    class Kind(models.TextChoices):
        RESPONSE = "response", "Response"
        DECISION = "decision", "Decision"

    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="responses")
    release = models.ForeignKey(InjectRelease, on_delete=models.CASCADE, related_name="responses")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="responses")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.RESPONSE)
    text = models.TextField(max_length=5000)
    rationale = models.TextField(blank=True, max_length=5000)
    created_at = models.DateTimeField()
    clock_minute = models.FloatField()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["exercise", "id"])]


class Score(models.Model):
    class Rating(models.IntegerChoices):
        NOT_MET = 0, "Not met"
        PARTIALLY = 1, "Partially met"
        MOSTLY = 2, "Mostly met"
        MET = 3, "Fully met"

    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="scores")
    action = models.ForeignKey(ExpectedAction, on_delete=models.PROTECT, related_name="scores")
    observer = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="scores")
    rating = models.PositiveSmallIntegerField(choices=Rating.choices)
    observation = models.TextField(blank=True, max_length=5000)
    scored_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["exercise", "action", "observer"], name="score_once_per_observer")]


class Observation(models.Model):
    class Kind(models.TextChoices):
        STRENGTH = "strength", "Strength"
        IMPROVEMENT = "improvement", "Area for improvement"
        NOTE = "note", "Note"

    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="observations")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    release = models.ForeignKey(InjectRelease, null=True, blank=True, on_delete=models.SET_NULL, related_name="observations")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.NOTE)
    text = models.TextField(max_length=5000)
    created_at = models.DateTimeField()
    clock_minute = models.FloatField(default=0)

    class Meta:
        ordering = ["created_at", "id"]


class VisibilityGap(models.Model):
    """Something Rampart could not answer from its own data during an exercise."""

    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="gaps")
    release = models.ForeignKey(InjectRelease, null=True, blank=True, on_delete=models.SET_NULL, related_name="gaps")
    question = models.CharField(max_length=30, choices=VisibilityQuestion.choices)
    detail = models.CharField(max_length=500)
    system = models.ForeignKey("inventory.AISystem", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["exercise", "question", "detail"], name="gap_once_per_exercise")]

    def __str__(self) -> str:
        return self.detail


class ImprovementItem(models.Model):
    class Kind(models.TextChoices):
        RISK = "risk", "New risk in the register"
        MITIGATION = "mitigation", "Mitigation action on a risk"
        RMF_GAP = "rmf_gap", "NIST AI RMF gap"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        IN_PROGRESS = "in_progress", "In progress"
        CLOSED = "closed", "Closed"

    exercise = models.ForeignKey(Exercise, on_delete=models.CASCADE, related_name="improvements")
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True, max_length=5000)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    system = models.ForeignKey("inventory.AISystem", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    subcategory = models.ForeignKey("rmf.RmfSubcategory", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    target_risk = models.ForeignKey("risks.Risk", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                    help_text="The risk a mitigation action goes on.")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    due_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    risk = models.ForeignKey("risks.Risk", null=True, blank=True, on_delete=models.SET_NULL, related_name="improvement_items")
    mitigation = models.ForeignKey("risks.MitigationAction", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assessment = models.ForeignKey("rmf.RmfAssessment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    promoted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["status", "due_date", "id"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_promoted(self) -> bool:
        return self.promoted_at is not None

    @property
    def tracked_status(self) -> str:
        """Closed once the register says so: the risk closed, the action done, the RMF gap no longer a gap."""
        if self.status == self.Status.CLOSED:
            return self.Status.CLOSED
        if self.risk_id and self.kind == self.Kind.RISK and self.risk.status == "closed":
            return self.Status.CLOSED
        if self.mitigation_id and self.mitigation.status == "done":
            return self.Status.CLOSED
        if self.assessment_id and self.assessment.status in ("implemented", "not_applicable"):
            return self.Status.CLOSED
        if self.is_promoted:
            return self.Status.IN_PROGRESS
        return self.status

    @property
    def tracked_status_label(self) -> str:
        return self.Status(self.tracked_status).label

    @property
    def is_overdue(self) -> bool:
        return self.tracked_status != self.Status.CLOSED and self.due_date is not None and self.due_date < timezone.localdate()
