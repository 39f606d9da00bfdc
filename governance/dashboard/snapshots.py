"""Daily posture snapshots: taken live by beat (snapshot_take) and reconstructed for past days (snapshots_backfill).

A snapshot of day D holds each portfolio system's figures (and the unassigned feeds' findings) read at one moment of
D: live, the moment beat ran (its last run that day wins); backfilled, the end of D.

**Live** figures come from the posture page's own definitions (selectors.posture's helpers, which compose
`Finding.objects.in_portfolio().open()`, `past_sla`, `Risk.objects.open().of_active_systems()`, `Decision.objects.
in_force / expiring / pending`, `rmf.selectors.portfolio_coverage`), so a snapshot taken now equals the page now.

**Backfilled** figures replay history, as far as Rampart keeps it:
- open findings by severity, past SLA, remediations and their times: exact from `first_seen` and the state
  transitions (every change of state, by hand or by import, writes a FindingTransition). Not kept, so read as they
  are now: a finding's severity and SLA due time (a reimport that changed the severity leaves no history) and its
  system (a feed routed to a system later counts under that system on earlier days too).
- portfolio membership: a system counts from its creation until its `archived_at`; an earlier archive that was
  restored left no date on the row, so the system counts through it.
- risks (high+ not accepted, awaiting sign-off, expiring, acceptances in force): risks from `created_at` until
  their `risk.close` audit event; acceptances from `decided_at` until `expires_at` or their withdrawal (the
  `decision.withdraw`, `risk.close` and `risk.link_findings` audit events, else the next request or decision on the
  risk, which replaced it; failing all, it is taken as never in force). Read as they are now: the residual rating
  (its changes are audited but not replayed), so "high+" and "covers the rating" use today's rating.
- RMF coverage: today's statuses, with each audited status change (`rmf.assess`) undone for the days before it; the
  assessment rows themselves are taken as existing since their system was created.
- exercised: completed exercises by their `completed_at`.
A live snapshot is never overwritten by the backfill.
"""
from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Sum
from django.utils import timezone

from governance.dashboard.models import SEVERITIES, PortfolioDay, PostureSnapshot
from governance.findings.models import OPEN_STATES, Finding, FindingState, FindingTransition
from governance.inventory.models import AISystem
from governance.rmf.models import AssessmentStatus

REMEDIATED_STATES = (FindingState.FIXED, FindingState.CLOSED)
FIGURES = ([f"open_{s}" for s in SEVERITIES] + ["past_sla"] + [f"remediated_{s}" for s in SEVERITIES]
           + [f"remediated_{s}_hours" for s in SEVERITIES]
           + ["high_risks", "awaiting", "expiring", "accepted_in_force", "rmf_implemented", "rmf_partial",
              "rmf_applicable", "exercised"])


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """The first moment of `day` and of the next, in the organisation's time zone."""
    tz = timezone.get_default_timezone()
    start = timezone.make_aware(datetime.combine(day, time.min), tz)
    return start, timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min), tz)


def remediations(start: datetime, end: datetime):
    """Findings remediated in [start, end): moved from open (new, confirmed) to fixed or closed, with the time from
    first seen to that move; of the portfolio, per system and severity. Reopened and fixed again counts again."""
    spent = ExpressionWrapper(F("at") - F("finding__first_seen"), output_field=DurationField())
    return (FindingTransition.objects.filter(at__gte=start, at__lt=end, from_state__in=OPEN_STATES,
                                             to_state__in=REMEDIATED_STATES,
                                             finding__in=Finding.objects.in_portfolio())
            .values("finding__system_id", "finding__severity").annotate(n=Count("id"), spent=Sum(spent)))


def _blank(system_id) -> dict:
    return {name: (False if name == "exercised" else 0) for name in FIGURES} | {"system_id": system_id}


def live_figures(at: datetime) -> dict:
    """{system id or None: figures} for the portfolio at `at`, from the posture page's definitions."""
    from governance.dashboard import selectors
    from governance.risks.matrix import get_matrix
    from governance.risks.models import Risk

    systems = list(AISystem.objects.active())
    rows = {s.pk: _blank(s.pk) for s in systems}
    rows[None] = _blank(None)
    for r in selectors._findings_by_system(at):
        row = rows.get(r["system_id"])
        if row is not None:
            row[f"open_{r['severity']}"] += r["n"]
            row["past_sla"] += r["late"]
    for r in selectors._risks_by_system(get_matrix(), at):
        if r["system_id"] in rows:
            rows[r["system_id"]]["high_risks"], rows[r["system_id"]]["awaiting"] = r["high"], r["awaiting"]
    for r in selectors._expiring_by_system(at):
        if r["risk__system_id"] in rows:
            rows[r["risk__system_id"]]["expiring"] = r["n"]
    for r in Risk.objects.open().of_active_systems().accepted_in_force(at).values("system_id").annotate(n=Count("id")):
        rows[r["system_id"]]["accepted_in_force"] = r["n"]
    for pk, cov in selectors.pooled_coverage(systems).items():
        counts = cov.overall.counts
        rows[pk].update(rmf_implemented=counts.get(AssessmentStatus.IMPLEMENTED, 0),
                        rmf_partial=counts.get(AssessmentStatus.PARTIAL, 0), rmf_applicable=cov.overall.applicable)
    for pk in selectors._last_exercised():
        if pk in rows:
            rows[pk]["exercised"] = True
    start, _ = day_bounds(timezone.localdate(at))
    for r in remediations(start, at):
        row = rows.get(r["finding__system_id"])
        if row is not None:
            row[f"remediated_{r['finding__severity']}"] += r["n"]
            row[f"remediated_{r['finding__severity']}_hours"] += r["spent"].total_seconds() / 3600
    return rows


def _write(day: date, taken_at: datetime, rows: dict, backfilled: bool) -> int:
    """Insert or update the day's rows (one per system, unique (system, day)); drop rows of systems no longer in
    the portfolio that day."""
    existing = {s.system_id: s for s in PostureSnapshot.objects.select_for_update().filter(day=day)}
    create, update = [], []
    for system_id, figures in rows.items():
        if system_id is None and not any(figures[f"open_{s}"] or figures[f"remediated_{s}"] for s in SEVERITIES) \
                and None not in existing:
            continue  # no unassigned feeds that day: no row
        snap = existing.pop(system_id, None) or PostureSnapshot(system_id=system_id, day=day)
        for name in FIGURES:
            setattr(snap, name, figures[name])
        snap.taken_at, snap.backfilled = taken_at, backfilled
        (update if snap.pk else create).append(snap)
    PostureSnapshot.objects.bulk_create(create, batch_size=1000)
    PostureSnapshot.objects.bulk_update(update, FIGURES + ["taken_at", "backfilled"], batch_size=1000)
    PostureSnapshot.objects.filter(pk__in=[s.pk for s in existing.values()]).delete()
    if create or update:  # a day with no portfolio at all (before the first system or feed) has no snapshot
        PortfolioDay.objects.update_or_create(day=day, defaults=portfolio_totals(create + update)
                                              | {"taken_at": taken_at, "backfilled": backfilled})
    else:
        PortfolioDay.objects.filter(day=day).delete()
    return len(create) + len(update)


def portfolio_totals(snaps) -> dict:
    """The day's PortfolioDay figures from its snapshot rows, summed as the posture page sums its rows."""
    from governance.rmf.selectors import Coverage, SystemCoverage, portfolio_percent

    systems = [s for s in snaps if s.system_id is not None]
    every = [f"open_{s}" for s in SEVERITIES] + ["past_sla"] + [f"remediated_{s}" for s in SEVERITIES] + \
        [f"remediated_{s}_hours" for s in SEVERITIES]
    out = {name: sum(getattr(s, name) for s in snaps) for name in every}
    out |= {name: sum(getattr(s, name) for s in systems)
            for name in ("high_risks", "awaiting", "expiring", "accepted_in_force")}
    coverages = [SystemCoverage([Coverage("ALL", {"implemented": s.rmf_implemented, "partial": s.rmf_partial,
                                                  "gap": s.rmf_applicable - s.rmf_implemented - s.rmf_partial})])
                 for s in systems]
    ratios = [c.overall.ratio for c in coverages if c.overall.ratio is not None]
    out |= {"systems": len(systems), "never_exercised": sum(1 for s in systems if not s.exercised),
            "coverage": portfolio_percent(coverages),
            "coverage_exact": float(100 * sum(ratios) / len(ratios)) if ratios else None}
    return out


@transaction.atomic
def snapshot_take(*, at: datetime | None = None) -> int:
    """Record today's posture (the day of `at`) as read at `at`; the same day again updates its rows. Returns how
    many rows it wrote."""
    at = at or timezone.now()
    day = timezone.localdate(at)
    return _write(day, at, live_figures(at), backfilled=False)


# ---- backfill -------------------------------------------------------------------------------------------------


@dataclass
class _Days:
    """The days being reconstructed and the moment each is read at (its end)."""

    days: list[date]
    moments: list[datetime]

    @classmethod
    def between(cls, first: date, last: date) -> "_Days":
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        return cls(days, [day_bounds(d)[1] for d in days])

    def read_in(self, start: datetime, end: datetime | None) -> tuple[int, int]:
        """Indexes [lo, hi) of the days whose moment m has start <= m < end."""
        return bisect.bisect_left(self.moments, start), (len(self.moments) if end is None
                                                         else bisect.bisect_left(self.moments, end))

    def after(self, moment: datetime) -> int:
        """Index of the first day whose moment is strictly after `moment`."""
        return bisect.bisect_right(self.moments, moment)

    def day_of(self, moment: datetime) -> int | None:
        """Index of the day `moment` falls in, or None outside the range."""
        i = bisect.bisect_right(self.moments, moment)
        return i if i < len(self.days) and day_bounds(self.days[i])[0] <= moment else None


def _open_intervals(first_seen, state_now, moves):
    """[(start, end or None)] while the finding was open, from its transitions (at, from_state, to_state)."""
    state = (moves[0][1] or FindingState.NEW) if moves else state_now
    start, out = first_seen, []
    for at, _, to_state in moves:
        if state in OPEN_STATES and to_state not in OPEN_STATES:
            out.append((start, at))
        elif state not in OPEN_STATES and to_state in OPEN_STATES:
            start = at
        state = to_state
    if state in OPEN_STATES:
        out.append((start, None))
    return out


def _finding_series(span: _Days) -> dict:
    """{(system id, figure): [value per day]} for the findings' figures, by sweeping every finding once."""
    n = len(span.days)
    diff: dict = defaultdict(lambda: [0] * (n + 1))
    totals: dict = defaultdict(lambda: [0.0] * n)
    moves_of: dict = defaultdict(list)
    for fid, at, from_state, to_state in (FindingTransition.objects.filter(at__lt=span.moments[-1])
                                          .order_by("finding_id", "at", "id")
                                          .values_list("finding_id", "at", "from_state", "to_state")
                                          .iterator(chunk_size=20000)):
        moves_of[fid].append((at, from_state, to_state))
    findings = (Finding.objects.filter(first_seen__lt=span.moments[-1])
                .values_list("id", "system_id", "severity", "first_seen", "sla_due", "state")
                .iterator(chunk_size=20000))
    for fid, system_id, severity, first_seen, sla_due, state in findings:
        moves = moves_of.pop(fid, [])
        for start, end in _open_intervals(first_seen, state, moves):
            lo, hi = span.read_in(start, end)
            if lo < hi:
                series = diff[(system_id, f"open_{severity}")]
                series[lo] += 1
                series[hi] -= 1
                if sla_due is not None:
                    late_lo = max(lo, span.after(sla_due))
                    if late_lo < hi:
                        late = diff[(system_id, "past_sla")]
                        late[late_lo] += 1
                        late[hi] -= 1
        for at, from_state, to_state in moves:
            if from_state in OPEN_STATES and to_state in REMEDIATED_STATES:
                i = span.day_of(at)
                if i is not None:
                    totals[(system_id, f"remediated_{severity}")][i] += 1
                    totals[(system_id, f"remediated_{severity}_hours")][i] += (at - first_seen).total_seconds() / 3600
    out = {}
    for key, series in diff.items():
        running, values = 0, []
        for delta in series[:n]:
            running += delta
            values.append(running)
        out[key] = values
    for key, values in totals.items():
        out[key] = [int(v) for v in values] if not key[1].endswith("_hours") else values
    return out


def _audit_moments(actions: tuple[str, ...]):
    from governance.audit.models import AuditEvent

    return AuditEvent.objects.filter(action__in=actions).order_by("seq").values_list(
        "action", "object_id", "at", "before", "after")


def _replaced_at(d: dict, siblings: list[dict], links: list) -> datetime:
    """When a withdrawn decision with no dated withdrawal ended: the first later request or decision on its risk
    (a new request withdraws a pending one, a new decision an accepted one) or link of findings; failing those, at
    once (taken as never in force)."""
    since = d["decided_at"] or d["requested_at"]
    later = [t for o in siblings if o["id"] != d["id"] for t in (o["requested_at"], o["decided_at"]) if t and t > since]
    later += [t for t in links if t > since]
    return min(later, default=since)


def _risk_series(span: _Days, systems: dict) -> dict:
    """{(system id, figure): [value per day]} for the risks' figures (see the module's notes on what is replayed)."""
    from governance.risks.matrix import get_matrix
    from governance.risks.models import Decision, Risk
    from governance.risks.selectors import EXPIRY_WINDOW_DAYS

    from governance.dashboard.selectors import high_rank

    high = high_rank(get_matrix())
    closed_at, withdrawn_at, linked = {}, {}, defaultdict(list)
    for action, object_id, at, _before, after in _audit_moments(("risk.close", "decision.withdraw",
                                                                  "risk.link_findings")):
        if action == "risk.close":
            closed_at.setdefault(int(object_id), at)
            for pk in (after or {}).get("decisions_withdrawn", []):
                withdrawn_at.setdefault(pk, at)
        elif action == "decision.withdraw":
            withdrawn_at.setdefault(int(object_id), at)
        else:
            linked[int(object_id)].append(at)
    risks = {r["id"]: r for r in Risk.objects.filter(system_id__in=systems).values(
        "id", "system_id", "created_at", "status", "updated_at", "residual_rank")}
    decisions = defaultdict(list)
    for d in Decision.objects.filter(risk_id__in=risks).values(
            "id", "risk_id", "status", "requested_at", "decided_at", "expires_at", "accepted_rank"):
        decisions[d["risk_id"]].append(d)
    S = Decision.Status
    out: dict = defaultdict(lambda: [0] * len(span.days))
    window = timedelta(days=EXPIRY_WINDOW_DAYS)
    ends = {}
    for risk_id, ds in decisions.items():
        for d in ds:
            ends[d["id"]] = withdrawn_at.get(d["id"])
            if d["status"] == S.WITHDRAWN and ends[d["id"]] is None:
                ends[d["id"]] = _replaced_at(d, ds, linked[risk_id])
    for risk in risks.values():
        closed = closed_at.get(risk["id"]) or (risk["updated_at"] if risk["status"] == "closed" else None)
        lo, hi = span.read_in(risk["created_at"], closed)
        for i in range(lo, hi):
            m = span.moments[i]
            in_force = expiring = pending = False
            for d in decisions[risk["id"]]:
                ended = ends[d["id"]]
                if d["requested_at"] <= m and (d["decided_at"] is None or d["decided_at"] > m) \
                        and (ended is None or ended > m):
                    pending = True
                accepted = d["status"] in (S.ACCEPTED, S.EXPIRED) or (d["status"] == S.WITHDRAWN and d["accepted_rank"]
                                                                       is not None)
                if (accepted and d["decided_at"] and d["decided_at"] <= m and (ended is None or ended > m)
                        and (d["accepted_rank"] or 0) >= risk["residual_rank"]
                        and (d["expires_at"] is None or d["expires_at"] > m)):
                    in_force = True
                    expiring = expiring or (d["expires_at"] is not None and d["expires_at"] <= m + window)
            sid = risk["system_id"]
            out[(sid, "high_risks")][i] += int(risk["residual_rank"] >= high and not in_force)
            out[(sid, "awaiting")][i] += int(pending)
            out[(sid, "accepted_in_force")][i] += int(in_force)
            out[(sid, "expiring")][i] += int(expiring)
    return out


def _rmf_series(span: _Days, systems: dict) -> dict:
    """{(system id, figure): [value per day]}: today's assessment statuses with audited changes undone backwards."""
    from governance.rmf.models import RmfAssessment

    S = AssessmentStatus
    counts = defaultdict(lambda: defaultdict(int))
    system_of = {}
    for pk, system_id, status in RmfAssessment.objects.filter(system_id__in=systems).values_list(
            "id", "system_id", "status"):
        counts[system_id][status] += 1
        system_of[pk] = system_id
    changes = []  # (at, system id, status before, status after), newest first
    for _, object_id, at, before, after in _audit_moments(("rmf.assess",)):
        if before and "status" in before and int(object_id) in system_of:
            changes.append((at, system_of[int(object_id)], before["status"], (after or {}).get("status")))
    changes.sort(key=lambda c: c[0], reverse=True)
    out: dict = defaultdict(lambda: [0] * len(span.days))
    k = 0
    for i in range(len(span.days) - 1, -1, -1):
        m = span.moments[i]
        while k < len(changes) and changes[k][0] > m:  # undo the changes made after this day's moment
            _, sid, was, became = changes[k]
            counts[sid][became] -= 1
            counts[sid][was] += 1
            k += 1
        for sid in systems:
            c = counts[sid]
            out[(sid, "rmf_implemented")][i] = c[S.IMPLEMENTED]
            out[(sid, "rmf_partial")][i] = c[S.PARTIAL]
            out[(sid, "rmf_applicable")][i] = sum(c.values()) - c[S.NOT_APPLICABLE]
    return out


def _exercised_series(span: _Days, systems: dict) -> dict:
    from governance.tabletop.models import Exercise

    first = {}
    for sid, at in (Exercise.objects.filter(completed_at__isnull=False, systems__in=list(systems))
                    .values_list("systems", "completed_at")):
        first[sid] = min(at, first.get(sid, at))
    return {(sid, "exercised"): [m >= at for m in span.moments] for sid, at in first.items()}


def snapshots_backfill(*, first: date, last: date | None = None) -> int:
    """Reconstruct the snapshots of the days first..last (default: yesterday) from history, leaving the days that
    have a live snapshot as they are. Returns how many rows it wrote. Safe to run again: it updates its own rows."""
    last = last or timezone.localdate() - timedelta(days=1)
    if last < first:
        return 0
    span = _Days.between(first, last)
    systems = {s["id"]: s for s in AISystem.objects.values("id", "created_at", "archived_at")}
    series = _finding_series(span) | _risk_series(span, systems) | _rmf_series(span, systems) | \
        _exercised_series(span, systems)
    live_days = set(PostureSnapshot.objects.filter(day__range=(first, last), backfilled=False)
                    .values_list("day", flat=True).distinct())
    written = 0
    for i, day in enumerate(span.days):
        if day in live_days:
            continue
        m = span.moments[i]
        members = [sid for sid, s in systems.items()
                   if s["created_at"] < m and (s["archived_at"] is None or s["archived_at"] > m)]
        rows = {}
        for sid in members + [None]:
            row = _blank(sid)
            for name in FIGURES:
                values = series.get((sid, name))
                if values is not None:
                    row[name] = values[i]
            rows[sid] = row
        with transaction.atomic():
            written += _write(day, m, rows, backfilled=True)
    return written
