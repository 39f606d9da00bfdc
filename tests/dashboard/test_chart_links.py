"""Charts people can click: every bar and matrix cell of the posture page links the list that shows what it counts,
and that list's total is the bar's (or cell's) value."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.findings.models import Finding, FindingState
from governance.inventory import services as inventory_services
from governance.risks import services as risk_services
from governance.risks.matrix import get_matrix
from tests.conftest import system_data
from tests.risks.conftest import make_finding, rated

pytestmark = pytest.mark.django_db


@pytest.fixture
def portfolio(ciso, owner, engineer, system, other_system):
    get_matrix()
    for sev, n in (("critical", 3), ("high", 2), ("medium", 1), ("info", 1)):
        for _ in range(n):
            make_finding(system, severity=sev)
    make_finding(system, severity="high", sla_due=timezone.now() - timedelta(days=2))
    make_finding(system, severity="critical", state=FindingState.FIXED)  # not open: on no bar
    make_finding(system, severity="high", state=FindingState.FALSE_POSITIVE)
    make_finding(other_system, severity="low")
    loose = make_finding(other_system, severity="high")
    Finding.objects.filter(pk=loose.pk).update(system=None, scope_key="unassigned:test")  # an unassigned feed
    archived = inventory_services.system_create(actor=ciso, data=system_data(owner, name="Old", slug="old"))
    make_finding(archived, severity="critical")
    rated(engineer, archived, residual=(4, 4))
    inventory_services.system_archive(actor=ciso, system=archived)  # its findings and risks leave the charts
    rated(engineer, system, residual=(4, 4), inherent=(5, 5))
    rated(engineer, system, residual=(4, 4), inherent=(5, 4))
    rated(engineer, other_system, residual=(2, 3), inherent=(5, 5))
    closed = rated(engineer, other_system, residual=(4, 4))
    risk_services.risk_close(actor=ciso, risk=closed, reason="Retired.")
    rated(engineer, other_system, residual=(None, None), inherent=(None, None))  # unrated: not on the matrix


def _total(client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.context["total"]


def test_every_bar_opens_the_findings_its_count_shows(client, ciso, portfolio):
    client.force_login(ciso)
    figure = json.loads(client.get(reverse("dashboard:home")).context["findings_figure"])
    checked = 0
    for trace in figure["data"]:
        assert len(trace["customdata"]) == len(trace["x"])
        for value, url in zip(trace["x"], trace["customdata"]):
            assert url.startswith(reverse("findings:queue") + "?")
            assert _total(client, url) == value, (trace["name"], url)
            checked += value
    assert checked == 10  # every open finding of the portfolio is behind exactly one bar


def test_every_matrix_cell_opens_the_risks_it_counts(client, ciso, portfolio):
    client.force_login(ciso)
    figure = json.loads(client.get(reverse("dashboard:home")).context["risk_figure"])
    per_side = []
    for trace in figure["data"]:  # inherent, then residual
        counted = 0
        for text_row, data_row in zip(trace["text"], trace["customdata"]):
            for text, (_hover, url) in zip(text_row, data_row):
                assert url.startswith(reverse("risks:list") + "?cell=")
                assert _total(client, url) == int(text or 0), url
                counted += int(text or 0)
        per_side.append(counted)
    assert per_side == [3, 3]  # the open, rated risks of active systems


def test_the_cell_filter_is_shown_and_ignored_when_malformed(client, ciso, portfolio):
    client.force_login(ciso)
    html = client.get(reverse("risks:list"), {"cell": "residual-4-4"}).content.decode()
    assert "On the matrix: residual likelihood 4 × impact 4" in html
    everything = _total(client, reverse("risks:list"))
    for bad in ("residual-x-4", "sideways-1-1", "residual-4", "<script>"):
        assert _total(client, f"{reverse('risks:list')}?cell={bad}") == everything


def test_every_coverage_cell_opens_the_profile_it_is_computed_from(client, ciso, portfolio, system):
    from governance.rmf.models import AssessmentStatus, RmfAssessment

    ids = list(RmfAssessment.objects.filter(system=system).order_by("pk").values_list("pk", flat=True))
    RmfAssessment.objects.filter(pk__in=ids[:20]).update(status=AssessmentStatus.IMPLEMENTED)
    RmfAssessment.objects.filter(pk__in=ids[20:30]).update(status=AssessmentStatus.PARTIAL)
    RmfAssessment.objects.filter(pk__in=ids[30:35]).update(status=AssessmentStatus.NOT_APPLICABLE)
    client.force_login(ciso)
    figure = json.loads(client.get(reverse("dashboard:home")).context["coverage_figure"])
    (heatmap,) = figure["data"]
    checked = 0
    for name, z_row, links in zip(heatmap["y"], heatmap["z"], heatmap["customdata"]):
        for column, value, url in zip(heatmap["x"], z_row, links):
            path, _, anchor = url.partition("#")
            coverage = client.get(path).context["coverage"]
            shown = coverage.percent if column == "SYSTEM" else coverage.get(column).percent
            assert shown == value, (name, column, url)
            assert anchor == ("coverage-card" if column == "SYSTEM" else f"fn-{column.lower()}")
            checked += 1
    assert checked == 2 * 5 and any(v not in (0, None) for row in heatmap["z"] for v in row)
