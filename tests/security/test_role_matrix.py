"""Every route × every role: who gets in, who gets 403, enforced on the server.

The table below lists every URL of the project (UI with a session, API with a bearer token) with the status each
role gets. `test_every_route_is_in_the_matrix` walks the URL resolver and fails when a route is added without a
row here, so a new view cannot skip its permission check unnoticed.

Roles (see conftest.py): anon, ciso, owner (owns `system`), other_owner (owns another system), engineer,
facilitator (runs the exercise), admin, nobody (logged in, no role), player (no role, plays in the exercise).
Write routes are exercised with small bodies: an allowed role gets its success or a validation error (400),
never 403; a refused role gets 403 (or 404 where the object is looked up among the user's own, like tokens).
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Callable

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.security.conftest import ROLES, World, api_client, ui_client

LOGGED_IN = [r for r in ROLES if r != "anon"]
EVERYONE = set(LOGGED_IN)
CREATE_SYSTEM = {"ciso", "owner", "other_owner", "admin"}
EDIT_SYSTEM = {"ciso", "admin", "engineer", "owner"}  # of `system`, owned by "owner"
ARCHIVE_SYSTEM = {"ciso", "admin", "owner"}
TRIAGE = {"ciso", "admin", "engineer"}
IMPORT = TRIAGE | {"owner"}
CREATE_RISKS = {"ciso", "admin", "engineer", "owner", "other_owner"}
MANAGE_RISKS = {"ciso", "admin", "engineer", "owner"}  # risks of `system`
DECIDE = {"ciso", "owner"}
MATRIX = {"ciso", "admin"}
AUDIT = {"ciso", "admin"}
MANAGE_USERS = {"admin"}
CONNECTORS = {"ciso", "admin"}
SEND_LINEAGE = {"ciso", "admin", "engineer"}
PLAN = {"ciso", "admin", "facilitator"}
RUN = {"ciso", "facilitator"}  # this exercise's facilitator, or a CISO
PLAYERS = {"player"}
OBSERVERS = {"facilitator"}  # the facilitator takes part with the facilitator's role; no observer here


@dataclass
class Row:
    name: str
    args: Callable[[World], list]
    method: str
    expect: dict[str, int | set[int]]
    data: Callable[[World], object] | None = None
    api: bool = False
    htmx: bool = False
    fmt: str | None = None  # API body format ("json" or "multipart")
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.name}-{self.method}" + (f"-{self.note}" if self.note else "")


def status(allowed: set[str], ok: int | set[int], denied: int = 403, anon: int | None = None, api: bool = False,
           **override: int | set[int]) -> dict[str, int | set[int]]:
    table = {role: (ok if role in allowed else denied) for role in LOGGED_IN}
    table["anon"] = anon if anon is not None else (401 if api else 302)
    table.update(override)
    return table


def ui(name, args, method, allowed, ok, *, data=None, htmx=False, note="", **kw) -> Row:
    return Row(name, args, method, status(allowed, ok, **kw), data=data, htmx=htmx, note=note)


def api(name, args, method, allowed, ok, *, data=None, fmt="json", note="", **kw) -> Row:
    return Row(name, args, method, status(allowed, ok, api=True, **kw), data=data, api=True, fmt=fmt, note=note)


def get_405(name, args) -> Row:
    """A state-changing route answers GET with 405: no side effect behind a link or an <img>."""
    return ui(name, args, "get", EVERYONE, 405, note="not-on-get")


NONE = lambda w: []  # noqa: E731
SYS = lambda w: [w.system.slug]  # noqa: E731
RISK = lambda w: [w.risk.ref]  # noqa: E731
EX = lambda w: [w.exercise.pk]  # noqa: E731


def SRC(w) -> list:
    """A pull source, made inside each role's rolled-back request (the shared world has none)."""
    from governance.findings.models import PullSource

    source, _ = PullSource.objects.get_or_create(name="matrix-source", defaults={
        "kind": "url", "location": "https://scanner.example.com/report.sarif", "system": w.system})
    return [source.pk]


def SAVED_VIEW(w) -> list:
    """The owner's saved queue view, made inside each role's rolled-back request."""
    from governance.findings.models import SavedView

    view, _ = SavedView.objects.get_or_create(owner=w.users["owner"], name="matrix view", defaults={"query": "state=all"})
    return [view.pk]


@pytest.fixture(autouse=True)
def _no_pull_tasks(monkeypatch):
    """Pull now would publish to the shared test broker: drop the send instead."""
    monkeypatch.setattr("governance.queueing.send", lambda *a, **kw: True)


def SIGNOFF(w) -> list:
    """A release sign-off of `system`, recorded inside each role's rolled-back request."""
    from governance.risks.services import release_signoff_record

    return [release_signoff_record(actor=w.users["owner"], system=w.system, release="v1.0", verdict="no-go",
                                   justification="Waiting for the pen test.").pk]


def _upload(w):
    f = io.BytesIO(b'{"version": "2.1.0", "runs": []}')
    f.name = "report.sarif"
    return {"file": f, "format": "sarif", "system": w.system.slug, "source": "security"}


ROWS: list[Row] = [
    # --- dashboard, accounts -------------------------------------------------------------------------------
    ui("dashboard:home", NONE, "get", EVERYONE, 200),
    ui("dashboard:board", NONE, "get", EVERYONE, 200),
    ui("dashboard:board-pdf", NONE, "get", EVERYONE, {200, 503}, note="503-without-chromium"),
    ui("accounts:login", NONE, "get", set(), 200, denied=302, anon=200, note="signed-in-users-are-sent-on"),
    ui("accounts:logout", NONE, "post", EVERYONE, 302, anon=302),
    ui("accounts:logout", NONE, "get", set(), 405, denied=405, note="not-on-get"),
    ui("accounts:profile", NONE, "get", EVERYONE, 200),
    ui("accounts:profile", NONE, "post", EVERYONE, 200, data=lambda w: {"name": "ci"}),
    ui("accounts:password-change", NONE, "get", EVERYONE, 200),
    ui("accounts:password-change", NONE, "post", EVERYONE, 400, data=lambda w: {"old_password": "wrong"}),
    # the second sign-in step: anonymous without a password step behind them, and signed-in people with nothing to
    # prove, are sent on (to the sign-in page, to the dashboard)
    ui("accounts:login-code", NONE, "get", set(), 302, denied=302),
    ui("accounts:login-code", NONE, "post", set(), 302, denied=302, data=lambda w: {"code": "000000"}),
    ui("accounts:two-factor", NONE, "get", EVERYONE, 200),
    ui("accounts:two-factor", NONE, "post", EVERYONE, 400, data=lambda w: {"code": "000000"}),
    # nobody in the world has an authenticator: turning it off or renewing codes says it is off
    ui("accounts:two-factor-disable", NONE, "post", EVERYONE, 302, data=lambda w: {"code": "000000"}),
    get_405("accounts:two-factor-disable", NONE),
    ui("accounts:two-factor-recovery", NONE, "post", EVERYONE, 302, data=lambda w: {"code": "000000"}),
    get_405("accounts:two-factor-recovery", NONE),
    ui("accounts:user-two-factor-reset", lambda w: [w.users["nobody"].pk], "post", MANAGE_USERS, 302),
    get_405("accounts:user-two-factor-reset", lambda w: [w.users["nobody"].pk]),
    ui("accounts:token-revoke", lambda w: [w.owner_token.pk], "post", {"owner"}, 302, denied=404,
       note="only-ones-own-token"),
    get_405("accounts:token-revoke", lambda w: [w.owner_token.pk]),
    ui("accounts:token-rotate", lambda w: [w.owner_token.pk], "post", {"owner"}, 200, denied=404,
       data=lambda w: {"grace_hours": 24}, note="only-ones-own-token"),
    get_405("accounts:token-rotate", lambda w: [w.owner_token.pk]),
    ui("accounts:users", NONE, "get", MANAGE_USERS, 200),
    ui("accounts:user-create", NONE, "get", MANAGE_USERS, 200),
    ui("accounts:user-create", NONE, "post", MANAGE_USERS, 400, data=lambda w: {"email": ""}),
    ui("accounts:user-edit", lambda w: [w.users["nobody"].pk], "get", MANAGE_USERS, 200),
    ui("accounts:user-edit", lambda w: [w.users["nobody"].pk], "post", MANAGE_USERS, 400, data=lambda w: {}),
    ui("accounts:user-password", lambda w: [w.users["nobody"].pk], "post", MANAGE_USERS, 400,
       data=lambda w: {"password_mode": "set", "password1": "short"}),
    get_405("accounts:user-password", lambda w: [w.users["nobody"].pk]),
    # --- inventory -------------------------------------------------------------------------------------------
    ui("inventory:list", NONE, "get", EVERYONE, 200),
    ui("inventory:create", NONE, "get", CREATE_SYSTEM, 200),
    ui("inventory:create", NONE, "post", CREATE_SYSTEM, 400, data=lambda w: {"name": ""}),
    ui("inventory:detail", SYS, "get", EVERYONE, 200),
    ui("inventory:edit", SYS, "get", EDIT_SYSTEM, 200),
    ui("inventory:edit", SYS, "post", EDIT_SYSTEM, 400, data=lambda w: {"name": ""}),
    ui("inventory:archive", SYS, "post", ARCHIVE_SYSTEM, 302),
    get_405("inventory:archive", SYS),
    ui("inventory:model-add", SYS, "post", EDIT_SYSTEM, 400, data=lambda w: {}),
    get_405("inventory:model-add", SYS),
    ui("inventory:model-remove", lambda w: [w.system.slug, w.model.pk], "post", EDIT_SYSTEM, 302),
    get_405("inventory:model-remove", lambda w: [w.system.slug, w.model.pk]),
    ui("inventory:dataset-add", SYS, "post", EDIT_SYSTEM, 400, data=lambda w: {}),
    get_405("inventory:dataset-add", SYS),
    ui("inventory:dataset-remove", lambda w: [w.system.slug, w.dataset.pk], "post", EDIT_SYSTEM, 302),
    get_405("inventory:dataset-remove", lambda w: [w.system.slug, w.dataset.pk]),
    # --- RMF -------------------------------------------------------------------------------------------------
    ui("rmf:portfolio", NONE, "get", EVERYONE, 200),
    ui("rmf:profile", SYS, "get", EVERYONE, 200),
    ui("rmf:assessment-row", lambda w: [w.assessment.pk], "get", EVERYONE, 200, htmx=True),
    ui("rmf:assessment-edit", lambda w: [w.assessment.pk], "get", EDIT_SYSTEM, 200),
    ui("rmf:assessment-edit", lambda w: [w.assessment.pk], "post", EDIT_SYSTEM, 302,
       data=lambda w: {"status": "implemented", "evidence_notes": "ok", "evidence_links": ""}),
    # --- findings --------------------------------------------------------------------------------------------
    ui("findings:queue", NONE, "get", EVERYONE, 200),
    ui("findings:bulk", NONE, "post", IMPORT, 302, data=lambda w: {"ids": [w.finding.pk], "action": "confirm"},
       note="owner-triages-own-system"),
    get_405("findings:bulk", NONE),
    ui("findings:detail", lambda w: [w.finding.pk], "get", EVERYONE, 200),
    ui("findings:link-risk", lambda w: [w.finding.pk], "post", IMPORT, 400, data=lambda w: {}),
    get_405("findings:link-risk", lambda w: [w.finding.pk]),
    ui("findings:comment-add", lambda w: [w.finding.pk], "post", IMPORT, 400, data=lambda w: {}),
    get_405("findings:comment-add", lambda w: [w.finding.pk]),
    ui("findings:view-create", NONE, "post", EVERYONE, 400, data=lambda w: {}, htmx=True),
    get_405("findings:view-create", NONE),
    ui("findings:view-delete", SAVED_VIEW, "post", {"owner"}, 302, denied=404, note="only-ones-own-view"),
    get_405("findings:view-delete", SAVED_VIEW),
    ui("findings:imports", NONE, "get", EVERYONE, 200),
    ui("findings:upload", NONE, "get", IMPORT | {"other_owner"}, 200, note="owners-of-any-system-see-the-form"),
    ui("findings:upload", NONE, "post", IMPORT, 302, data=_upload),
    ui("findings:import-detail", lambda w: [w.run.pk], "get", EVERYONE, 200),
    ui("findings:import-close-held", lambda w: [w.run.pk], "post", IMPORT, 302),  # triage of the run's system
    get_405("findings:import-close-held", lambda w: [w.run.pk]),
    ui("findings:rules", SYS, "get", EVERYONE, 200),
    ui("findings:rules", SYS, "post", EDIT_SYSTEM, 302, data=lambda w: {"kind": "model_name", "pattern": "llm"}),
    ui("findings:rule-delete", lambda w: [w.system.slug, w.rule.pk], "post", EDIT_SYSTEM, 302),
    get_405("findings:rule-delete", lambda w: [w.system.slug, w.rule.pk]),
    ui("findings:sources", NONE, "get", TRIAGE, 200),
    ui("findings:source-new", NONE, "get", TRIAGE, 200),
    ui("findings:source-new", NONE, "post", TRIAGE, 400, data=lambda w: {}),
    ui("findings:source-edit", SRC, "get", TRIAGE, 200),
    ui("findings:source-edit", SRC, "post", TRIAGE, 400, data=lambda w: {}),
    ui("findings:source-enabled", SRC, "post", TRIAGE, 302, data=lambda w: {"enabled": "0"}),
    get_405("findings:source-enabled", SRC),
    ui("findings:source-pull", SRC, "post", TRIAGE, 302),
    get_405("findings:source-pull", SRC),
    ui("findings:source-delete", SRC, "post", TRIAGE, 302),
    get_405("findings:source-delete", SRC),
    # --- risks ------------------------------------------------------------------------------------------------
    ui("risks:list", NONE, "get", EVERYONE, 200),
    ui("risks:create", NONE, "get", CREATE_RISKS, 200),
    # other_owner's form offers only their own systems: posting someone else's is refused as an invalid choice
    ui("risks:create", NONE, "post", MANAGE_RISKS, 302, data=lambda w: {"title": "New risk", "system": w.system.slug},
       other_owner=400),
    ui("risks:inbox", NONE, "get", EVERYONE, 200),
    ui("risks:matrix", NONE, "get", MATRIX, 200),
    ui("risks:matrix", NONE, "post", MATRIX, 400, data=lambda w: {}),
    ui("risks:export-csv", NONE, "get", EVERYONE, 200),
    ui("risks:export-xlsx", NONE, "get", EVERYONE, 200),
    ui("risks:detail", RISK, "get", EVERYONE, 200),
    ui("risks:edit", RISK, "get", MANAGE_RISKS, 200),
    ui("risks:edit", RISK, "post", MANAGE_RISKS, 400, data=lambda w: {}),
    ui("risks:request", RISK, "post", MANAGE_RISKS, 400, data=lambda w: {}),
    get_405("risks:request", RISK),
    ui("risks:decide", RISK, "post", DECIDE, 400, data=lambda w: {}),
    get_405("risks:decide", RISK),
    ui("risks:close", RISK, "post", MANAGE_RISKS, 400, data=lambda w: {}),
    get_405("risks:close", RISK),
    ui("risks:action-add", RISK, "post", MANAGE_RISKS, 400, data=lambda w: {}),
    get_405("risks:action-add", RISK),
    ui("risks:action-status", lambda w: [w.risk.ref, w.action.pk], "post", MANAGE_RISKS, 302,
       data=lambda w: {"status": "done"}),
    get_405("risks:action-status", lambda w: [w.risk.ref, w.action.pk]),
    ui("risks:decide-bulk", NONE, "post", EVERYONE, 400, data=lambda w: {}),
    get_405("risks:decide-bulk", NONE),
    ui("risks:gate-policies", NONE, "get", EVERYONE, 200),
    ui("risks:gate-policy-edit", lambda w: ["high"], "get", {"ciso"}, 200),
    ui("risks:gate-policy-edit", lambda w: ["high"], "post", {"ciso"}, 302, data=lambda w: {
        "blocking_finding_severities": ["critical", "high"], "max_unaccepted_level": "medium"}),
    ui("risks:signoff", SIGNOFF, "get", EVERYONE, 200),
    ui("risks:signoff-create", SYS, "post", DECIDE, 400, data=lambda w: {}),
    get_405("risks:signoff-create", SYS),
    # --- lineage ----------------------------------------------------------------------------------------------
    ui("lineage:overview", NONE, "get", EVERYONE, 200),
    ui("lineage:system", SYS, "get", EVERYONE, 200),
    ui("lineage:blast", lambda w: [w.node.pk], "get", EVERYONE, 200),
    ui("lineage:connector_new", NONE, "get", CONNECTORS, 200),
    ui("lineage:connector_new", NONE, "post", CONNECTORS, 400, data=lambda w: {}),
    ui("lineage:connector_edit", lambda w: [w.connector.pk], "get", CONNECTORS, 200),
    ui("lineage:connector_edit", lambda w: [w.connector.pk], "post", CONNECTORS, 400, data=lambda w: {}),
    ui("lineage:connector_run", lambda w: [w.connector.pk], "post", CONNECTORS, 302),
    get_405("lineage:connector_run", lambda w: [w.connector.pk]),
    ui("lineage:connector_delete", lambda w: [w.connector.pk], "post", CONNECTORS, 302),
    get_405("lineage:connector_delete", lambda w: [w.connector.pk]),
    # --- audit ------------------------------------------------------------------------------------------------
    ui("audit:list", NONE, "get", AUDIT, 200),
    ui("audit:export", NONE, "get", AUDIT, 200),
    ui("audit:verify", NONE, "post", AUDIT, 200),
    get_405("audit:verify", NONE),
    # --- tabletop ---------------------------------------------------------------------------------------------
    ui("tabletop:list", NONE, "get", EVERYONE, 200),
    ui("tabletop:create", NONE, "get", PLAN, 200),
    ui("tabletop:create", NONE, "post", PLAN, 400, data=lambda w: {"title": ""}),
    ui("tabletop:scenarios", NONE, "get", PLAN, 200),
    ui("tabletop:scenario-import", NONE, "post", PLAN, 400, data=lambda w: {}),
    get_405("tabletop:scenario-import", NONE),
    ui("tabletop:atlas", NONE, "get", PLAN, 200),
    ui("tabletop:atlas", NONE, "post", PLAN, 404, data=lambda w: {"case_study": "0"}, note="unknown-case-study"),
    ui("tabletop:scenario", lambda w: [w.scenario.slug], "get", PLAN, 200),
    ui("tabletop:scenario-export", lambda w: [w.scenario.slug], "get", PLAN, 200),
    ui("tabletop:exercise", EX, "get", RUN | PLAYERS, 302, note="sends-each-person-to-their-screen"),
    ui("tabletop:console", EX, "get", RUN, 200),
    # this exercise is running: editing is refused with the reason (409) to those who run it
    ui("tabletop:edit", EX, "get", RUN, 409, note="started"),
    ui("tabletop:edit", EX, "post", RUN, 409, data=lambda w: {"title": "x"}, note="started"),
    ui("tabletop:participant-add", EX, "post", RUN, 302,
       data=lambda w: {"user": w.users["nobody"].pk, "role": "observer"}),
    get_405("tabletop:participant-add", EX),
    ui("tabletop:participant-remove", lambda w: [w.exercise.pk, w.removable.pk], "post", RUN, 302),
    get_405("tabletop:participant-remove", lambda w: [w.exercise.pk, w.removable.pk]),
    ui("tabletop:control", lambda w: [w.exercise.pk, "pause"], "post", RUN, 302),
    get_405("tabletop:control", lambda w: [w.exercise.pk, "pause"]),
    ui("tabletop:release", lambda w: [w.exercise.pk, w.inject.pk], "post", RUN, 302),
    get_405("tabletop:release", lambda w: [w.exercise.pk, w.inject.pk]),
    ui("tabletop:hotwash", EX, "post", RUN, 302, data=lambda w: {"strengths": "quick", "areas_for_improvement": ""}),
    get_405("tabletop:hotwash", EX),
    ui("tabletop:play", EX, "get", PLAYERS, 200),
    ui("tabletop:respond", lambda w: [w.exercise.pk, w.release.pk], "post", PLAYERS, 302,
       data=lambda w: {"kind": "response", "text": "Quarantine it"}),
    get_405("tabletop:respond", lambda w: [w.exercise.pk, w.release.pk]),
    ui("tabletop:observe", EX, "get", OBSERVERS, 200),
    ui("tabletop:score", lambda w: [w.exercise.pk, w.expected.pk], "post", OBSERVERS, 302,
       data=lambda w: {"rating": "3"}),
    get_405("tabletop:score", lambda w: [w.exercise.pk, w.expected.pk]),
    ui("tabletop:observation-add", EX, "post", RUN | OBSERVERS, 302, data=lambda w: {"kind": "note", "text": "ok"}),
    get_405("tabletop:observation-add", EX),
    # participants read the report only once play has stopped; this exercise is running
    ui("tabletop:report", EX, "get", RUN, 200),
    ui("tabletop:report-md", EX, "get", RUN, 200),
    ui("tabletop:improvement-add", EX, "post", RUN, 400, data=lambda w: {}),
    get_405("tabletop:improvement-add", EX),
    # a risk item goes into the register rated: without likelihood and impact, 400 with the form in place
    ui("tabletop:improvement-promote", lambda w: [w.exercise.pk, w.improvement.pk], "post", RUN, 400, data=lambda w: {}),
    ui("tabletop:improvement-promote", lambda w: [w.exercise.pk, w.improvement.pk], "post", RUN, 302, note="rated",
       data=lambda w: {f"promote-{w.improvement.pk}-likelihood": "2", f"promote-{w.improvement.pk}-impact": "3"}),
    get_405("tabletop:improvement-promote", lambda w: [w.exercise.pk, w.improvement.pk]),
    ui("tabletop:improvement-status", lambda w: [w.exercise.pk, w.improvement.pk], "post", RUN, 302,
       data=lambda w: {"status": "in_progress"}),
    get_405("tabletop:improvement-status", lambda w: [w.exercise.pk, w.improvement.pk]),
    # --- API (bearer token) -----------------------------------------------------------------------------------
    api("api-system-list", NONE, "get", EVERYONE, 200),
    api("api-system-list", NONE, "post", CREATE_SYSTEM, 400, data=lambda w: {}),
    api("api-system-detail", SYS, "get", EVERYONE, 200),
    api("api-system-detail", SYS, "patch", EDIT_SYSTEM, 200, data=lambda w: {"purpose": "Drafts answers."}),
    api("api-system-gate", SYS, "get", EVERYONE, {200, 409}),
    api("api-system-signoffs", SYS, "get", EVERYONE, 200),
    api("api-system-signoffs", SYS, "post", DECIDE, 400, data=lambda w: {}),
    api("api-system-signoff-latest", SYS, "get", EVERYONE, 404),
    api("api-risk-list", NONE, "get", EVERYONE, 200),
    api("api-risk-list", NONE, "post", MANAGE_RISKS, 201, data=lambda w: {"title": "API risk", "system": w.system.slug},
        denied=403),
    api("api-risk-detail", RISK, "get", EVERYONE, 200),
    api("api-risk-detail", RISK, "patch", MANAGE_RISKS, 200, data=lambda w: {"title": "Renamed"}),
    api("api-risk-decision", RISK, "post", DECIDE, 201,
        data=lambda w: {"decision": "reject", "justification": "Not yet treated."}),
    api("api-lineage", NONE, "post", SEND_LINEAGE, 400, data=lambda w: {"eventType": "NOPE"},
        note="allowed-roles-reach-validation"),
    api("api-import-list", NONE, "post", IMPORT, 202, data=_upload, fmt="multipart"),
    api("api-import-detail", lambda w: [w.run.pk], "get", EVERYONE, 200),
    api("api-finding-list", NONE, "get", EVERYONE, 200),
    api("api-exercise-injects", EX, "get", RUN | PLAYERS, 200),
    # --- public -----------------------------------------------------------------------------------------------
    api("api-schema", NONE, "get", EVERYONE, 200),
    ui("api-docs", NONE, "get", EVERYONE, 200),
    ui("healthz", NONE, "get", EVERYONE, {200, 503}, anon={200, 503}),
]


def _request(row: Row, world: World, role: str):
    user = None if role == "anon" else world.users[role]
    url = reverse(row.name, args=row.args(world))
    data = row.data(world) if row.data else None
    if row.api:
        client = api_client(user)
        kwargs = {"format": row.fmt} if data is not None else {}
        return getattr(client, row.method)(url, data, **kwargs) if data is not None else getattr(client, row.method)(url)
    client = ui_client(user)
    headers = {"HX-Request": "true"} if row.htmx else {}
    if row.method == "get":
        return client.get(url, headers=headers)
    return getattr(client, row.method)(url, data or {}, headers=headers)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_role_matrix(row: Row, world: World):
    """One request per role, each rolled back, so every role meets the same world."""
    assert set(row.expect) == set(ROLES), f"{row.id}: every role needs an expected status"
    wrong = {}
    for role in ROLES:
        with transaction.atomic():
            response = _request(row, world, role)
            transaction.set_rollback(True)
        want = row.expect[role]
        if response.status_code not in (want if isinstance(want, set) else {want}):
            wrong[role] = f"got {response.status_code}, want {want}"
        if role == "anon" and not row.api and response.status_code == 302 and want == 302:
            assert response["Location"].startswith(reverse("accounts:login")), f"{row.id}: anon not sent to login"
    assert not wrong, f"{row.id}: {json.dumps(wrong, indent=1)}"


def _route_names(resolver=None, prefix: str = "") -> set[str]:
    names = set()
    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLResolver):
            names |= _route_names(p, prefix + (f"{p.namespace}:" if p.namespace else ""))
        elif isinstance(p, URLPattern):
            names.add(prefix + (p.name or f"<unnamed {p.pattern}>"))
    return names


def test_every_route_is_in_the_matrix():
    """Add a row to ROWS (every role's expected status) when you add a URL."""
    missing = _route_names() - {r.name for r in ROWS}
    assert not missing, f"routes without a row in the role matrix: {sorted(missing)}"


def test_every_write_route_is_tried_with_a_write_and_a_get():
    """A route tried with POST/PATCH is either also a form page (GET 200 for someone) or refuses GET with 405."""
    written = {r.name for r in ROWS if r.method in ("post", "patch") and not r.api}
    with_get = {r.name for r in ROWS if r.method == "get" and not r.api}
    assert not written - with_get, f"write routes whose GET is not in the matrix: {sorted(written - with_get)}"
