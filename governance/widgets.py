"""Inputs whose values the browser must be able to read back: `<input type=date>` accepts only ISO dates
(2026-12-04), whatever the locale's format, so an unchanged form would otherwise post an empty date."""
from __future__ import annotations

from django import forms


def date_input(**attrs) -> forms.DateInput:
    return forms.DateInput(attrs={"type": "date", **attrs}, format="%Y-%m-%d")


def datetime_local_input(**attrs) -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local", **attrs}, format="%Y-%m-%dT%H:%M")
