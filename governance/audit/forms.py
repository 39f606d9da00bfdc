from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.forms.models import ModelChoiceIterator

from governance.audit.models import EVENT_KINDS
from governance.audit.selectors import SYSTEM_ACTOR
from governance.inventory.models import AISystem
from governance.widgets import date_input

ISO_DATE = ["%Y-%m-%d"]  # links and bookmarks mean the same day whatever the reader's locale


class _ActorChoices(ModelChoiceIterator):
    def __iter__(self):
        yield from super().__iter__()
        yield (SYSTEM_ACTOR, "system (worker, scheduled jobs)")

    def __len__(self) -> int:
        return super().__len__() + 1


class ActorField(forms.ModelChoiceField):
    """A person, or the worker and scheduled jobs (SYSTEM_ACTOR)."""

    iterator = _ActorChoices

    def to_python(self, value):
        return SYSTEM_ACTOR if value == SYSTEM_ACTOR else super().to_python(value)

    def label_from_instance(self, obj) -> str:
        return obj.email


class AuditFilterForm(forms.Form):
    """The audit page's filters, read from the query string; every one optional, all combined."""

    actor = ActorField(queryset=get_user_model().objects.order_by("email"), required=False, label="Who",
                       empty_label="anyone")
    kind = forms.ChoiceField(choices=[("", "any kind"), *[(k, f"{k}.* — {label}") for k, label in EVENT_KINDS]],
                             required=False, label="What")
    system = forms.ModelChoiceField(queryset=AISystem.objects.order_by("name"), required=False, to_field_name="slug",
                                    label="System", empty_label="any system")
    since = forms.DateField(required=False, label="From", widget=date_input(), input_formats=ISO_DATE)
    until = forms.DateField(required=False, label="To", widget=date_input(), input_formats=ISO_DATE)
    people = forms.BooleanField(required=False, label="People only",
                                help_text="Decisions and changes people made: no worker events, imports or checks.")

    def clean(self):
        data = super().clean()
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "The end is before the start.")
        return data

    def filters(self) -> dict:
        """The selector's arguments (audit_events)."""
        return {name: self.cleaned_data[name] for name in ("actor", "kind", "system", "since", "until", "people")}
