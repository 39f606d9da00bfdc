"""Hostile text in every user- or scanner-controlled field renders as text: never as markup, never as a live link.

Each page is parsed with the standard library's HTML parser, so what counts is what a browser would build: no
<script> holding the payload, no element with an on* handler, no href/src/action that is not http(s), a relative
path or a fragment. The payload must also show up escaped on the page, so a test cannot pass by rendering nothing.
"""
from __future__ import annotations

import html
from html.parser import HTMLParser

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.findings.models import Finding
from governance.inventory import services as inventory_services
from governance.lineage.models import LineageEdge, LineageNode
from governance.risks import services as risk_services
from governance.rmf.models import RmfAssessment
from governance.tabletop import services as tabletop_services
from governance.tabletop.models import Observation, Participant
from tests.security.conftest import build_world, ui_client

SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
HOSTILE = f" {SCRIPT}{ATTRIBUTE}"
JS_URI = "javascript:alert(1)"
URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href", "poster", "data", "hx-get", "hx-post"}


class _Audit(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._in_script = True
        if tag == "img" and any(name == "onerror" for name, _ in attrs):
            self.problems.append(f"<img> with onerror: {attrs}")
        for name, value in attrs:
            value = (value or "").strip()
            if name.startswith("on") and "alert(1)" in value:
                self.problems.append(f"<{tag} {name}=…alert(1)>")
            if name in URL_ATTRS and value:
                scheme = value.split(":", 1)[0].lower() if ":" in value.split("/", 1)[0] else ""
                if scheme and scheme not in ("http", "https", "mailto"):
                    self.problems.append(f"<{tag} {name}={value!r}> is a live non-http(s) link")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script and "alert(1)" in data:
            self.problems.append(f"script element runs the payload: {data[:80]!r}")


def assert_inert(body: str, where: str) -> None:
    parser = _Audit()
    parser.feed(body)
    parser.close()
    assert not parser.problems, f"{where}: {parser.problems}"
    assert SCRIPT not in body and "<img src=x" not in body, f"{where}: raw payload in the page"


@pytest.fixture
def hostile(settings, tmp_path, ciso, owner, other_owner, engineer, facilitator, admin_user, nobody, system,
            other_system):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    system = inventory_services.system_update(actor=ciso, system=system, data={
        "name": f"Copilot{HOSTILE}", "purpose": f"Answers{HOSTILE}", "business_unit": f"Support{HOSTILE}",
        "third_party_provider": f"Provider{HOSTILE}"})
    w = build_world(ciso=ciso, owner=owner, other_owner=other_owner, engineer=engineer, facilitator=facilitator,
                    admin_user=admin_user, nobody=nobody, system=system, other_system=other_system, text=HOSTILE,
                    uri=JS_URI)
    Finding.objects.filter(pk=w.finding.pk).update(
        description=f"Found{HOSTILE}", location=f"src/app.py{HOSTILE}", remediation=f"Fix{HOSTILE}",
        rule_id=f"B105{HOSTILE}"[:100], tool=f"bandit{HOSTILE}"[:60],
        raw={"message": HOSTILE, "helpUri": JS_URI, "nested": {"html": ATTRIBUTE}})
    RmfAssessment.objects.filter(pk=w.assessment.pk).update(
        evidence_notes=f"Reviewed{HOSTILE}", evidence_links=f"{JS_URI}\n{HOSTILE}\nhttps://example.com/ok")
    risk_services.decision_request(actor=engineer, risk=w.risk, kind="residual_risk", note=f"Please{HOSTILE}")
    w.risk.refresh_from_db()
    w.risk.treatment_plan = f"Plan{HOSTILE}"
    w.risk.save(update_fields=["treatment_plan"])
    now = timezone.now()
    model_node = LineageNode.objects.create(key="model:copilot@1", kind="model_version", name=f"copilot{HOSTILE}",
                                            first_seen=now, last_seen=now, system=system)
    system_node = LineageNode.objects.create(key=f"system:{system.slug}", kind="system", name=system.name,
                                             first_seen=now, last_seen=now, system=system)
    LineageEdge.objects.create(src=w.node, dst=model_node, kind=LineageEdge.Kind.choices[0][0], first_seen=now,
                               last_seen=now)
    LineageEdge.objects.create(src=model_node, dst=system_node, kind=LineageEdge.Kind.choices[0][0], first_seen=now,
                               last_seen=now)
    player = Participant.objects.get(exercise=w.exercise, user=w.users["player"])
    tabletop_services.response_record(participant=player, release=w.release, text=f"We act{HOSTILE}",
                                      rationale=f"Because{HOSTILE}")
    tabletop_services.observation_add(author=facilitator, exercise=w.exercise, kind=Observation.Kind.NOTE,
                                      text=f"Noted{HOSTILE}")
    tabletop_services.hotwash_update(actor=facilitator, exercise=w.exercise, strengths=f"Fast{HOSTILE}",
                                     areas_for_improvement=f"Slow{HOSTILE}")
    return w


PAGES = [
    # (role, url name, args)
    ("ciso", "dashboard:home", lambda w: []),
    ("ciso", "inventory:list", lambda w: []),
    ("ciso", "inventory:detail", lambda w: [w.system.slug]),
    ("ciso", "inventory:edit", lambda w: [w.system.slug]),
    ("ciso", "rmf:profile", lambda w: [w.system.slug]),
    ("ciso", "rmf:portfolio", lambda w: []),
    ("ciso", "rmf:assessment-edit", lambda w: [w.assessment.pk]),
    ("engineer", "findings:queue", lambda w: []),
    ("engineer", "findings:detail", lambda w: [w.finding.pk]),
    ("engineer", "findings:imports", lambda w: []),
    ("engineer", "findings:import-detail", lambda w: [w.run.pk]),
    ("engineer", "findings:rules", lambda w: [w.system.slug]),
    ("owner", "risks:list", lambda w: []),
    ("owner", "risks:detail", lambda w: [w.risk.ref]),
    ("owner", "risks:edit", lambda w: [w.risk.ref]),
    ("owner", "risks:inbox", lambda w: []),
    ("ciso", "lineage:overview", lambda w: []),
    ("ciso", "lineage:system", lambda w: [w.system.slug]),
    ("ciso", "lineage:blast", lambda w: [w.node.pk]),
    ("ciso", "lineage:connector_edit", lambda w: [w.connector.pk]),
    ("ciso", "audit:list", lambda w: []),
    ("facilitator", "tabletop:list", lambda w: []),
    ("facilitator", "tabletop:scenarios", lambda w: []),
    ("facilitator", "tabletop:scenario", lambda w: [w.scenario.slug]),
    ("facilitator", "tabletop:console", lambda w: [w.exercise.pk]),
    ("facilitator", "tabletop:observe", lambda w: [w.exercise.pk]),
    ("facilitator", "tabletop:report", lambda w: [w.exercise.pk]),
    ("player", "tabletop:play", lambda w: [w.exercise.pk]),
]


@pytest.mark.parametrize("role,name,args", PAGES, ids=[f"{p[1]}-as-{p[0]}" for p in PAGES])
def test_hostile_text_renders_escaped(hostile, role, name, args):
    response = ui_client(hostile.users[role]).get(reverse(name, args=args(hostile)))
    assert response.status_code == 200, f"{name} as {role}: {response.status_code}"
    body = response.content.decode()
    assert_inert(body, name)
    assert html.escape(SCRIPT, quote=False) in body or html.escape(SCRIPT) in body, \
        f"{name}: the hostile text is not on the page at all (nothing to prove)"


def test_javascript_uris_are_shown_as_text_not_links(hostile):
    """Model/dataset source URIs, RMF evidence links, inject attachments: only http(s) becomes a link."""
    pages = [("ciso", "inventory:detail", [hostile.system.slug]), ("ciso", "rmf:profile", [hostile.system.slug]),
             ("player", "tabletop:play", [hostile.exercise.pk])]
    for role, name, args in pages:
        body = ui_client(hostile.users[role]).get(reverse(name, args=args)).content.decode()
        assert_inert(body, name)
        assert JS_URI in body, f"{name}: the URI should still be shown, as text"
    profile = ui_client(hostile.users["ciso"]).get(reverse("rmf:profile", args=[hostile.system.slug])).content.decode()
    assert 'href="https://example.com/ok"' in profile  # a good link stays a link


def test_charts_carry_hostile_names_only_inside_an_escaped_attribute(hostile):
    """Plotly figures travel in data-figure="…": the JSON is attribute-escaped, so it cannot close the attribute."""
    body = ui_client(hostile.users["ciso"]).get(reverse("lineage:system", args=[hostile.system.slug])).content.decode()
    assert "data-figure=" in body
    assert_inert(body, "lineage:system")
    assert 'onerror=alert(1)>"' not in body and "&quot;&gt;&lt;img" in body
