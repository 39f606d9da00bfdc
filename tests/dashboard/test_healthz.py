"""GET /healthz against the real PostgreSQL and Redis; a dead broker, or no worker seen lately, gives 503 saying
which. Also `manage.py liveness` (the compose health checks) and beat's tick."""
import os
import socket
import time
from datetime import timedelta

import pytest
from celery import Celery
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from governance.dashboard.liveness import worker_heartbeat_record
from governance.findings.models import ImportRun
from worker.celery import app as celery_app

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker_seen():
    """A worker on this host that beat `ago` seconds ago."""
    def seen(ago: float = 0, name: str = f"celery@{socket.gethostname()}") -> None:
        now = timezone.now()
        worker_heartbeat_record(name=name, started_at=now - timedelta(hours=1), now=now - timedelta(seconds=ago))
    return seen


def point_broker_at(monkeypatch, url: str) -> None:
    """Celery resolves the write URL from broker_url when the app is configured; override both."""
    monkeypatch.setattr(celery_app.conf, "broker_url", url)
    monkeypatch.setattr(celery_app.conf, "broker_write_url", url)


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_healthy_with_postgres_and_redis(client, worker_seen):
    worker_seen(ago=3)
    assert settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    assert celery_app.conf.broker_url.startswith("redis://")
    response = client.get("/healthz")  # anonymous: load balancers do not log in
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True, "detail": "postgresql"}
    assert body["broker"]["ok"] is True and body["broker"]["detail"] == "redis"
    assert body["worker"] == {"ok": True, "alive": 1, "last_seen_seconds": pytest.approx(3, abs=1),
                              "stale_after_seconds": settings.RAMPART_WORKER_STALE_SECONDS}
    assert body["imports"] == {"queued": 0, "oldest_queued_seconds": None}
    assert "no-cache" in response["Cache-Control"]


def test_no_worker_seen_gives_503_with_the_age_of_the_last_heartbeat(client, worker_seen, settings):
    settings.RAMPART_WORKER_STALE_SECONDS = 60
    body = client.get("/healthz").json()  # no worker ever
    assert body["status"] == "unavailable" and body["database"]["ok"] and body["broker"]["ok"]
    assert body["worker"] == {"ok": False, "alive": 0, "last_seen_seconds": None, "stale_after_seconds": 60}

    worker_seen(ago=61, name="celery@worker-7f3a")  # stopped a minute ago
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["worker"]["ok"] is False
    assert response.json()["worker"]["last_seen_seconds"] == pytest.approx(61, abs=1)
    assert "worker-7f3a" not in response.content.decode()  # anonymous callers learn no host names

    worker_seen(ago=1, name="celery@worker-9b2c")  # another one runs
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["worker"]["alive"] == 1


def test_reports_how_long_the_oldest_queued_import_has_waited(client, worker_seen, system):
    worker_seen()
    now = timezone.now()
    for minutes, status in ((1, ImportRun.Status.QUEUED), (30, ImportRun.Status.QUEUED), (90, ImportRun.Status.DONE)):
        run = ImportRun.objects.create(system=system, source=f"s{minutes}", format="sarif", status=status)
        ImportRun.objects.filter(pk=run.pk).update(created_at=now - timedelta(minutes=minutes))
    response = client.get("/healthz")
    assert response.status_code == 200  # waiting imports are reported, not a failure
    assert response.json()["imports"] == {"queued": 2, "oldest_queued_seconds": pytest.approx(1800, abs=2)}


def test_liveness_command_for_the_worker_of_this_host(worker_seen, settings, capsys):
    settings.RAMPART_WORKER_STALE_SECONDS = 60
    with pytest.raises(CommandError, match="never"):
        call_command("liveness", "worker")
    worker_seen(ago=5, name="celery@another-host")
    with pytest.raises(CommandError):
        call_command("liveness", "worker")  # another host's worker does not make this one healthy
    worker_seen(ago=5)
    call_command("liveness", "worker")
    assert "worker: alive" in capsys.readouterr().out
    with pytest.raises(CommandError, match="within 2 s"):
        call_command("liveness", "worker", "--max-age", "2")


def test_beat_records_each_tick_and_the_command_reads_it(settings, tmp_path):
    from worker.liveness import TickingScheduler

    settings.RAMPART_BEAT_TICK_FILE = tmp_path / "beat-tick"
    with pytest.raises(CommandError, match="never"):
        call_command("liveness", "beat")
    app = Celery("beat-test", set_as_current=False)  # no tasks: the tick sends nothing
    scheduler = TickingScheduler(app=app, schedule_filename=str(tmp_path / "schedule"))
    scheduler.tick()
    scheduler.close()
    assert settings.RAMPART_BEAT_TICK_FILE.exists()
    call_command("liveness", "beat")
    old = time.time() - 300
    os.utime(settings.RAMPART_BEAT_TICK_FILE, (old, old))
    with pytest.raises(CommandError, match="300 s ago"):
        call_command("liveness", "beat")


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
