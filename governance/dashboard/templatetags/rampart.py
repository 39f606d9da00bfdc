from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from governance.audit.labels import action_label as _action_label

register = template.Library()


@register.simple_tag
def querystring_with(querydict, **changes):
    """The current query string with some keys replaced; an empty value removes the key."""
    q = querydict.copy()
    for key, value in changes.items():
        if value in ("", None):
            q.pop(key, None)
        else:
            q[key] = value
    return q.urlencode()


@register.filter
def query_page(querydict, number):
    q = querydict.copy()
    q["page"] = number
    return q.urlencode()


@register.filter
def safe_url(value: str) -> str:
    """Return the value only if it is an http(s) URL, so hostile text never becomes a live link."""
    text = (value or "").strip()
    return text if text.lower().startswith(("http://", "https://")) else ""


@register.filter
def pretty_json(value) -> str:
    """Indented JSON text; the template escapes it like any other text."""
    import json

    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@register.filter
def past_sla_at(finding, at):
    """Finding.is_past_sla at the moment the page's list was read (filters.at)."""
    return finding.is_past_sla(at)


@register.filter
def action_label(code: str) -> str:
    """An audit action code in words (governance/audit/labels.py); an unknown code as it is."""
    return _action_label(code)


@register.filter
def ago(moment) -> str:
    """'5 minutes ago', or 'just now' under a minute (timesince alone says '0 minutes')."""
    if moment is None:
        return ""
    if (timezone.now() - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment)} ago"
