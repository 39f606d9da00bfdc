"""Provenance rules: conditions on the lineage graph and the inventory that raise findings.

Each rule is a function system -> records, documented with the NIST AI RMF subcategory it supports.
Findings are de-duplicated like scanner findings (source "lineage") and closed automatically when
the condition clears, because each evaluation reconciles the whole scope.
"""
from __future__ import annotations

import hashlib

from django.db.models import Max

from governance.findings.models import ImportRun
from governance.inventory.models import AISystem, Deployment, LifecycleStage
from governance.lineage.models import LineageEdge, LineageNode, NodeKind
from governance.lineage.selectors import UPSTREAM_SQL, _walk
from governance.lineage.services import model_key
from worker.scanners.base import Record

RULES_VERSION = "lineage-rules/v1"
SOURCE = "lineage"
DEPLOYED = (LifecycleStage.DEPLOY, LifecycleStage.OPERATE)
IN_HOUSE = {"", "in-house", "internal", "inhouse"}


def _record(rule: str, subcategory: str, severity: str, title: str, location: str, description: str,
            remediation: str, artifact: str = "") -> Record:
    fp = hashlib.sha256(f"{RULES_VERSION}|{rule}|{location}".encode()).hexdigest()
    return Record(tool="rampart-lineage", fingerprint=fp, title=title, severity=severity, tool_severity=severity,
                  rule_id=f"{rule} ({subcategory})", location=location, description=description,
                  remediation=remediation, artifact=artifact, raw={"rule": rule, "nist_ai_rmf": subcategory})


def _upstream(node_id: int) -> list[LineageNode]:
    return list(LineageNode.objects.filter(pk__in=_walk(UPSTREAM_SQL, node_id, 30)))


def deployed_model_without_training_data(system, graph) -> list[Record]:
    """MAP 4.1: a deployed model version must have recorded training data (its components are mapped)."""
    if system.lifecycle_stage not in DEPLOYED:
        return []
    out = []
    for m in system.models.all():
        node = graph.get(model_key(m.name, m.version))
        upstream = _upstream(node.pk) if node else []
        if not any(n.kind == NodeKind.DATASET for n in upstream) and not system.datasets.exists():
            out.append(_record("DEPLOYED_MODEL_NO_TRAINING_DATA", "MAP 4.1", "high",
                               f"Deployed model {m} has no recorded training data",
                               f"model {m.name}@{m.version}",
                               "Neither the lineage graph nor the inventory records which data trained this model.",
                               "Send the training job's OpenLineage events, sync MLflow, or register its datasets.",
                               artifact=m.name))
    return out


def training_data_undocumented(system, graph) -> list[Record]:
    """MAP 4.1 / GOVERN 6.1: training data needs documented provenance and a licence."""
    out = [
        _record("TRAINING_DATA_UNDOCUMENTED", "GOVERN 6.1", "medium",
                f"Dataset {d.name} has {'no licence' if not d.licence else 'no documented provenance'}",
                f"dataset {d.name}", "Third-party data rights and provenance must be known before training on it.",
                "Record the dataset's source, licence and provenance in the inventory.")
        for d in system.datasets.all() if not d.licence or not d.provenance_documented
    ]
    for m in system.models.all():
        node = graph.get(model_key(m.name, m.version))
        for n in (_upstream(node.pk) if node else []):
            if n.kind == NodeKind.DATASET and not n.attributes.get("licence"):
                out.append(_record("TRAINING_DATA_UNDOCUMENTED", "GOVERN 6.1", "medium",
                                   f"Lineage dataset {n.name} feeding {m} has no licence facet", f"lineage {n.key}",
                                   "The dataset reached this model through lineage without a licence facet.",
                                   "Add a licence (and dataSource) facet to the producer's events or register the dataset."))
    return out


def pii_to_customer_facing(system, graph) -> list[Record]:
    """MEASURE 2.10: personal data feeding a customer-facing system needs a privacy review."""
    if system.deployment not in (Deployment.CUSTOMER_FACING, Deployment.PUBLIC_API):
        return []
    out = [_record("PII_TO_CUSTOMER_FACING", "MEASURE 2.10", "high", f"PII dataset {d.name} feeds a {system.get_deployment_display().lower()} system",
                   f"dataset {d.name}", "Personal data flows into a system that outsiders can query.",
                   "Review privacy risk (membership inference, data leakage), minimise or anonymise the data.")
           for d in system.datasets.filter(contains_pii=True)]
    root = graph.get(f"system:{system.slug}")
    for n in (_upstream(root.pk) if root else []):
        if n.kind == NodeKind.DATASET and n.attributes.get("contains_pii"):
            out.append(_record("PII_TO_CUSTOMER_FACING", "MEASURE 2.10", "high",
                               f"Lineage dataset {n.name} tagged PII feeds {system.name}", f"lineage {n.key}",
                               "A dataset with PII tags reaches this customer-facing system through lineage.",
                               "Review privacy risk, minimise or anonymise the data."))
    return out


def third_party_pickle_unscanned(system, graph) -> list[Record]:
    """MANAGE 3.2: third-party pre-trained models are monitored; pickle-based ones need a clean model scan."""
    scanned = ImportRun.objects.filter(system=system, status=ImportRun.Status.DONE,
                                       detected_format__in=("modelscan", "picklescan")).exists()
    out = []
    for m in system.models.all():
        third_party = m.provider.strip().lower() not in IN_HOUSE or m.source_uri.startswith(("http://", "https://", "hf://"))
        if m.is_pickle_based and third_party and not scanned:
            out.append(_record("PICKLE_THIRD_PARTY_UNSCANNED", "MANAGE 3.2", "critical",
                               f"Third-party pickle model {m} has no ModelScan/picklescan result",
                               f"model {m.name}@{m.version}", "Loading a pickle can execute arbitrary code.",
                               "Scan it with modelscan or picklescan and import the report, or convert it to safetensors.",
                               artifact=m.name))
    return out


def training_data_changed_after_review(system, graph) -> list[Record]:
    """GOVERN 1.5: a change of training data after the last RMF review calls for a new review."""
    reviewed = system.assessments.aggregate(last=Max("last_reviewed"))["last"]
    if reviewed is None:
        return []
    out = []
    for m in system.models.all():
        node = graph.get(model_key(m.name, m.version))
        for n in (_upstream(node.pk) if node else []):
            if n.kind == NodeKind.DATASET and n.last_seen.date() > reviewed:
                out.append(_record("TRAINING_DATA_CHANGED_AFTER_REVIEW", "GOVERN 1.5", "medium",
                                   f"Training data {n.name} of {m} changed after the last RMF review",
                                   f"lineage {n.key} → {m.name}@{m.version}",
                                   f"Last seen {n.last_seen:%Y-%m-%d}; last RMF review {reviewed:%Y-%m-%d}.",
                                   "Review the system's RMF profile against the new training data."))
    return out


SYSTEM_RULES = [deployed_model_without_training_data, training_data_undocumented, pii_to_customer_facing,
                third_party_pickle_unscanned, training_data_changed_after_review]


def shadow_models() -> list[Record]:
    """GOVERN 1.6: every model seen in lineage belongs to an inventoried AI system (no shadow AI)."""
    deployed = set(LineageEdge.objects.filter(kind=LineageEdge.Kind.DEPLOYED_IN).values_list("src_id", flat=True))
    return [_record("SHADOW_MODEL", "GOVERN 1.6", "high", f"Model {n.name} seen in lineage belongs to no inventoried system",
                    n.key, "A model version appears in lineage events but no AI system in the inventory uses it.",
                    "Register the system that uses it (or map the model to one), or retire the model.", artifact=n.name)
            for n in LineageNode.objects.filter(kind=NodeKind.MODEL_VERSION).exclude(pk__in=deployed)]


def rules_evaluate() -> list[ImportRun]:
    """Evaluate every rule; one reconciling run per system, plus one for shadow models."""
    from governance.findings.imports import records_import

    graph = {n.key: n for n in LineageNode.objects.filter(kind__in=(NodeKind.MODEL_VERSION, NodeKind.SYSTEM))}
    runs = []
    for system in AISystem.objects.active().prefetch_related("models", "datasets"):
        records = [r for rule in SYSTEM_RULES for r in rule(system, graph)]
        runs.append(records_import(system=system, source=SOURCE, records=records, version=RULES_VERSION))
    runs.append(records_import(system=None, source=SOURCE, records=shadow_models(), version=RULES_VERSION))
    return runs
