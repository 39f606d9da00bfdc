"""GET /healthz against the real PostgreSQL and Redis; a dead broker gives 503 naming it."""
import socket
import time

import pytest
from django.conf import settings

from worker.celery import app as celery_app

pytestmark = pytest.mark.django_db


def point_broker_at(monkeypatch, url: str) -> None:
    """Celery resolves the write URL from broker_url when the app is configured; override both."""
    monkeypatch.setattr(celery_app.conf, "broker_url", url)
    monkeypatch.setattr(celery_app.conf, "broker_write_url", url)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthy_with_postgres_and_redis(client):
    assert settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    assert celery_app.conf.broker_url.startswith("redis://")
    response = client.get("/healthz")  # anonymous: load balancers do not log in
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "detail": "postgresql"}
    assert body["broker"]["ok"] is True and body["broker"]["detail"] == "redis"
    assert "no-cache" in response["Cache-Control"]


def test_dead_broker_gives_503_naming_it(client, monkeypatch):
    point_broker_at(monkeypatch, f"redis://127.0.0.1:{closed_port()}/0")
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 10  # a probe must not hang
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["database"]["ok"] is True
    assert body["broker"]["ok"] is False
    assert body["broker"]["detail"].startswith("redis: ")  # names the broker's transport
    assert "refused" in body["broker"]["detail"].lower()


def test_broker_detail_never_leaks_credentials(client, monkeypatch):
    point_broker_at(monkeypatch, f"redis://:s3cret-pass@127.0.0.1:{closed_port()}/0")
    response = client.get("/healthz")
    assert response.status_code == 503 and "s3cret-pass" not in response.content.decode()
