"""Consistent API answers: every endpoint answers the same JSON with or without its trailing slash (a POST too: it
is not redirected, so it keeps its body); an unknown /api/ path gets a JSON 404, never an HTML page. And the
list of import runs a CI job or a dashboard expects (GET /api/v1/imports/, filtered)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from governance.findings.models import ImportRun
from tests.api.test_token_scopes import sarif_upload

pytestmark = pytest.mark.django_db


def toggled(path: str) -> str:
    return path[:-1] if path.endswith("/") else f"{path}/"


@pytest.mark.parametrize("name, kwargs", [
    ("api-system-list", {}), ("api-system-detail", {"slug": "SLUG"}), ("api-system-gate", {"slug": "SLUG"}),
    ("api-risk-list", {}), ("api-finding-list", {}), ("api-import-list", {}),
])
def test_get_answers_the_same_json_with_or_without_the_slash(name, kwargs, api_as, ciso, system):
    path = reverse(name, kwargs={k: system.slug if v == "SLUG" else v for k, v in kwargs.items()})
    client = api_as(ciso)
    first, second = client.get(path), client.get(toggled(path))
    assert first.status_code in (200, 409) and second.status_code == first.status_code, (path, second.content[:200])
    assert second["Content-Type"] == "application/json"
    body, again = first.json(), second.json()
    for moment in ("evaluated_at", "generated_at"):  # when each answer was computed
        body.pop(moment, None), again.pop(moment, None)
    assert again == body


def test_a_post_without_the_slash_keeps_its_body(api_as, engineer, system, queued):
    path = toggled(reverse("api-import-list"))
    assert not path.endswith("/")
    response = api_as(engineer).post(path, sarif_upload(system.slug), format="multipart")
    assert response.status_code == 202, response.content
    assert ImportRun.objects.get().source == "ci"


@pytest.mark.parametrize("path", ["/api/v1/nothing", "/api/v1/nothing/", "/api/v1/systems/no-such/gate/x",
                                  "/api/v1/imports/999999/", "/api/v1/imports/999999"])
def test_unknown_api_paths_get_json(path, api_as, ciso):
    response = api_as(ciso).get(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert "detail" in response.json()


def test_import_runs_are_listed_newest_first_and_filtered(api_as, engineer, system, other_system, queued):
    client = api_as(engineer)
    for target, source in ((system, "bandit"), (other_system, "bandit"), (system, "gitleaks")):
        upload = sarif_upload(target.slug)
        upload["source"] = source
        assert client.post(reverse("api-import-list"), upload, format="multipart").status_code == 202
    ImportRun.objects.create(system=system, source="old", format="sarif", status=ImportRun.Status.FAILED,
                             error="The report could not be read.")

    everything = client.get(reverse("api-import-list")).json()
    assert everything["count"] == ImportRun.objects.count()
    ids = [run["id"] for run in everything["results"]]
    assert ids == sorted(ids, reverse=True)

    mine = client.get(reverse("api-import-list"), {"system": system.slug}).json()
    assert {run["system"] for run in mine["results"]} == {system.slug}
    assert mine["count"] == ImportRun.objects.filter(system=system).count()
    assert client.get(reverse("api-import-list"), {"system": system.slug, "source": "gitleaks"}).json()["count"] == 1
    failed = client.get(reverse("api-import-list"), {"status": "failed"}).json()
    assert failed["count"] == ImportRun.objects.filter(status="failed").count() >= 1
    paged = client.get(reverse("api-import-list"), {"limit": 1}).json()
    assert len(paged["results"]) == 1 and paged["next"]
    assert client.get(reverse("api-import-list"), {"status": "sideways"}).status_code == 400
