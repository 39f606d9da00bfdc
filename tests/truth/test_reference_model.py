"""Every figure, list, inbox and gate decision against the reference model (tests/truth/reference.py), on data sets
Hypothesis generates and at moments chosen on the boundaries: a due time or an expiry one second before, exactly at
and one second after the moment of reading, in time zones on both sides of UTC, with archived systems, unassigned
feeds, all-N/A functions, acceptances expired, withdrawn by closing or outgrown by a re-rating.

Each defect of the "truth" issue makes one of these comparisons fail (see the closing note of that issue).
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
import time_machine
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, Phase, given, settings as hsettings, strategies as st

from governance.dashboard.selectors import posture
from governance.findings.models import SEVERITY_RANK, Finding
from governance.findings.selectors import QueueFilters, queue_list
from governance.findings.sla import sla_due
from governance.inventory import services as inventory_services
from governance.inventory.models import AISystem
from governance.inventory.selectors import SystemFilters, system_queryset
from governance.risks import gate, selectors as risk_selectors, services as risk_services
from governance.risks.matrix import gate_policy
from governance.risks.models import Risk, RiskStatus
from governance.rmf.models import AssessmentStatus, RmfAssessment
from governance.rmf.selectors import portfolio_coverage
from governance.tabletop.loader import load_builtin_scenarios
from governance.tabletop.models import Exercise, Scenario
from tests.conftest import make_user, system_data
from tests.truth import reference

T0 = datetime(2031, 6, 15, 12, 0, tzinfo=dt_timezone.utc)
DECIDED = T0 - timedelta(days=10)  # when the sign-offs of a generated world happen
TIERS = ["low", "medium", "high", "critical"]
STATES = ["new", "new", "confirmed", "fixed", "closed", "false_positive", "risk_accepted"]
STORIES = ["none", "request", "accept", "accept", "reject", "accept_then_request", "accept_then_close",
           "request_then_close", "accept_then_raise", "accept_then_lower", "close"]
RMF_MODES = ["untouched", "implemented", "manage_na", "mixed", "required_gap"]
ZONES = ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "America/Los_Angeles"]

# No shrinking: a world takes ~1 s to build, and the failing example is printed whole anyway.
PROFILE = hsettings(max_examples=18, deadline=None, derandomize=True, database=None, report_multiple_bugs=False,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@st.composite
def worlds(draw):
    n = draw(st.integers(1, 4))
    system = st.integers(0, n - 1)
    return {
        "zone": draw(st.sampled_from(ZONES)),
        "systems": [{"tier": draw(st.sampled_from(TIERS)), "archived": draw(st.integers(0, 3)) == 0,
                     "owner": draw(st.integers(0, 1)), "rmf": draw(st.sampled_from(RMF_MODES)),
                     "seed": draw(st.integers(0, 10**6))} for _ in range(n)],
        "findings": draw(st.lists(st.fixed_dictionaries({
            "system": st.none() | system, "severity": st.sampled_from(list(SEVERITY_RANK)),
            "state": st.sampled_from(STATES), "age": st.integers(0, 60 * 86400)}), max_size=18)),
        "risks": draw(st.lists(st.fixed_dictionaries({
            "system": system, "residual": st.none() | st.tuples(st.integers(1, 5), st.integers(1, 5)),
            "story": st.sampled_from(STORIES), "expiry_hours": st.integers(1, 50 * 24),
            "due_days": st.none() | st.integers(-3, 3)}), max_size=8)),
        "exercises": draw(st.lists(st.fixed_dictionaries({
            "systems": st.lists(system, max_size=n, unique=True), "completed": st.booleans()}), max_size=2)),
    }


@contextmanager
def rolled_back():
    """Each generated world lives in a savepoint that is rolled back: the next one starts from the same database."""
    class Rollback(Exception):
        pass

    try:
        with transaction.atomic():
            yield
            raise Rollback
    except Rollback:
        pass


def build(world, ciso, owners, facilitator, scenario) -> list[AISystem]:
    systems = []
    for i, spec in enumerate(world["systems"]):
        with time_machine.travel(DECIDED - timedelta(days=30), tick=False):
            s = inventory_services.system_create(actor=ciso, data=system_data(
                owners[spec["owner"]], name=f"System {i}" if i != 2 else "System 0", slug=f"sys-{i}",
                risk_tier=spec["tier"]))
        _assess(s, spec["rmf"], spec["seed"])
        systems.append(s)
    for f in world["findings"]:
        first_seen = T0 - timedelta(seconds=f["age"])
        s = systems[f["system"]] if f["system"] is not None else None
        Finding.objects.create(
            scope_key=f"{s.pk if s else 'unassigned'}:gen", system=s, source="gen", tool="gen",
            fingerprint=f"fp-{Finding.objects.count()}", fingerprint_version="gen/v1", content_hash="0" * 32,
            title="generated", severity=f["severity"], severity_rank=SEVERITY_RANK[f["severity"]], state=f["state"],
            first_seen=first_seen, last_seen=first_seen, state_changed_at=first_seen,
            sla_due=sla_due(f["severity"], first_seen))
    with time_machine.travel(DECIDED, tick=False):
        for r in world["risks"]:
            _risk(r, systems[r["system"]], ciso, owners)
    scenario_exercises(world, systems, facilitator, scenario)
    for spec, s in zip(world["systems"], systems):
        if spec["archived"]:
            inventory_services.system_archive(actor=ciso, system=s)
    return list(AISystem.objects.filter(pk__in=[s.pk for s in systems]).select_related("business_owner").order_by("pk"))


def _assess(system, mode, seed) -> None:
    import random

    rows = RmfAssessment.objects.filter(system=system)
    if mode == "implemented":
        rows.update(status=AssessmentStatus.IMPLEMENTED)
    elif mode == "manage_na":
        rows.update(status=AssessmentStatus.IMPLEMENTED)
        rows.filter(subcategory__ident__startswith="MANAGE").update(status=AssessmentStatus.NOT_APPLICABLE)
    elif mode == "required_gap":
        rows.update(status=AssessmentStatus.IMPLEMENTED)
        rows.filter(subcategory__ident__in=["MAP 1.1", "MANAGE 1.1"]).update(status=AssessmentStatus.GAP)
        rows.filter(subcategory__ident="GOVERN 1.1").update(status=AssessmentStatus.NOT_APPLICABLE)
    elif mode == "mixed":
        rng = random.Random(seed)
        by_status: dict[str, list[int]] = {}
        for pk in rows.values_list("pk", flat=True):
            by_status.setdefault(rng.choice(AssessmentStatus.values), []).append(pk)
        for status, pks in by_status.items():
            RmfAssessment.objects.filter(pk__in=pks).update(status=status)


def _risk(spec, system, ciso, owners) -> None:
    data = {"title": "generated risk"}
    if spec["residual"]:
        data.update(residual_likelihood=spec["residual"][0], residual_impact=spec["residual"][1])
    if spec["due_days"] is not None:
        data["due_date"] = T0.date() + timedelta(days=spec["due_days"])
    risk = risk_services.risk_create(actor=ciso, system=system, data=data)
    story, owner = spec["story"], system.business_owner
    expires = DECIDED + timedelta(hours=spec["expiry_hours"])
    if story.startswith("request"):
        risk_services.decision_request(actor=ciso, risk=risk, kind="residual_risk")
    if story.startswith("accept"):
        risk_services.decision_decide(actor=owner, risk=risk, accept=True, justification="ok", expires_at=expires)
    if story == "reject":
        risk_services.decision_decide(actor=owner, risk=risk, accept=False, justification="no", expires_at=None)
    if story == "accept_then_request":
        risk_services.decision_request(actor=ciso, risk=risk, kind="treatment_plan")
    if story.endswith("_close") or story == "close":
        risk_services.risk_close(actor=ciso, risk=risk, reason="done")
    if story in ("accept_then_raise", "accept_then_lower"):
        step = 1 if story.endswith("raise") else -1
        lk = min(5, max(1, (spec["residual"] or (3, 3))[0] + 2 * step))
        risk_services.risk_update(actor=ciso, risk=risk, data={"residual_likelihood": lk, "residual_impact": 5})


def scenario_exercises(world, systems, facilitator, scenario) -> None:
    for spec in world["exercises"]:
        e = Exercise.objects.create(title="drill", scenario=scenario, facilitator=facilitator,
                                    state="completed" if spec["completed"] else "running",
                                    completed_at=DECIDED if spec["completed"] else None)
        e.systems.set([systems[i] for i in spec["systems"]])


def _policy(tier: str) -> dict:
    p = gate_policy(tier)
    return {"blocking_finding_severities": p.blocking_finding_severities,
            "blocking_open_severities": p.blocking_open_severities, "max_unaccepted_level": p.max_unaccepted_level,
            "required_subcategories": p.required_subcategories, "block_unrated_risks": p.block_unrated_risks}


def boundaries(rows: reference.Rows) -> list[datetime]:
    """The moments where a figure may change: due times, expiries and the expiry window's edge, each ±1 s."""
    model = reference.Model(rows, T0)
    edges = {T0}
    edges |= {model.due(f) for f in rows.findings if model.due(f)}
    edges |= {d["expires_at"] for d in rows.decisions if d["expires_at"]}
    edges |= {d["expires_at"] - reference.EXPIRY_WINDOW for d in rows.decisions if d["expires_at"]}
    return sorted(e + timedelta(seconds=s) for e in edges for s in (-1, 0, 1))


# --- the comparisons ----------------------------------------------------------------------------------------

FIGURES = ["system_count", "critical_high_findings", "breached", "high_risks", "awaiting", "expiring", "avg_coverage",
           "never_exercised"]


def compare_selectors(rows, at, systems, ciso, owners) -> None:
    model = reference.Model(rows, at)
    want = model.posture()
    got = posture(at)
    assert {k: got[k] for k in FIGURES} == want, f"posture at {at}"
    for row in got["rows"]:
        expected = model.row(row.system.pk)
        assert {"critical": row.findings.get("critical", 0), "high": row.findings.get("high", 0),
                "breached": row.breached, "high_risks": row.high_risks, "awaiting": row.awaiting,
                "expiring": row.expiring, "coverage": row.coverage,
                "exercised": row.last_exercised is not None} == expected, row.system.slug
    assert {k: sorted(v) for k, v in got["risk_cells"]["residual"].items()} == model.matrix_cells()
    for system_id, coverage in portfolio_coverage(systems).items():  # what the coverage heat map and pages show
        for c in coverage:
            want_ratio = model.function_coverage(system_id, c.function)
            assert c.percent == (None if want_ratio is None else reference.half_up(want_ratio)), c.function
    unassigned = [f for f in model.portfolio_findings() if f["system_id"] is None]
    assert (got["unassigned"].findings if got["unassigned"] else {}) == _by_severity(unassigned)

    # every KPI's list holds exactly what it counts
    assert queue_list(QueueFilters(severities=("critical", "high"), at=at)).total == want["critical_high_findings"]
    assert queue_list(QueueFilters(breached=True, at=at)).total == want["breached"]
    register = lambda **kw: risk_selectors.register_queryset(risk_selectors.RiskFilters(at=at, **kw)).count()  # noqa
    assert register(min_level="high", unaccepted=True) == want["high_risks"]
    assert register(awaiting=True) == want["awaiting"]
    assert register(expiring=30) == want["expiring"]
    assert system_queryset(SystemFilters(never_exercised=True)).count() == want["never_exercised"]
    assert register(overdue=True) == sum(1 for r in model.open_active_risks() if model.overdue(r))
    assert risk_selectors.inbox(ciso).count() == want["awaiting"]
    assert risk_selectors.expiring(ciso, at).count() == want["expiring"]
    for owner in owners:
        mine = {s["id"] for s in rows.systems if s["business_owner_id"] == owner.pk}
        assert risk_selectors.inbox(owner).count() == sum(1 for r in model.awaiting() if r["system_id"] in mine)

    # the status every screen shows, and the register filtered by it
    shown = dict(Risk.objects.with_standing(at).values_list("id", "current_status"))
    assert shown == {r["id"]: model.status(r) for r in rows.risks}
    for status in RiskStatus.values:
        expected = sum(1 for r in rows.risks if model.active(r["system_id"]) and model.status(r) == status)
        assert register(status=status) == expected, status

    for s in systems:
        result = gate.evaluate(s, at)
        want_gate = model.gate(s.pk)
        assert result.counts == want_gate, f"gate of {s.slug} at {at}"
        assert result.decision == ("no-go" if want_gate else "go")


def _by_severity(findings) -> dict:
    out: dict[str, int] = {}
    for f in findings:
        out[f["severity"]] = out.get(f["severity"], 0) + 1
    return out


def _total(html: str) -> int:
    return int(re.search(r'data-total="(\d+)"', html).group(1))


def compare_pages(rows, at, systems, ciso) -> None:
    """The pages and the API show the same figures as the model, at the same moment."""
    model = reference.Model(rows, at)
    want = model.posture()
    with time_machine.travel(at, tick=False):
        client = Client()
        client.force_login(ciso)
        home = client.get("/").content.decode()
        kpis = dict(re.findall(r'data-kpi="(\w+)">([^<]+)<', home))
        assert int(kpis["critical_high"]) == want["critical_high_findings"]
        assert int(kpis["past_sla"]) == want["breached"]
        assert int(kpis["high_risks"]) == want["high_risks"]
        assert int(kpis["awaiting"]) == want["awaiting"]
        assert int(kpis["expiring"]) == want["expiring"]
        assert kpis["coverage"] == ("n/a" if want["avg_coverage"] is None else f"{want['avg_coverage']}%")
        assert int(kpis["never_exercised"]) == want["never_exercised"]
        # the list each KPI links to shows the same total
        for href, figure in re.findall(r'<a class="kpi card[^"]*" href="([^"]+)"[^>]*><div class="kpi-value" '
                                       r'data-kpi="(\w+)"', home):
            if figure in ("critical_high", "past_sla", "high_risks", "awaiting", "expiring"):
                page = client.get(href.replace("&amp;", "&")).content.decode()
                assert _total(page) == int(kpis[figure]), (figure, href)
        assert client.get("/api/v1/findings/?breached=1").json()["count"] == want["breached"]
        api_risks = client.get("/api/v1/risks/?min_level=high&unaccepted=1").json()
        assert api_risks["count"] == want["high_risks"]
        for s in systems:
            body = client.get(f"/api/v1/systems/{s.slug}/gate").json()
            assert body["counts"] == model.gate(s.pk) and body["blocking_items"] == sum(model.gate(s.pk).values())
        csv_rows = client.get("/risks/export.csv?min_level=high&unaccepted=1").content.decode().strip().splitlines()
        assert len(csv_rows) - 1 == want["high_risks"]


@pytest.fixture
def cast(db):
    load_builtin_scenarios()
    from governance.accounts.models import Role

    return {"ciso": make_user("ref-ciso@example.com", Role.CISO),
            "owners": [make_user("ref-po1@example.com", Role.PRODUCT_OWNER),
                       make_user("ref-po2@example.com", Role.PRODUCT_OWNER)],
            "facilitator": make_user("ref-fac@example.com", Role.FACILITATOR),
            "scenario": Scenario.objects.first()}


@PROFILE
@given(world=worlds(), data=st.data())
def test_every_figure_matches_the_reference_model(cast, settings, world, data):
    settings.TIME_ZONE = world["zone"]
    with rolled_back():
        systems = build(world, cast["ciso"], cast["owners"], cast["facilitator"], cast["scenario"])
        rows = reference.load(_policy)
        edges = boundaries(rows)
        moments = [T0] + data.draw(st.lists(st.sampled_from(edges), min_size=1, max_size=4, unique=True))
        for at in moments:
            compare_selectors(rows, at, systems, cast["ciso"], cast["owners"])
        compare_pages(rows, data.draw(st.sampled_from(moments)), systems, cast["ciso"])
        # reading again a second later changes nothing unless a boundary lies in between
        quiet = [m for m in moments if not any(m < e <= m + timedelta(seconds=1) for e in edges)]
        for at in quiet:
            first, again = posture(at), posture(at + timedelta(seconds=1))
            assert {k: first[k] for k in FIGURES} == {k: again[k] for k in FIGURES}
