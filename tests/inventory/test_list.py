"""The inventory list: login, search, filters, sorting, pagination, htmx partial, constant queries."""
import re

import pytest
from django.urls import reverse

from governance.inventory import services
from governance.inventory.selectors import PAGE_SIZE
from tests.inventory.conftest import make_system

pytestmark = pytest.mark.django_db

URL = reverse("inventory:list")


def names(response) -> list[str]:
    """System names in the order the results table shows them."""
    return re.findall(r'<a class="strong" href="/systems/[^"]+/">([^<]+)</a>', response.content.decode())


@pytest.fixture
def portfolio(ciso, owner, other_owner):
    """Four systems across stages, tiers and owners, plus one archived."""
    make = services.system_create
    from tests.conftest import system_data
    make(actor=ciso, data=system_data(owner, name="Alpha Chat", slug="alpha", risk_tier="low", lifecycle_stage="build",
                                      business_unit="Retail"))
    make(actor=ciso, data=system_data(owner, name="Bravo Vision", slug="bravo", risk_tier="critical",
                                      lifecycle_stage="operate", third_party_provider="Anthropic"))
    make(actor=ciso, data=system_data(other_owner, name="Charlie Scoring", slug="charlie", risk_tier="medium",
                                      lifecycle_stage="deploy", purpose="Scores loan applications."))
    make(actor=ciso, data=system_data(other_owner, name="Delta Agent", slug="delta", risk_tier="high",
                                      lifecycle_stage="operate"))
    gone = make(actor=ciso, data=system_data(owner, name="Echo Legacy", slug="echo", risk_tier="critical",
                                             lifecycle_stage="retired"))
    services.system_archive(actor=ciso, system=gone)


def test_anonymous_is_sent_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response.url.startswith(reverse("accounts:login")) and "next=/systems/" in response.url


@pytest.mark.parametrize("role", ["ciso", "owner", "engineer", "facilitator", "nobody"])
def test_every_logged_in_user_can_read_the_list(client, portfolio, role, request):
    client.force_login(request.getfixturevalue(role))
    response = client.get(URL)
    assert response.status_code == 200
    assert names(response) == ["Alpha Chat", "Bravo Vision", "Charlie Scoring", "Delta Agent"]


def test_register_button_only_for_roles_that_may_create(client, portfolio, ciso, owner, engineer, facilitator):
    create = reverse("inventory:create")
    for user, shown in ((ciso, True), (owner, True), (engineer, False), (facilitator, False)):
        client.force_login(user)
        assert (f'href="{create}"' in client.get(URL).content.decode()) is shown, user


@pytest.mark.parametrize("q, expected", [
    ("alpha", ["Alpha Chat"]),
    ("ANTHROPIC", ["Bravo Vision"]),  # provider, case-insensitive
    ("loan", ["Charlie Scoring"]),  # purpose
    ("retail", ["Alpha Chat"]),  # business unit
    ("charlie", ["Charlie Scoring"]),  # slug/name
    ("nothing-like-this", []),
])
def test_search(client, portfolio, ciso, q, expected):
    client.force_login(ciso)
    response = client.get(URL, {"q": q})
    assert names(response) == expected
    if not expected:
        assert "No AI systems match these filters." in response.content.decode()


def test_filters(client, portfolio, ciso, other_owner):
    client.force_login(ciso)
    assert names(client.get(URL, {"stage": "operate"})) == ["Bravo Vision", "Delta Agent"]
    assert names(client.get(URL, {"tier": "critical"})) == ["Bravo Vision"]
    assert names(client.get(URL, {"owner": other_owner.pk})) == ["Charlie Scoring", "Delta Agent"]
    assert names(client.get(URL, {"stage": "operate", "owner": other_owner.pk})) == ["Delta Agent"]
    assert names(client.get(URL, {"archived": "1"})) == ["Echo Legacy"]
    assert names(client.get(URL, {"archived": "1", "tier": "low"})) == []


def test_unknown_filter_values_are_ignored(client, portfolio, ciso):
    client.force_login(ciso)
    response = client.get(URL, {"stage": "bogus", "tier": "<script>", "owner": "x1", "sort": "password", "page": "abc"})
    assert response.status_code == 200
    assert names(response) == ["Alpha Chat", "Bravo Vision", "Charlie Scoring", "Delta Agent"]


@pytest.mark.parametrize("sort, expected", [
    ("name", ["Alpha Chat", "Bravo Vision", "Charlie Scoring", "Delta Agent"]),
    ("-name", ["Delta Agent", "Charlie Scoring", "Bravo Vision", "Alpha Chat"]),
    ("tier", ["Bravo Vision", "Delta Agent", "Charlie Scoring", "Alpha Chat"]),  # critical first
    ("-tier", ["Alpha Chat", "Charlie Scoring", "Delta Agent", "Bravo Vision"]),
    ("stage", ["Alpha Chat", "Charlie Scoring", "Bravo Vision", "Delta Agent"]),  # build < deploy < operate
    ("-stage", ["Bravo Vision", "Delta Agent", "Charlie Scoring", "Alpha Chat"]),
    ("owner", ["Charlie Scoring", "Delta Agent", "Alpha Chat", "Bravo Vision"]),  # other-owner@ < owner@
    ("-owner", ["Alpha Chat", "Bravo Vision", "Charlie Scoring", "Delta Agent"]),
])
def test_sort(client, portfolio, ciso, sort, expected):
    client.force_login(ciso)
    assert names(client.get(URL, {"sort": sort})) == expected


def test_sort_by_updated(client, portfolio, ciso):
    from governance.inventory.models import AISystem

    services.system_update(actor=ciso, system=AISystem.objects.get(slug="charlie"), data={"risk_tier": "low"})
    client.force_login(ciso)
    assert names(client.get(URL, {"sort": "-updated"}))[0] == "Charlie Scoring"
    assert names(client.get(URL, {"sort": "updated"}))[-1] == "Charlie Scoring"


def test_sort_links_toggle_and_keep_filters(client, portfolio, ciso):
    client.force_login(ciso)
    body = client.get(URL, {"sort": "tier", "stage": "operate"}).content.decode()
    assert 'href="?sort=-tier&amp;stage=operate"' in body or 'href="?stage=operate&amp;sort=-tier"' in body


def test_pagination(client, ciso, owner):
    for n in range(PAGE_SIZE + 3):
        make_system(ciso, owner, n)
    client.force_login(ciso)
    first = client.get(URL)
    assert len(names(first)) == PAGE_SIZE
    assert f"{PAGE_SIZE + 3} systems" in first.content.decode() and "page 1 of 2" in first.content.decode()
    assert "page=2" in first.content.decode()
    second = client.get(URL, {"page": 2})
    assert names(second) == [f"System {n:03d}" for n in range(PAGE_SIZE, PAGE_SIZE + 3)]
    assert "page=1" in second.content.decode()
    # past the end gives the last page, not an error
    assert names(client.get(URL, {"page": 99})) == names(second)


def test_htmx_request_gets_only_the_results_partial(client, portfolio, ciso):
    client.force_login(ciso)
    response = client.get(URL, {"tier": "critical"}, headers={"HX-Request": "true"})
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<div id="results"')
    assert "<html" not in body and "<form" not in body and "sidebar" not in body
    assert names(response) == ["Bravo Vision"]


def test_full_page_contains_the_partial_once(client, portfolio, ciso):
    client.force_login(ciso)
    body = client.get(URL).content.decode()
    assert "<html" in body and body.count('id="results"') == 1


def _list_queries(client, django_assert_max_num_queries, n):
    with django_assert_max_num_queries(LIST_QUERIES) as ctx:
        response = client.get(URL)
    assert response.status_code == 200
    assert len(names(response)) == min(n, PAGE_SIZE)
    return len(ctx.captured_queries)


# session, user, user perms, group perms, role names and sign-offs waiting (sidebar), count, owner dropdown, page
# rows: constant in the number of systems and of their models and datasets
LIST_QUERIES = 9


def test_query_count_does_not_grow_with_rows(client, ciso, owner, other_owner, django_assert_max_num_queries):
    from governance.inventory.models import AIModel, Dataset

    client.force_login(ciso)
    for n in range(3):
        make_system(ciso, owner, n)
    few = _list_queries(client, django_assert_max_num_queries, 3)
    for n in range(3, 60):
        system = make_system(ciso, owner if n % 2 else other_owner, n, technical_owner=ciso)
        AIModel.objects.create(system=system, name="m", version="1")
        Dataset.objects.create(system=system, name="d")
    many = _list_queries(client, django_assert_max_num_queries, 60)
    assert few == many == LIST_QUERIES
    with django_assert_max_num_queries(LIST_QUERIES):
        client.get(URL, {"page": 3, "sort": "-tier", "q": "system"})


def test_model_and_dataset_counts_shown(client, system, ciso):
    from governance.inventory.models import AIModel, Dataset

    AIModel.objects.create(system=system, name="a", version="1")
    AIModel.objects.create(system=system, name="a", version="2")
    Dataset.objects.create(system=system, name="d")
    client.force_login(ciso)
    body = client.get(URL).content.decode()
    assert '<td class="num">2</td><td class="num">1</td>' in body


@pytest.mark.parametrize("value", ["²", "٣", "9" * 30, "-1", " 1"])
def test_odd_owner_values_do_not_crash(client, portfolio, ciso, value):
    client.force_login(ciso)
    response = client.get(URL, {"owner": value})
    assert response.status_code == 200
    assert len(names(response)) in (0, 4)


def test_history_restore_gets_the_whole_page(client, portfolio, ciso):
    """htmx asks for the full page when the back button misses its cache; the partial would replace <body>."""
    client.force_login(ciso)
    response = client.get(URL, {"tier": "critical"},
                          headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in response.content.decode()


def test_responses_vary_on_hx_request(client, portfolio, ciso):
    """The same URL answers a partial or a page: caches (and the browser's back button) must tell them apart."""
    client.force_login(ciso)
    for headers in ({}, {"HX-Request": "true"}):
        assert "HX-Request" in client.get(URL, headers=headers).get("Vary", "")
