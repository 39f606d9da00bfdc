"""The system page: readable by every role, buttons per permission, history, and hostile text escaped."""
import re

import pytest
from django.urls import reverse

from governance.inventory import services
from tests.conftest import system_data

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
JS_URL = "javascript:alert(1)"


def test_anonymous_is_sent_to_login(client, system):
    response = client.get(system.get_absolute_url())
    assert response.status_code == 302 and response.url.startswith(reverse("accounts:login"))


def test_unknown_system_is_404(client, ciso):
    client.force_login(ciso)
    assert client.get("/systems/no-such-system/").status_code == 404


@pytest.mark.parametrize("role, edit, archive", [
    ("ciso", True, True), ("admin_user", True, True), ("owner", True, True), ("other_owner", False, False),
    ("engineer", True, False), ("facilitator", False, False), ("nobody", False, False),
])
def test_every_role_reads_and_sees_only_the_buttons_it_may_use(client, request, system, role, edit, archive):
    client.force_login(request.getfixturevalue(role))
    response = client.get(system.get_absolute_url())
    body = response.content.decode()
    assert response.status_code == 200
    assert "Support Copilot" in body and "Drafts answers for support agents." in body
    assert (reverse("inventory:edit", args=[system.slug]) in body) is edit
    assert (reverse("inventory:archive", args=[system.slug]) in body) is archive
    assert (reverse("inventory:model-add", args=[system.slug]) in body) is edit
    assert reverse("rmf:profile", args=[system.slug]) in body


def test_shows_facts_coverage_and_history(client, owner, ciso, system):
    services.system_update(actor=ciso, system=system, data={"risk_tier": "critical"})
    client.force_login(owner)
    body = client.get(system.get_absolute_url()).content.decode()
    assert "OpenAI" in body and "Personal data (PII)" in body and "Retrieval-augmented generation" in body
    assert "GOVERN · 0/19 assessed" in body and "MANAGE · 0/13 assessed" in body
    assert 'id="coverage-chart" data-figure="' in body
    assert "system.create" in body and "system.update" in body and "ciso@example.com" in body


def test_query_count_does_not_grow_with_components_or_history(client, ciso, system, django_assert_max_num_queries):
    """Other apps add cards to this page, so pin "no growth" rather than an exact number."""
    client.force_login(ciso)
    client.get(system.get_absolute_url())  # first view may create per-install defaults (gate policy, matrix)
    with django_assert_max_num_queries(100) as empty:
        client.get(system.get_absolute_url())
    for n in range(12):
        services.model_register(actor=ciso, system=system, data={"name": f"m{n}", "version": "1"})
        services.dataset_register(actor=ciso, system=system, data={"name": f"d{n}"})
        services.system_update(actor=ciso, system=system, data={"business_unit": f"Unit {n}"})
    with django_assert_max_num_queries(len(empty.captured_queries)):
        body = client.get(system.get_absolute_url()).content.decode()
    assert "m11" in body and "d11" in body and "Unit 11" in body


@pytest.fixture
def hostile(ciso, owner):
    system = services.system_create(actor=ciso, data=system_data(
        owner, name=f"Evil {SCRIPT}", slug="evil", purpose=f"{SCRIPT}\nSee {JS_URL}", business_unit=SCRIPT,
        third_party_provider=SCRIPT, human_oversight=JS_URL, executes_generated_code=True,
        code_execution_isolation=SCRIPT,
    ))
    services.model_register(actor=ciso, system=system, data={
        "name": SCRIPT, "version": SCRIPT, "source_uri": JS_URL, "provider": SCRIPT, "licence": SCRIPT,
    })
    services.model_register(actor=ciso, system=system, data={"name": "mixed-case", "source_uri": " JavaScript:alert(1)"})
    services.model_register(actor=ciso, system=system, data={"name": "data-uri",
                                                                "source_uri": "data:text/html,<script>alert(1)</script>"})
    services.dataset_register(actor=ciso, system=system, data={"name": SCRIPT, "source_uri": JS_URL, "licence": SCRIPT})
    return system


def test_hostile_text_is_escaped_and_never_a_live_link(client, ciso, hostile):
    client.force_login(ciso)
    for page in (hostile.get_absolute_url(), reverse("inventory:list"), reverse("rmf:profile", args=["evil"]),
                 reverse("rmf:portfolio")):
        body = client.get(page).content.decode()
        assert SCRIPT not in body, page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, page
        hrefs = re.findall(r'(?:href|src|action)\s*=\s*"([^"]*)"', body, flags=re.I)
        assert not [h for h in hrefs if h.strip().lower().startswith(("javascript:", "data:"))], page
    body = client.get(hostile.get_absolute_url()).content.decode()
    assert JS_URL in body  # still shown, as text


def test_hostile_text_in_the_edit_form_is_escaped(client, ciso, hostile):
    client.force_login(ciso)
    body = client.get(reverse("inventory:edit", args=["evil"])).content.decode()
    assert SCRIPT not in body and "&lt;script&gt;" in body
