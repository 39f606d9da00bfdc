"""The count on "My sign-offs" in the sidebar: the inbox page's own list (selectors.inbox), counted in one query,
only for people who decide."""
from __future__ import annotations

import re

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from governance.risks import selectors, services
from tests.risks.conftest import make_risk

PROCESSOR = "governance.risks.context_processors.signoffs"


def badge(client, url=None) -> int | None:
    text = client.get(url or reverse("inventory:list")).content.decode()
    found = re.search(r'data-inbox-count="(\d+)"', text)
    return int(found.group(1)) if found else None


def listed(client) -> int:
    """Rows on the inbox page."""
    return client.get(reverse("risks:inbox")).content.decode().count('class="inbox-row"')


@pytest.fixture
def waiting(engineer, system, other_system):
    """Two sign-offs waiting for the owner of `system`, one for the owner of `other_system`, one withdrawn."""
    asked = [services.decision_request(actor=engineer, risk=make_risk(engineer, s), kind="residual_risk")
             for s in (system, system, other_system)]
    again = make_risk(engineer, system)
    services.decision_request(actor=engineer, risk=again, kind="residual_risk")
    services.decision_request(actor=engineer, risk=again, kind="treatment_plan")  # the first one is withdrawn
    return asked


@pytest.mark.django_db
def test_badge_is_the_inbox_list_total(client, owner, other_owner, ciso, waiting):
    for user, expected in ((owner, 3), (other_owner, 1), (ciso, 4)):
        client.force_login(user)
        assert badge(client) == listed(client) == selectors.inbox(user).count() == expected, user
        assert badge(client, reverse("risks:inbox")) == expected  # the same on the inbox page itself


@pytest.mark.django_db
def test_badge_follows_decisions(client, owner, waiting):
    client.force_login(owner)
    for decision in waiting[:2]:
        services.decision_decide(actor=owner, risk=decision.risk, accept=False, justification="Not with this plan.",
                                 expires_at=None)
    assert badge(client) == listed(client) == 1
    services.decision_decide(actor=owner, risk=selectors.inbox(owner).get().risk, accept=False,
                             justification="No.", expires_at=None)
    assert badge(client) is None and listed(client) == 0  # nothing waiting: no badge


@pytest.mark.django_db
def test_no_badge_for_people_who_decide_nothing(client, engineer, admin_user, nobody, waiting):
    for user in (engineer, admin_user, nobody):
        client.force_login(user)
        assert badge(client) is None and listed(client) == 0


def badge_off(settings) -> None:
    engine = {**django_settings.TEMPLATES[0]}
    engine["OPTIONS"] = {**engine["OPTIONS"], "context_processors": [
        p for p in engine["OPTIONS"]["context_processors"] if p != PROCESSOR]}
    settings.TEMPLATES = [engine]


def _queries(client, django_assert_max_num_queries, url) -> int:
    with django_assert_max_num_queries(100) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.django_db
@pytest.mark.parametrize("who", ["owner", "ciso", "engineer"])
def test_badge_costs_at_most_one_query(client, settings, request, who, waiting, django_assert_max_num_queries):
    user = request.getfixturevalue(who)
    client.force_login(user)
    url = reverse("inventory:list")
    client.get(url)  # warm: the session, the content types
    with_badge = _queries(client, django_assert_max_num_queries, url)
    badge_off(settings)
    without = _queries(client, django_assert_max_num_queries, url)
    assert badge(client) is None  # the processor is really off
    assert with_badge - without == (0 if who == "engineer" else 1)


@pytest.mark.django_db
def test_partials_do_not_count(client, settings, owner, waiting, django_assert_max_num_queries):
    """An htmx partial renders no sidebar: the count is not run for it."""
    client.force_login(owner)
    url = reverse("risks:list") + "?awaiting=1"
    client.get(url, HTTP_HX_REQUEST="true")
    with django_assert_max_num_queries(100) as with_badge:
        partial = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    badge_off(settings)
    with django_assert_max_num_queries(100) as without:
        client.get(url, HTTP_HX_REQUEST="true")
    assert "sidebar" not in partial and "RISK-" in partial
    assert len(with_badge.captured_queries) == len(without.captured_queries)
