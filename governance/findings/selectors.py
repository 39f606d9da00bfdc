"""Reads for the findings screens and the worker's housekeeping."""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import BigIntegerField, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.utils import timezone

from governance.findings import search
from governance.findings.models import SEVERITY_RANK, Finding, FindingScope, ImportRun, SavedView

QUEUED_GRACE = timedelta(minutes=1)


def stale_import_ids(limit: int = 100) -> list[int]:
    now = timezone.now()
    stale = Q(status=ImportRun.Status.QUEUED, created_at__lt=now - QUEUED_GRACE) | Q(
        status=ImportRun.Status.RUNNING, lease_until__lt=now
    )
    return list(ImportRun.objects.filter(stale).order_by("created_at").values_list("id", flat=True)[:limit])


# --- the triage queue -------------------------------------------------------------------------

QUEUE_PAGE = 50
SORTS = {
    "severity": ("severity_rank", False),  # (column, ascending)
    "recent": ("id", False),  # newest first: ids follow first_seen, and the primary key orders them
    "sla": ("sla_due", True),
}
UNIQUE_SORTS = ("id", "newest")


@dataclass
class QueueFilters:
    system: str = ""  # a slug, or "unassigned"
    tool: str = ""
    severities: tuple[str, ...] = ()  # any of these; none = every severity
    state: str = "open"  # "open", "all" or a FindingState value
    breached: bool = False  # open and past its SLA due at the moment of reading
    q: str = ""
    assignee: int | None = None
    mine: bool = False  # "assigned=me": assignee is the person reading
    archived: bool = False  # also findings of archived systems (always, when `system` names one)
    sort: str = "severity"
    at: datetime | None = None  # the moment the list is read at (default: now)

    @property
    def severity_param(self) -> str:
        """The severities as the URL writes them: "critical,high"."""
        return ",".join(self.severities)


def parse_severities(value: str) -> tuple[str, ...]:
    """"critical,high" (or "high") -> the known severities named, most severe first; unknown words are dropped."""
    wanted = {part.strip().lower() for part in value.split(",")}
    return tuple(s for s in sorted(SEVERITY_RANK, key=SEVERITY_RANK.get, reverse=True) if s in wanted)


def queue_matching(f: QueueFilters):
    """Every finding the queue's filters select: the list, its total and "apply to all N matching" read this."""
    return _filtered(f)


def _filtered(f: QueueFilters):
    from governance.inventory.models import AISystem

    qs = Finding.objects.all()
    if f.system == "unassigned":
        qs = qs.filter(system__isnull=True)
    elif f.system:
        # a scalar subquery, not a join on slug: PostgreSQL then knows the system id when it runs the plan and
        # can use the (system, state, severity) index instead of filtering a whole sort index (seen at 1M rows)
        qs = qs.filter(system_id=Subquery(AISystem.objects.filter(slug=f.system).values("id")[:1]))
    elif not f.archived:
        qs = qs.in_portfolio()
    if f.tool:
        qs = qs.filter(tool=f.tool)
    if f.severities:  # the rank, not the word: finding_sev_idx starts with it
        qs = qs.filter(severity_rank__in=[SEVERITY_RANK[s] for s in f.severities if s in SEVERITY_RANK])
    if f.state == "open":
        qs = qs.open()
    elif f.state != "all":
        qs = qs.filter(state=f.state)
    if f.breached:
        qs = qs.past_sla(f.at or timezone.now())
    if f.q:
        qs = _text_search(qs, f.q)
    if f.assignee:
        qs = qs.filter(assignee_id=f.assignee)
    return qs


def _text_search(qs, q: str):
    """Substring search on title, location and rule id; on PostgreSQL the word index narrows the rows first."""
    qs = qs.filter(Q(title__icontains=q) | Q(location__icontains=q) | Q(rule_id__icontains=q))
    narrowing = search.piece_hashes(q)
    if narrowing is None:
        return qs.none()
    for hashes in narrowing:
        qs = qs.filter(terms__overlaps=hashes)
    return qs


def with_reported_at(qs):
    """Annotate what Finding.reported_at needs: when the latest import of each finding's scope ran."""
    return qs.annotate(scope_seen=Subquery(FindingScope.objects.filter(key=OuterRef("scope_key")).values("last_seen")[:1]))


def encode_cursor(column: str, value, pk: int) -> str:
    raw = json.dumps([column, value.isoformat() if hasattr(value, "isoformat") else value, pk])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, column: str):
    try:
        made_for, value, pk = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if made_for != column:  # a cursor of another sort (or filter set): start from the first page
            return None
        if column == "sla_due":  # null: the position is among the findings without an SLA (listed last)
            value = None if value is None else datetime.fromisoformat(value)
            if value is not None and value.tzinfo is None:
                return None
        else:
            value = int(value)  # rank, id or -id
        return value, int(pk)
    except (ValueError, TypeError, OverflowError, json.JSONDecodeError):  # forged: int(Infinity) overflows
        return None


@dataclass
class QueueList:
    rows: list[Finding]
    next_cursor: str | None
    total: int  # every finding the filters select, not only this page's


def queue_list(f: QueueFilters, cursor: str = "") -> QueueList:
    """A page of the queue and the total of the list it belongs to, from the same filtered queryset."""
    filtered = _filtered(f)
    rows, next_cursor = _page(filtered, f, cursor)
    return QueueList(rows, next_cursor, filtered.count())


def queue_page(f: QueueFilters, cursor: str = "") -> tuple[list[Finding], str | None]:
    """One page of the queue by keyset pagination: (findings, cursor of the next page or None)."""
    return _page(_filtered(f), f, cursor)


def _page(filtered, f: QueueFilters, cursor: str) -> tuple[list[Finding], str | None]:
    column, ascending = SORTS.get(f.sort, SORTS["severity"])
    qs = with_reported_at(filtered.select_related("system", "assignee"))
    if column == "id" and f.tool:
        # Newest first for one scanner: walk finding_tool_newest_idx (tool, -id). Ordered by id, PostgreSQL
        # walks the primary key instead and, when that scanner last ran long ago, filters past every newer
        # finding of the other scanners first (0.4-0.7 s at 1M rows); -id cannot be read from the primary key.
        qs = qs.annotate(newest=ExpressionWrapper(F("id") * -1, output_field=BigIntegerField()))
        column, ascending = "newest", True
    position = _decode_cursor(cursor, column) if cursor else None
    if column == "sla_due":
        return _sla_page(qs, position)
    if position is not None:
        value, pk = position
        if column in UNIQUE_SORTS:  # the value alone is the position
            qs = qs.filter(**{f"{column}__{'gt' if ascending else 'lt'}": value})
        elif ascending:
            qs = qs.filter(Q(**{f"{column}__gt": value}) | Q(**{column: value, "id__gt": pk}))
        else:
            qs = qs.filter(Q(**{f"{column}__lt": value}) | Q(**{column: value, "id__lt": pk}))
    order = (column, "id") if ascending else (f"-{column}", "-id")
    if column in UNIQUE_SORTS:
        order = order[:1]
    rows = list(qs.order_by(*order)[: QUEUE_PAGE + 1])
    next_cursor = None
    if len(rows) > QUEUE_PAGE:
        rows = rows[:QUEUE_PAGE]
        last = rows[-1]
        next_cursor = encode_cursor(column, getattr(last, column), last.pk)
    return rows, next_cursor


def _sla_page(qs, position) -> tuple[list[Finding], str | None]:
    """SLA due soonest first, then the findings without an SLA (info) by id: two index walks, each by keyset, so a
    page costs one query, or two where it crosses from the first part to the second."""
    rows = []
    if position is None or position[0] is not None:
        due = qs.filter(sla_due__isnull=False)
        if position is not None:
            value, pk = position
            due = due.filter(Q(sla_due__gt=value) | Q(sla_due=value, id__gt=pk))
        rows = list(due.order_by("sla_due", "id")[: QUEUE_PAGE + 1])
    if len(rows) <= QUEUE_PAGE:
        none = qs.filter(sla_due__isnull=True)
        if position is not None and position[0] is None:
            none = none.filter(id__gt=position[1])
        rows += list(none.order_by("id")[: QUEUE_PAGE + 1 - len(rows)])
    next_cursor = None
    if len(rows) > QUEUE_PAGE:
        rows = rows[:QUEUE_PAGE]
        next_cursor = encode_cursor("sla_due", rows[-1].sla_due, rows[-1].pk)
    return rows, next_cursor


def queue_tools(limit: int = 100) -> list[str]:
    """Scanner names for the filter, as they are now (no cache that lags behind an import): a skip scan of the tool
    index, one index probe per distinct name instead of a DISTINCT over every finding."""
    from django.db import connection

    table = connection.ops.quote_name(Finding._meta.db_table)
    sql = (f"WITH RECURSIVE t(tool) AS (SELECT MIN(tool) FROM {table} UNION ALL"
           f" SELECT (SELECT MIN(f.tool) FROM {table} f WHERE f.tool > t.tool) FROM t WHERE t.tool IS NOT NULL)"
           f" SELECT tool FROM t WHERE tool IS NOT NULL LIMIT %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [tool for tool, in cursor.fetchall()]


def finding_detail(pk: int) -> Finding:
    scope = FindingScope.objects.filter(key=OuterRef("scope_key"))
    return with_reported_at(Finding.objects.select_related("system", "assignee", "last_import")).annotate(
        scope_import=Subquery(scope.values("last_import")[:1])).get(pk=pk)


def finding_comments(finding: Finding):
    return finding.comments.select_related("author").order_by("created_at", "id")


def finding_risks(finding: Finding) -> list:
    return list(finding.risks.only("ref", "title", "status").order_by("ref"))


def risks_to_link(finding: Finding) -> list:
    """The risks of the finding's system that it is not linked to yet, offered on its page."""
    from governance.risks.models import Risk

    if finding.system_id is None:
        return []
    return list(Risk.objects.filter(system_id=finding.system_id).exclude(findings=finding).only("ref", "title")
                .order_by("ref"))


def saved_views(user):
    """The person's own saved queue filters (nobody else's)."""
    return SavedView.objects.filter(owner=user).order_by("name", "id")


def finding_transitions(finding: Finding):
    return finding.transitions.select_related("actor", "import_run").order_by("at", "id")


def system_imports(system, limit: int = 50):
    return ImportRun.objects.filter(system=system).select_related("created_by").order_by("-created_at")[:limit]


def import_runs(*, system: str = "", status: str = "", source: str = ""):
    """Import runs, newest first: of a system (its slug, or "unassigned": routed by rules), a status, a source."""
    qs = ImportRun.objects.select_related("system").order_by("-created_at", "-pk")
    if system == "unassigned":
        qs = qs.filter(system__isnull=True)
    elif system:
        qs = qs.filter(system__slug=system)
    if status:
        qs = qs.filter(status=status)
    if source:
        qs = qs.filter(source=source)
    return qs


def recent_imports(limit: int = 50):
    return ImportRun.objects.select_related("system", "created_by").order_by("-created_at")[:limit]
