"""Month-over-month changes and the trend section, from the daily snapshots."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from governance.dashboard import selectors, trends
from governance.dashboard.models import PostureSnapshot
from governance.dashboard.snapshots import snapshot_take
from governance.rmf.models import AssessmentStatus, RmfAssessment
from tests.risks.conftest import make_finding

pytestmark = pytest.mark.django_db


def test_no_snapshot_a_month_ago_means_no_delta(system):
    make_finding(system, severity="critical")
    snapshot_take(at=timezone.now() - timedelta(days=29))  # not the day 30 days ago
    mom = trends.month_over_month()
    assert mom["critical_high"]["now"] == 1
    assert all(m["month_ago"] is None and m["delta"] is None and m["direction"] is None for m in mom.values())


def test_month_over_month_against_the_snapshot_30_days_ago(system, other_system):
    make_finding(system, severity="critical")
    make_finding(other_system, severity="high")
    now = timezone.now()
    snapshot_take(at=now - timedelta(days=30))
    make_finding(system, severity="high")
    make_finding(system, severity="medium")  # not a critical + high figure
    RmfAssessment.objects.filter(system=system).update(status=AssessmentStatus.IMPLEMENTED)
    mom = trends.month_over_month(now)
    assert mom["critical_high"] == {"now": 3, "month_ago": 2, "delta": 1, "direction": "up", "good": False,
                                    "since": timezone.localdate(now) - timedelta(days=30)}
    assert mom["coverage"]["month_ago"] == 0 and mom["coverage"]["now"] == 50  # the mean of 100 % and 0 %
    assert mom["coverage"]["direction"] == "up" and mom["coverage"]["good"] is True
    assert mom["active_systems"] == {**mom["active_systems"], "now": 2, "month_ago": 2, "delta": 0,
                                     "direction": "same", "good": None}
    assert mom["never_exercised"]["delta"] == 0
    # `now` is the page's figure, whether it is passed in or read
    assert trends.month_over_month(now, selectors.posture(now)) == mom


def test_month_ago_ignores_rows_of_other_days(system):
    now = timezone.now()
    make_finding(system, severity="critical")
    snapshot_take(at=now - timedelta(days=31))
    snapshot_take(at=now - timedelta(days=30))
    make_finding(system, severity="critical")
    snapshot_take(at=now - timedelta(days=30) + timedelta(seconds=1))  # same day again: updated, not added
    assert PostureSnapshot.objects.filter(day=timezone.localdate(now) - timedelta(days=30)).count() == 1
    assert trends.month_over_month(now)["critical_high"]["month_ago"] == 2


def _figures(html: str) -> list[dict]:
    import html as htmllib
    import json
    import re

    return [json.loads(htmllib.unescape(raw)) for raw in re.findall(r'data-figure="([^"]*)"', html)]


@pytest.mark.parametrize("days, points", [(30, 1), (90, 2), (365, 3)])
def test_trends_partial_renders_each_range(client, ciso, system, days, points):
    make_finding(system, severity="critical")
    now = timezone.now()
    for back in (3, 45, 200, 400):  # 400 days ago: outside every range
        snapshot_take(at=now - timedelta(days=back))
    client.force_login(ciso)
    response = client.get(reverse("dashboard:home"), {"range": days}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and html.lstrip().startswith('<section class="card trends" id="trends"')
    assert f'data-range="{days}" class="active"' in html
    figures = _figures(html)
    assert len(figures) == 5
    open_chart = figures[0]
    assert [t["name"] for t in open_chart["data"]] == ["Critical", "High", "Medium", "Low", "Info"]
    assert all(len(t["x"]) == points for fig in figures for t in fig["data"])
    assert open_chart["data"][0]["y"] == [1] * points  # one open critical finding on every snapshot day
    assert f"{points} day{'s' if points > 1 else ''} with a snapshot in the last {days} days" in html


def test_trends_without_snapshots_and_an_unknown_range(client, ciso, system):
    client.force_login(ciso)
    html = client.get(reverse("dashboard:home"), {"range": "7"}).content.decode()  # full page, default range
    assert 'data-range="90" class="active"' in html
    assert "No daily figures for the last 90 days yet" in html
    assert html.count(">no data a month ago<") == 8  # every KPI card says so


def test_the_kpi_cards_show_the_change_since_a_month_ago(client, ciso, system):
    make_finding(system, severity="critical")
    snapshot_take(at=timezone.now() - timedelta(days=30))
    make_finding(system, severity="high")
    client.force_login(ciso)
    html = client.get(reverse("dashboard:home")).content.decode()
    card = html[html.index('data-kpi="critical_high"'):]
    card = card[:card.index("</a>")]
    assert 'class="mom worse"' in card and "+1 since" in card and "worse" in card
    assert html.count('class="mom"') >= 1  # unchanged figures: neither better nor worse ("= same as a month ago")
    assert "= same as a month ago" in html


def test_mean_time_to_remediate_is_over_the_30_days_up_to_each_day(system):
    from governance.dashboard.models import PortfolioDay

    today = timezone.localdate()
    now = timezone.now()
    for back, n, hours in ((40, 2, 48.0), (5, 1, 240.0), (0, 1, 96.0)):  # as snapshots._write stores the day's sums
        PortfolioDay.objects.create(day=today - timedelta(days=back), taken_at=now, remediated_critical=n,
                                    remediated_critical_hours=hours)
    month = trends.series(now, 30)
    assert month["days"] == [today - timedelta(days=5), today]
    assert month["mttr"]["critical"] == [10.0, 7.0]  # (240 + 96) h / 2 findings / 24
    assert month["mttr"]["high"] == [None, None]  # nothing remediated: no mean
    quarter = trends.series(now, 90)
    assert quarter["mttr"]["critical"] == [1.0, 10.0, 7.0]  # day -40 is 35 days before day -5: outside its window
