"""Marquez: read stored OpenLineage events incrementally. No Django here.

`GET /api/v1/events/lineage?after=&before=&limit=&offset=&sortDirection=asc` answers
`{"events": [<OpenLineage RunEvent>, ...], "totalCount": N}` and selects `after <= eventTime < before`
(Marquez's OpenLineageDao.getAllLineageEventsAsc), so paging by offset inside a fixed window is stable
apart from events that arrive meanwhile; the caller re-reads a small overlap on the next run for those.
"""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from worker.lineage.http import HttpError, JsonClient

PATH = "/api/v1/events/lineage"


def iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


def iter_event_pages(client: JsonClient, *, after: datetime, before: datetime, limit: int = 200,
                     max_pages: int = 10_000) -> Iterator[list]:
    """Pages of raw events (dicts as Marquez stored them), oldest first."""
    offset = 0
    for _ in range(max_pages):
        page = client.get(PATH, {"after": iso(after), "before": iso(before), "limit": limit, "offset": offset,
                                 "sortDirection": "asc"})
        events = page.get("events") if isinstance(page, dict) else None
        if not isinstance(events, list):
            raise HttpError(f"{client.base_url}{PATH}: expected an object with an 'events' list")
        if events:
            yield events
        if len(events) < limit:
            return
        offset += len(events)
