"""API token scopes: every /api/ route and method maps to the scopes that allow it (fail closed), a token may do only
what its scopes allow, and scopes never widen its user's role. Sessions are not scoped."""
from __future__ import annotations

import io

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter, SlugConverter
from rest_framework.test import APIClient

from governance.accounts import scopes
from governance.accounts.models import Scope
from governance.accounts.services import api_token_create
from governance.audit.models import AuditEvent
from governance.findings.models import ImportRun
from governance.lineage.models import LineageEvent
from governance.risks.models import Risk
from tests.conftest import system_data
from tests.lineage.conftest import run_event
from tests.risks.conftest import make_risk

ALL = set(Scope.values)


def scoped(user, *granted: str) -> APIClient:
    _, plain = api_token_create(user=user, name="-".join(granted) or "none", scopes=list(granted))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


def api_routes(resolver=None, route: str = "") -> list[tuple[str, URLPattern, str]]:
    """(view name, pattern, full route) of every URL under /api/, found by walking the URL resolver."""
    found = []
    for p in (resolver or get_resolver()).url_patterns:
        full = route + str(p.pattern)
        if isinstance(p, URLResolver):
            found += api_routes(p, full)
        elif isinstance(p, URLPattern) and full.startswith("api/"):
            found.append((p.name, p, full))
    return found


def view_methods(pattern: URLPattern) -> set[str]:
    """The methods the view has a handler for, besides OPTIONS (every DRF view) and HEAD (served as GET)."""
    cls = pattern.callback.cls
    return {m.upper() for m in cls.http_method_names if hasattr(cls, m)} - {"OPTIONS", "HEAD"}


def url_of(name: str, pattern: URLPattern) -> str:
    """A URL for the route with placeholder arguments: the scope check refuses before the view looks anything up."""
    dummy = {IntConverter: 1, SlugConverter: "support-copilot"}
    kwargs = {k: dummy.get(type(c), "R-1") for k, c in pattern.pattern.converters.items()}
    return reverse(name, kwargs=kwargs)


def send(client: APIClient, method: str, url: str, data=None, fmt: str = "json"):
    if method in ("GET", "HEAD", "OPTIONS", "DELETE"):
        return getattr(client, method.lower())(url)
    return getattr(client, method.lower())(url, data if data is not None else {}, format=fmt)


def assert_refused_for_scope(response, *needed: str) -> None:
    assert response.status_code == 403, (response.status_code, getattr(response, "data", None))
    detail = str(response.data["detail"])  # .data: the schema route renders its refusal as OpenAPI YAML
    assert " or ".join(f"'{s}'" for s in needed) + " scope" in detail, detail
    scope = " ".join(sorted(needed))
    assert response["WWW-Authenticate"] == f'Bearer realm="api", error="insufficient_scope", scope="{scope}"'


def sarif_upload(system_slug: str) -> dict:
    report = io.BytesIO(b'{"version": "2.1.0", "runs": []}')
    report.name = "report.sarif"
    return {"file": report, "format": "sarif", "system": system_slug, "source": "ci"}


# --- the map covers every route (fail closed) ----------------------------------------------------------------------

def test_every_api_route_and_method_has_a_scope():
    """Walks the URL resolver: each /api/ route, and each method its view serves, is in scopes.ROUTE_SCOPES."""
    routes = api_routes()
    assert len(routes) >= 12, routes
    unmapped = {f"{name} {m}" for name, p, _ in routes for m in view_methods(p)
                if not scopes.needed_scopes(name, m)}
    assert not unmapped, f"API routes no token scope covers (add them to governance/accounts/scopes.py): {unmapped}"
    stale = set(scopes.ROUTE_SCOPES) - {name for name, _, _ in routes}
    assert not stale, f"scopes.ROUTE_SCOPES names routes that do not exist: {stale}"
    for name, p, _ in routes:
        assert set(scopes.ROUTE_SCOPES[name]) == view_methods(p), name
        assert all(needed <= ALL for needed in scopes.ROUTE_SCOPES[name].values()), name


def test_a_route_missing_from_the_map_refuses_every_token(monkeypatch, client, ciso):
    monkeypatch.delitem(scopes.ROUTE_SCOPES, "api-finding-list")
    url = reverse("api-finding-list")
    response = scoped(ciso, *ALL).get(url)
    assert response.status_code == 403
    assert "no token scope covers" in response.json()["detail"]
    client.force_login(ciso)
    assert client.get(url).status_code == 200  # sessions are not scoped


# --- a gate-only token ---------------------------------------------------------------------------------------------

def test_gate_only_token_reads_the_gate(engineer, system):
    gate = scoped(engineer, Scope.GATE)
    response = gate.get(reverse("api-system-gate", args=[system.slug]))
    assert response.status_code in (200, 409)
    assert response.json()["decision"] in ("go", "no-go")


# What a CI job holding a gate token reads: the gate, and the product owner's release sign-offs it may require.
GATE_READS = {("api-system-gate", "GET"), ("api-system-signoffs", "GET"), ("api-system-signoff-latest", "GET")}


def test_gate_only_token_reads_the_release_sign_offs_but_cannot_sign(engineer, owner, system):
    from governance.risks.services import release_signoff_record

    release_signoff_record(actor=owner, system=system, release="v1", verdict="no-go", justification="Pen test due.")
    gate = scoped(owner, Scope.GATE)
    latest = gate.get(reverse("api-system-signoff-latest", args=[system.slug]), {"release": "v1"})
    assert latest.status_code == 200 and latest.json()["verdict"] == "no-go"
    signing = gate.post(reverse("api-system-signoffs", args=[system.slug]),
                        {"release": "v2", "verdict": "no-go", "justification": "x"}, format="json")
    assert_refused_for_scope(signing, Scope.WRITE)


def test_gate_only_token_is_refused_everywhere_else(engineer, system):
    """Every other /api/ route and method (found by walking the resolver) answers 403 naming the scope it needs, and
    nothing is written."""
    gate = scoped(engineer, Scope.GATE)
    events, wrong, tried = AuditEvent.objects.count(), {}, 0
    for name, p, _ in api_routes():
        for method in sorted(view_methods(p) | {"OPTIONS"}):
            if (name, method) in GATE_READS:
                continue
            response = send(gate, method, url_of(name, p))
            needed = scopes.needed_scopes(name, method)
            tried += 1
            try:
                assert_refused_for_scope(response, *[s for s in Scope.values if s in needed])
            except AssertionError as exc:
                wrong[f"{method} {name}"] = str(exc)
    assert not wrong, wrong
    assert tried >= 18 and AuditEvent.objects.count() == events


def test_gate_only_token_cannot_import(engineer, system):
    response = scoped(engineer, Scope.GATE).post(reverse("api-import-list"), sarif_upload(system.slug),
                                                 format="multipart")
    assert_refused_for_scope(response, Scope.IMPORT)
    assert "(its scopes: gate)" in response.json()["detail"]
    assert not ImportRun.objects.exists()


def test_gate_only_token_cannot_read_or_write_risks(engineer, system):
    risk = make_risk(engineer, system)
    gate = scoped(engineer, Scope.GATE)
    assert_refused_for_scope(gate.get(reverse("api-risk-list")), Scope.READ)
    assert_refused_for_scope(gate.get(reverse("api-risk-detail", args=[risk.ref])), Scope.READ)
    assert_refused_for_scope(gate.post(reverse("api-risk-list"), {"title": "x", "system": system.slug}, format="json"),
                             Scope.WRITE)
    assert_refused_for_scope(gate.patch(reverse("api-risk-detail", args=[risk.ref]), {"title": "y"}, format="json"),
                             Scope.WRITE)
    assert Risk.objects.count() == 1 and Risk.objects.get().title == risk.title


def test_gate_only_token_cannot_send_lineage(engineer):
    response = scoped(engineer, Scope.GATE).post(reverse("api-lineage"), run_event("train", ["s3/a"], ["s3/b"]),
                                                 format="json")
    assert_refused_for_scope(response, Scope.LINEAGE)
    assert not LineageEvent.objects.exists()


def test_a_method_the_view_does_not_serve_is_405(engineer, system):
    gate = scoped(engineer, Scope.GATE)
    assert gate.delete(reverse("api-system-detail", args=[system.slug])).status_code == 405
    assert gate.put(reverse("api-system-gate", args=[system.slug]), {}, format="json").status_code == 405


# --- the other scopes ----------------------------------------------------------------------------------------------

def test_read_token_reads_but_does_not_write(ciso, owner, system):
    read = scoped(ciso, Scope.READ)
    assert read.get(reverse("api-system-list")).status_code == 200
    assert read.get(reverse("api-system-gate", args=[system.slug])).status_code in (200, 409)
    assert read.get(reverse("api-finding-list")).status_code == 200
    assert read.options(reverse("api-system-list")).status_code == 200
    payload = {**system_data(owner, slug="read-only"), "business_owner": owner.email}
    assert_refused_for_scope(read.post(reverse("api-system-list"), payload, format="json"), Scope.WRITE)
    assert_refused_for_scope(read.post(reverse("api-import-list"), sarif_upload(system.slug), format="multipart"),
                             Scope.IMPORT)


def test_import_token_imports_and_reads_its_runs_only(engineer, system):
    imports = scoped(engineer, Scope.IMPORT)
    response = imports.post(reverse("api-import-list"), sarif_upload(system.slug), format="multipart")
    assert response.status_code == 202, response.json()
    run = ImportRun.objects.get()
    assert imports.get(reverse("api-import-detail", args=[run.pk])).status_code == 200
    assert_refused_for_scope(imports.get(reverse("api-system-list")), Scope.READ)
    assert_refused_for_scope(imports.get(reverse("api-system-gate", args=[system.slug])), Scope.READ, Scope.GATE)


def test_lineage_token_sends_events_only(engineer):
    lineage = scoped(engineer, Scope.LINEAGE)
    response = lineage.post(reverse("api-lineage"), run_event("train", ["s3/a"], ["s3/b"]), format="json")
    assert response.status_code == 201, response.json()
    assert_refused_for_scope(lineage.get(reverse("api-system-list")), Scope.READ)


def test_write_token_writes(ciso, owner):
    write = scoped(ciso, Scope.WRITE)
    payload = {**system_data(owner, slug="written"), "business_owner": owner.email}
    assert write.post(reverse("api-system-list"), payload, format="json").status_code == 201
    assert_refused_for_scope(write.get(reverse("api-system-list")), Scope.READ)


def test_scopes_never_widen_the_role(facilitator, nobody, system):
    """Every scope, but the facilitator may not create systems or import and a user without a role may not write."""
    everything = scoped(facilitator, *ALL)
    payload = {**system_data(facilitator, slug="nope"), "business_owner": facilitator.email}
    refused = everything.post(reverse("api-system-list"), payload, format="json")
    assert refused.status_code == 403 and "scope" not in refused.json()["detail"]
    assert everything.post(reverse("api-import-list"), sarif_upload(system.slug),
                           format="multipart").status_code == 403
    assert scoped(nobody, *ALL).post(reverse("api-lineage"), run_event("t", [], []), format="json").status_code == 403
    assert not ImportRun.objects.exists() and not LineageEvent.objects.exists()


def test_sessions_are_not_scoped(client, ciso, owner):
    client.force_login(ciso)
    assert client.get(reverse("api-system-list")).status_code == 200
    assert client.get(reverse("api-schema")).status_code == 200
