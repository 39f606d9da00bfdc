from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from governance.accounts import throttle


class EmailLoginForm(AuthenticationForm):
    username = forms.EmailField(label="Email", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}))
    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-ins from here. Wait a few minutes and try again.",
    }

    def clean(self):
        email = str(self.data.get("username", ""))[:254]
        if throttle.blocked(self.request, email):
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            data = super().clean()
        except ValidationError:
            throttle.failed(self.request, email)
            raise
        throttle.succeeded(self.request, email)
        return data


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'ci-pipeline'.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if self.user.api_tokens.filter(name=name).exists():
            raise forms.ValidationError("You already have a token with this name.")
        return name
