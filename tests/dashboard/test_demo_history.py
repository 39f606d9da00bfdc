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
    client.post("/accounts/login/", {"username": "ciso@rampart.local", "password": DEMO_PASSWORD})
    assert b"no data a month ago" not in client.get("/").content.split(b"Posture over time")[0]
