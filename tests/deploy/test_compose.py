"""docker-compose.yml cannot run here (no Docker engine), so parse it and check it would run Rampart."""
from pathlib import Path

import pytest
import yaml

from governance.envconfig import database_from_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


WORKERS = {"worker-imports": "imports", "worker-lineage": "lineage", "worker-default": "default"}


def test_it_has_the_services(compose):
    assert set(compose["services"]) == {"web", *WORKERS, "beat", "postgres", "redis"}


def test_a_worker_per_queue_and_every_queue_consumed(compose, settings):
    for name, queue in WORKERS.items():
        command = compose["services"][name]["command"]
        assert command[:4] == ["celery", "-A", "worker", "worker"]
        assert command[command.index("-Q") + 1] == queue, name
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {settings.CELERY_TASK_DEFAULT_QUEUE}
    assert routed == set(WORKERS.values()) == set(settings.CELERY_TASK_QUEUES)


def test_app_services_share_the_image_and_wait_for_healthy_backends(compose):
    for name in ("web", *WORKERS, "beat"):
        service = compose["services"][name]
        assert service["build"] == "." and service["image"] == "rampart:latest"
        assert service["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                         "redis": {"condition": "service_healthy"}}
        assert "healthcheck" in compose["services"]["postgres"] and "healthcheck" in compose["services"]["redis"]


def test_app_environment_points_at_postgres_and_redis(compose):
    env = compose["services"]["web"]["environment"]
    db = database_from_url(env["DATABASE_URL"], ROOT)
    pg = compose["services"]["postgres"]["environment"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"]) == (
        pg["POSTGRES_DB"], pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], "postgres")
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?"), "production must refuse to start without a secret key"


def test_commands_start_web_worker_and_beat(compose):
    web = compose["services"]["web"]["command"]
    assert "migrate" in web and "load_catalogues" in web and "collectstatic" in web
    assert "gunicorn governance.wsgi:application" in web
    assert compose["services"]["beat"]["command"][:4] == ["celery", "-A", "worker", "beat"]
    assert compose["services"]["web"]["ports"] == ["8000:8000"]


def test_every_long_running_service_restarts_and_has_a_meaningful_health_check(compose):
    for name, service in compose["services"].items():
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no health check"
    checks = {name: service["healthcheck"]["test"] for name, service in compose["services"].items()}
    assert "pg_isready" in checks["postgres"][1] and checks["redis"][1:] == ["redis-cli", "ping"]
    assert "/healthz" in " ".join(checks["web"])  # database, broker and a worker seen lately
    for name in WORKERS:
        assert checks[name][1:] == ["python", "manage.py", "liveness", "worker"]  # this container's heartbeat
    assert checks["beat"][1:] == ["python", "manage.py", "liveness", "beat"]  # beat's last tick
    for name in (*WORKERS, "beat"):
        check = compose["services"][name]["healthcheck"]
        assert check.get("start_period") and check.get("retries", 0) >= 2, name


def test_the_health_check_commands_exist():
    from django.core.management import get_commands

    assert get_commands()["liveness"] == "governance.dashboard"


def test_dockerfile_installs_the_pinned_runtime_requirements():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert "pip install --no-cache-dir -r requirements.txt" in dockerfile
    assert "USER rampart" in dockerfile, "the containers must not run as root"


def test_the_image_can_print_the_board_report():
    """The PDF download needs Chromium where settings look for it (Debian's package installs /usr/bin/chromium)."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "apt-get install -y --no-install-recommends chromium" in dockerfile
    assert "ARG WITH_CHROMIUM=1" in dockerfile
    assert 'env("RAMPART_CHROMIUM", "/usr/bin/chromium")' in (ROOT / "governance" / "settings.py").read_text()


def test_requirements_are_pinned_exactly():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-r"):
                assert "==" in line, f"{name}: {line!r} is not pinned with =="
