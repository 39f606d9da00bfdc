"""SLA policy: how long a finding of each severity may stay open, configurable with RAMPART_SLA_DAYS.

The due time is a moment: first seen + N days, to the second. A finding is past its SLA when it is open and the
moment of reading is after its due time, whatever the time zone. A severity change re-derives the due time from
first seen with the new severity's days (see ingest/postgres.py and ingest/stores.py); info findings have none.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings


def sla_days() -> dict[str, int]:
    return settings.RAMPART_SLA_DAYS


def sla_due(severity: str, first_seen: datetime) -> datetime | None:
    days = sla_days().get(severity)
    return first_seen + timedelta(days=days) if days is not None else None
