"""Forms of the register screens: they parse and check input; the services write."""
from __future__ import annotations

from datetime import datetime, time

from django import forms
from django.utils import timezone

from governance.accounts import permissions as perms
from governance.accounts.models import User
from governance.findings.models import Finding, Severity
from governance.inventory.models import AISystem
from governance.risks.models import BLOCKING_SEVERITIES, Decision, MitigationAction, ReleaseSignoff, Risk, RiskMatrix, Treatment
from governance.rmf.models import RMF_DEFAULT_VERSION, ReferenceItem, RmfSubcategory
from governance.widgets import date_input

DATE = date_input()
RATINGS = ("inherent_likelihood", "inherent_impact", "residual_likelihood", "residual_impact")
# The four reference catalogues a risk can cite, as (form field, catalogue, label).
REFERENCE_FIELDS = [
    ("ref_trustworthiness", ReferenceItem.Catalogue.TRUSTWORTHINESS, "Trustworthiness characteristics"),
    ("ref_genai", ReferenceItem.Catalogue.GENAI_RISK, "NIST AI 600-1 risk categories"),
    ("ref_atlas", ReferenceItem.Catalogue.ATLAS_TECHNIQUE, "MITRE ATLAS techniques"),
    ("ref_owasp", ReferenceItem.Catalogue.OWASP_LLM, "OWASP LLM Top 10"),
]


def parse_ids(text: str, cap: int = 500) -> list[int]:
    """'1,2, 3' -> [1, 2, 3]; anything that is not a number is ignored."""
    return [int(p) for p in str(text or "").replace(" ", "").split(",") if p.isdecimal()][:cap]


def _rating_choices(labels: list[str]) -> list[tuple[str, str]]:
    return [("", "Not rated")] + [(str(i), f"{i} · {label}") for i, label in enumerate(labels, start=1)]


def _reference_label(item: ReferenceItem) -> str:
    """ATLAS and OWASP idents mean something to readers (AML.T0051, LLM01); the slugs of the others do not."""
    if item.catalogue in (ReferenceItem.Catalogue.TRUSTWORTHINESS, ReferenceItem.Catalogue.GENAI_RISK):
        return item.title[:90]
    return f"{item.ident} — {item.title[:80]}"


class RiskForm(forms.Form):
    system = forms.ModelChoiceField(queryset=AISystem.objects.none(), to_field_name="slug", empty_label="Choose a system…")
    title = forms.CharField(max_length=300)
    description = forms.CharField(required=False, max_length=10000, widget=forms.Textarea(attrs={"rows": 4}))
    owner = forms.ModelChoiceField(queryset=User.objects.none(), required=False, empty_label="No owner yet",
                                   help_text="Who drives the treatment.")
    due_date = forms.DateField(required=False, widget=DATE)
    inherent_likelihood = forms.TypedChoiceField(coerce=int, empty_value=None, required=False, label="Likelihood")
    inherent_impact = forms.TypedChoiceField(coerce=int, empty_value=None, required=False, label="Impact")
    residual_likelihood = forms.TypedChoiceField(coerce=int, empty_value=None, required=False, label="Likelihood")
    residual_impact = forms.TypedChoiceField(coerce=int, empty_value=None, required=False, label="Impact")
    treatment = forms.ChoiceField(choices=[("", "Not decided")] + Treatment.choices, required=False)
    treatment_plan = forms.CharField(required=False, max_length=10000, widget=forms.Textarea(attrs={"rows": 3}))
    rmf_subcategories = forms.MultipleChoiceField(
        required=False, label="NIST AI RMF subcategories", widget=forms.SelectMultiple(attrs={"size": 10}),
        help_text="Ctrl/⌘-click to pick several.")
    findings = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, user, matrix: RiskMatrix, risk: Risk | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.risk = risk
        systems = AISystem.objects.active().select_related("business_owner").order_by("name")
        if risk is not None:
            self.fields["system"].queryset = AISystem.objects.filter(pk=risk.system_id)
            self.fields["system"].disabled = True
            self.fields["system"].help_text = "A risk stays with its system; create a new one for another system."
        else:
            self.fields["system"].queryset = systems
            self.manageable = [s for s in systems if perms.can_manage_risks(user, s)]
            self.fields["system"].queryset = AISystem.objects.filter(pk__in=[s.pk for s in self.manageable]).order_by("name")
        self.fields["owner"].queryset = User.objects.filter(is_active=True).order_by("full_name", "email")
        lk, im = _rating_choices(matrix.likelihood_labels), _rating_choices(matrix.impact_labels)
        for name in RATINGS:
            self.fields[name].choices = lk if name.endswith("likelihood") else im
        self.subcategories = {str(s.pk): s for s in RmfSubcategory.objects.filter(version="1.0").order_by("position")}
        groups: dict[str, list] = {}
        for pk, s in self.subcategories.items():
            groups.setdefault(s.function_code, []).append((pk, f"{s.ident} — {s.text[:90]}"))
        self.fields["rmf_subcategories"].choices = list(groups.items())
        items = list(ReferenceItem.objects.filter(catalogue__in=[c for _, c, _ in REFERENCE_FIELDS]).order_by("catalogue", "position"))
        self.references = {str(r.pk): r for r in items}
        for name, catalogue, label in REFERENCE_FIELDS:
            self.fields[name] = forms.MultipleChoiceField(
                required=False, label=label, widget=forms.SelectMultiple(attrs={"size": 6}),
                choices=[(str(r.pk), _reference_label(r)) for r in items if r.catalogue == catalogue])

    @classmethod
    def initial_for(cls, risk: Risk) -> dict:
        data = {name: getattr(risk, name) for name in
                ("title", "description", "owner", "due_date", "treatment", "treatment_plan", *RATINGS)}
        data["system"] = risk.system.slug
        data["rmf_subcategories"] = [str(s.pk) for s in risk.rmf_subcategories.all()]
        refs = list(risk.references.all())
        for name, catalogue, _ in REFERENCE_FIELDS:
            data[name] = [str(r.pk) for r in refs if r.catalogue == catalogue]
        return data

    def clean(self):
        data = super().clean()
        for side in ("inherent", "residual"):
            lk, im = data.get(f"{side}_likelihood"), data.get(f"{side}_impact")
            if (lk is None) != (im is None) and f"{side}_likelihood" not in self.errors and f"{side}_impact" not in self.errors:
                missing = f"{side}_impact" if im is None else f"{side}_likelihood"
                self.add_error(missing, f"Rate both likelihood and impact of the {side} risk, or neither (not rated).")
        if data.get("treatment") and data["treatment"] != Treatment.ACCEPT and not (data.get("treatment_plan") or "").strip():
            self.add_error("treatment_plan", "Describe how the risk will be treated.")
        ids = parse_ids(data.get("findings", ""))
        system = data.get("system") or (self.risk.system if self.risk else None)
        self.finding_objects = []
        if ids and system is not None:  # whose system they belong to is the service's rule (services._own_findings)
            self.finding_objects = list(Finding.objects.filter(pk__in=ids))
            if len(self.finding_objects) != len(set(ids)):
                self.add_error(None, "Some selected findings no longer exist.")
        return data

    def service_data(self) -> dict:
        d = self.cleaned_data
        data = {name: d.get(name) for name in ("title", "description", "owner", "due_date", "treatment_plan", *RATINGS)}
        data["treatment"] = d.get("treatment") or ""
        data["description"], data["treatment_plan"] = data["description"] or "", data["treatment_plan"] or ""
        if self.risk is None and self.finding_objects:
            data["source"] = "findings"
            data["source_ref"] = "findings " + ", ".join(f"#{f.pk}" for f in self.finding_objects)[:90]
        return data

    def relations(self) -> dict:
        d = self.cleaned_data
        refs = [self.references[pk] for name, _, _ in REFERENCE_FIELDS for pk in d.get(name, [])]
        relations = {"rmf_subcategories": [self.subcategories[pk] for pk in d.get("rmf_subcategories", [])],
                     "references": refs}
        if self.risk is None:
            relations["findings"] = self.finding_objects
        return relations


class DecisionRequestForm(forms.Form):
    kind = forms.ChoiceField(choices=Decision.Kind.choices, initial=Decision.Kind.RESIDUAL_RISK, label="Ask to")
    note = forms.CharField(required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}),
                           label="Note for the product owner")


class DecideForm(forms.Form):
    decision = forms.ChoiceField(choices=[("accept", "Accept"), ("reject", "Reject")], widget=forms.RadioSelect)
    kind = forms.ChoiceField(choices=Decision.Kind.choices, initial=Decision.Kind.RESIDUAL_RISK, label="Decision on")
    justification = forms.CharField(max_length=4000, widget=forms.Textarea(attrs={"rows": 2}),
                                    label="Justification / reason")
    expires_at = forms.DateField(required=False, widget=DATE, label="Acceptance expires on",
                                 help_text="Required to accept. The risk reopens on that day.")

    def clean(self):
        data = super().clean()
        if data.get("decision") == "accept" and "expires_at" not in self.errors:
            day = data.get("expires_at")
            if day is None:
                self.add_error("expires_at", "An acceptance needs an expiry date.")
            elif day <= timezone.localdate():
                self.add_error("expires_at", "The expiry date must be in the future.")
        return data

    def expires_datetime(self):
        day = self.cleaned_data.get("expires_at")
        if self.cleaned_data.get("decision") != "accept" or day is None:
            return None
        return timezone.make_aware(datetime.combine(day, time(23, 59, 59)))


class CloseForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="Closing does not close the linked findings.")


class MitigationForm(forms.ModelForm):
    class Meta:
        model = MitigationAction
        fields = ["title", "owner", "due_date"]
        widgets = {"due_date": DATE}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = User.objects.filter(is_active=True).order_by("full_name", "email")


class MitigationStatusForm(forms.Form):
    status = forms.ChoiceField(choices=MitigationAction.Status.choices)


class MatrixForm(forms.Form):
    """The grid as it is: label of each likelihood/impact, label and colour of each level, level of each cell."""

    def __init__(self, *args, matrix: RiskMatrix, **kwargs):
        super().__init__(*args, **kwargs)
        self.matrix = matrix
        rows, cols = matrix.size
        for i, label in enumerate(matrix.likelihood_labels, start=1):
            self.fields[f"l_{i}"] = forms.CharField(max_length=40, initial=label, label=f"Likelihood {i}")
        for j, label in enumerate(matrix.impact_labels, start=1):
            self.fields[f"i_{j}"] = forms.CharField(max_length=40, initial=label, label=f"Impact {j}")
        for lv in matrix.levels:
            self.fields[f"lv_{lv['key']}_label"] = forms.CharField(max_length=30, initial=lv["label"], label=f"{lv['key']} label")
            self.fields[f"lv_{lv['key']}_colour"] = forms.RegexField(
                regex=r"^#[0-9a-fA-F]{6}$", initial=lv["colour"], label=f"{lv['key']} colour",
                widget=forms.TextInput(attrs={"type": "color"}), error_messages={"invalid": "A colour is #rrggbb."})
        choices = [(lv["key"], lv["label"]) for lv in matrix.levels]
        for i in range(1, rows + 1):
            for j in range(1, cols + 1):
                self.fields[f"c_{i}_{j}"] = forms.ChoiceField(choices=choices, initial=matrix.cells[i - 1][j - 1],
                                                              label=f"Likelihood {i} × impact {j}")

    def grid(self):
        """[(likelihood label field, [cell field per impact])], highest likelihood first, for the template."""
        rows, cols = self.matrix.size
        return [(self[f"l_{i}"], [self[f"c_{i}_{j}"] for j in range(1, cols + 1)]) for i in range(rows, 0, -1)]

    def level_fields(self):
        return [(lv, self[f"lv_{lv['key']}_label"], self[f"lv_{lv['key']}_colour"]) for lv in self.matrix.levels]

    def impact_fields(self):
        return [self[f"i_{j}"] for j in range(1, self.matrix.size[1] + 1)]

    def matrix_data(self) -> dict:
        d, (rows, cols) = self.cleaned_data, self.matrix.size
        return {
            "likelihood_labels": [d[f"l_{i}"].strip() for i in range(1, rows + 1)],
            "impact_labels": [d[f"i_{j}"].strip() for j in range(1, cols + 1)],
            "levels": [{**lv, "label": d[f"lv_{lv['key']}_label"].strip(), "colour": d[f"lv_{lv['key']}_colour"].lower()}
                       for lv in self.matrix.levels],
            "cells": [[d[f"c_{i}_{j}"] for j in range(1, cols + 1)] for i in range(1, rows + 1)],
        }


class ReleaseSignoffForm(forms.Form):
    release = forms.CharField(max_length=100, label="Release", widget=forms.TextInput(attrs={"placeholder": "v2.3.0"}))
    verdict = forms.ChoiceField(choices=ReleaseSignoff.Verdict.choices, widget=forms.RadioSelect, label="Sign-off")
    justification = forms.CharField(max_length=4000, label="Why", widget=forms.Textarea(attrs={"rows": 2}))


class GatePolicyForm(forms.Form):
    """One tier's release gate policy. Required subcategories are chosen from the catalogue, grouped by function."""
    SEVERITIES = [(value, Severity(value).label) for value in BLOCKING_SEVERITIES]

    blocking_finding_severities = forms.MultipleChoiceField(
        choices=SEVERITIES, required=False, widget=forms.CheckboxSelectMultiple, label="Block when past their SLA",
        help_text="Open findings of these severities block once their SLA has passed.")
    blocking_open_severities = forms.MultipleChoiceField(
        choices=SEVERITIES, required=False, widget=forms.CheckboxSelectMultiple, label="Block at once",
        help_text="Open findings of these severities block even within their SLA.")
    max_unaccepted_level = forms.ChoiceField(
        required=False, label="Risks that need an acceptance in force",
        help_text="A risk whose residual level is above this blocks until the product owner accepts it.")
    block_unrated_risks = forms.BooleanField(required=False, label="Unrated risks block",
                                             help_text="A risk without a residual rating blocks the release.")
    required_subcategories = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="Required NIST AI RMF subcategories",
        help_text="Each must be implemented or partially implemented.")

    def __init__(self, *args, matrix, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["max_unaccepted_level"].choices = [("", "every rated risk (above nothing)")] + [
            (lv["key"], f"above {lv['label']}") for lv in sorted(matrix.levels, key=lambda lv: lv["rank"])]
        groups: dict[str, list] = {}
        for ident in (RmfSubcategory.objects.filter(version=RMF_DEFAULT_VERSION).order_by("position")
                      .values_list("ident", flat=True)):
            groups.setdefault(ident.split(" ")[0].title(), []).append((ident, ident))
        self.fields["required_subcategories"].choices = list(groups.items())

    def subcategory_groups(self) -> list[tuple[str, list[tuple[str, bool]], int]]:
        """(function, [(ident, chosen)], how many chosen) for the grouped checkboxes; a group with a choice opens."""
        chosen = set(self["required_subcategories"].value() or [])
        return [(group, [(ident, ident in chosen) for ident, _ in options], sum(i in chosen for i, _ in options))
                for group, options in self.fields["required_subcategories"].choices]


class BulkDecideForm(DecideForm):
    """One decision with one justification on several pending sign-offs of the user's inbox (each keeps its kind)."""
    decisions = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, label="Sign-offs",
                                          error_messages={"required": "Tick the sign-offs this decision is for."})

    def __init__(self, *args, pending, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["kind"]
        self.pending = {str(d.pk): d for d in pending}
        self.fields["decisions"].choices = [(pk, d.risk.ref) for pk, d in self.pending.items()]
        self.fields["decisions"].error_messages["invalid_choice"] = (
            "%(value)s is no longer waiting for your decision: reload the page.")

    def chosen(self) -> list:
        return [self.pending[pk] for pk in self.cleaned_data["decisions"]]
