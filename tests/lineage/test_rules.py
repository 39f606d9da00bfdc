"""Provenance rules raise findings (source 'lineage') and close them when the condition clears."""
from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from governance.findings.imports import import_run_execute
from governance.findings.imports import import_run_create
from governance.findings.models import OPEN_STATES, Finding, FindingState
from governance.inventory import services as inventory_services
from governance.lineage.rules import rules_evaluate
from governance.lineage.services import event_receive, events_process, inventory_sync
from tests.lineage.conftest import ds, run_event

pytestmark = pytest.mark.django_db
MODELSCAN = Path(__file__).resolve().parent.parent / "data" / "scanners" / "modelscan" / "modelscan-0.8.8.json"


def send(*events):
    for e in events:
        event_receive(payload=e)
    events_process()


def evaluate() -> dict[str, Finding]:
    inventory_sync()
    rules_evaluate()
    return {f.rule_id.split(" ")[0] + "|" + f.location: f for f in Finding.objects.filter(source="lineage")}


def open_rules(findings) -> set[str]:
    return {k for k, f in findings.items() if f.state in OPEN_STATES}


@pytest.fixture
def model(system, ciso):
    return inventory_services.model_register(actor=ciso, system=system, data={"name": "support-llm", "version": "2"})


def test_deployed_model_without_training_data_then_lineage_arrives(system, model):
    key = "DEPLOYED_MODEL_NO_TRAINING_DATA|model support-llm@2"
    findings = evaluate()
    assert key in open_rules(findings)
    f = findings[key]
    assert f.system == system and f.severity == "high" and "MAP 4.1" in f.rule_id and f.raw["nist_ai_rmf"] == "MAP 4.1"
    send(run_event("finetune", [ds("public/tickets", licence="CC-BY-4.0")], ["models:/support-llm/2"]))
    findings = evaluate()
    assert findings[key].state == FindingState.CLOSED
    assert evaluate()[key].state == FindingState.CLOSED  # stays closed; no duplicate
    assert Finding.objects.filter(location="model support-llm@2").count() == 1


def test_training_data_without_licence_closes_when_a_licence_facet_arrives(system, model):
    send(run_event("finetune", [ds("crm/tickets")], ["models:/support-llm/2"]))
    key = "TRAINING_DATA_UNDOCUMENTED|lineage dataset:crm/tickets"
    findings = evaluate()
    assert key in open_rules(findings) and "GOVERN 6.1" in findings[key].rule_id
    send({"eventTime": "2026-10-02T00:00:00+00:00", "producer": "p",
          "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
          "dataset": ds("crm/tickets", licence="proprietary-internal")})
    assert evaluate()[key].state == FindingState.CLOSED


def test_registered_dataset_without_licence_closes_when_documented(system, ciso):
    d = inventory_services.dataset_register(actor=ciso, system=system, data={"name": "chat-logs"})
    key = "TRAINING_DATA_UNDOCUMENTED|dataset chat-logs"
    assert key in open_rules(evaluate())
    d.licence, d.provenance_documented = "internal", True
    d.save()
    assert evaluate()[key].state == FindingState.CLOSED


def test_pii_into_customer_facing_system(system, model, ciso):
    send(run_event("finetune", [ds("crm/customers", pii=True, licence="internal")], ["models:/support-llm/2"]))
    key = "PII_TO_CUSTOMER_FACING|lineage dataset:crm/customers"
    findings = evaluate()
    assert key in open_rules(findings) and findings[key].severity == "high" and "MEASURE 2.10" in findings[key].rule_id
    inventory_services.system_update(actor=ciso, system=system, data={"deployment": "internal"})
    assert evaluate()[key].state == FindingState.CLOSED


def test_third_party_pickle_closes_after_a_modelscan_import(system, ciso, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    inventory_services.model_register(actor=ciso, system=system, data={
        "name": "sentiment-bert", "version": "1.0", "format": "pytorch", "provider": "Hugging Face",
        "source_uri": "hf://acme/sentiment-bert"})
    key = "PICKLE_THIRD_PARTY_UNSCANNED|model sentiment-bert@1.0"
    findings = evaluate()
    assert key in open_rules(findings) and findings[key].severity == "critical" and "MANAGE 3.2" in findings[key].rule_id
    with MODELSCAN.open("rb") as stream:
        run = import_run_create(actor=ciso, stream=stream, filename=MODELSCAN.name, fmt="modelscan", system=system)
    import_run_execute(run.pk)
    assert evaluate()[key].state == FindingState.CLOSED


def test_training_data_changed_after_rmf_review(system, model):
    from governance.rmf.models import RmfAssessment, RmfSubcategory

    RmfAssessment.objects.update_or_create(system=system, subcategory=RmfSubcategory.objects.get(ident="GOVERN 1.5"),
                                           defaults={"last_reviewed": date(2026, 10, 1)})
    send(run_event("finetune", [ds("public/tickets", licence="CC-BY-4.0")], ["models:/support-llm/2"],
                   at=datetime(2026, 10, 5, tzinfo=timezone.utc)))
    key = "TRAINING_DATA_CHANGED_AFTER_REVIEW|lineage dataset:public/tickets → support-llm@2"
    assert key in open_rules(evaluate())
    RmfAssessment.objects.filter(system=system).update(last_reviewed=date(2026, 10, 6))
    assert evaluate()[key].state == FindingState.CLOSED


def test_shadow_model_lands_in_the_unassigned_queue_until_a_system_uses_it(system, ciso):
    send(run_event("train_secret", [ds("s3://lake/raw", licence="internal")], ["models:/side-project/0.1"]))
    key = "SHADOW_MODEL|model:side-project@0.1"
    findings = evaluate()
    assert key in open_rules(findings)
    f = findings[key]
    assert f.system is None and f.scope_key.startswith("unassigned") and "GOVERN 1.6" in f.rule_id
    inventory_services.model_register(actor=ciso, system=system, data={"name": "side-project", "version": "0.1"})
    assert evaluate()[key].state == FindingState.CLOSED
