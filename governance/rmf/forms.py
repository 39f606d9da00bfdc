from __future__ import annotations

from django import forms
from django.core.validators import URLValidator
from django.utils import timezone

from governance.accounts.models import User
from governance.rmf.models import RmfAssessment
from governance.widgets import date_input


class AssessmentForm(forms.ModelForm):
    class Meta:
        model = RmfAssessment
        fields = ["status", "owner", "evidence_notes", "evidence_links", "last_reviewed"]
        widgets = {
            "evidence_notes": forms.Textarea(attrs={"rows": 2, "placeholder": "What shows this is in place?"}),
            "evidence_links": forms.Textarea(attrs={"rows": 2, "placeholder": "https://… one link per line"}),
            "last_reviewed": date_input(),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = User.objects.filter(is_active=True)

    def clean_evidence_links(self):
        links = [line.strip() for line in self.cleaned_data["evidence_links"].splitlines() if line.strip()]
        check = URLValidator(schemes=["http", "https"])
        for link in links:
            try:
                check(link)
            except forms.ValidationError:
                raise forms.ValidationError(f"“{link[:80]}” is not an http(s) link.")
        return "\n".join(links)

    def clean_last_reviewed(self):
        value = self.cleaned_data.get("last_reviewed")
        if value and value > timezone.localdate():
            raise forms.ValidationError("The review date cannot be in the future.")
        return value
