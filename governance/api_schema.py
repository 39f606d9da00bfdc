"""The OpenAPI schema says every status the API answers (drf-spectacular post-processing hook).

Views document their successes and their own refusals (409 of the gate, 202 of an import); the answers every endpoint
can give are added here once: 400 (a value refused, or hostile input refused by governance.middleware), 401, 403,
404 on paths that name an object, 413 for bodies. Error bodies are {"detail": "…"} or, for a form of fields,
{"field": ["…"]}: the Error schema allows both.
"""
from __future__ import annotations

ERROR = {
    "type": "object",
    "description": '{"detail": "why"}, or for refused fields {"field": ["why", …]}.',
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
STANDARD = {
    "400": "A value was refused (each field says why), or the request carries what no view can store (NUL, half a "
           "UTF-16 pair, JSON nested too deeply).",
    "401": "No valid bearer token or session; an expired or revoked token says so.",
    "403": "Your role, or your token's scopes, do not allow this.",
    "404": "No such object.",
    "413": "The body is larger than this endpoint accepts.",
}


def standard_errors(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            for code, text in STANDARD.items():
                if code == "404" and "{" not in path:
                    continue
                if code == "413" and method not in ("post", "put", "patch"):
                    continue
                responses.setdefault(code, {"description": text, "content": error})
    return result



def _error_serializer():
    from drf_spectacular.utils import inline_serializer
    from rest_framework import serializers

    return inline_serializer("Error", {"detail": serializers.CharField()})  # the hook widens it (ERROR)


# For a view's own refusals (409 of a closed risk): the same body as every error.
ERROR_RESPONSE = _error_serializer()
