"""The posture page: a fixed number of queries whatever the portfolio's size (pinned at the count it had before
the definitions were unified: 15 once the matrix exists, 17 with the trends)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.dashboard.snapshots import snapshot_take
from governance.inventory import services as inventory_services
from governance.inventory.models import AISystem
from governance.risks.matrix import get_matrix
from tests.conftest import system_data
from tests.risks.conftest import accept, make_finding, rated

pytestmark = pytest.mark.django_db
POSTURE_QUERIES = 19  # session, user, matrix, systems, findings, risks, expiring, function codes, RMF, exercises,
#                       heat map risks, latest changes, role names, 2 permission lookups, snapshots a month ago,
#                       trend series, sign-offs waiting (sidebar), RMF coverage pooled per system (split by
#                       function for the charted systems only)


def _grow(ciso, owner, engineer, n: int) -> None:
    start = AISystem.objects.count()
    for i in range(start, start + n):
        s = inventory_services.system_create(actor=ciso, data=system_data(owner, name=f"S{i}", slug=f"s{i}"))
        make_finding(s, severity="critical")
        make_finding(s, severity="high")
        risk = rated(engineer, s, residual=(4, 4))
        if i % 2:
            accept(risk, owner)
    now = timezone.now()
    for days in (0, 1, 30):  # the trends and the month-over-month figures read snapshots of every system
        snapshot_take(at=now - timedelta(days=days))


def _count(client, django_assert_max_num_queries) -> int:
    with django_assert_max_num_queries(POSTURE_QUERIES) as ctx:
        response = client.get(reverse("dashboard:home"))
    assert response.status_code == 200
    assert b">no data a month ago<" not in response.content and b"No daily figures for the last" not in response.content
    return len(ctx.captured_queries)


def test_posture_query_count_is_pinned_and_constant(client, ciso, owner, engineer, django_assert_max_num_queries):
    get_matrix()
    client.force_login(ciso)
    _grow(ciso, owner, engineer, 3)
    few = _count(client, django_assert_max_num_queries)
    _grow(ciso, owner, engineer, 27)
    assert AISystem.objects.active().count() == 30
    many = _count(client, django_assert_max_num_queries)
    assert few == many == POSTURE_QUERIES


def test_the_table_and_charts_show_the_first_systems_and_every_figure_counts_all(client, ciso, owner, engineer,
                                                                                 django_assert_max_num_queries):
    from governance.dashboard.selectors import TOP_SYSTEMS

    get_matrix()
    client.force_login(ciso)
    _grow(ciso, owner, engineer, TOP_SYSTEMS + 2)
    page = client.get(reverse("dashboard:home"))
    assert len(page.context["top_rows"]) == TOP_SYSTEMS and page.context["hidden_systems"] == 2
    assert page.context["critical_high_findings"] == 2 * (TOP_SYSTEMS + 2)  # the figures count every system
    assert b"2 more are counted in every figure above" in page.content
    with django_assert_max_num_queries(POSTURE_QUERIES):
        every = client.get(reverse("dashboard:home"), {"all": "1"})
    assert len(every.context["top_rows"]) == TOP_SYSTEMS + 2 and every.context["hidden_systems"] == 0
    assert b"Show the systems that need attention first" in every.content
