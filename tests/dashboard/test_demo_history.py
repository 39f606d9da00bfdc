"""`make run`'s demo has a past: the seeded portfolio is dated back and its daily snapshots replayed by the backfill,
so posture over time and month-over-month show figures on a fresh machine."""
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db.models import Max, Min
from django.test import Client
from django.utils import timezone

from governance.dashboard.demo import DEMO_PASSWORD
from governance.dashboard.demo_history import HISTORY_DAYS
from governance.dashboard.models import PortfolioDay, PostureSnapshot
from governance.dashboard.trends import month_over_month
from governance.findings.models import Finding, FindingTransition

pytestmark = pytest.mark.django_db


def test_seed_demo_gives_posture_a_history(queued, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    call_command("seed_demo")
    today = timezone.localdate()
    days = PortfolioDay.objects.aggregate(first=Min("day"), last=Max("day"))
    assert days["first"] == today - timedelta(days=HISTORY_DAYS) and days["last"] == today
    fixed = FindingTransition.objects.filter(to_state="fixed")
    assert fixed.exists() and all(t.at > t.finding.first_seen for t in fixed.select_related("finding"))
    assert Finding.objects.filter(first_seen__lt=timezone.now() - timedelta(days=30)).exists()
    mom = month_over_month(timezone.now())
    assert any(figure["month_ago"] is not None for figure in mom.values())
    # Seeding again changes nothing (idempotent), and the page draws the trends.
    rows = PostureSnapshot.objects.count()
    call_command("seed_demo")
    assert PostureSnapshot.objects.count() == rows
    client = Client()
    signed_in = client.post("/accounts/login/", {"username": "ciso@rampart.local", "password": DEMO_PASSWORD})
    assert signed_in.status_code == 302 and signed_in.url == "/"
    page = client.get("/").content
    assert b"Posture over time" in page
    assert b"no data a month ago" not in page.split(b"Posture over time")[0]


def test_seed_demo_has_exercises_inside_the_history(queued, settings):
    """A completed exercise played weeks ago (inside the history, so the trend shows when the systems were first
    exercised) and a planned one next week; the facilitator opens them."""
    from governance.dashboard.demo_exercises import COMPLETED_TITLE, PLANNED_TITLE
    from governance.inventory.models import AISystem
    from governance.risks.models import Decision
    from governance.tabletop.models import Exercise

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    call_command("seed_demo")
    now, today = timezone.now(), timezone.localdate()
    done = Exercise.objects.get(title=COMPLETED_TITLE)
    assert done.state == "completed" and done.started_at < done.ended_at < done.completed_at
    assert now - timedelta(days=HISTORY_DAYS) < done.completed_at < now - timedelta(days=14)
    assert done.releases.count() == done.scenario.injects.count() and done.responses.exists() and done.scores.exists()
    assert done.strengths and done.areas_for_improvement
    promoted = done.improvements.get(promoted_at__isnull=False)
    assert promoted.risk.inherent_likelihood and promoted.risk.source == "tabletop"
    assert promoted.risk.created_at == promoted.promoted_at  # the history keeps it raised by the exercise
    assert min(r.clock_minute for r in done.responses.all()) > 0  # the timeline is not all at T+00:00
    planned = Exercise.objects.get(title=PLANNED_TITLE)
    assert planned.state == "planned" and now < planned.scheduled_for < now + timedelta(days=8)
    # The replayed days read the systems as never exercised before the exercise and exercised after it.
    systems = AISystem.objects.active().count()
    before = PortfolioDay.objects.get(day=timezone.localdate(done.completed_at) - timedelta(days=1))
    assert before.never_exercised == systems
    assert PortfolioDay.objects.get(day=today).never_exercised == systems - done.systems.count()
    # Sign-offs are dated inside the history too; an acceptance still in force keeps its expiry ahead.
    decided = Decision.objects.filter(decided_at__isnull=False)
    assert decided.exists() and all(d.decided_at < now - timedelta(days=1) and d.requested_at <= d.decided_at
                                    and d.requested_at >= d.risk.created_at for d in decided.select_related("risk"))
    assert all(d.expires_at > now for d in decided.filter(status="accepted"))
    # Seeding again adds no exercise.
    call_command("seed_demo")
    assert Exercise.objects.count() == 2
    client = Client()
    client.post("/accounts/login/", {"username": "facilitator@rampart.local", "password": DEMO_PASSWORD})
    page = client.get("/").content.decode()
    kpi = int(page.split('data-kpi="never_exercised">')[1].split("<")[0])
    assert kpi == systems - done.systems.count() < systems
    for url in ("/exercises/", done.get_absolute_url(), f"/exercises/{done.pk}/report/", planned.get_absolute_url()):
        response = client.get(url, follow=True)  # the facilitator's exercise page is its console
        assert response.status_code == 200, url
    assert COMPLETED_TITLE.encode() in client.get("/exercises/").content
