"""Worker liveness: the one table of the dashboard app. /healthz reads it (governance/dashboard/liveness.py)."""
from django.db import models


class WorkerHeartbeat(models.Model):
    """The latest sign of life of one Celery worker, written by the worker every few seconds (worker/liveness.py).

    A row per worker node name (`celery@host`): a restarted worker of the same name takes its row over. Rows of
    workers that stopped stay and age; /healthz counts only fresh ones and never shows the names."""

    name = models.CharField(max_length=255, unique=True)
    started_at = models.DateTimeField(help_text="When this worker process started.")
    seen_at = models.DateTimeField(db_index=True, help_text="Its latest heartbeat.")

    def __str__(self) -> str:
        return f"{self.name} (seen {self.seen_at:%Y-%m-%d %H:%M:%S})"
