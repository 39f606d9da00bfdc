"""A real Celery worker against Redis DB 14 and the test database: imports, kill -9 mid-import, concurrency,
broker down. Run alone with `pytest -m worker`."""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import redis
from django.core.management import call_command
from django.db import connection
from django.db.models import DurationField, ExpressionWrapper, F
from django.utils import timezone

from governance.findings.models import Finding, FindingTransition, ImportRun
from governance.findings.selectors import stale_import_ids
from tests.findings.conftest import DATA, create_run, fingerprints_and_states, write_sarif_file

pytestmark = [pytest.mark.worker]
ROOT = Path(__file__).resolve().parents[2]

def _broker() -> str:
    """The Redis of this test run (make pytest TEST_BROKER_URL=redis://127.0.0.1:6379/14), else DB 14."""
    url = os.environ.get("RAMPART_WORKER_TEST_BROKER") or os.environ.get("CELERY_BROKER_URL", "")
    return url if url.startswith("redis://") else "redis://127.0.0.1:6379/14"


BROKER = _broker()
# Several test sessions may share one Redis database: each test talks to its workers on its own queue,
# and only that queue is emptied (never FLUSHDB, which would eat another session's messages).
QUEUE_PREFIX = f"rampart-test-{os.getpid()}"
DONE = (ImportRun.Status.DONE, ImportRun.Status.FAILED)


def database_url() -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def run_status(pk: int) -> ImportRun:
    return ImportRun.objects.get(pk=pk)


def wait_done(pk: int, timeout: float = 60) -> ImportRun:
    return wait_for(lambda: (r := run_status(pk)).status in DONE and r, timeout, f"import #{pk} to finish")


class Workers:
    """Starts `celery worker` subprocesses in their own sessions; kills them all at teardown."""

    def __init__(self, tmp_path: Path, media: str, queue: str):
        self.tmp_path, self.queue, self.procs, self.logs = tmp_path, queue, [], []
        self.env = {
            **os.environ, "DATABASE_URL": database_url(), "CELERY_BROKER_URL": BROKER, "MEDIA_ROOT": media,
            "RAMPART_IMPORT_LEASE_SECONDS": "3", "RAMPART_BROKER_VISIBILITY_TIMEOUT": "5",
            "RAMPART_IMPORT_BATCH": "500", "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("CELERY_TASK_ALWAYS_EAGER", None)

    def start(self, concurrency: int = 1) -> subprocess.Popen:
        n = len(self.procs) + 1
        log = self.tmp_path / f"worker{n}.log"
        proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/celery"), "-A", "worker", "worker", "--concurrency", str(concurrency),
             "--loglevel", "INFO", "-n", f"w{n}-{os.getpid()}@%h", "-Q", self.queue, "--without-gossip", "--without-mingle",
             "--without-heartbeat"],
            cwd=ROOT, env=self.env, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.procs.append(proc)
        self.logs.append(log)
        wait_for(lambda: b" ready." in log.read_bytes() or proc.poll() is not None, 30, f"worker {n} to start")
        assert proc.poll() is None, log.read_text()[-3000:]
        return proc

    def kill9(self, proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)  # the pool children are in the same group
        proc.wait(10)

    def stop_all(self) -> None:
        """SIGQUIT (cold shutdown) every worker group at once, then SIGKILL whatever is left."""
        alive = [p for p in self.procs if p.poll() is None]
        for proc in alive:
            try:
                os.killpg(proc.pid, signal.SIGQUIT)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 3
        for proc in alive:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # also any pool child left behind
            except ProcessLookupError:
                pass
            proc.wait(5)

    def log_tail(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}" for log in self.logs if log.exists())


@pytest.fixture
def queue(request):
    """A queue of this test's own on the shared broker, empty before and after."""
    r = redis.Redis.from_url(BROKER)
    try:
        r.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {BROKER}")
    name = f"{QUEUE_PREFIX}-{request.node.name[:60]}"
    r.delete(name)
    yield name
    r.delete(name)


@pytest.fixture
def workers(transactional_db, queue, settings, tmp_path, monkeypatch):
    from worker.celery import app
    from worker.tasks import process_import

    if app.conf.broker_url != BROKER:  # this process publishes to the workers' broker
        monkeypatch.setattr(app.conf, "broker_url", BROKER)
        app._pool = None
        app.amqp._producer_pool = None
    from governance import queueing

    send = queueing.send  # every import this test sends goes to its workers' own queue
    monkeypatch.setattr(queueing, "send", lambda task, *args, **kw: send(task, *args, **{**kw, "queue": queue}))
    settings.RAMPART_IMPORT_LEASE_SECONDS = 3
    pool = Workers(tmp_path, settings.MEDIA_ROOT, queue)
    yield pool
    t = time.monotonic()
    pool.stop_all()
    print(f"workers stopped in {time.monotonic() - t:.1f}s")
    print(pool.log_tail())  # captured: shown only when the test fails


def counts(run: ImportRun) -> tuple:
    return tuple(run.counts[k] for k in ("created", "updated", "unchanged", "closed", "reopened"))


def test_cli_wait_is_processed_by_the_worker(workers, system):
    workers.start()
    out = io.StringIO()
    start = time.monotonic()
    call_command("import_findings", str(DATA / "sarif" / "bandit.sarif"), "--system", system.slug, "--wait",
                 "--timeout", "60", stdout=out)
    text = out.getvalue()
    assert "created=9  updated=0  unchanged=0  closed=0  reopened=0" in text, text
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.DONE and run.via == ImportRun.Via.CLI and run.attempts == 1
    assert Finding.objects.filter(system=system).count() == 9
    out = io.StringIO()
    call_command("import_findings", str(DATA / "sarif" / "bandit.sarif"), "--system", system.slug, "--wait",
                 "--timeout", "60", stdout=out)
    assert "created=0  updated=0  unchanged=9" in out.getvalue()
    print(f"two CLI imports through the worker: {time.monotonic() - start:.1f}s")


def test_api_import_is_processed_by_the_worker(workers, client, engineer, system):
    from governance.accounts.services import api_token_create

    workers.start()
    _, token = api_token_create(user=engineer, name="ci")
    with open(DATA / "gitleaks" / "gitleaks-report.json", "rb") as f:
        response = client.post("/api/v1/imports/", {"file": f, "format": "auto", "system": system.slug,
                                                    "source": "gitleaks"}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 202
    body = wait_for(lambda: (b := client.get(response.json()["url"], HTTP_AUTHORIZATION=f"Bearer {token}").json())
                    ["status"] in ("done", "failed") and b, 30, "the API run to finish")
    assert body["status"] == "done", body
    assert body["counts"] == {"created": 3, "updated": 0, "unchanged": 0, "closed": 0, "reopened": 0,
                              "merged": 0, "held_open": 0, "repaired": 0}


def heap_bytes() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_relation_size('findings_finding')")
        return cursor.fetchone()[0]


def test_kill_9_mid_import_then_restart_gives_the_same_result(workers, system, other_system, tmp_path):
    path = write_sarif_file(tmp_path / "big.sarif", 40_000)
    first = workers.start()
    assert heap_bytes() < 100_000  # the table is empty: it grows only by this run's batches

    run = create_run(path, system=system, source="killed")
    wait_for(lambda: run_status(run.pk).status == ImportRun.Status.RUNNING, 30, "the run to start")
    # uncommitted batches extend the table: wait until several batches (500 rows each) are in
    wait_for(lambda: heap_bytes() > 3_000_000, 60, "some batches to be written", interval=0.05)
    written = heap_bytes()
    assert run_status(run.pk).status == ImportRun.Status.RUNNING
    killed_at = time.monotonic()
    workers.kill9(first)
    assert Finding.objects.count() == 0  # the import's transaction died with the worker

    # after the visibility timeout (5 s) and the lease (3 s) a fresh worker gets the task again
    time.sleep(max(0.0, 5.5 - (time.monotonic() - killed_at)))
    workers.start(concurrency=2)
    # the reference: an uninterrupted import of the same file into another scope, beside the recovery
    ref = create_run(path, system=other_system, source="reference")
    try:
        wait_for(lambda: run_status(run.pk).attempts >= 2, 15, "the broker to redeliver")
        path_taken = "broker redelivery"
    except AssertionError:
        from worker.tasks import imports_resume_stale

        assert run.pk in stale_import_ids()
        imports_resume_stale()
        path_taken = "stale-run sweeper"
    done, ref = wait_done(run.pk, 120), wait_done(ref.pk, 120)
    assert done.status == ref.status == ImportRun.Status.DONE, (done.error, ref.error)
    assert done.attempts == 2 and ref.attempts == 1
    assert done.counts == ref.counts == {"created": 40_000, "updated": 0, "unchanged": 0, "closed": 0, "reopened": 0,
                                           "merged": 0, "held_open": 0, "repaired": 0}
    assert fingerprints_and_states(scope_key=f"{system.pk}:killed") == \
        fingerprints_and_states(scope_key=f"{other_system.pk}:reference")
    columns = ("fingerprint", "fingerprint_version", "title", "severity", "location", "content_hash", "raw", "line",
               "state")
    sla = ExpressionWrapper(F("sla_due") - F("first_seen"), output_field=DurationField())  # due = first seen + N days
    killed = list(Finding.objects.filter(scope_key=f"{system.pk}:killed").order_by("fingerprint")
                  .values(*columns, sla=sla))
    reference = list(Finding.objects.filter(scope_key=f"{other_system.pk}:reference").order_by("fingerprint")
                     .values(*columns, sla=sla))
    assert len(killed) == 40_000 and killed == reference
    assert not FindingTransition.objects.exists()
    print(f"killed after ~{written // 1_000_000} MB of batches; recovered through {path_taken}")


def test_two_imports_of_one_scope_at_once(workers, system, tmp_path):
    path = write_sarif_file(tmp_path / "same.sarif", 3000)
    workers.start()
    workers.start()
    a = create_run(path, system=system, source="twice")
    b = create_run(path, system=system, source="twice")
    a, b = wait_done(a.pk, 60), wait_done(b.pk, 60)
    assert a.status == b.status == ImportRun.Status.DONE, (a.error, b.error)
    assert sorted([counts(a), counts(b)]) == [(0, 0, 3000, 0, 0), (3000, 0, 0, 0, 0)]
    assert Finding.objects.filter(system=system).count() == 3000
    assert Finding.objects.values("scope_key", "fingerprint").distinct().count() == 3000
    overlap = min(a.finished_at, b.finished_at) > max(a.started_at, b.started_at)
    print(f"both runs were claimed before either finished: {overlap}")


def test_two_overlapping_reports_at_once(workers, system, tmp_path):
    """Different reports of one scope at once: serialised, so the later one closes what it lacks."""
    one = write_sarif_file(tmp_path / "one.sarif", 2000)
    two = write_sarif_file(tmp_path / "two.sarif", 2000, start=1000)
    workers.start(concurrency=2)
    a = create_run(one, system=system, source="overlap")
    b = create_run(two, system=system, source="overlap")
    a, b = wait_done(a.pk, 60), wait_done(b.pk, 60)
    assert a.status == b.status == ImportRun.Status.DONE
    first, second = sorted([a, b], key=lambda r: r.finished_at)
    assert counts(first) == (2000, 0, 0, 0, 0)
    assert counts(second) == (1000, 0, 1000, 1000, 0)
    assert Finding.objects.filter(system=system).count() == 3000
    assert Finding.objects.filter(system=system, state="closed").count() == 1000


def test_broker_down_keeps_the_run_queued(workers, system, tmp_path):
    """The web side cannot reach the broker: the report is stored, the run stays queued, the sweeper resends it."""
    script = (
        "import io, time\n"
        "from governance.findings.imports import import_run_create\n"
        "from governance.inventory.models import AISystem\n"
        f"data = open({str(DATA / 'sarif' / 'bandit.sarif')!r}, 'rb').read()\n"
        "t = time.monotonic()\n"
        f"run = import_run_create(actor=None, stream=io.BytesIO(data), filename='b.sarif', fmt='auto', "
        f"system=AISystem.objects.get(slug={system.slug!r}), source='offline')\n"
        "print('RESULT', run.pk, run.status, round(time.monotonic() - t, 2))\n"
    )
    env = {**workers.env, "CELERY_BROKER_URL": "redis://127.0.0.1:1/14"}  # nothing listens on port 1
    started = time.monotonic()
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=60)
    wall = time.monotonic() - started
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")]
    assert line, out.stdout + out.stderr
    _, pk, status, seconds = line[0].split()
    print(f"import_run_create with the broker down: {seconds}s (process {wall:.1f}s)")
    assert status == "queued"
    assert float(seconds) < 5
    run = ImportRun.objects.get(pk=int(pk))
    assert run.status == ImportRun.Status.QUEUED and run.report and run.sha256
    assert run.pk not in stale_import_ids()  # just queued: within the grace period
    ImportRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timezone.timedelta(minutes=2))
    assert run.pk in stale_import_ids()

    # the broker is back: the sweeper resends it and a worker finishes it (a worker starting would send it too)
    from worker.tasks import imports_resume_stale

    assert imports_resume_stale() == 1
    workers.start()
    done = wait_done(run.pk, 30)
    assert done.status == ImportRun.Status.DONE and counts(done) == (9, 0, 0, 0, 0)
    assert run.pk not in stale_import_ids()
