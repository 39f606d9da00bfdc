"""Demo lineage for `make run`: training runs that feed the demo systems' model versions."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from governance.lineage.services import event_receive, events_process, inventory_sync

RUNS = [
    ("training", "train_fraud_xgb", ["warehouse/payments.transactions", "warehouse/chargebacks"], "models:/fraud-xgb/7.2.0"),
    ("training", "finetune_resume_llama", ["hris/historic-hiring-decisions", "public/job-descriptions"], "models:/llama-3-8b-resume/0.3"),
    ("forecast", "fit_prophet_demand", ["warehouse/sales.daily", "warehouse/promotions"], "models:/prophet-demand/2025.11"),
    ("research", "train_churn_experiment", ["warehouse/payments.transactions", "crm/customers"], "models:/churn-gbm/0.9"),
]
PII = {"hris/historic-hiring-decisions", "crm/customers", "warehouse/payments.transactions"}


def _dataset(path: str) -> dict:
    namespace, name = path.split("/", 1)
    facets = {"dataSource": {"_producer": "https://rampart.local/demo", "_schemaURL": "https://openlineage.io/spec/facets/1-0-0/DatasourceDatasetFacet.json",
                             "name": namespace, "uri": f"{namespace}://{name}"}}
    if path in PII:
        facets["schema"] = {"_producer": "https://rampart.local/demo", "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/SchemaDatasetFacet.json",
                            "fields": [{"name": "email", "type": "string", "tags": [{"name": "PII"}]}]}
    if namespace == "public":
        facets["license"] = {"name": "CC-BY-4.0"}
    return {"namespace": namespace, "name": name, "facets": facets}


def seed_lineage() -> int:
    base = datetime(2026, 10, 1, tzinfo=timezone.utc)
    sent = 0
    for i, (namespace, job, inputs, output) in enumerate(RUNS):
        event = {
            "eventType": "COMPLETE", "eventTime": (base + timedelta(days=7 * i)).isoformat(),
            "producer": "https://rampart.local/demo", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
            "run": {"runId": f"00000000-0000-4000-8000-00000000000{i}"}, "job": {"namespace": namespace, "name": job},
            "inputs": [_dataset(p) for p in inputs], "outputs": [{"namespace": "models", "name": output}],
        }
        _, created = event_receive(payload=event)
        sent += created
    events_process()
    inventory_sync()
    return sent
