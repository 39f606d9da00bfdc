"""Exercise fixtures: the shipped scenarios, an exercise with a facilitator, two players and an observer."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from governance.accounts.models import Role
from governance.tabletop import services
from governance.tabletop.loader import load_builtin_scenarios
from governance.tabletop.models import Scenario
from tests.conftest import make_user

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=dt_timezone.utc)
SECRET_NOTE = "FACILITATOR-ONLY-7f3a"


def at(minutes: float) -> datetime:
    """Wall-clock time `minutes` after T0."""
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def scenarios(db):
    load_builtin_scenarios()
    return Scenario.objects.all()


@pytest.fixture
def scenario(scenarios):
    """The pickle scenario, with a marker in every facilitator note so leaks are easy to spot."""
    s = Scenario.objects.get(slug="malicious-pickle-model")
    for inject in s.injects.all():
        inject.facilitator_notes = f"{SECRET_NOTE} {inject.facilitator_notes}"
        inject.save()
    return s


@pytest.fixture
def people(db):
    return {
        "ml": make_user("ml@example.com", None),
        "legal": make_user("legal@example.com", None),
        "observer": make_user("observer@example.com", None),
        "outsider": make_user("outsider@example.com", Role.ENGINEER),
    }


@pytest.fixture
def exercise(scenario, facilitator, people, system, ciso):
    ex = services.exercise_create(actor=facilitator, data={
        "title": "Q1 supply-chain drill", "scenario": scenario, "facilitator": facilitator, "scheduled_for": T0,
    }, systems=[system])
    services.participant_add(actor=facilitator, exercise=ex, user=people["ml"], role="player", function="ml_engineer")
    services.participant_add(actor=facilitator, exercise=ex, user=people["legal"], role="player", function="legal")
    services.participant_add(actor=facilitator, exercise=ex, user=people["observer"], role="observer")
    return ex


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """The browser test's live_server flushes every table afterwards; put the RMF catalogues back for later tests
    (as tests/browser/conftest.py does for its own tests)."""
    yield
    if nextitem is not None and "live_server" in getattr(item, "fixturenames", ()):
        from pytest_django.plugin import blocking_manager_key

        from governance.rmf.catalogues import load_catalogues

        with item.config.stash[blocking_manager_key].unblock():
            load_catalogues()
