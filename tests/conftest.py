"""Shared fixtures: one user per role, an owned system, and the loaded catalogues."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from governance.accounts.models import Role, User
from governance.inventory import services as inventory_services
from governance.rmf.catalogues import load_catalogues

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """Load the catalogues once into the test database (migrations created the role groups)."""
    with django_db_blocker.unblock():
        load_catalogues()


def make_user(email: str, role: str | None) -> User:
    user = User.objects.create_user(email=email, password=PASSWORD, full_name=email.split("@")[0].title())
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def ciso(db):
    return make_user("ciso@example.com", Role.CISO)


@pytest.fixture
def owner(db):
    return make_user("owner@example.com", Role.PRODUCT_OWNER)


@pytest.fixture
def other_owner(db):
    return make_user("other-owner@example.com", Role.PRODUCT_OWNER)


@pytest.fixture
def engineer(db):
    return make_user("engineer@example.com", Role.ENGINEER)


@pytest.fixture
def facilitator(db):
    return make_user("facilitator@example.com", Role.FACILITATOR)


@pytest.fixture
def admin_user(db):
    return make_user("admin@example.com", Role.ADMIN)


@pytest.fixture
def nobody(db):
    """Logged in, but holds no role."""
    return make_user("nobody@example.com", None)


def system_data(owner: User, **overrides) -> dict:
    data = {
        "name": "Support Copilot", "slug": "support-copilot",
        "purpose": "Drafts answers for support agents.", "business_owner": owner,
        "lifecycle_stage": "operate", "risk_tier": "high", "deployment": "customer_facing",
        "design_approach": "rag", "uses_generative_ai": True, "third_party_provider": "OpenAI",
        "data_categories": ["pii"],
    }
    data.update(overrides)
    return data


@pytest.fixture
def system(owner, ciso):
    return inventory_services.system_create(actor=ciso, data=system_data(owner))


@pytest.fixture
def other_system(other_owner, ciso):
    return inventory_services.system_create(
        actor=ciso, data=system_data(other_owner, name="Fraud Scoring", slug="fraud-scoring", design_approach="classical_ml",
                                     uses_generative_ai=False, third_party_provider="")
    )


class Queued(list):
    """What governance code sent to the worker through governance.queueing.send, as (task, *args) tuples."""

    down = False  # answer as a broker that cannot be reached
    run = None  # a callable(task, *args): do the work in this process as well

    def args_of(self, task: str) -> list:
        return [args[0] if len(args) == 1 else args for name, *args in self if name == task]


@pytest.fixture
def queued(monkeypatch):
    """Nothing reaches a broker: sends are recorded (and run in-process if `queued.run` is set)."""
    sent = Queued()

    def send(task, *args, **options):
        if sent.down:
            return False
        sent.append((task, *args))
        if sent.run:
            sent.run(task, *args)
        return True

    monkeypatch.setattr("governance.queueing.send", send)
    return sent
