"""Input no view can store gets a 400 with the reason, through one mechanism (governance.middleware
.HostileInputMiddleware), never a 500: a NUL byte in the path, a query parameter, a form field or a JSON body; a lone
UTF-16 surrogate in JSON; JSON nested 100,000 levels deep."""
from __future__ import annotations

import json

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.security.conftest import api_client, ui_client

pytestmark = pytest.mark.django_db
DEEP = "[" * 100_000 + "]" * 100_000


def _paths(resolver=None, prefix="") -> list[str]:
    """Every GET-able route of the project with its arguments filled by a plausible value."""
    out = []
    for p in (resolver or get_resolver()).url_patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            out += _paths(p, route)
        elif isinstance(p, URLPattern):
            filled = (route.replace("<int:pk>", "1").replace("<slug:slug>", "a").replace("<str:ref>", "RISK-0001")
                      .replace("^", "").replace("$", ""))
            out.append("/" + "".join(ch for ch in filled if ch not in "<>"))
    return out


def test_a_nul_in_any_query_parameter_is_a_400_everywhere(world):
    client = ui_client(world.users["ciso"])
    statuses = {path: client.get(path, {"q": "a\x00b", "system": "x"}).status_code for path in _paths()}
    assert {s for s in statuses.values()} <= {400}, {p: s for p, s in statuses.items() if s != 400}


@pytest.mark.parametrize("path", ["/risks/a%00/", "/systems/a%00b/", "/api/v1/risks/RISK%00/", "/findings/%00/"])
def test_a_nul_in_the_path_is_a_400(world, path):
    response = ui_client(world.users["ciso"]).get(path)
    assert response.status_code == 400 and b"NUL" in response.content


def test_api_answers_in_json_with_the_reason(world):
    response = api_client(world.users["engineer"]).get("/api/v1/findings/?q=%00")
    assert response.status_code == 400 and "NUL" in response.json()["detail"]


@pytest.mark.parametrize("body, words", [
    ({"system": "a\u0000"}, "NUL"), ({"title": "ok", "description": "x\ud800y"}, "surrogate"),
])
def test_hostile_json_fields_are_a_400(world, body, words):
    client = api_client(world.users["ciso"])
    raw = json.dumps(body)  # ensure_ascii: the NUL and the half pair travel as \\u escapes, as a client sends them
    response = client.generic("PATCH", f"/api/v1/risks/{world.risk.ref}/", raw, content_type="application/json")
    assert response.status_code == 400 and words in response.json()["detail"], response.content
    world.risk.refresh_from_db()
    assert world.risk.title != "ok"  # nothing written


@pytest.mark.parametrize("path", ["/api/v1/risks/", "/api/v1/lineage", "/api/v1/systems/", "/api/v1/findings/"])
def test_json_nested_100000_levels_is_a_400(world, path):
    response = api_client(world.users["ciso"]).generic("POST", path, DEEP, content_type="application/json")
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]


def test_a_lineage_event_with_a_nul_is_a_400(world):
    event = {"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z", "producer": "x\u0000",
             "run": {"runId": "0190a8e0-0000-7000-8000-000000000000"}, "job": {"namespace": "n", "name": "j"}}
    response = api_client(world.users["ciso"]).generic("POST", "/api/v1/lineage", json.dumps(event),
                                                       content_type="application/json")
    assert response.status_code == 400 and "NUL" in response.json()["detail"]


def test_a_form_field_with_a_nul_is_a_400(world):
    client = ui_client(world.users["ciso"])
    response = client.post(f"/risks/{world.risk.ref}/close/", {"reason": "gone\x00"})
    assert response.status_code == 400 and b"NUL" in response.content
    world.risk.refresh_from_db()
    assert world.risk.status != "closed"


def test_ordinary_json_and_paired_surrogates_pass(world):
    client = api_client(world.users["ciso"])
    response = client.generic("PATCH", f"/api/v1/risks/{world.risk.ref}/", json.dumps({"title": "Emoji \U0001F600"}),
                              content_type="application/json")
    assert response.status_code == 200 and response.json()["title"] == "Emoji \U0001F600"
