"""Questions an inject asks of Rampart itself, answered from the inventory, lineage and findings at that moment.

Each answer lists what Rampart knows and the gaps where it could not tell: no owner, never scanned, no datasets
registered, provenance unknown. The gaps become VisibilityGap rows of the exercise.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.db.models import Count, Max, Q
from django.utils import timezone

from governance.findings.models import OPEN_STATES, ImportRun
from governance.inventory.models import AIModel, AISystem, Dataset, LifecycleStage
from governance.tabletop.models import VisibilityQuestion

LIVE_STAGES = (LifecycleStage.DEPLOY, LifecycleStage.OPERATE)
IN_HOUSE = {"", "in-house", "inhouse", "internal", "in house"}


@dataclass
class Row:
    label: str
    detail: str = ""
    system: str = ""  # slug
    ok: bool = True


@dataclass
class Gap:
    detail: str
    system_id: int | None = None


@dataclass
class Answer:
    question: str
    param: str
    summary: str
    rows: list[Row] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    computed_at: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _lineage_systems(dataset_name: str) -> list[AISystem]:
    """Systems downstream of a lineage dataset node of that name (the lineage app may hold nothing yet)."""
    try:
        from governance.lineage.models import LineageNode, NodeKind
        from governance.lineage.selectors import blast_radius
    except ImportError:  # pragma: no cover - lineage is optional
        return []
    systems = []
    for node in LineageNode.objects.filter(kind=NodeKind.DATASET, name__icontains=dataset_name)[:5]:
        systems.extend(n.system for n in blast_radius(node)["systems"] if n.system is not None)
    return systems


def dataset_deployed(param: str) -> Answer:
    answer = Answer(VisibilityQuestion.DATASET_DEPLOYED.label, param, "")
    datasets = list(Dataset.objects.filter(name__icontains=param, system__archived_at__isnull=True)
                    .select_related("system__business_owner")) if param else []
    live = {d.system for d in datasets if d.system.lifecycle_stage in LIVE_STAGES}
    via_lineage = {s for s in _lineage_systems(param) if s.lifecycle_stage in LIVE_STAGES} if param else set()
    for d in datasets:
        stage = d.system.get_lifecycle_stage_display()
        answer.rows.append(Row(f"{d.system.name} · {d.name}", f"{stage}; owner {d.system.business_owner}; "
                               f"provenance {'documented' if d.provenance_documented else 'not documented'}",
                               d.system.slug, d.provenance_documented))
        if not d.provenance_documented:
            answer.gaps.append(Gap(f"Dataset {d.name} of {d.system.name} has no documented provenance", d.system_id))
    for s in via_lineage - live:
        answer.rows.append(Row(f"{s.name} (from lineage)", "reads the dataset according to lineage events, "
                               "but the dataset is not registered on the system", s.slug, False))
        answer.gaps.append(Gap(f"{s.name} uses {param} according to lineage, but the inventory does not say so", s.pk))
    if not datasets and not via_lineage:
        answer.gaps.append(Gap(f"No dataset named like {param!r} is registered in the inventory or seen in lineage"))
    bare = AISystem.objects.active().filter(lifecycle_stage__in=LIVE_STAGES).annotate(
        n=Count("datasets")).filter(n=0).only("id", "name")
    for s in bare:
        answer.gaps.append(Gap(f"Deployed system {s.name} has no datasets registered: cannot tell whether it used {param}", s.pk))
    answer.summary = (f"{len(live | via_lineage)} deployed system(s) used a dataset named like {param!r}; "
                      f"{len(bare)} deployed system(s) register no datasets at all.")
    return answer


def model_owner_scan(param: str) -> Answer:
    answer = Answer(VisibilityQuestion.MODEL_OWNER_SCAN.label, param, "")
    models = list(AIModel.objects.filter(Q(name__icontains=param) | Q(source_uri__icontains=param),
                                         system__archived_at__isnull=True)
                  .select_related("system__business_owner", "system__technical_owner")) if param else []
    system_ids = {m.system_id for m in models}
    last_scan = dict(ImportRun.objects.filter(system_id__in=system_ids, status=ImportRun.Status.DONE)
                     .values("system_id").annotate(at=Max("finished_at")).values_list("system_id", "at"))
    open_findings = dict(AISystem.objects.filter(pk__in=system_ids).annotate(
        n=Count("findings", filter=Q(findings__state__in=OPEN_STATES))).values_list("pk", "n"))
    for m in models:
        s = m.system
        scanned = last_scan.get(s.pk)
        tech = s.technical_owner
        detail = (f"{s.name}: business owner {s.business_owner}, technical owner {tech or '— none'}; "
                  f"last scan {scanned:%Y-%m-%d %H:%M} UTC, {open_findings.get(s.pk, 0)} open finding(s)" if scanned else
                  f"{s.name}: business owner {s.business_owner}, technical owner {tech or '— none'}; never scanned")
        answer.rows.append(Row(f"{m}", detail, s.slug, bool(scanned and tech)))
        if tech is None:
            answer.gaps.append(Gap(f"Model {m} in {s.name} has no technical owner", s.pk))
        if not scanned:
            answer.gaps.append(Gap(f"Model {m} in {s.name} has never been scanned (no completed import)", s.pk))
        if not m.sha256 and m.format != "api":
            answer.gaps.append(Gap(f"Model {m} in {s.name} has no recorded sha256: cannot tell which artefact runs", s.pk))
    if not models:
        answer.gaps.append(Gap(f"No model named like {param!r} is registered in the inventory"))
    answer.summary = f"{len(models)} registered model(s) match {param!r}."
    return answer


def third_party_pickle(param: str = "") -> Answer:
    answer = Answer(VisibilityQuestion.THIRD_PARTY_PICKLE.label, param, "")
    models = AIModel.objects.filter(format__in=("pickle", "pytorch"), system__archived_at__isnull=True).select_related("system")
    third_party = []
    for m in models:
        provider = m.provider.strip().lower()
        external_uri = m.source_uri.lower().startswith(("http://", "https://", "hf://"))
        if provider in IN_HOUSE and not external_uri:
            if not provider:
                answer.gaps.append(Gap(f"Pickle-based model {m} in {m.system.name} has no provider recorded", m.system_id))
            continue
        third_party.append(m)
        answer.rows.append(Row(f"{m.system.name} · {m}", f"{m.get_format_display()} from {m.provider or 'unknown provider'}"
                               f"{' · ' + m.source_uri if m.source_uri else ''}", m.system.slug, bool(m.sha256)))
        if not m.sha256:
            answer.gaps.append(Gap(f"Third-party pickle model {m} in {m.system.name} has no pinned sha256", m.system_id))
    answer.summary = f"{len({m.system_id for m in third_party})} system(s) load pickle-based models from third parties."
    return answer


def generated_code(param: str = "") -> Answer:
    answer = Answer(VisibilityQuestion.GENERATED_CODE.label, param, "")
    systems = AISystem.objects.active().filter(
        Q(executes_generated_code=True) | Q(design_approach="agent"))
    for s in systems:
        isolation = s.code_execution_isolation.strip()
        answer.rows.append(Row(s.name, isolation or "isolation not described" if s.executes_generated_code
                               else "agent; the inventory does not say whether it executes generated code",
                               s.slug, bool(isolation)))
        if s.executes_generated_code and not isolation:
            answer.gaps.append(Gap(f"{s.name} executes generated code but its isolation is not described", s.pk))
        if not s.executes_generated_code:
            answer.gaps.append(Gap(f"Agent {s.name}: unknown whether it executes generated code", s.pk))
    answer.summary = f"{sum(1 for s in systems if s.executes_generated_code)} system(s) execute generated code."
    return answer


def provider_dependency(param: str) -> Answer:
    answer = Answer(VisibilityQuestion.PROVIDER_DEPENDENCY.label, param, "")
    systems = list(AISystem.objects.active().filter(
        Q(third_party_provider__icontains=param) | Q(models__provider__icontains=param)).distinct()
        .select_related("business_owner")) if param else []
    for s in systems:
        answer.rows.append(Row(s.name, f"{s.get_lifecycle_stage_display()} · {s.get_deployment_display()} · owner {s.business_owner}",
                               s.slug))
    undocumented = AISystem.objects.active().filter(uses_generative_ai=True, third_party_provider="",
                                           models__isnull=True)
    for s in undocumented:
        answer.gaps.append(Gap(f"Generative AI system {s.name} names no provider and registers no model", s.pk))
    if not systems:
        answer.gaps.append(Gap(f"No system is recorded as depending on {param!r}"))
    answer.summary = f"{len(systems)} system(s) depend on {param!r}."
    return answer


QUESTIONS = {
    VisibilityQuestion.DATASET_DEPLOYED: dataset_deployed,
    VisibilityQuestion.MODEL_OWNER_SCAN: model_owner_scan,
    VisibilityQuestion.THIRD_PARTY_PICKLE: third_party_pickle,
    VisibilityQuestion.GENERATED_CODE: generated_code,
    VisibilityQuestion.PROVIDER_DEPENDENCY: provider_dependency,
}


def answer(question: str, param: str) -> Answer:
    result = QUESTIONS[question](param)
    result.computed_at = timezone.now().isoformat()
    return result
