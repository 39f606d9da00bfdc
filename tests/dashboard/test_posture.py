"""The posture page: a fixed number of queries whatever the portfolio's size (pinned at the count it had before
the definitions were unified: 15 once the matrix exists)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from governance.inventory import services as inventory_services
from governance.risks.matrix import get_matrix
from tests.conftest import system_data
from tests.risks.conftest import accept, make_finding, rated

pytestmark = pytest.mark.django_db
POSTURE_QUERIES = 15  # session, user, matrix, systems, findings, risks, expiring, function codes, RMF, exercises,
#                       heat map risks, latest changes, role names, 2 permission lookups


def _grow(ciso, owner, engineer, n: int) -> None:
    for i in range(n):
        s = inventory_services.system_create(actor=ciso, data=system_data(owner, name=f"S{n}-{i}", slug=f"s{n}-{i}"))
        make_finding(s, severity="critical")
        make_finding(s, severity="high")
        risk = rated(engineer, s, residual=(4, 4))
        if i % 2:
            accept(risk, owner)


def _count(client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(reverse("dashboard:home")).status_code == 200
    return len(ctx.captured_queries)


def test_posture_query_count_is_pinned_and_constant(client, ciso, owner, engineer):
    get_matrix()
    client.force_login(ciso)
    _grow(ciso, owner, engineer, 2)
    few = _count(client)
    _grow(ciso, owner, engineer, 12)
    many = _count(client)
    assert few == many == POSTURE_QUERIES
