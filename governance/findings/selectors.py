"""Reads for the findings screens and the worker's housekeeping."""
from __future__ import annotations

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from governance.findings.models import ImportRun

QUEUED_GRACE = timedelta(minutes=1)


def stale_import_ids(limit: int = 100) -> list[int]:
    now = timezone.now()
    stale = Q(status=ImportRun.Status.QUEUED, created_at__lt=now - QUEUED_GRACE) | Q(
        status=ImportRun.Status.RUNNING, lease_until__lt=now
    )
    return list(ImportRun.objects.filter(stale).order_by("created_at").values_list("id", flat=True)[:limit])
