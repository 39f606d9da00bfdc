"""The official openlineage-python client, HTTP transport, sending to Rampart as it would to Marquez."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.generated import ownership_dataset, schema_dataset, tags_dataset
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport
from requests import HTTPError

from governance.inventory import services as inventory_services
from governance.lineage.models import LineageEdge, LineageEvent, LineageNode
from governance.lineage.selectors import blast_radius
from governance.lineage.services import events_process, inventory_sync
from tests.lineage.conftest import BASE, bearer, graph_dump

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(live_server, token: str) -> OpenLineageClient:
    config = HttpConfig(url=live_server.url, endpoint="api/v1/lineage", timeout=10,
                        auth=ApiKeyTokenProvider({"apiKey": token}), retry={"total": 0})
    return OpenLineageClient(transport=HttpTransport(config))


def customers() -> InputDataset:
    return InputDataset(namespace="postgres://crm:5432", name="crm.public.customers", facets={
        "schema": schema_dataset.SchemaDatasetFacet(fields=[
            schema_dataset.SchemaDatasetFacetFields(name="email", type="varchar"),
            schema_dataset.SchemaDatasetFacetFields(name="lifetime_value", type="numeric")]),
        "tags": tags_dataset.TagsDatasetFacet(tags=[
            tags_dataset.TagsDatasetFacetFields(key="pii", value="true", source="USER", field="email")]),
        "ownership": ownership_dataset.OwnershipDatasetFacet(owners=[
            ownership_dataset.Owner(name="team:crm-data", type="MAINTAINER")]),
    })


def test_client_events_build_the_graph_and_blast_radius(live_server, engineer, ciso, owner):
    system = inventory_services.system_create(actor=ciso, data={
        "name": "Churn Assistant", "slug": "churn-assistant", "purpose": "Predicts churn.", "business_owner": owner,
        "lifecycle_stage": "operate", "risk_tier": "high", "deployment": "customer_facing", "design_approach": "classical_ml"})
    inventory_services.model_register(actor=ciso, system=system, data={"name": "churn-gbm", "version": "3"})

    client = client_for(live_server, bearer(engineer))
    run, job = Run(runId=str(uuid.uuid4())), Job(namespace="training", name="train_churn_gbm")
    inputs = [customers(), InputDataset(namespace="s3://lake", name="events/clicks")]
    outputs = [OutputDataset(namespace="models", name="models:/churn-gbm/3")]
    start, end = BASE, BASE + timedelta(minutes=42)
    client.emit(RunEvent(eventType=RunState.START, eventTime=start.isoformat(), run=run, job=job, inputs=inputs,
                         outputs=outputs))
    client.emit(RunEvent(eventType=RunState.COMPLETE, eventTime=end.isoformat(), run=run, job=job, inputs=inputs,
                         outputs=outputs))

    assert LineageEvent.objects.count() == 2
    assert events_process() == 2
    inventory_sync()
    nodes, edges = graph_dump()
    customers_key = "dataset:postgres://crm:5432/crm.public.customers"
    assert set(nodes) == {customers_key, "dataset:s3://lake/events/clicks", "job:training/train_churn_gbm",
                          "model:churn-gbm@3", "system:churn-assistant"}
    assert nodes[customers_key][1:] == (start, end)  # first / last seen from START and COMPLETE
    assert edges[(customers_key, "job:training/train_churn_gbm", "input")] == (start, end)
    assert edges[("job:training/train_churn_gbm", "model:churn-gbm@3", "output")] == (start, end)
    assert ("model:churn-gbm@3", "system:churn-assistant", "deployed_in") in edges

    node = LineageNode.objects.get(key=customers_key)
    assert node.attributes["contains_pii"] is True
    assert node.attributes["owners"] == ["team:crm-data"]
    assert node.attributes["fields"] == ["email", "lifetime_value"]
    radius = blast_radius(node)
    assert [m.key for m in radius["models"]] == ["model:churn-gbm@3"]
    assert [s.key for s in radius["systems"]] == ["system:churn-assistant"]
    assert radius["systems"][0].system.business_owner == owner


def test_client_sees_refusals(live_server, facilitator, engineer):
    event = RunEvent(eventType=RunState.COMPLETE, eventTime=BASE.isoformat(), run=Run(runId=str(uuid.uuid4())),
                     job=Job(namespace="training", name="x"))
    with pytest.raises(HTTPError) as exc:
        client_for(live_server, bearer(facilitator)).emit(event)
    assert exc.value.response.status_code == 403
    with pytest.raises(HTTPError) as exc:
        client_for(live_server, "not-a-token").emit(event)
    assert exc.value.response.status_code in (401, 403)
    assert not LineageEvent.objects.exists()
    client_for(live_server, bearer(engineer)).emit(event)
    client_for(live_server, bearer(engineer)).emit(event)  # the same event twice: stored once
    assert LineageEvent.objects.count() == 1
    assert not LineageEdge.objects.exists()
