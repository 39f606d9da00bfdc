"""POST /api/v1/lineage: validation with clear 400s and nothing stored, idempotence, order independence, replay."""
from __future__ import annotations

import json
import random

import pytest
from rest_framework.test import APIClient

from governance.lineage.models import LineageEvent
from governance.lineage.services import events_process, graph_rebuild
from tests.lineage.conftest import BASE, bearer, ds, graph_dump, later, run_event

pytestmark = pytest.mark.django_db

URL = "/api/v1/lineage"


@pytest.fixture
def api(engineer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {bearer(engineer)}")
    return client


def post(api, body, content_type="application/json"):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return api.generic("POST", URL, data, content_type=content_type)


def valid(i: int = 0) -> dict:
    return run_event(f"job_{i}", [f"warehouse/t{i}"], [f"models:/m{i}/1"])


def drop(event: dict, key: str) -> dict:
    return {k: v for k, v in event.items() if k != key}


MALFORMED = [
    ("missing eventTime", lambda: drop(valid(), "eventTime"), "eventTime must be a non-empty string"),
    ("eventTime not a date", lambda: {**valid(), "eventTime": "yesterday"}, "not an ISO 8601"),
    ("eventTime without zone", lambda: {**valid(), "eventTime": "2026-10-01T12:00:00"}, "time zone"),
    ("inputs not a list", lambda: {**valid(), "inputs": {"namespace": "a", "name": "b"}}, "inputs must be a list"),
    ("runId a number", lambda: {**valid(), "run": {"runId": 42}}, "run.runId must be a non-empty string"),
    ("job without name", lambda: {**valid(), "job": {"namespace": "x"}}, "job.name"),
    ("dataset not an object", lambda: {**valid(), "outputs": ["s3://x"]}, "outputs[0] must be an object"),
    ("facets not an object", lambda: {**valid(), "inputs": [{"namespace": "a", "name": "b", "facets": []}]},
     "facets must be an object"),
    ("inputs an empty string", lambda: {**valid(), "inputs": ""}, "inputs must be a list"),
    ("unknown eventType", lambda: {**valid(), "eventType": "EXPLODE"}, "eventType 'EXPLODE' is not one of"),
    ("eventType a number", lambda: {**valid(), "eventType": 3}, "is not one of"),
    ("unknown event kind", lambda: {"eventTime": BASE.isoformat(), "producer": "p", "widget": {}}, "unknown event type"),
    ("a JSON string", lambda: "an event", "JSON object"),
    ("a batch with one bad event", lambda: [valid(1), drop(valid(2), "eventTime")], "event [1]: eventTime"),
]


@pytest.mark.parametrize("label,make,message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_event_is_refused_with_its_reason(api, label, make, message):
    response = post(api, make())
    assert response.status_code == 400, response.content
    assert message in response.json()["error"]
    assert not LineageEvent.objects.exists()


@pytest.mark.parametrize("body,message", [
    (b"{not json", "not valid JSON"),
    (b'{"eventTime": "\xff\xfe"}', "not UTF-8"),
    (b"", "not valid JSON"),
])
def test_unparseable_bodies(api, body, message):
    response = post(api, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not LineageEvent.objects.exists()


def test_ten_megabyte_facet_is_refused_by_size(api, settings):
    event = valid()
    event["inputs"][0]["facets"]["blob"] = {"_producer": "p", "data": "x" * (10 * 1024 * 1024)}
    response = post(api, event)  # over every JSON body's ceiling: refused before it is read (governance.middleware)
    assert response.status_code == 413 and "limited to" in response.json()["detail"]
    assert not LineageEvent.objects.exists()
    event["inputs"][0]["facets"]["blob"]["data"] = "x" * (settings.RAMPART_MAX_LINEAGE_EVENT_BYTES + 1)
    response = post(api, event)  # under that ceiling, over the lineage limit: the endpoint says which
    assert response.status_code == 400 and str(settings.RAMPART_MAX_LINEAGE_EVENT_BYTES) in response.json()["detail"]
    assert not LineageEvent.objects.exists()


def test_deeply_nested_json_is_refused(api):
    body = (json.dumps(valid())[:-1] + ', "x": ' + "[" * 200_000 + "]" * 200_000 + "}").encode()
    response = post(api, body)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert not LineageEvent.objects.exists()


def test_valid_events_keep_flowing_between_bad_ones(api):
    statuses = []
    for i in range(6):
        statuses.append(post(api, valid(i)).status_code)
        statuses.append(post(api, drop(valid(i), "eventTime")).status_code)
        statuses.append(post(api, b"\x80garbage").status_code)
    assert statuses == [201, 400, 400] * 6
    assert LineageEvent.objects.count() == 6
    assert events_process() == 6
    nodes, _ = graph_dump()
    assert {k for k in nodes if k.startswith("model:")} == {f"model:m{i}@1" for i in range(6)}


def test_same_event_twice_is_stored_once(api, enqueued, django_capture_on_commit_callbacks):
    event = valid()
    with django_capture_on_commit_callbacks(execute=True):
        first, second = post(api, event), post(api, event)
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == {"id": first.json()["id"], "duplicate": True}
    assert LineageEvent.objects.count() == 1
    # Key order does not make it a different event.
    reordered = json.loads(json.dumps(event, sort_keys=True))
    assert post(api, dict(reversed(list(reordered.items())))).status_code == 200
    assert enqueued == ["process_lineage"]


def test_auth(client, facilitator, nobody):
    assert APIClient().post(URL, valid(), format="json").status_code in (401, 403)
    for user in (facilitator, nobody):
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION=f"Bearer {bearer(user)}")
        response = c.post(URL, valid(), format="json")
        assert response.status_code == 403
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer nope")
    assert bad.post(URL, valid(), format="json").status_code in (401, 403)
    assert not LineageEvent.objects.exists()


def story() -> list[dict]:
    """Two runs of a training job (START/COMPLETE each), a downstream fine-tune, and a dataset event."""
    a, b, c = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", "33333333-3333-4333-8333-333333333333"
    raw, feats = ds("s3://lake/raw", pii=True, owners=("team:data",)), "warehouse/features"
    return [
        run_event("build_features", [raw], [feats], state="START", at=later(0), run_id=a),
        run_event("build_features", [raw], [feats], state="COMPLETE", at=later(5), run_id=a),
        run_event("build_features", [raw], [feats], state="START", at=later(60), run_id=b),
        run_event("build_features", [raw], [feats], state="COMPLETE", at=later(70), run_id=b),
        run_event("train", [feats, ds("public/reviews", licence="CC-BY-4.0")], ["models:/sentiment/1"], at=later(90), run_id=c),
        {"eventTime": later(120).isoformat(), "producer": "p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
         "dataset": ds("s3://lake/raw", licence="internal")},
        {"eventTime": later(30).isoformat(), "producer": "p", "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
         "job": {"namespace": "training", "name": "train"}, "inputs": [{"namespace": "warehouse", "name": "features"}], "outputs": []},
    ]


def send_all(api, events):
    for e in events:
        assert post(api, e).status_code == 201


def test_out_of_order_gives_the_same_graph(api):
    send_all(api, story())
    events_process()
    in_order = graph_dump()
    nodes, edges = in_order
    assert nodes["dataset:s3://lake/raw"][1:] == (later(0), later(120))
    assert edges[("dataset:s3://lake/raw", "job:training/build_features", "input")] == (later(0), later(70))
    assert edges[("dataset:warehouse/features", "job:training/train", "input")] == (later(30), later(90))

    LineageEvent.objects.all().delete()
    from governance.lineage.models import LineageNode

    LineageNode.objects.all().delete()
    shuffled = story()
    random.Random(7).shuffle(shuffled)
    shuffled.sort(key=lambda e: e.get("eventType") != "COMPLETE")  # every COMPLETE before any START
    for i in range(0, len(shuffled), 2):  # and in several worker batches
        send_all(api, shuffled[i:i + 2])
        events_process(batch=1)
    assert graph_dump() == in_order


def test_replaying_the_event_log_gives_the_same_graph(api, ciso, owner):
    from governance.inventory import services as inventory_services
    from tests.conftest import system_data

    system = inventory_services.system_create(actor=ciso, data=system_data(owner))
    inventory_services.model_register(actor=ciso, system=system, data={"name": "sentiment", "version": "1"})
    send_all(api, story())
    events_process(batch=3)
    from governance.lineage.services import inventory_sync

    inventory_sync()
    before_nodes, before_edges = graph_dump()
    graph_rebuild()
    after_nodes, after_edges = graph_dump()
    # Everything built from events is identical; inventory rows keep first_seen, their last_seen is each sync's "now".
    assert set(after_nodes) == set(before_nodes) and set(after_edges) == set(before_edges)
    assert {k: v[:2] for k, v in after_nodes.items()} == {k: v[:2] for k, v in before_nodes.items()}
    from_events = [k for k in before_nodes if k.startswith(("dataset:", "job:"))]
    assert {k: after_nodes[k] for k in from_events} == {k: before_nodes[k] for k in from_events}
    event_edges = [k for k in before_edges if k[2] != "deployed_in"]
    assert {k: after_edges[k] for k in event_edges} == {k: before_edges[k] for k in event_edges}
