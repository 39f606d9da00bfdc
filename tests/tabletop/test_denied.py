"""Opening something one may not see says why and who can help (the 403 page), and the list does not offer what
one cannot open."""
from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_an_admin_who_does_not_take_part_is_told_who_can_add_them(client, admin_user, exercise):
    client.force_login(admin_user)
    listing = client.get(reverse("tabletop:list")).content.decode()
    assert exercise.title in listing and f"ask {exercise.facilitator} to add you" in listing
    assert exercise.get_absolute_url() not in listing

    response = client.get(exercise.get_absolute_url())
    assert response.status_code == 403
    page = response.content.decode()
    assert "You are not taking part in" in page and exercise.facilitator.email in page
    assert 'data-error-message' in page  # what an htmx request shows in its alert


def test_the_facilitator_still_opens_it_from_the_list(client, facilitator, exercise):
    client.force_login(facilitator)
    assert exercise.get_absolute_url() in client.get(reverse("tabletop:list")).content.decode()


def test_a_refusal_without_names_lists_admins_and_cisos(client, engineer, admin_user, ciso):
    client.force_login(engineer)
    response = client.get(reverse("accounts:users"))
    assert response.status_code == 403
    page = response.content.decode()
    assert admin_user.email in page and ciso.email in page and engineer.email in page  # who asks, and whom
