"""SLA policy: days to fix per severity, configurable with RAMPART_SLA_DAYS."""
from __future__ import annotations

from datetime import date, timedelta

from django.conf import settings


def sla_days() -> dict[str, int]:
    return settings.RAMPART_SLA_DAYS


def sla_due(severity: str, first_seen: date) -> date | None:
    days = sla_days().get(severity)
    return first_seen + timedelta(days=days) if days is not None else None
