"""Audit actions in words where people read them (posture's feed, the audit page, system pages); the code stays."""
import pytest
from django.test import Client
from django.utils import timezone

from governance.audit.labels import ACTION_LABELS, action_label
from governance.dashboard.templatetags.rampart import ago

pytestmark = pytest.mark.django_db


def test_known_codes_have_words_and_unknown_ones_show_as_they_are():
    assert action_label("decision.accept") == "risk accepted"
    assert action_label("gate_policy.update") == "release gate policy changed"
    assert action_label("brand.new") == "brand.new"
    assert all(label and label == label.strip() for label in ACTION_LABELS.values())


def test_ago_says_just_now_under_a_minute():
    now = timezone.now()
    assert ago(now) == "just now"
    assert ago(now - timezone.timedelta(seconds=59)) == "just now"
    assert "minute" in ago(now - timezone.timedelta(minutes=3))


def test_audit_page_and_system_history_show_words_with_the_code_kept(system, ciso):
    client = Client()
    client.force_login(ciso)
    for url in ("/audit/", system.get_absolute_url()):
        page = client.get(url).content.decode()
        assert 'title="system.create" data-action="system.create">AI system registered</span>' in page, url
