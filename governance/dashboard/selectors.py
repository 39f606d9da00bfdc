"""The CISO's posture summary: counts and coverage across the portfolio."""
from __future__ import annotations

from django.db.models import Count

from governance.audit.models import AuditEvent
from governance.inventory.models import AISystem, RiskTier
from governance.rmf.charts import portfolio_heatmap_json
from governance.rmf.selectors import function_codes, portfolio_coverage


def posture() -> dict:
    systems = list(AISystem.objects.filter(archived_at__isnull=True).select_related("business_owner").order_by("name"))
    tiers = dict(AISystem.objects.filter(archived_at__isnull=True).values_list("risk_tier").annotate(n=Count("id")))
    coverage_map = portfolio_coverage(systems)
    functions = function_codes()
    not_assessed = sum(
        1 for s in systems
        if not any(c.assessed for c in coverage_map.get(s.pk, {}).values())
    )
    percents = [c.percent for s in systems for c in coverage_map.get(s.pk, {}).values()]
    return {
        "system_count": len(systems),
        "tier_counts": [(label, tiers.get(value, 0), value) for value, label in reversed(RiskTier.choices)],
        "avg_coverage": round(sum(percents) / len(percents)) if percents else 0,
        "not_assessed": not_assessed,
        "genai_count": sum(1 for s in systems if s.uses_generative_ai),
        "figure": portfolio_heatmap_json(systems, coverage_map, functions) if systems else None,
        "recent": AuditEvent.objects.select_related("system").order_by("-seq")[:8],
    }
