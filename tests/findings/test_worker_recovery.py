"""Real workers losing their broker or their life (issue 13): a Redis this test owns stopped for 60 s while imports
run and are submitted; kill -9 of a whole worker without beat; the embedded broker's folder going away. Each
import completes once: nothing lost, nothing done twice (`attempts` counts every claim of a run)."""
from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

from governance.findings.models import Finding, ImportRun
from tests.findings.conftest import create_run, write_sarif_file
from tests.findings.test_worker import DONE, Workers, heap_bytes, run_status, wait_done, wait_for

pytestmark = [pytest.mark.worker]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnRedis:
    """A redis-server of this test's own (append-only file, as in docker-compose.yml), to stop and start."""

    def __init__(self, folder: Path):
        self.folder, self.port, self.proc = folder, free_port(), None
        self.url = f"redis://127.0.0.1:{self.port}/0"
        folder.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--save", "", "--logfile", str(self.folder / "redis.log")])
        client = redis.Redis(port=self.port)
        wait_for(lambda: self._answers(client), 10, "redis-server to start")

    @staticmethod
    def _answers(client) -> bool:
        try:
            return client.ping()
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)  # as `docker compose stop redis`
        self.proc.wait(10)


@pytest.fixture
def publish_to():
    """Point this process's Celery app (the web side: enqueue, /healthz) at another broker."""
    from worker.celery import app

    keys = ("broker_url", "broker_write_url", "broker_read_url", "broker_transport", "broker_transport_options")
    saved = {key: app.conf[key] for key in keys}

    def point(url: str, transport: str | None = None, options: dict | None = None) -> None:
        app.conf.update(broker_url=url, broker_write_url=url, broker_read_url=url, broker_transport=transport,
                        broker_transport_options=options or {})
        app._pool = None
        app.amqp._producer_pool = None

    yield point
    app.conf.update(saved)
    app._pool = None
    app.amqp._producer_pool = None


def recovery_workers(tmp_path, settings, broker_url: str, **env) -> Workers:
    """Workers on the imports queue (where imports are routed), beating every second, no beat."""
    settings.RAMPART_WORKER_STALE_SECONDS = 4
    pool = Workers(tmp_path, settings.MEDIA_ROOT, "imports")
    pool.env.update({"CELERY_BROKER_URL": broker_url, "RAMPART_WORKER_STALE_SECONDS": "4",
                     "RAMPART_VAR_DIR": str(tmp_path / "var"), **env})
    return pool


def worker_died(pool: Workers) -> bool:
    return any(proc.poll() is not None for proc in pool.procs) or any(
        b"Unrecoverable error" in log.read_bytes() for log in pool.logs)


def assert_each_done_once(runs: dict[str, tuple[ImportRun, int]], system) -> None:
    for source, (run, n) in runs.items():
        run = run_status(run.pk)
        assert run.status == ImportRun.Status.DONE, (source, run.status, run.error)
        assert run.attempts == 1, f"{source} was claimed {run.attempts} times"
        assert run.counts["created"] == n and run.counts["unchanged"] == 0, (source, run.counts)
        assert Finding.objects.filter(scope_key=f"{system.pk}:{source}").count() == n, source


def test_redis_stopped_60s_with_imports_running_and_submitted(transactional_db, tmp_path, settings, publish_to,
                                                              client, system):
    server = OwnRedis(tmp_path / "redis")
    server.start()
    publish_to(server.url)
    # Free slots while imports run: the consumer is polling (BRPOP) when Redis goes, which is when Celery 5.7.0
    # killed the worker (worker/broker.py).
    pool = recovery_workers(tmp_path, settings, server.url)
    try:
        pool.start(concurrency=4)
        wait_for(lambda: client.get("/healthz").status_code == 200, 10, "/healthz to see the worker")
        big = write_sarif_file(tmp_path / "big.sarif", 60_000)
        small = write_sarif_file(tmp_path / "small.sarif", 2_000)
        runs = {f"before-{i}": (create_run(big, system=system, source=f"before-{i}"), 60_000) for i in range(2)}
        wait_for(lambda: ImportRun.objects.filter(status=ImportRun.Status.RUNNING).count() == 2, 30, "both to run")

        server.stop()
        stopped = time.monotonic()
        for i in range(3):  # submitted while Redis is down: stored, not sent
            runs[f"during-{i}"] = (create_run(small, system=system, source=f"during-{i}"), 2_000)
        assert all(run_status(run.pk).enqueued_at is None for run, _ in list(runs.values())[2:])
        body = client.get("/healthz").json()
        assert body["broker"]["ok"] is False and body["status"] == "unavailable"
        wait_for(lambda: all(run_status(r.pk).status in DONE for r, _ in list(runs.values())[:2]), 60,
                 "the running imports to finish without Redis")
        assert not worker_died(pool), pool.log_tail()
        time.sleep(max(0.0, 60 - (time.monotonic() - stopped)))
        assert not worker_died(pool), pool.log_tail()

        server.start()
        print(f"Redis was down {time.monotonic() - stopped:.0f} s")
        runs["after"] = (create_run(small, system=system, source="after"), 2_000)
        # The worker reconnects (with back-off) and sends what could not be sent meanwhile; no beat runs here.
        for run, _ in runs.values():
            wait_done(run.pk, 60)
        assert not worker_died(pool), pool.log_tail()
        assert_each_done_once(runs, system)
        time.sleep(6)  # past the visibility timeout (5 s): a message restored now would be a second execution
        assert all(run_status(run.pk).attempts == 1 for run, _ in runs.values())
        body = client.get("/healthz").json()
        assert body["status"] == "ok" and body["worker"]["ok"] and body["imports"]["queued"] == 0, body
    finally:
        pool.stop_all()
        print(pool.log_tail())
        if server.proc.poll() is None:
            server.stop()


def test_kill_9_of_the_whole_worker_then_a_restart_resumes_it_at_once_without_beat(
        transactional_db, tmp_path, settings, publish_to, system):
    """No beat, a visibility timeout and a lease of an hour: only the start-up pickup can resume the import. A
    second live worker started meanwhile must leave it alone: its first worker holds it."""
    server = OwnRedis(tmp_path / "redis")
    server.start()
    publish_to(server.url)
    pool = recovery_workers(tmp_path, settings, server.url, RAMPART_IMPORT_LEASE_SECONDS="3600",
                            RAMPART_BROKER_VISIBILITY_TIMEOUT="3600")
    try:
        first = pool.start(concurrency=1)
        path = write_sarif_file(tmp_path / "big.sarif", 100_000)
        run = create_run(path, system=system, source="killed")
        wait_for(lambda: run_status(run.pk).status == ImportRun.Status.RUNNING, 30, "the run to start")
        wait_for(lambda: heap_bytes() > 3_000_000, 60, "some batches to be written", interval=0.05)

        pool.start(concurrency=1)  # a second live worker: its start-up pickup must not take the held run
        time.sleep(1)
        assert run_status(run.pk).attempts == 1 and run_status(run.pk).status == ImportRun.Status.RUNNING

        pool.kill9(first)
        killed_at = time.monotonic()
        assert run_status(run.pk).status == ImportRun.Status.RUNNING  # and would stay so: nothing redelivers it
        pool.start(concurrency=1)  # the restart
        done = wait_done(run.pk, 60)
        print(f"resumed and finished {time.monotonic() - killed_at:.1f} s after kill -9")
        assert done.status == ImportRun.Status.DONE and done.attempts == 2, (done.status, done.error)
        assert done.counts["created"] == 100_000
        assert Finding.objects.filter(scope_key=f"{system.pk}:killed").count() == 100_000
        assert time.monotonic() - killed_at < 45
    finally:
        pool.stop_all()
        print(pool.log_tail())
        server.stop()


def test_embedded_broker_folder_gone_for_a_while(transactional_db, tmp_path, settings, publish_to, system):
    """`make run`'s broker is a folder: it vanishing (and coming back) is a broker outage, not a dead worker."""
    var = tmp_path / "var"
    folder = var / "broker"
    (folder / "processed").mkdir(parents=True)
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False,
               "processed_folder": str(folder / "processed"), "control_folder": str(folder / "control")}
    publish_to("filesystem://localhost/", "worker.broker:FilesystemTransport", options)
    pool = recovery_workers(tmp_path, settings, "filesystem://localhost/")
    try:
        pool.start(concurrency=2)
        big = write_sarif_file(tmp_path / "big.sarif", 40_000)
        small = write_sarif_file(tmp_path / "small.sarif", 2_000)
        runs = {"before": (create_run(big, system=system, source="before"), 40_000)}
        wait_for(lambda: run_status(runs["before"][0].pk).status == ImportRun.Status.RUNNING, 30, "the run to start")

        shutil.move(folder, var / "broker-away")
        runs["during"] = (create_run(small, system=system, source="during"), 2_000)
        assert run_status(runs["during"][0].pk).enqueued_at is None
        time.sleep(5)
        assert not worker_died(pool), pool.log_tail()
        shutil.move(var / "broker-away", folder)

        runs["after"] = (create_run(small, system=system, source="after"), 2_000)
        for run, _ in runs.values():
            wait_done(run.pk, 60)
        assert not worker_died(pool), pool.log_tail()
        assert_each_done_once(runs, system)
    finally:
        pool.stop_all()
        print(pool.log_tail())
