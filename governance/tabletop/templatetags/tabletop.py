from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()


@register.filter
def risk_url(risk) -> str:
    """The risk's page, or its API document while the register has no page of its own."""
    if risk is None:
        return ""
    try:
        return reverse("risks:detail", args=[risk.ref])
    except NoReverseMatch:
        return reverse("api-risk-detail", args=[risk.ref])


@register.filter
def minutes(value) -> str:
    """Exercise-clock minutes as T+mm:ss."""
    if value is None:
        return "—"
    seconds = int(round(float(value) * 60))
    return f"T+{seconds // 60:02d}:{seconds % 60:02d}"


@register.filter
def get_item(mapping, key):
    return (mapping or {}).get(key)


@register.filter
def pct_class(value) -> str:
    if value is None:
        return ""
    return "high" if value >= 75 else "mid" if value >= 45 else "low"
