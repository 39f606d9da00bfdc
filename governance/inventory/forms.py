from __future__ import annotations

from django import forms
from django.utils.text import slugify

from governance.accounts.models import Role, User
from governance.inventory.models import AIModel, AISystem, DataCategory, Dataset, DesignApproach


def product_owners():
    return User.objects.filter(is_active=True, groups__name__in=[Role.PRODUCT_OWNER, Role.CISO]).distinct()


class AISystemForm(forms.ModelForm):
    data_categories = forms.MultipleChoiceField(
        choices=DataCategory.choices, required=False, widget=forms.CheckboxSelectMultiple,
        label="Data categories handled",
    )
    slug = forms.SlugField(max_length=80, required=False, help_text="Leave empty to derive it from the name.")

    class Meta:
        model = AISystem
        fields = [
            "name", "slug", "purpose", "business_owner", "technical_owner", "business_unit",
            "lifecycle_stage", "risk_tier", "deployment", "design_approach", "uses_generative_ai",
            "third_party_provider", "autonomy", "human_oversight", "data_categories",
            "executes_generated_code", "code_execution_isolation",
        ]
        labels = {"uses_generative_ai": "Uses generative AI", "third_party_provider": "Third-party provider"}
        widgets = {
            "purpose": forms.Textarea(attrs={"rows": 3}),
            "human_oversight": forms.Textarea(attrs={"rows": 2}),
            "code_execution_isolation": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, may_edit_ownership: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["business_owner"].queryset = product_owners()
        self.fields["technical_owner"].queryset = User.objects.filter(is_active=True)
        if not may_edit_ownership:
            for name in AISystem.OWNERSHIP_FIELDS:
                self.fields[name].disabled = True
                self.fields[name].required = False
                self.fields[name].help_text = "Only a CISO or an admin can change ownership."

    def clean_slug(self):
        slug = self.cleaned_data.get("slug") or slugify(self.cleaned_data.get("name") or "")[:80]
        if not slug:
            if not self.cleaned_data.get("name"):
                return ""  # the missing name has its own error; a second one on the slug only confuses
            raise forms.ValidationError("Give a slug of letters, digits and hyphens.")
        clash = AISystem.objects.filter(slug=slug).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(f"The slug “{slug}” is already used by another system.")
        return slug

    def clean(self):
        data = super().clean()
        if data.get("executes_generated_code") and not (data.get("code_execution_isolation") or "").strip():
            self.add_error("code_execution_isolation", "Describe how generated code is isolated (sandbox, network, secrets).")
        if data.get("design_approach") == DesignApproach.THIRD_PARTY_API and not (data.get("third_party_provider") or "").strip():
            self.add_error("third_party_provider", "Name the provider of the third-party model API.")
        return data


class AIModelForm(forms.ModelForm):
    class Meta:
        model = AIModel
        fields = ["name", "version", "format", "source_uri", "sha256", "provider", "licence"]

    def __init__(self, *args, system: AISystem, **kwargs):
        super().__init__(*args, **kwargs)
        self.system = system

    def clean_sha256(self):
        value = (self.cleaned_data.get("sha256") or "").strip().lower()
        if value and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value)):
            raise forms.ValidationError("A sha256 is 64 hexadecimal characters.")
        return value

    def clean(self):
        data = super().clean()
        if AIModel.objects.filter(system=self.system, name=data.get("name"), version=data.get("version") or "").exists():
            raise forms.ValidationError("This model version is already registered for this system.")
        return data


class DatasetForm(forms.ModelForm):
    class Meta:
        model = Dataset
        fields = ["name", "source_uri", "licence", "contains_pii", "provenance_documented"]

    def __init__(self, *args, system: AISystem, **kwargs):
        super().__init__(*args, **kwargs)
        self.system = system

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Dataset.objects.filter(system=self.system, name=name).exists():
            raise forms.ValidationError("A dataset with this name is already registered for this system.")
        return name
