"""The demo's documented logins (README, `make run`) sign straight in: no password change, no two-factor asked."""
import pytest
from django.test import Client
from django.urls import reverse

from governance.dashboard.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo

pytestmark = pytest.mark.django_db


def test_every_demo_login_reaches_the_dashboard(queued, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    seed_demo()
    for email, _, _ in DEMO_USERS:
        client = Client()
        response = client.post(reverse("accounts:login"), {"username": email, "password": DEMO_PASSWORD})
        assert response.status_code == 302 and response.url == reverse("dashboard:home"), email
        assert client.get(reverse("dashboard:home")).status_code == 200, email
        assert client.get(reverse("accounts:profile")).status_code == 200, email
