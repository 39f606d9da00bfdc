from django import forms
from django.conf import settings
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator

from governance.accounts import services, throttle, twofactor
from governance.accounts.models import (GRACE_DEFAULT_HOURS, GRACE_MAX_HOURS, TOKEN_DEFAULT_DAYS, Role, Scope,
                                       User)


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
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices, widget=forms.CheckboxSelectMultiple, initial=[Scope.READ],
        help_text="Only what the script needs: a pipeline that checks the release gate needs just 'gate'. "
                  "Scopes never go beyond your role.",
        error_messages={"required": "Choose at least one scope."})
    days = forms.IntegerField(label="Expires after (days)", initial=TOKEN_DEFAULT_DAYS, min_value=1,
                              help_text="You are e-mailed a few days before it ends; rotate it then.")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["days"].validators.append(MaxValueValidator(settings.RAMPART_API_TOKEN_MAX_DAYS))
        self.fields["days"].widget.attrs["max"] = settings.RAMPART_API_TOKEN_MAX_DAYS

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if self.user.api_tokens.holding_name().filter(name=name).exists():
            raise forms.ValidationError("You already have a token with this name.")
        return name


class ApiTokenRotateForm(forms.Form):
    grace_hours = forms.IntegerField(label="Old token keeps working for (hours)", initial=GRACE_DEFAULT_HOURS,
                                     min_value=1, max_value=GRACE_MAX_HOURS)


# --- people (Admin) -----------------------------------------------------------------------------------------------

ROLE_FIELD_HELP = "A person needs at least one role; the role decides what they may see and change."


class RolesField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs):
        super().__init__(choices=Role.choices, label="Roles", help_text=ROLE_FIELD_HELP,
                         error_messages={"required": "Pick at least one role."}, **kwargs)


class PasswordChoiceMixin(forms.Form):
    """Either the admin types a password (Django's validators apply) or one is generated and shown once."""

    GENERATE, SET = "generate", "set"
    password_mode = forms.ChoiceField(
        label="Password", widget=forms.RadioSelect, initial=GENERATE,
        choices=[(GENERATE, "Generate a one-time password (shown once)"), (SET, "Set a password now")],
    )
    password1 = forms.CharField(label="New password", required=False, strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label="New password, again", required=False, strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def password_subject(self) -> User:
        """The user the validators compare the password with (name and email must not be guessable from it)."""
        raise NotImplementedError

    def clean(self):
        data = super().clean()
        if data.get("password_mode") != self.SET:
            data["password1"] = data["password2"] = ""
            return data
        password = data.get("password1") or ""
        if not password:
            self.add_error("password1", "Type a password, or choose to generate one.")
            return data
        if password != (data.get("password2") or ""):
            self.add_error("password2", "The two passwords differ.")
        try:
            password_validation.validate_password(password, user=self.password_subject())
        except ValidationError as exc:
            self.add_error("password1", exc)
        return data

    @property
    def chosen_password(self) -> str | None:
        """The password the admin typed, or None when one is to be generated."""
        return self.cleaned_data["password1"] if self.cleaned_data["password_mode"] == self.SET else None


class UserCreateForm(PasswordChoiceMixin, forms.Form):
    email = forms.EmailField(label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    full_name = forms.CharField(label="Full name", max_length=150)
    roles = RolesField()
    field_order = ["email", "full_name", "roles", "password_mode", "password1", "password2"]

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data["email"]).strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError("Someone already signs in with this address.")
        return email

    def password_subject(self) -> User:
        return User(email=self.cleaned_data.get("email") or self.data.get("email", ""),
                    full_name=self.cleaned_data.get("full_name", ""))


class UserEditForm(forms.Form):
    full_name = forms.CharField(label="Full name", max_length=150)
    roles = RolesField()
    is_active = forms.BooleanField(label="Active: may sign in and use API tokens", required=False)

    def __init__(self, *args, user: User, **kwargs):
        kwargs.setdefault("initial", {"full_name": user.full_name, "roles": sorted(user.role_names),
                                      "is_active": user.is_active})
        super().__init__(*args, **kwargs)
        self.user = user


class PasswordResetForm(PasswordChoiceMixin, forms.Form):
    """A generated or typed password (the person changes it at next sign-in), or just that change, password kept."""

    REQUIRE = "require"

    def __init__(self, *args, user: User, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["password_mode"].choices = [
            *self.fields["password_mode"].choices,
            (self.REQUIRE, "Keep the password; they must choose a new one at their next page"),
        ]

    def password_subject(self) -> User:
        return self.user

    @property
    def change_only(self) -> bool:
        return self.cleaned_data["password_mode"] == self.REQUIRE


# --- one's own password ----------------------------------------------------------------------------------------

class OwnPasswordChangeForm(auth_forms.PasswordChangeForm):
    """Current password, then the new one twice (Django's validators). Wrong current passwords count towards the
    sign-in throttle of this address and e-mail: a borrowed session cannot be used to guess the password."""

    error_messages = {
        **auth_forms.PasswordChangeForm.error_messages,
        "throttled": "Too many wrong passwords from here. Wait a few minutes and try again.",
        "unchanged": "Choose a password different from the current one.",
    }

    def __init__(self, user, *args, request=None, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request
        self.fields["old_password"].label = "Current password"
        self.fields["new_password1"].help_text = ("At least 10 characters, not a common password, not close to your "
                                                  "name or e-mail.")
        self.fields["new_password2"].label, self.fields["new_password2"].help_text = "New password, again", ""

    def clean_old_password(self):
        if throttle.blocked(self.request, self.user.email):
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            password = super().clean_old_password()
        except ValidationError:
            throttle.failed(self.request, self.user.email)
            raise
        return password

    def clean_new_password2(self):
        password = self.cleaned_data["new_password2"]
        if password and self.user.check_password(password):
            raise ValidationError(self.error_messages["unchanged"], code="unchanged")
        return password

    def save(self, commit=True):
        raise NotImplementedError("services.password_change writes the password (audited)")


# --- two-factor ----------------------------------------------------------------------------------------------------

class CodeForm(forms.Form):
    """A code from the authenticator app or a recovery code, checked against the person's devices (twofactor.verify),
    throttled per person; every refused code is audited. `device` is the one that accepted it."""

    code = forms.CharField(label="Code", max_length=32, strip=True, widget=forms.TextInput(attrs={
        "autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false", "autofocus": True}),
        help_text="The 6 digits your authenticator app shows, or one of your recovery codes.")
    error_messages = {
        "throttled": "Too many wrong codes. Wait a few minutes and try again.",
        "wait": "Too many wrong codes in a row: wait a little before the next try.",
        "wrong": "That code is not right. Codes change every 30 seconds; a recovery code works once.",
    }

    def __init__(self, *args, user: User, where: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.user, self.where, self.device = user, where, None

    def clean_code(self):
        if throttle.code_blocked(self.user):
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        device, why = twofactor.verify(self.user, self.cleaned_data["code"])
        if device is None:
            throttle.code_failed(self.user)
            services.two_factor_code_failed(user=self.user, where=self.where)
            raise ValidationError(self.error_messages[why], code="throttled" if why == "wait" else why)
        throttle.code_succeeded(self.user)
        self.device = device
        return self.cleaned_data["code"]

    @property
    def throttled(self) -> bool:
        return any(e.code == "throttled" for e in self.errors.as_data().get("code", []))


class EnrolForm(forms.Form):
    """The first code from the app, checked against the key shown (kept in the session until confirmed)."""

    code = forms.CharField(label="Code from the app", max_length=10, strip=True, widget=forms.TextInput(attrs={
        "autocomplete": "one-time-code", "inputmode": "numeric", "pattern": "[0-9 ]*"}),
        help_text="The 6 digits it shows now.")

    def __init__(self, *args, key: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.key, self.step = key, None

    def clean_code(self):
        self.step = twofactor.check_new_key(self.key, self.cleaned_data["code"])
        if self.step is None:
            raise ValidationError("That code does not match. Check that the app added the account and that the "
                                  "phone's clock is right, then type the code it shows now.")
        return self.cleaned_data["code"]
