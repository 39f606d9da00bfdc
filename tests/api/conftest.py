"""Helpers for the JSON API tests: clients that authenticate by bearer token or by session."""
from __future__ import annotations

import itertools

import pytest
from rest_framework.test import APIClient

from governance.accounts.services import api_token_create

_serial = itertools.count()


def bearer_client(user) -> APIClient:
    _, plain = api_token_create(user=user, name=f"test-{next(_serial)}")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    return client


@pytest.fixture
def api_as():
    """api_as(user) -> an APIClient acting as `user` through a fresh bearer token."""
    return bearer_client
