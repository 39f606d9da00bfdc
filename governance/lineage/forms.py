from __future__ import annotations

from django import forms

from governance import outbound
from governance.lineage import secrets
from governance.lineage.connectors import mapping_text, parse_mapping
from governance.lineage.models import Connector


class ConnectorForm(forms.Form):
    kind = forms.ChoiceField(choices=Connector.Kind.choices)
    name = forms.CharField(max_length=100)
    base_url = forms.CharField(label="Base URL", max_length=500,
                               help_text="e.g. http://marquez:5000 or https://mlflow.example.com")
    auth = forms.ChoiceField(label="Authentication", choices=Connector.Auth.choices)
    credential = forms.CharField(
        required=False, max_length=2000, widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Write-only: stored encrypted and never shown again. Or write env:VARIABLE to read it from the "
                  "worker's environment. Leave empty to keep the current one.")
    clear_credential = forms.BooleanField(required=False, label="Remove the stored credential")
    every_minutes = forms.IntegerField(label="Run every (minutes)", min_value=1, max_value=7 * 24 * 60, initial=60)
    system_mapping = forms.CharField(
        required=False, label="MLflow model → AI system", widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One 'registered-model-glob = system-slug' per line; first match wins. "
                  "New versions of a mapped model are added to that system's inventory.")
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, instance: Connector | None = None, **kwargs):
        self.instance = instance
        bound = (args and args[0] is not None) or kwargs.get("data") is not None
        if instance is not None and not bound:
            kwargs["initial"] = {"kind": instance.kind, "name": instance.name, "base_url": instance.base_url,
                                 "auth": instance.auth, "every_minutes": instance.every_minutes, "enabled": instance.enabled,
                                 "system_mapping": mapping_text(instance.system_mapping)}
        super().__init__(*args, **kwargs)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        others = Connector.objects.filter(name=name)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise forms.ValidationError("Another connector has this name.")
        return name

    def clean_base_url(self):
        url = self.cleaned_data["base_url"].strip()
        outbound.check_url(url, raise_as=forms.ValidationError)
        return url

    def clean_system_mapping(self):
        try:
            return parse_mapping(self.cleaned_data.get("system_mapping") or "")
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean_credential(self):
        value = self.cleaned_data.get("credential") or ""
        if value.startswith("env:") and (refused := secrets.env_name_error(value[4:].strip())):
            raise forms.ValidationError(refused)
        return value

    def save_args(self) -> tuple[dict, str | None]:
        d = self.cleaned_data
        data = {k: d[k] for k in ("kind", "name", "base_url", "auth", "every_minutes", "system_mapping", "enabled")}
        credential = "" if d["clear_credential"] else (d["credential"] or None)
        return data, credential
