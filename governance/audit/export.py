"""The audit page's list as a file: CSV (every text cell quoted and neutralised as the register's export does) or
JSON lines, one event a line. Written a row at a time: a trail can be long."""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import timezone as dt_timezone

from django.core.serializers.json import DjangoJSONEncoder

from governance.audit.models import AuditEvent
from governance.risks.export import neutralise

COLUMNS = ["Seq", "At (UTC)", "Actor", "Action", "Object type", "Object id", "Object", "System", "Before", "After",
           "Hash"]


def _record(e: AuditEvent) -> dict:
    return {
        "seq": e.seq, "at": e.at.astimezone(dt_timezone.utc).isoformat(), "actor": e.actor_label, "action": e.action,
        "object_type": e.object_type, "object_id": e.object_id, "object": e.object_repr,
        "system": e.system.slug if e.system else None, "before": e.before, "after": e.after, "hash": e.hash,
    }


def _json(value) -> str:
    return "" if value is None else json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True)


class _Line:
    def write(self, text: str) -> str:
        return text


def csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """Every text cell quoted: a spreadsheet in a locale whose separator is ";" would otherwise split a cell and
    evaluate a part of it (risks/export.py). Seq stays a bare number."""
    writer = csv.writer(_Line(), quoting=csv.QUOTE_NONNUMERIC)
    yield writer.writerow(COLUMNS)
    for e in events:
        r = _record(e)
        yield writer.writerow([r["seq"], *[neutralise(v) for v in (
            r["at"], r["actor"], r["action"], r["object_type"], r["object_id"], r["object"], r["system"] or "",
            _json(r["before"]), _json(r["after"]), r["hash"])]])


def jsonl_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    for e in events:
        yield json.dumps(_record(e), cls=DjangoJSONEncoder, sort_keys=True) + "\n"
