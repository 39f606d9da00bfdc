"""Signs of life: each worker's heartbeat (with the start-up pickup of interrupted imports) and beat's ticks.

Wired to Celery's signals when worker/celery.py imports this module; beat uses `TickingScheduler`
(CELERY_BEAT_SCHEDULER), which writes its tick to a file (no database needed). /healthz and `manage.py liveness`
read what they write."""
from __future__ import annotations

import logging
import threading
import time

from celery import bootsteps
from celery.beat import PersistentScheduler
from celery.signals import worker_ready, worker_shutdown
from django.conf import settings

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    """Records the worker's heartbeat every RAMPART_WORKER_HEARTBEAT_SECONDS, in a thread of the worker's main
    process (so a busy pool does not delay it). After its first heartbeat it sends again the imports a dead
    worker left behind; after the worker reconnected to the broker, the imports that could not be sent meanwhile
    (governance/findings/recovery.py). Neither waits for beat."""

    def __init__(self, node: str, queue: str | None):
        super().__init__(name="rampart-heartbeat", daemon=True)
        self.node, self.queue = node, queue
        self.stopping, self.reconnected = threading.Event(), threading.Event()

    def run(self) -> None:
        from django.db import close_old_connections, connection
        from django.utils import timezone

        from governance.dashboard.liveness import worker_heartbeat_record
        from governance.findings.recovery import imports_resend_missing, imports_resume_interrupted

        started_at, resumed = timezone.now(), None
        while not self.stopping.is_set():
            close_old_connections()
            try:
                worker_heartbeat_record(name=self.node, started_at=started_at)
                if resumed is None:
                    resumed = imports_resume_interrupted(started_at=started_at, queue=self.queue)
                    if resumed:
                        log.warning("Start-up: sent again %d import(s), left running or queued: %s",
                                    len(resumed), resumed)
                elif self.reconnected.is_set():
                    self.reconnected.clear()
                    if sent := imports_resend_missing(queue=self.queue):
                        log.warning("Broker back: sent again %d import(s): %s", len(sent), sent)
            except Exception as exc:  # the database may be down: keep beating, the next one may get through
                log.warning("Worker heartbeat failed: %s", exc)
            self.stopping.wait(settings.RAMPART_WORKER_HEARTBEAT_SECONDS)
        connection.close()


_heartbeat: Heartbeat | None = None


@worker_ready.connect
def _start_heartbeat(sender, **kwargs) -> None:
    """`sender` is the worker's consumer: its node name names the heartbeat; imports it picks up at start-up go
    to a queue it consumes (the default one unless it was started with -Q)."""
    global _heartbeat
    queues = list(sender.app.amqp.queues.consume_from)
    default = sender.app.conf.task_default_queue
    _heartbeat = Heartbeat(sender.hostname, None if default in queues or not queues else queues[0])
    _heartbeat.start()


class BrokerConnected(bootsteps.StartStopStep):
    """A consumer step: it starts each time the worker (re)connects to the broker."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c) -> None:
        if _heartbeat is not None:  # None at the first connection: the heartbeat starts once the worker is ready
            _heartbeat.reconnected.set()


@worker_shutdown.connect
def _stop_heartbeat(**kwargs) -> None:
    if _heartbeat is not None:
        _heartbeat.stopping.set()


class TickingScheduler(PersistentScheduler):
    """Celery beat's default scheduler that also records each tick (RAMPART_BEAT_TICK_FILE), so a health check
    can tell a beat that runs from one that hangs."""

    def tick(self, *args, **kwargs):
        interval = super().tick(*args, **kwargs)
        try:
            beat_tick_record()
        except OSError as exc:
            log.warning("Could not record beat's tick: %s", exc)
        return interval


def beat_tick_record() -> None:
    settings.RAMPART_BEAT_TICK_FILE.write_text(f"{time.time():.3f}\n")


def beat_tick_age() -> float | None:
    """Seconds since beat's latest tick; None if it never ticked (with this RAMPART_VAR_DIR)."""
    try:
        return max(0.0, time.time() - settings.RAMPART_BEAT_TICK_FILE.stat().st_mtime)
    except FileNotFoundError:
        return None
