"""The reference model: every posture figure, list, inbox and gate decision recomputed in plain Python from raw
rows, from the written definitions (governance/dashboard/definitions.py, the gate's docstring, DESIGN.md). It never
calls the product's selectors, querysets or model methods: it reads table rows as plain values and does the arithmetic
itself, so a product rule that drifts from its definition disagrees with it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from django.conf import settings

OPEN = {"new", "confirmed"}
RANK = {"critical": 5, "high": 4, "medium": 3, "low": 2, "info": 1}
MET = {"implemented", "partial"}
EXPIRY_WINDOW = timedelta(days=30)


@dataclass
class Rows:
    """The raw rows the model reads, as plain dicts (see load())."""

    systems: list[dict]
    findings: list[dict]
    risks: list[dict]
    decisions: list[dict]
    assessments: list[dict]  # system_id, function, ident, status
    exercises: list[dict]  # completed_at, systems (ids)
    levels: list[dict]  # the matrix in force
    policies: dict  # tier -> policy dict
    sla_days: dict = field(default_factory=lambda: dict(settings.RAMPART_SLA_DAYS))


def load(policy_for) -> Rows:
    """Read the tables. `policy_for(tier)` gives the policy row of a tier as a dict (stored or default data)."""
    from django.db.models import F

    from governance.findings.models import Finding
    from governance.inventory.models import AISystem
    from governance.risks.matrix import get_matrix
    from governance.risks.models import Decision, Risk
    from governance.rmf.models import RmfAssessment
    from governance.tabletop.models import Exercise

    systems = list(AISystem.objects.values("id", "slug", "archived_at", "risk_tier", "business_owner_id"))
    exercises = [{"completed_at": e.completed_at, "systems": [s.pk for s in e.systems.all()]}
                 for e in Exercise.objects.prefetch_related("systems")]
    return Rows(
        systems=systems,
        findings=list(Finding.objects.values("id", "system_id", "severity", "state", "first_seen", "sla_due")),
        risks=list(Risk.objects.values("id", "ref", "system_id", "status", "residual_level", "residual_rank",
                                       "due_date", "residual_likelihood", "residual_impact")),
        decisions=list(Decision.objects.values("id", "risk_id", "status", "expires_at", "accepted_rank",
                                               "decided_at")),
        assessments=list(RmfAssessment.objects.values(
            "system_id", "status", ident=F("subcategory__ident"), function=F("subcategory__category__function__code"))),
        exercises=exercises,
        levels=get_matrix().levels,
        policies={s["risk_tier"]: policy_for(s["risk_tier"]) for s in systems},
    )


class Model:
    def __init__(self, rows: Rows, at: datetime):
        self.rows, self.at = rows, at
        self.system = {s["id"]: s for s in rows.systems}
        self.risk = {r["id"]: r for r in rows.risks}

    # --- single rows ------------------------------------------------------------------------------------
    def active(self, system_id) -> bool:
        return self.system[system_id]["archived_at"] is None

    def in_portfolio(self, finding) -> bool:
        return finding["system_id"] is None or self.active(finding["system_id"])

    def due(self, finding):
        days = self.rows.sla_days.get(finding["severity"])
        return None if days is None else finding["first_seen"] + timedelta(days=days)

    def late(self, finding) -> bool:
        due = self.due(finding)
        return finding["state"] in OPEN and due is not None and self.at > due

    def in_force(self, decision) -> bool:
        risk = self.risk[decision["risk_id"]]
        return (decision["status"] == "accepted" and risk["status"] != "closed"
                and decision["accepted_rank"] is not None and decision["accepted_rank"] >= risk["residual_rank"]
                and (decision["expires_at"] is None or decision["expires_at"] > self.at))

    def accepted(self, risk) -> bool:
        return any(self.in_force(d) for d in self.rows.decisions if d["risk_id"] == risk["id"])

    def pending(self, risk) -> bool:
        return risk["status"] != "closed" and any(
            d["status"] == "pending" for d in self.rows.decisions if d["risk_id"] == risk["id"])

    def status(self, risk) -> str:
        if risk["status"] == "closed":
            return "closed"
        if self.pending(risk):
            return "awaiting_decision"
        if self.accepted(risk):
            return "accepted"
        return "rejected" if risk["status"] == "rejected" else "open"

    def rank_of(self, key: str) -> int:
        return next((lv["rank"] for lv in self.rows.levels if lv["key"] == key), 0)

    # --- the portfolio --------------------------------------------------------------------------------------
    def portfolio_findings(self) -> list[dict]:
        return [f for f in self.rows.findings if f["state"] in OPEN and self.in_portfolio(f)]

    def open_active_risks(self) -> list[dict]:
        return [r for r in self.rows.risks if r["status"] != "closed" and self.active(r["system_id"])]

    def high_unaccepted(self) -> list[dict]:
        high = self.rank_of("high") or 3
        return [r for r in self.open_active_risks() if r["residual_rank"] >= high and not self.accepted(r)]

    def awaiting(self) -> list[dict]:
        return [r for r in self.open_active_risks() if self.pending(r)]

    def expiring(self) -> list[dict]:
        return [d for d in self.rows.decisions if self.in_force(d) and self.active(self.risk[d["risk_id"]]["system_id"])
                and d["expires_at"] is not None and d["expires_at"] <= self.at + EXPIRY_WINDOW]

    def coverage(self, system_id) -> Fraction | None:
        rows = [a for a in self.rows.assessments if a["system_id"] == system_id]
        applicable = [a for a in rows if a["status"] != "not_applicable"]
        if not applicable:
            return None
        score = sum(Fraction(1) if a["status"] == "implemented" else Fraction(1, 2) if a["status"] == "partial"
                    else Fraction(0) for a in applicable)
        return score / len(applicable)

    def function_coverage(self, system_id, function) -> Fraction | None:
        rows = [a for a in self.rows.assessments if a["system_id"] == system_id and a["function"] == function]
        applicable = [a for a in rows if a["status"] != "not_applicable"]
        if not applicable:
            return None
        return sum(Fraction(1) if a["status"] == "implemented" else Fraction(1, 2) if a["status"] == "partial"
                   else Fraction(0) for a in applicable) / len(applicable)

    def exercised(self) -> set[int]:
        return {s for e in self.rows.exercises if e["completed_at"] is not None for s in e["systems"]}

    def posture(self) -> dict:
        findings = self.portfolio_findings()
        actives = [s for s in self.rows.systems if s["archived_at"] is None]
        ratios = [c for c in (self.coverage(s["id"]) for s in actives) if c is not None]
        return {
            "system_count": len(actives),
            "critical_high_findings": sum(1 for f in findings if f["severity"] in ("critical", "high")),
            "breached": sum(1 for f in findings if self.late(f)),
            "high_risks": len(self.high_unaccepted()),
            "awaiting": len(self.awaiting()),
            "expiring": len(self.expiring()),
            "avg_coverage": half_up(sum(ratios) / len(ratios)) if ratios else None,
            "never_exercised": sum(1 for s in actives if s["id"] not in self.exercised()),
        }

    def matrix_cells(self) -> dict:
        """{(likelihood, impact): sorted refs} of the residual ratings of open risks of active systems."""
        cells: dict = {}
        for r in self.open_active_risks():
            if r["residual_likelihood"] and r["residual_impact"]:
                cells.setdefault((r["residual_likelihood"], r["residual_impact"]), []).append(r["ref"])
        return {k: sorted(v) for k, v in cells.items()}

    def row(self, system_id) -> dict:
        findings = [f for f in self.portfolio_findings() if f["system_id"] == system_id]
        coverage = self.coverage(system_id)
        return {
            "critical": sum(1 for f in findings if f["severity"] == "critical"),
            "high": sum(1 for f in findings if f["severity"] == "high"),
            "breached": sum(1 for f in findings if self.late(f)),
            "high_risks": sum(1 for r in self.high_unaccepted() if r["system_id"] == system_id),
            "awaiting": sum(1 for r in self.awaiting() if r["system_id"] == system_id),
            "expiring": sum(1 for d in self.expiring() if self.risk[d["risk_id"]]["system_id"] == system_id),
            "coverage": None if coverage is None else half_up(coverage),
            "exercised": system_id in self.exercised(),
        }

    def overdue(self, risk) -> bool:
        today = self.at.astimezone(ZoneInfo(settings.TIME_ZONE)).date()
        return risk["status"] != "closed" and risk["due_date"] is not None and risk["due_date"] < today

    # --- the gate ---------------------------------------------------------------------------------------
    def gate(self, system_id) -> dict[str, int]:
        system = self.system[system_id]
        policy = self.rows.policies[system["risk_tier"]]
        counts: dict[str, int] = {}

        def add(code, n=1):
            counts[code] = counts.get(code, 0) + n

        if system["archived_at"] is not None:
            add("SYSTEM_ARCHIVED")
        for f in self.rows.findings:
            if f["system_id"] != system_id or f["state"] not in OPEN:
                continue
            if f["severity"] in policy["blocking_finding_severities"] and self.late(f):
                add(f"FINDING_{f['severity'].upper()}_PAST_SLA")
            elif f["severity"] in (policy.get("blocking_open_severities") or []):
                add(f"FINDING_{f['severity'].upper()}_OPEN")
        limit = self.rank_of(policy["max_unaccepted_level"]) if policy["max_unaccepted_level"] else 0
        for r in self.rows.risks:
            if r["system_id"] != system_id or r["status"] == "closed":
                continue
            if r["residual_rank"] > limit and not self.accepted(r):
                acceptances = sorted((d for d in self.rows.decisions if d["risk_id"] == r["id"]
                                      and d["status"] in ("accepted", "expired")),
                                     key=lambda d: d["decided_at"], reverse=True)
                lapsed = acceptances and acceptances[0]["expires_at"] is not None and acceptances[0]["expires_at"] <= self.at
                add("ACCEPTANCE_EXPIRED" if lapsed else "RISK_RESIDUAL_UNACCEPTED")
            if policy["block_unrated_risks"] and not r["residual_level"]:
                add("RISK_NOT_RATED")
        statuses = {a["ident"]: a["status"] for a in self.rows.assessments if a["system_id"] == system_id}
        for ident in policy["required_subcategories"]:
            status = statuses.get(ident, "not_assessed")
            if status not in MET:
                add({"not_assessed": "RMF_REQUIRED_NOT_ASSESSED", "gap": "RMF_REQUIRED_GAP",
                     "not_applicable": "RMF_REQUIRED_NOT_APPLICABLE"}[status])
        return counts


def half_up(ratio: Fraction) -> int:
    return int(ratio * 100 + Fraction(1, 2))
