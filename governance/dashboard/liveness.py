"""Is a worker alive, how long have imports waited: the heartbeat the worker writes (worker/liveness.py) and what
/healthz and `manage.py liveness` read. Nothing here names a host. (Beat's tick is a file: worker/liveness.py.)"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from governance.dashboard.models import WorkerHeartbeat
from governance.findings.models import ImportRun


def worker_heartbeat_record(*, name: str, started_at: datetime, now: datetime | None = None) -> None:
    """One query: insert the worker's row, or move its `seen_at` (a restarted worker of that name takes it over)."""
    row = WorkerHeartbeat(name=name[:255], started_at=started_at, seen_at=now or timezone.now())
    WorkerHeartbeat.objects.bulk_create([row], update_conflicts=True, unique_fields=["name"],
                                        update_fields=["started_at", "seen_at"])


def _age(moment: datetime | None, at: datetime) -> float | None:
    return None if moment is None else round(max(0.0, (at - moment).total_seconds()), 1)


def workers_seen(*, at: datetime | None = None, name_suffix: str = "") -> dict:
    """`ok` while some worker (whose node name ends with `name_suffix`) beat within RAMPART_WORKER_STALE_SECONDS."""
    at = at or timezone.now()
    stale_after = settings.RAMPART_WORKER_STALE_SECONDS
    row = WorkerHeartbeat.objects.filter(name__endswith=name_suffix).aggregate(
        last=Max("seen_at"), alive=Count("id", filter=Q(seen_at__gt=at - timedelta(seconds=stale_after))))
    return {"ok": row["alive"] > 0, "alive": row["alive"], "last_seen_seconds": _age(row["last"], at),
            "stale_after_seconds": stale_after}


def imports_waiting(*, at: datetime | None = None) -> dict:
    """How many imports are queued, and how long the oldest has waited (uses the (status, created_at) index)."""
    at = at or timezone.now()
    row = ImportRun.objects.filter(status=ImportRun.Status.QUEUED).aggregate(n=Count("id"), oldest=Min("created_at"))
    return {"queued": row["n"], "oldest_queued_seconds": _age(row["oldest"], at)}
