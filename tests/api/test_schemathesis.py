"""The API does what its OpenAPI schema says: Schemathesis generates requests for every operation, for a token of
each role, and checks that no answer is a 5xx, that every status, content type, header and body is the documented
one, and that schema-invalid data is refused. Requests run in-process through Django's test client (the test's
database transaction), bounded in number (EXAMPLES per operation and role).

Left out on purpose: "positive_data_acceptance" (a schema-valid body may still name a system that does not exist:
refused with a 400, as documented), and the stateful phase.
"""
from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
import schemathesis.specs.openapi.checks  # noqa: F401 -- registers the OpenAPI checks
from django.test import Client
from hypothesis import HealthCheck, given, settings as hsettings
from schemathesis.checks import CHECKS
from schemathesis.core.transport import Response

from governance.accounts.services import api_token_create
from tests.security.conftest import world  # noqa: F401 -- one object of every kind, and a user per role

pytestmark = pytest.mark.django_db
EXAMPLES = 12
CHECK_NAMES = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_headers_conformance", "response_schema_conformance", "negative_data_rejection"]
ROLES = ["ciso", "engineer", "owner", "facilitator"]


@pytest.fixture
def schema(world):
    client = Client()
    client.force_login(world.users["ciso"])
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    import json

    return schemathesis.openapi.from_dict(json.loads(response.content))


def _token(user) -> str:
    return api_token_create(user=user, name="schemathesis")[1]


def _send(case, token: str) -> Response:
    """Send a generated case through Django's test client; give back the answer as Schemathesis reads responses."""
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    kwargs["headers"] = {**kwargs.get("headers", {}), "Authorization": f"Bearer {token}"}
    prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in (
        "method", "url", "headers", "params", "data", "json", "files", "cookies")}).prepare()
    url = urlsplit(prepared.url)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in prepared.headers.items()
             if k.lower() not in ("content-type", "content-length")}
    body = prepared.body or b""
    answer = Client().generic(prepared.method, url.path, data=body.encode() if isinstance(body, str) else body,
                              content_type=prepared.headers.get("Content-Type", "application/octet-stream"),
                              QUERY_STRING=url.query, **extra)
    return Response(status_code=answer.status_code, headers={k: [v] for k, v in answer.headers.items()},
                    content=answer.content, request=prepared, elapsed=0.0, message=answer.reason_phrase,
                    encoding=answer.charset, http_version="1.1", verify=False)


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_answers_as_documented(schema, world, role):
    token = _token(world.users[role])
    checks = CHECKS.get_by_names(CHECK_NAMES)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @hsettings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                   suppress_health_check=list(HealthCheck))
        def run(case):
            response = _send(case, token)
            try:
                case.validate_response(response, checks=checks)
            except (Exception, BaseExceptionGroup) as exc:  # keep going: report every operation that fails
                failures.append(f"{operation.method.upper()} {operation.path} as {role}: "
                                f"{type(exc).__name__}: {str(exc)[:600]}")
                raise

        try:
            run()
        except (Exception, BaseExceptionGroup):  # noqa: S110 -- recorded in failures
            pass
    assert not failures, "\n\n".join(failures)
