"""Shared set-up for the benchmarks: a dedicated PostgreSQL database and Redis db, Django configured on them.

Import this module before anything from Django: it sets the environment, creates the database if needed,
migrates it and loads the catalogues once.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")
DB_NAME = os.environ.get("BENCH_DB_NAME", "rampart_bench")
BENCH_ENV = {
    "DATABASE_URL": f"{PG_SERVER}/{DB_NAME}",
    "CELERY_BROKER_URL": os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/13"),
    "RAMPART_VAR_DIR": os.environ.get("BENCH_VAR_DIR", "/tmp/rampart-bench/var"),
    "DJANGO_SETTINGS_MODULE": "governance.settings",
}


def _libpq(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def ensure_database(*, drop: bool = False) -> bool:
    """Create the bench database if missing (or anew with drop). True when it was created."""
    import psycopg

    with psycopg.connect(_libpq(f"{PG_SERVER}/postgres"), autocommit=True) as conn:
        if drop:
            conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            return False
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        return True


def drop_database() -> None:
    import psycopg

    with psycopg.connect(_libpq(f"{PG_SERVER}/postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def setup(*, fresh: bool = False) -> None:
    """Environment, database, migrations (always: cheap when up to date), django.setup()."""
    os.environ.update(BENCH_ENV)
    Path(BENCH_ENV["RAMPART_VAR_DIR"]).mkdir(parents=True, exist_ok=True)
    created = ensure_database(drop=fresh)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    py = sys.executable
    subprocess.run([py, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, check=True, env=os.environ.copy())
    if created:
        subprocess.run([py, "manage.py", "load_catalogues"], cwd=ROOT, check=True, env=os.environ.copy(),
                       stdout=subprocess.DEVNULL)
    import django

    django.setup()


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
    return f"{os.cpu_count()} CPU ({cpu}), {mem}, Python {platform.python_version()}, PostgreSQL {pg}"


def bench_system(slug: str):
    """An AI system (and its owner) to import into."""
    from django.contrib.auth import get_user_model

    from governance.inventory.models import AISystem

    User = get_user_model()
    owner = User.objects.filter(email="bench-owner@example.com").first() or User.objects.create_user(
        email="bench-owner@example.com")
    system, _ = AISystem.objects.get_or_create(slug=slug, defaults={
        "name": slug.replace("-", " ").title(), "purpose": "Benchmark target.", "business_owner": owner})
    return system
