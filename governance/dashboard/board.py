"""The board report: what a CISO hands to the board. Its headline figures and charts are the posture page's
(selectors.posture, the same definitions); on top of them: the systems that need attention first with the reasons in
words (the posture's figures and the release gate's no-go reasons), the acceptances in force (who signed, until when)
and the tabletop exercises completed in the period with what they taught. A fixed number of queries: the gate is
evaluated for the first BOARD_TOP systems of the posture's order only."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import F, Prefetch
from django.utils import timezone

from governance.dashboard import selectors
from governance.dashboard.selectors import SystemRow
from governance.dashboard.trends import month_over_month
from governance.risks.gate import GateResult, evaluate, reason_label
from governance.risks.matrix import get_matrix
from governance.risks.models import Decision

BOARD_TOP = 5
PERIODS = (30, 90, 180, 365)  # days the exercises section looks back
DEFAULT_PERIOD = 90
MAX_REFS = 6


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _refs(refs: list[str]) -> str:
    shown = ", ".join(refs[:MAX_REFS])
    return shown + (f" and {len(refs) - MAX_REFS} more" if len(refs) > MAX_REFS else "")


def posture_reasons(row: SystemRow, expiry_window: int, high_level: str) -> list[str]:
    """The posture page's figures of one system, in words, most pressing first (the order of SystemRow.attention)."""
    words = []
    if row.breached:
        words.append(f"{_n(row.breached, 'open finding')} past {'its' if row.breached == 1 else 'their'} SLA")
    if row.findings.get("critical"):
        words.append(f"{_n(row.findings['critical'], 'open critical finding')}")
    if row.high_risks:
        words.append(f"{_n(row.high_risks, f'{high_level.lower()}+ residual risk')} without an acceptance in force")
    if row.expiring:
        words.append(f"{_n(row.expiring, 'acceptance')} ending within {expiry_window} days")
    if row.findings.get("high"):
        words.append(f"{_n(row.findings['high'], 'open high finding')}")
    if row.awaiting:
        words.append(f"{_n(row.awaiting, 'risk')} awaiting sign-off")
    return words


def gate_reasons(gate: GateResult) -> list[str]:
    """The gate's no-go reasons grouped by code, one sentence each in the gate's own words (reason_label), with every
    blocking item counted (GateResult.counts), not only the listed ones, and the risks or subcategories named."""
    by_code: dict[str, list] = {}
    for reason in gate.reasons:
        by_code.setdefault(reason.code, []).append(reason)
    words = []
    for code, reasons in by_code.items():
        n = gate.counts.get(code, len(reasons))
        refs = [ref.split(":", 1)[-1] for r in reasons for ref in r.refs if not ref.startswith(("finding:", "signoff:"))]
        label = reason_label(code, n)
        if label == code:  # a code without words: its first message says it
            words.append(reasons[0].message)
        else:
            words.append(f"{n} {label}" + (f": {_refs(refs)}" if refs else ""))
    return words


@dataclass
class Attention:
    row: SystemRow
    gate: GateResult
    why: list[str] = field(default_factory=list)
    gate_why: list[str] = field(default_factory=list)

    @property
    def system(self):
        return self.row.system


def attention(rows: list[SystemRow], at: datetime, expiry_window: int, high_level: str) -> list[Attention]:
    """The first BOARD_TOP systems in the posture's order (SystemRow.attention), with the gate evaluated for each;
    those with nothing to say (no figure, gate go) are left out."""
    out = []
    for row in rows[:BOARD_TOP]:
        gate = evaluate(row.system, at)
        item = Attention(row=row, gate=gate, why=posture_reasons(row, expiry_window, high_level),
                         gate_why=gate_reasons(gate) if gate.decision != "go" else [])
        if item.why or item.gate_why:
            out.append(item)
    return out


def acceptances(at: datetime) -> list[Decision]:
    """Acceptances in force at `at` (Decision.objects.in_force, the definition every screen uses) of risks of active
    systems, the soonest to end first; each with `level_label`, the label of the risk's residual level."""
    matrix = get_matrix()
    decisions = list(Decision.objects.in_force(at).of_active_systems()
                     .select_related("risk__system", "decided_by")
                     .order_by(F("expires_at").asc(nulls_last=True), "risk__ref", "id"))
    for d in decisions:
        d.level_label = (matrix.level(d.risk.residual_level) or {"label": d.risk.residual_level or "unrated"})["label"]
    return decisions


@dataclass
class ExerciseLessons:
    exercise: object
    strengths: list[str]
    areas: list[str]
    items: list


def exercises(user, since: datetime, at: datetime) -> tuple[list[ExerciseLessons], int]:
    """Tabletop exercises completed in (since, at], newest first: those whose report this user may read (the
    after-action report's rule, can_view_report), and how many more were completed that this user may not read."""
    from governance.tabletop.models import Exercise, ImprovementItem, Observation
    from governance.tabletop.permissions import can_view_report
    from governance.tabletop.selectors import lessons

    done = (Exercise.objects.filter(completed_at__gt=since, completed_at__lte=at)
            .select_related("scenario", "facilitator")
            .prefetch_related("systems", "participants", Prefetch(
                "observations", to_attr="lesson_notes", queryset=Observation.objects.filter(
                    kind__in=(Observation.Kind.STRENGTH, Observation.Kind.IMPROVEMENT)).order_by("clock_minute", "id")),
                Prefetch("improvements", to_attr="items", queryset=ImprovementItem.objects.select_related(
                    "owner", "system", "risk", "mitigation", "assessment").order_by("status", "due_date", "id")))
            .order_by("-completed_at", "-id"))
    shown, hidden = [], 0
    for ex in done:
        participant = next((p for p in ex.participants.all() if p.user_id == user.pk), None)
        if not can_view_report(user, ex, participant):
            hidden += 1
            continue
        strengths, areas = lessons(ex, ex.lesson_notes)
        shown.append(ExerciseLessons(exercise=ex, strengths=strengths, areas=areas, items=ex.items))
    return shown, hidden


def kpi_labels(high_level: str) -> list[tuple[str, str]]:
    """The headline figures in the order of the cards, with the cards' words."""
    return [("active_systems", "Active AI systems"), ("critical_high", "Open critical + high findings"),
            ("past_sla", "Findings past their SLA"), ("high_risks", f"{high_level}+ residual risks not accepted"),
            ("awaiting", "Risks awaiting sign-off"), ("expiring", "Acceptances expiring"),
            ("coverage", "NIST AI RMF coverage"), ("never_exercised", "Systems never exercised")]


def board_report(user, at: datetime | None = None, days: int = DEFAULT_PERIOD) -> dict:
    """Everything the board report shows at the moment `at`; exercises over the `days` before it."""
    at = at or timezone.now()
    days = days if days in PERIODS else DEFAULT_PERIOD
    since = at - timedelta(days=days)
    context = selectors.posture(at)
    mom = month_over_month(at, context)  # each KPI now (these figures) and from the snapshot a month ago
    shown, hidden = exercises(user, since, at)
    accepted = acceptances(at)
    context.update({
        "mom": mom,
        "mom_since": mom["active_systems"]["since"],
        "mom_rows": [(label, key, mom[key]) for key, label in kpi_labels(context["high_level"])],
        "days": days, "periods": PERIODS, "since": since,
        "attention": attention(context["rows"], at, context["expiry_window"], context["high_level"]),
        "attention_more": max(0, sum(1 for r in context["rows"] if r.attention) - BOARD_TOP),
        "accepted": accepted,
        "accepted_risks": len({d.risk_id for d in accepted}),
        "exercises": shown,
        "exercises_hidden": hidden,
        "exercises_completed": len(shown) + hidden,
        "expiring_by": at + timedelta(days=context["expiry_window"]),
    })
    return context
