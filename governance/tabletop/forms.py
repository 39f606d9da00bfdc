from __future__ import annotations

from django import forms

from governance.accounts.models import User
from governance.inventory.models import AISystem
from governance.risks.forms import _rating_choices
from governance.risks.matrix import get_matrix
from governance.risks.models import Risk
from governance.rmf.models import RmfSubcategory
from governance.tabletop.models import (
    Exercise, Function, ImprovementItem, Observation, ParticipantRole, Response, Scenario, Score,
)
from governance.tabletop.scenario_io import MAX_BYTES
from governance.widgets import date_input, datetime_local_input


class ExerciseForm(forms.ModelForm):
    objectives_text = forms.CharField(
        label="Objectives", required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One per line. Leave empty to use the scenario's objectives.", max_length=6000)
    scheduled_for = forms.DateTimeField(required=False, widget=datetime_local_input(),
                                        label="Scheduled for")

    class Meta:
        model = Exercise
        fields = ["title", "scenario", "systems", "scheduled_for", "facilitator"]
        widgets = {"systems": forms.CheckboxSelectMultiple}
        labels = {"systems": "AI systems in scope"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["systems"].queryset = AISystem.objects.active()
        self.fields["facilitator"].queryset = User.objects.filter(
            is_active=True, groups__permissions__codename="run_exercises").distinct()
        self.fields["scenario"].queryset = Scenario.objects.order_by("title")
        if self.instance.pk and not self.is_bound:
            self.initial["objectives_text"] = "\n".join(self.instance.objectives)

    def clean(self):
        data = super().clean()
        data["objectives"] = [line.strip()[:300] for line in data.get("objectives_text", "").splitlines() if line.strip()][:20]
        return data


class ParticipantForm(forms.Form):
    user = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True), label="Person")
    role = forms.ChoiceField(choices=[(v, l) for v, l in ParticipantRole.choices if v != ParticipantRole.FACILITATOR])
    function = forms.ChoiceField(choices=[("", "—"), *Function.choices], required=False)

    def clean(self):
        data = super().clean()
        if data.get("role") == ParticipantRole.PLAYER and not data.get("function"):
            self.add_error("function", "A player needs a function: injects are addressed to functions.")
        return data


class ResponseForm(forms.Form):
    kind = forms.ChoiceField(choices=Response.Kind.choices, initial=Response.Kind.RESPONSE, widget=forms.RadioSelect)
    text = forms.CharField(label="What do you do or decide?", max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))
    rationale = forms.CharField(label="Why", required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}))

    def clean(self):
        data = super().clean()
        if data.get("kind") == Response.Kind.DECISION and not data.get("rationale", "").strip():
            self.add_error("rationale", "A decision needs its rationale.")
        return data


class ScoreForm(forms.Form):
    rating = forms.TypedChoiceField(choices=Score.Rating.choices, coerce=int)
    observation = forms.CharField(required=False, max_length=5000)


class ObservationForm(forms.Form):
    kind = forms.ChoiceField(choices=Observation.Kind.choices, initial=Observation.Kind.NOTE)
    text = forms.CharField(max_length=5000, widget=forms.Textarea(attrs={"rows": 2}), label="Observation")


class HotwashForm(forms.Form):
    strengths = forms.CharField(required=False, max_length=10000, widget=forms.Textarea(attrs={"rows": 4}),
                                help_text="One per line.")
    areas_for_improvement = forms.CharField(required=False, max_length=10000, widget=forms.Textarea(attrs={"rows": 4}),
                                            help_text="One per line.")


class ImprovementForm(forms.ModelForm):
    class Meta:
        model = ImprovementItem
        fields = ["title", "kind", "system", "subcategory", "target_risk", "owner", "due_date", "description"]
        widgets = {"due_date": date_input(), "description": forms.Textarea(attrs={"rows": 2})}
        labels = {"subcategory": "RMF subcategory (for a gap)", "target_risk": "Risk (for a mitigation action)"}

    def __init__(self, *args, exercise: Exercise, **kwargs):
        super().__init__(*args, **kwargs)
        systems = exercise.systems.all()
        self.fields["system"].queryset = systems if systems.exists() else AISystem.objects.active()
        self.fields["subcategory"].queryset = RmfSubcategory.objects.filter(version="1.0")
        self.fields["target_risk"].queryset = Risk.objects.filter(system__in=self.fields["system"].queryset).exclude(status="closed")
        self.fields["owner"].queryset = User.objects.filter(is_active=True)

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind in (ImprovementItem.Kind.RISK, ImprovementItem.Kind.RMF_GAP) and not data.get("system"):
            self.add_error("system", "Choose the AI system this applies to.")
        if kind == ImprovementItem.Kind.RMF_GAP and not data.get("subcategory"):
            self.add_error("subcategory", "Choose the NIST AI RMF subcategory that is a gap.")
        if kind == ImprovementItem.Kind.MITIGATION and not data.get("target_risk"):
            self.add_error("target_risk", "Choose the risk this mitigation action treats.")
        if kind == ImprovementItem.Kind.MITIGATION and data.get("target_risk"):
            data["system"] = data["target_risk"].system
        return data


class PromoteRiskForm(forms.Form):
    """What the register needs of a new risk before it goes in: its rating (an unrated risk turns the release gate
    to no-go where the policy blocks unrated risks), and who drives it by when."""

    likelihood = forms.TypedChoiceField(coerce=int, empty_value=None, label="Likelihood",
                                        error_messages={"required": "Rate the likelihood: an unrated risk blocks the release gate."})
    impact = forms.TypedChoiceField(coerce=int, empty_value=None, label="Impact",
                                    error_messages={"required": "Rate the impact: an unrated risk blocks the release gate."})
    owner = forms.ModelChoiceField(queryset=User.objects.none(), required=False, empty_label="No owner yet",
                                   help_text="Who drives the treatment.")
    due_date = forms.DateField(required=False, widget=date_input(), label="Due")

    def __init__(self, *args, item: ImprovementItem, **kwargs):
        kwargs.setdefault("prefix", f"promote-{item.pk}")
        kwargs.setdefault("initial", {"owner": item.owner_id, "due_date": item.due_date})
        super().__init__(*args, **kwargs)
        self.item = item
        matrix = get_matrix()
        self.fields["likelihood"].choices = _rating_choices(matrix.likelihood_labels)
        self.fields["impact"].choices = _rating_choices(matrix.impact_labels)
        self.fields["likelihood"].help_text = "As things stand today: inherent and residual start equal, until a treatment lowers the residual."
        self.fields["owner"].queryset = User.objects.filter(is_active=True).order_by("full_name", "email")


class ScenarioImportForm(forms.Form):
    file = forms.FileField(label="Scenario file (JSON, at most 1 MB)")

    def clean_file(self):
        f = self.cleaned_data["file"]
        if f.size > MAX_BYTES:
            raise forms.ValidationError(f"The file is {f.size:,} bytes; the limit is {MAX_BYTES:,} bytes (1 MB).")
        return f
