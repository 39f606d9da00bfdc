"""`{% mom "critical_high" %}`: a KPI card's change since the snapshot a month ago (trends.month_over_month, passed
to the template as `mom`). Pages that show the cards without it (no `mom` in the context) get nothing."""
from django import template

register = template.Library()


@register.inclusion_tag("dashboard/_mom.html", takes_context=True)
def mom(context, key: str) -> dict:
    changes = context.get("mom") or {}
    return {"m": changes.get(key), "percent": key == "coverage"}
