from __future__ import annotations

from django import forms
from django.conf import settings

from governance.accounts.models import User
from governance.findings.imports import FORMAT_LABELS
from governance.findings.models import COMMENT_MAX, HUMAN_DECISIONS, FindingState, MappingRule, PullSource
from governance.findings.pull import MIN_EVERY_MINUTES, PullError, check_location, drop_root
from governance.inventory.models import AISystem
from worker.scanners import format_name


class FormatField(forms.ChoiceField):
    """A report format, as the tool spells it or as Rampart does ("pip-audit" and "pip_audit" alike)."""

    def __init__(self, **kwargs):
        names = ", ".join(label for _, label in FORMAT_LABELS[1:])
        super().__init__(choices=FORMAT_LABELS, initial="auto", **kwargs, error_messages={
            "invalid_choice": f"Unknown format “%(value)s”: choose auto or one of {names}."})

    def to_python(self, value):
        return format_name(super().to_python(value)) if value else "auto"


class UploadForm(forms.Form):
    file = forms.FileField(help_text="SARIF, ModelScan, picklescan, garak, gitleaks, trufflehog, pip-audit or OSV-scanner output.")
    format = FormatField()
    system = forms.ModelChoiceField(queryset=AISystem.objects.active(), required=False,
                                    empty_label="— route by mapping rules —", to_field_name="slug")
    source = forms.CharField(max_length=100, required=False,
                             help_text="Names this feed, e.g. 'bandit-main': a reimport to the same system and source replaces "
                             "it. Defaults to the report's format (e.g. 'sarif'): name feeds when two SARIF tools "
                             "report on one system.")
    repository = forms.CharField(max_length=300, required=False, help_text="Optional, for repository mapping rules.")

    def clean_file(self):
        f = self.cleaned_data["file"]
        cap = settings.RAMPART_MAX_REPORT_BYTES
        if f.size > cap:
            raise forms.ValidationError(f"The file is {f.size / 1e6:.1f} MB; the limit is {cap / 1e6:.1f} MB.")
        if f.size == 0:
            raise forms.ValidationError("The file is empty.")
        return f


BULK_ACTIONS = [
    ("confirm", "Confirm"), ("false_positive", "False positive"), ("risk_accepted", "Risk accepted"),
    ("fixed", "Mark fixed"), ("reopen", "Reopen"), ("assign", "Assign to"), ("unassign", "Unassign"),
    ("link_risk", "Link to risk"), ("create_risk", "Create risk from selected"),
]
BULK_SCOPES = [("ids", "The selected findings"), ("filter", "Every finding matching the filter")]
MAX_SELECTED = 500


class BulkForm(forms.Form):
    action = forms.ChoiceField(choices=BULK_ACTIONS)
    ids = forms.CharField(widget=forms.HiddenInput, required=False)
    reason = forms.CharField(max_length=2000, required=False)
    assignee = forms.ModelChoiceField(queryset=User.objects.filter(is_active=True), required=False,
                                      empty_label="Assignee…")
    risk = forms.CharField(max_length=20, required=False)
    # "filter": every finding the queue filter `filter` matches, if that is still `confirmed` findings (the number
    # the person saw on the button); the server reads them again, no list of ids comes from the page.
    scope = forms.ChoiceField(choices=BULK_SCOPES, required=False)
    filter = forms.CharField(max_length=1000, required=False)
    confirmed = forms.IntegerField(min_value=0, required=False)

    ACTION_STATES = {"confirm": FindingState.CONFIRMED, "false_positive": FindingState.FALSE_POSITIVE,
                     "risk_accepted": FindingState.RISK_ACCEPTED, "fixed": FindingState.FIXED, "reopen": FindingState.NEW}

    def __init__(self, data=None, *, id_list=None):
        super().__init__(data)
        self.id_list = id_list or []

    @property
    def whole_filter(self) -> bool:
        return self.data.get("scope") == "filter"

    def clean(self):
        data = super().clean()
        action = data.get("action")
        if self.whole_filter:
            if data.get("confirmed") is None:
                raise forms.ValidationError("Confirm how many findings to apply it to.")
            if action == "create_risk":
                self.add_error("action", f"A risk is created from selected findings (at most {MAX_SELECTED}), "
                                         "not from a whole filter.")
        elif not self.id_list:
            raise forms.ValidationError("Select at least one finding.")
        elif len(self.id_list) > MAX_SELECTED:
            raise forms.ValidationError(f"Select at most {MAX_SELECTED} findings at once, or every finding matching "
                                        "the filter.")
        if self.ACTION_STATES.get(action) in HUMAN_DECISIONS and not (data.get("reason") or "").strip():
            self.add_error("reason", "Say why: a reason is required.")
        if action == "assign" and not data.get("assignee"):
            self.add_error("assignee", "Choose who to assign to.")
        if action == "link_risk" and not (data.get("risk") or "").strip():
            self.add_error("risk", "Give the risk's reference, e.g. RISK-0001.")
        return data


class MappingRuleForm(forms.ModelForm):
    class Meta:
        model = MappingRule
        fields = ["kind", "pattern"]
        help_texts = {"pattern": "Glob for paths and repositories (models/**/*.pkl), a substring for model names."}


class PullSourceForm(forms.Form):
    """A scheduled pull source. The location is checked here (and again when saved and at every pull)."""

    name = forms.CharField(max_length=100, help_text="Also names the import scope with the system, e.g. 'bandit-nightly'.")
    kind = forms.ChoiceField(label="Kind", choices=PullSource.Kind.choices, initial=PullSource.Kind.URL)
    location = forms.CharField(
        max_length=500, label="URL or folder",
        help_text="An http(s) URL that serves the report, or an absolute folder path inside the drop root; "
                  "files dropped there are imported and moved to its imported/ subfolder.")
    format = FormatField()
    system = forms.ModelChoiceField(queryset=AISystem.objects.active(), required=False,
                                    empty_label="— route by mapping rules —", to_field_name="slug")
    every_minutes = forms.IntegerField(label="Pull every (minutes)", min_value=MIN_EVERY_MINUTES,
                                       max_value=7 * 24 * 60, initial=60)
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, instance: PullSource | None = None, **kwargs):
        self.instance = instance
        if instance is not None:  # initial values only show on an unbound form
            kwargs["initial"] = {"name": instance.name, "kind": instance.kind, "location": instance.location,
                                 "format": instance.format, "system": instance.system.slug if instance.system else None,
                                 "every_minutes": instance.every_minutes, "enabled": instance.enabled}
        super().__init__(*args, **kwargs)
        self.fields["location"].help_text += f" Drop root: {drop_root()}."

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the source a name.")
        others = PullSource.objects.filter(name=name)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError("Another source has this name.")
        return name

    def clean(self):
        data = super().clean()
        kind, location = data.get("kind"), (data.get("location") or "").strip()
        if kind and location:
            data["location"] = location
            try:
                check_location(kind, location)
            except PullError as exc:
                self.add_error("location", str(exc))
        return data


class LinkRiskForm(forms.Form):
    """Link one finding to a risk of its own system: its risks are offered; another system's is refused by name."""

    risk = forms.CharField(max_length=20, label="Risk", help_text="A risk of this finding's system, e.g. RISK-0001.")

    def __init__(self, data=None, *, finding):
        super().__init__(data)
        self.finding = finding

    def clean_risk(self):
        from governance.risks.models import Risk

        ref = self.cleaned_data["risk"].strip().upper().split(" ", 1)[0]  # "RISK-0001 · title" from the list too
        risk = Risk.objects.select_related("system").filter(ref=ref).first()
        system = self.finding.system
        if risk is None:
            raise forms.ValidationError(f"No risk “{ref}” in the register.")
        if system is None:
            raise forms.ValidationError("This finding belongs to no system yet: route it (a mapping rule) first.")
        if risk.system_id != system.pk:
            raise forms.ValidationError(f"{risk.ref} is a risk of {risk.system.name}; this finding is of {system.name}. "
                                        f"Link it to one of {system.name}'s risks.")
        return risk


class CommentForm(forms.Form):
    body = forms.CharField(label="Comment", max_length=COMMENT_MAX, widget=forms.Textarea(attrs={"rows": 3}),
                           help_text="Mention someone with @ and their address (@ana, or @ana@example.com when several "
                                     "addresses start alike): they are e-mailed.")

    def clean_body(self):
        body = self.cleaned_data["body"].strip()
        if not body:
            raise forms.ValidationError("Write something first.")
        return body


class SavedViewForm(forms.Form):
    name = forms.CharField(max_length=60, label="Name", help_text="Saving an existing name replaces its filter.")
    query = forms.CharField(max_length=1000, required=False, widget=forms.HiddenInput)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError("Give the view a name.")
        return name
