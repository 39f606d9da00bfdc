"""The OpenAPI document at /api/schema/."""
from __future__ import annotations

import json

from rest_framework.test import APIClient

SCHEMA = "/api/schema/"


def test_schema_requires_authentication(db):
    response = APIClient().get(SCHEMA)
    assert response.status_code in (401, 403)


def test_schema_lists_the_systems_endpoints(api_as, engineer):
    response = api_as(engineer).get(SCHEMA, {"format": "json"})
    assert response.status_code == 200
    document = json.loads(response.content)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Rampart API"
    paths = document["paths"]
    assert set(paths["/api/v1/systems/"]) >= {"get", "post"}
    assert set(paths["/api/v1/systems/{slug}/"]) >= {"get", "patch"}
    assert "put" not in paths["/api/v1/systems/{slug}/"]
    assert "bearerAuth" in json.dumps(document["components"].get("securitySchemes", {})) or \
        "Bearer" in json.dumps(document["components"].get("securitySchemes", {}))


def test_schema_is_served_as_yaml_to_a_session_user(client, ciso):
    client.force_login(ciso)
    response = client.get(SCHEMA)
    assert response.status_code == 200
    assert b"/api/v1/systems/" in response.content
