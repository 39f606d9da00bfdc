"""Which API token scope each API route and method needs. Fail closed: a route or method missing here refuses tokens.

A scope only narrows what a token may do: the role check in each view still applies, so a token never does more than
its user may. `tests/api/test_scopes.py` walks the URL resolver and fails when an /api/ route has no entry here.
"""
from __future__ import annotations

from rest_framework import exceptions

from governance.accounts.models import ApiToken, Scope

READ = frozenset({Scope.READ})
WRITE = frozenset({Scope.WRITE})

# view name (as `reverse` takes it) -> method -> the scopes that allow it (any one of them)
ROUTE_SCOPES: dict[str, dict[str, frozenset[str]]] = {
    "api-system-list": {"GET": READ, "POST": WRITE},
    "api-system-detail": {"GET": READ, "PATCH": WRITE},
    "api-system-gate": {"GET": frozenset({Scope.GATE, Scope.READ})},
    "api-system-signoffs": {"GET": frozenset({Scope.GATE, Scope.READ}), "POST": WRITE},
    "api-system-signoff-latest": {"GET": frozenset({Scope.GATE, Scope.READ})},
    "api-risk-list": {"GET": READ, "POST": WRITE},
    "api-risk-detail": {"GET": READ, "PATCH": WRITE},
    "api-risk-decision": {"POST": WRITE},
    "api-lineage": {"POST": frozenset({Scope.LINEAGE})},
    "api-import-list": {"GET": frozenset({Scope.IMPORT, Scope.READ}), "POST": frozenset({Scope.IMPORT})},
    "api-import-detail": {"GET": frozenset({Scope.IMPORT, Scope.READ})},
    "api-finding-list": {"GET": READ},
    "api-exercise-injects": {"GET": READ},
    "api-schema": {"GET": READ},
}


class InsufficientScope(exceptions.PermissionDenied):
    """403 naming the scope the token lacks; WWW-Authenticate as in RFC 6750 (DRF's handler copies `auth_header`)."""

    default_code = "insufficient_scope"

    def __init__(self, detail: str, needed: frozenset[str]):
        super().__init__(detail)
        self.auth_header = f'Bearer realm="api", error="insufficient_scope", scope="{" ".join(sorted(needed))}"'


def needed_scopes(view_name: str | None, method: str) -> frozenset[str]:
    """The scopes that allow `method` on the route named `view_name`; empty when none does (unmapped).

    HEAD is scoped as GET; OPTIONS (the route's description) needs 'read' on any mapped route.
    """
    methods = ROUTE_SCOPES.get(view_name or "")
    if methods is None:
        return frozenset()
    if method == "OPTIONS":
        return READ
    return methods.get("GET" if method == "HEAD" else method, frozenset())


def require_scope(request, token: ApiToken) -> None:
    """Raise InsufficientScope unless `token` holds a scope that allows this request.

    A method the view has no handler for is left to the view, which answers 405 without doing anything.
    """
    view = (getattr(request, "parser_context", None) or {}).get("view")
    if view is not None and request.method not in view.allowed_methods:
        return
    match = getattr(request, "resolver_match", None)
    needed = needed_scopes(match.view_name if match else None, request.method)
    if token.has_any_scope(needed):
        return
    held = ", ".join(s for s in Scope.values if s in token.scopes) or "none"
    where = f"{request.method} {request.path}"
    if not needed:
        raise InsufficientScope(f"API tokens may not be used for {where}: no token scope covers it "
                                f"(this token's scopes: {held}).", needed)
    wanted = " or ".join(f"'{s}'" for s in Scope.values if s in needed)
    raise InsufficientScope(f"This API token lacks the {wanted} scope needed for {where} "
                            f"(its scopes: {held}). Create a token with that scope on My account.", needed)
