"""POST /api/v1/lineage with a JSON array: bulk loads stored all together or not at all."""
from __future__ import annotations

import pytest

from governance.lineage.models import LineageEvent, LineageNode
from governance.lineage.services import events_process
from tests.lineage.test_ingest import api, drop, post, valid  # noqa: F401  (api is a fixture)

pytestmark = pytest.mark.django_db


def test_a_batch_is_stored_and_applied(api):  # noqa: F811
    response = post(api, [valid(i) for i in range(50)])
    assert response.status_code == 201 and response.json() == {"stored": 50, "duplicates": 0}
    assert events_process() == 50
    assert LineageNode.objects.filter(key="dataset:warehouse/t49").exists()


def test_replaying_a_batch_stores_nothing_new(api):  # noqa: F811
    events = [valid(i) for i in range(7)]  # each call makes a new run id: keep the same dicts
    post(api, events[:5])
    response = post(api, events + [events[0]])
    assert response.status_code == 201 and response.json() == {"stored": 2, "duplicates": 6}
    assert LineageEvent.objects.count() == 7
    assert post(api, [events[1]]).status_code == 200  # nothing new: 200, not 201


def test_one_invalid_event_refuses_the_whole_batch(api):  # noqa: F811
    response = post(api, [valid(1), valid(2), drop(valid(3), "job")])
    assert response.status_code == 400 and "event [2]" in response.json()["error"]
    assert "nothing stored" in response.json()["error"]
    assert LineageEvent.objects.count() == 0


def test_batches_are_capped(api, settings):  # noqa: F811
    settings.RAMPART_MAX_LINEAGE_BATCH = 3
    response = post(api, [valid(i) for i in range(4)])
    assert response.status_code == 400 and "at most 3 events" in response.json()["error"]
    assert LineageEvent.objects.count() == 0
