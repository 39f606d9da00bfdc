"""Level chips coloured from the matrix in force (the colour is data, so it is set inline, not in the CSS)."""
import re

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


def _ink(colour: str) -> str:
    """Dark or white text, whichever reads better on the colour."""
    try:
        r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    except (TypeError, ValueError):
        return "#101828"
    return "#101828" if (0.299 * r + 0.587 * g + 0.114 * b) > 150 else "#ffffff"


@register.simple_tag
def level_chip(levels: dict, key: str, likelihood=None, impact=None):
    """<span class="level">High</span> in the level's colour; "Not rated" when the key is empty."""
    if not key:
        return mark_safe('<span class="level unrated" title="Not rated">Not rated</span>')
    lv = levels.get(key) or {"label": key, "colour": "#98a2b3"}
    colour = lv["colour"] if re.fullmatch(r"#[0-9a-fA-F]{6}", str(lv.get("colour", ""))) else "#98a2b3"
    title = f"likelihood {likelihood} × impact {impact}" if likelihood and impact else lv["label"]
    return format_html('<span class="level" style="background:{};color:{}" title="{}">{}</span>',
                       colour, _ink(colour), title, lv["label"])


@register.filter
def ink(colour: str) -> str:
    return _ink(colour)


@register.simple_tag
def level_style(levels, key) -> str:
    """'background:…;color:…' for a level key (levels: the matrix's list or a key → level dict)."""
    if isinstance(levels, list):
        levels = {lv["key"]: lv for lv in levels}
    lv = levels.get(key) or {}
    colour = lv.get("colour", "")
    colour = colour if re.fullmatch(r"#[0-9a-fA-F]{6}", str(colour)) else "#98a2b3"
    return f"background:{colour};color:{_ink(colour)}"


@register.filter
def gate_label(code: str, count: int = 2) -> str:
    """A release gate reason code in words, for `count` items (governance.risks.gate.reason_label)."""
    from governance.risks.gate import reason_label

    return reason_label(str(code), int(count))
