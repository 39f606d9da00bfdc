"""The AI system inventory: systems, and the models and datasets registered under them."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef
from django.urls import reverse

from governance.rmf.models import RMF_DEFAULT_VERSION


class LifecycleStage(models.TextChoices):
    PLAN_DESIGN = "plan_design", "Plan & design"
    BUILD = "build", "Data & model build"
    VERIFY = "verify", "Verify & validate"
    DEPLOY = "deploy", "Deploy"
    OPERATE = "operate", "Operate & monitor"
    RETIRED = "retired", "Retired"


class RiskTier(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class Deployment(models.TextChoices):
    INTERNAL = "internal", "Internal"
    CUSTOMER_FACING = "customer_facing", "Customer-facing"
    PUBLIC_API = "public_api", "Public API"


class Autonomy(models.TextChoices):
    HUMAN_IN_LOOP = "human_in_loop", "Human in the loop (a person approves each output)"
    HUMAN_ON_LOOP = "human_on_loop", "Human on the loop (a person monitors and can intervene)"
    AUTONOMOUS = "autonomous", "Autonomous (no routine human review)"


class DesignApproach(models.TextChoices):
    RAG = "rag", "Retrieval-augmented generation"
    FINE_TUNED = "fine_tuned", "Fine-tuned model"
    AGENT = "agent", "Agent / tool use"
    CLASSICAL_ML = "classical_ml", "Classical ML"
    THIRD_PARTY_API = "third_party_api", "Third-party model API"


class DataCategory(models.TextChoices):
    PII = "pii", "Personal data (PII)"
    SENSITIVE_PII = "sensitive_pii", "Special-category personal data"
    HEALTH = "health", "Health data"
    FINANCIAL = "financial", "Financial data"
    BIOMETRIC = "biometric", "Biometric data"
    CHILDREN = "children", "Children's data"
    CREDENTIALS = "credentials", "Credentials and secrets"
    CONFIDENTIAL = "confidential", "Confidential business data"
    PUBLIC = "public", "Public data only"


class AISystemQuerySet(models.QuerySet):
    def active(self):
        """Not archived: the portfolio every posture figure, inbox and list counts by default."""
        return self.filter(archived_at__isnull=True)

    def archived(self):
        return self.filter(archived_at__isnull=False)

    def never_exercised(self):
        """In no completed tabletop exercise (tabletop.selectors.last_exercised is the one-system form)."""
        from governance.tabletop.models import Exercise

        return self.exclude(Exists(Exercise.objects.filter(systems=OuterRef("pk"), completed_at__isnull=False)))


class AISystem(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=80, unique=True)
    purpose = models.TextField("purpose and context of use", max_length=4000)
    business_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_systems",
        help_text="The product owner who signs off this system's risks.",
    )
    technical_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="technical_systems", null=True, blank=True
    )
    business_unit = models.CharField(max_length=120, blank=True)
    lifecycle_stage = models.CharField(max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.PLAN_DESIGN)
    risk_tier = models.CharField(max_length=10, choices=RiskTier.choices, default=RiskTier.MEDIUM)
    deployment = models.CharField(max_length=20, choices=Deployment.choices, default=Deployment.INTERNAL)
    autonomy = models.CharField(max_length=20, choices=Autonomy.choices, default=Autonomy.HUMAN_IN_LOOP)
    human_oversight = models.TextField("human oversight", blank=True, max_length=2000)
    uses_generative_ai = models.BooleanField(default=False)
    third_party_provider = models.CharField(max_length=120, blank=True)
    data_categories = models.JSONField(default=list, blank=True)
    design_approach = models.CharField(max_length=20, choices=DesignApproach.choices, default=DesignApproach.CLASSICAL_ML)
    executes_generated_code = models.BooleanField(default=False)
    code_execution_isolation = models.TextField(blank=True, max_length=2000)
    rmf_version = models.CharField(max_length=20, default=RMF_DEFAULT_VERSION)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    OWNERSHIP_FIELDS = ("business_owner", "technical_owner")

    objects = AISystemQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "AI system"
        permissions = [
            ("change_any_system", "Edit any AI system"),
            ("change_own_system", "Edit AI systems they own"),
            ("change_technical_fields", "Edit the non-ownership fields of any AI system"),
            ("change_ownership", "Change the owners of an AI system"),
            ("archive_any_system", "Archive any AI system"),
            ("archive_own_system", "Archive AI systems they own"),
        ]
        indexes = [
            models.Index(fields=["lifecycle_stage", "name"]),
            models.Index(fields=["risk_tier", "name"]),
            models.Index(fields=["business_owner", "name"]),
            models.Index(fields=["updated_at"]),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("inventory:detail", args=[self.slug])

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def data_category_labels(self) -> list[str]:
        labels = dict(DataCategory.choices)
        return [labels.get(c, c) for c in self.data_categories]


class ModelFormat(models.TextChoices):
    PICKLE = "pickle", "Pickle"
    PYTORCH = "pytorch", "PyTorch (.pt/.bin, pickle-based)"
    SAFETENSORS = "safetensors", "safetensors"
    ONNX = "onnx", "ONNX"
    GGUF = "gguf", "GGUF"
    KERAS_H5 = "keras_h5", "Keras H5"
    TF_SAVEDMODEL = "tf_savedmodel", "TensorFlow SavedModel"
    API = "api", "Hosted API (no artefact)"
    OTHER = "other", "Other"


class AIModel(models.Model):
    system = models.ForeignKey(AISystem, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=80, blank=True)
    format = models.CharField(max_length=20, choices=ModelFormat.choices, default=ModelFormat.OTHER)
    source_uri = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    provider = models.CharField(max_length=120, blank=True)
    licence = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "version"]
        verbose_name = "model"
        constraints = [
            models.UniqueConstraint(fields=["system", "name", "version"], name="model_unique_per_system")
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}".strip()

    @property
    def is_pickle_based(self) -> bool:
        return self.format in (ModelFormat.PICKLE, ModelFormat.PYTORCH)


class Dataset(models.Model):
    system = models.ForeignKey(AISystem, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)
    source_uri = models.CharField(max_length=500, blank=True)
    licence = models.CharField(max_length=120, blank=True)
    contains_pii = models.BooleanField(default=False)
    provenance_documented = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["system", "name"], name="dataset_unique_per_system")]

    def __str__(self) -> str:
        return self.name
