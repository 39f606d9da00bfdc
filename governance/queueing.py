"""The one way governance code hands work to the worker.

A task is sent by its name (governance never imports `worker.tasks`, which imports governance), to the queue its
kind belongs to (settings.CELERY_TASK_ROUTES: imports, lineage, default), after the transaction that asked for it has
committed when asked from inside one. A broker that is down is handled here, once: the send is logged and reported
as False, and the work is not lost — each kind of work has a sweeper that sends it again (the import sweeper,
the pull and connector schedules, the lineage beat). Tests patch `send`.
"""
from __future__ import annotations

import logging

from django.db import transaction

log = logging.getLogger(__name__)


def send(task: str, *args, queue: str | None = None, countdown: float | None = None) -> bool:
    """Send `worker.tasks.<task>(*args)` now. False when the broker cannot be reached (logged; nothing sent)."""
    from worker.celery import app  # the Celery app only; it finds the tasks by name

    name = f"worker.tasks.{task}"
    options = {key: value for key, value in (("queue", queue), ("countdown", countdown)) if value is not None}
    try:
        if app.conf.task_always_eager:  # send_task would skip eager mode: run it here, as .delay() would
            app.tasks[name].apply(args=args)
        else:
            app.send_task(name, args=args, **options)
        return True
    except Exception as exc:  # kombu's OperationalError and the like: the broker is down
        log.warning("Could not send %s%r to the worker (%s); it will be sent again.", task, args, exc)
        return False


def send_after_commit(task: str, *args, **options) -> None:
    """Send once the current transaction commits (at once outside one): never for a write that rolled back."""
    transaction.on_commit(lambda: send(task, *args, **options))
