"""NIST AI RMF catalogue (versioned) and the per-system profile of assessments."""
from __future__ import annotations

from django.conf import settings
from django.db import models

RMF_DEFAULT_VERSION = "1.0"


class RmfFunction(models.Model):
    version = models.CharField(max_length=20, default=RMF_DEFAULT_VERSION)
    code = models.CharField(max_length=20)  # GOVERN, MAP, MEASURE, MANAGE
    title = models.CharField(max_length=100)
    text = models.TextField()
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["version", "position"]
        constraints = [models.UniqueConstraint(fields=["version", "code"], name="rmf_function_unique")]

    def __str__(self) -> str:
        return self.code


class RmfCategory(models.Model):
    version = models.CharField(max_length=20, default=RMF_DEFAULT_VERSION)
    ident = models.CharField(max_length=20)  # "GOVERN 1"
    function = models.ForeignKey(RmfFunction, on_delete=models.CASCADE, related_name="categories")
    text = models.TextField()
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["version", "position"]
        constraints = [models.UniqueConstraint(fields=["version", "ident"], name="rmf_category_unique")]

    def __str__(self) -> str:
        return self.ident


class RmfSubcategory(models.Model):
    version = models.CharField(max_length=20, default=RMF_DEFAULT_VERSION)
    ident = models.CharField(max_length=20)  # "GOVERN 1.1"
    category = models.ForeignKey(RmfCategory, on_delete=models.CASCADE, related_name="subcategories")
    text = models.TextField()
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["version", "position"]
        constraints = [models.UniqueConstraint(fields=["version", "ident"], name="rmf_subcategory_unique")]

    def __str__(self) -> str:
        return self.ident

    @property
    def function_code(self) -> str:
        return self.ident.split(" ")[0]


class ReferenceItem(models.Model):
    """Items of the other shipped catalogues: AI 600-1, trustworthiness, MITRE ATLAS, OWASP LLM."""

    class Catalogue(models.TextChoices):
        GENAI_RISK = "ai-600-1", "NIST AI 600-1 GAI risk"
        TRUSTWORTHINESS = "trustworthiness", "Trustworthiness characteristic"
        ATLAS_TACTIC = "atlas-tactic", "MITRE ATLAS tactic"
        ATLAS_TECHNIQUE = "atlas-technique", "MITRE ATLAS technique"
        ATLAS_MITIGATION = "atlas-mitigation", "MITRE ATLAS mitigation"
        ATLAS_CASE_STUDY = "atlas-case-study", "MITRE ATLAS case study"
        OWASP_LLM = "owasp-llm", "OWASP LLM Top 10"

    catalogue = models.CharField(max_length=20, choices=Catalogue.choices)
    version = models.CharField(max_length=20)
    ident = models.CharField(max_length=40)
    title = models.CharField(max_length=300)
    text = models.TextField(blank=True)
    parent_ident = models.CharField(max_length=40, blank=True)
    data = models.JSONField(default=dict, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["catalogue", "version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["catalogue", "version", "ident"], name="reference_item_unique")
        ]

    def __str__(self) -> str:
        return f"{self.ident} {self.title}"


class AssessmentStatus(models.TextChoices):
    NOT_ASSESSED = "not_assessed", "Not assessed"
    NOT_APPLICABLE = "not_applicable", "Not applicable"
    GAP = "gap", "Gap"
    PARTIAL = "partial", "Partial"
    IMPLEMENTED = "implemented", "Implemented"


# What a subcategory that a gate policy requires must be: implemented, at least in part. "Not assessed", "gap" and
# "not applicable" (the policy says it applies) block the release (risks.gate).
REQUIREMENT_MET = (AssessmentStatus.IMPLEMENTED, AssessmentStatus.PARTIAL)


class RmfAssessment(models.Model):
    """How one AI system stands on one RMF subcategory."""

    system = models.ForeignKey("inventory.AISystem", on_delete=models.CASCADE, related_name="assessments")
    subcategory = models.ForeignKey(RmfSubcategory, on_delete=models.PROTECT, related_name="assessments")
    status = models.CharField(max_length=20, choices=AssessmentStatus.choices, default=AssessmentStatus.NOT_ASSESSED)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    evidence_notes = models.TextField(blank=True, max_length=5000)
    evidence_links = models.TextField(blank=True, max_length=5000, help_text="One http(s) link per line.")
    last_reviewed = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        permissions = [
            ("assess_any_system", "Edit the RMF profile of any system"),
            ("assess_own_system", "Edit the RMF profile of systems they own"),
        ]
        constraints = [models.UniqueConstraint(fields=["system", "subcategory"], name="assessment_unique")]
        indexes = [models.Index(fields=["system", "status"])]

    def __str__(self) -> str:
        return f"{self.system_id}:{self.subcategory_id} {self.status}"

    @property
    def links(self) -> list[str]:
        return [line.strip() for line in self.evidence_links.splitlines() if line.strip()]
