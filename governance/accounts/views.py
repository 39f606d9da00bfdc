import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render, resolve_url
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from governance.accounts import permissions as perms
from governance.accounts import selectors, services, twofactor
from governance.accounts.forms import (ApiTokenForm, ApiTokenRotateForm, CodeForm, EmailLoginForm, EnrolForm,
                                       OwnPasswordChangeForm, PasswordResetForm, UserCreateForm, UserEditForm)
from governance.accounts.models import ApiToken, Role, User
from governance.accounts.services import api_token_create, api_token_revoke, api_token_rotate

PENDING = "rampart_2fa_pending"  # session key: who passed the password step, when, and where they were going
PENDING_SECONDS = 300  # to type the code
ENROL_KEY = "rampart_2fa_new_key"  # the key being set up, until a code confirms it


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = EmailLoginForm
    redirect_authenticated_user = True  # `next` is checked by Django (same host only)

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if any(e.code == "throttled" for e in form.errors.as_data().get("__all__", [])):
            response.status_code = 429
        return response

    def form_valid(self, form):
        """With an authenticator, the password is only the first step: remember who passed it, ask for a code."""
        user = form.get_user()
        if twofactor.authenticator(user) is None:
            return super().form_valid(form)
        self.request.session[PENDING] = {"user": user.pk, "backend": user.backend, "at": time.time(),
                                         "next": self.get_success_url()}
        return redirect("accounts:login-code")


login = login_not_required(LoginView.as_view())
logout = auth_views.LogoutView.as_view()


@login_not_required
def login_code(request: HttpRequest) -> HttpResponse:
    """The second sign-in step (or, for a session that began before its user enrolled, the proof it lacks)."""
    if request.user.is_authenticated:
        user, pending = request.user, {}
        if request.user.is_verified() or twofactor.authenticator(user) is None:
            return redirect("dashboard:home")
    else:
        pending = request.session.get(PENDING) or {}
        user = User.objects.filter(pk=pending.get("user"), is_active=True).first()
        if user is None or time.time() - pending.get("at", 0) > PENDING_SECONDS:
            request.session.pop(PENDING, None)
            if pending:
                messages.info(request, "That took too long: sign in again.")
            return redirect("accounts:login")
    form = CodeForm(request.POST if request.method == "POST" else None, user=user, where="sign-in")
    if request.method == "POST" and form.is_valid():
        if not request.user.is_authenticated:
            request.session.pop(PENDING)
            auth_login(request, user, backend=pending["backend"])
        otp_login(request, form.device)
        if form.device.__class__ is not TOTPDevice:
            left = services.two_factor_recovery_code_used(user=user, where="sign-in")
            messages.warning(request, f"You signed in with a recovery code; {left} left. "
                                      "Get new ones on My account if you are running low.")
        return redirect(pending.get("next") or resolve_url(settings.LOGIN_REDIRECT_URL))
    status = 429 if form.throttled else 400 if form.errors else 200
    return render(request, "accounts/login_code.html", {"form": form, "person": user}, status=status)


def _profile_page(request: HttpRequest, *, form=None, new_token: str | None = None) -> HttpResponse:
    context = {"form": form or ApiTokenForm(user=request.user), "rotate_form": ApiTokenRotateForm(),
               "tokens": selectors.api_tokens_of(request.user, at=timezone.now()), "new_token": new_token,
               "State": ApiToken.State, "two_factor": twofactor.authenticator(request.user) is not None}
    response = render(request, "accounts/profile.html", context)
    if new_token:
        add_never_cache_headers(response)  # the token is in this page only
    return response


def profile(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST if request.method == "POST" else None, user=request.user)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        _, new_token = api_token_create(user=request.user, name=data["name"], scopes=data["scopes"], days=data["days"])
        return _profile_page(request, new_token=new_token)
    return _profile_page(request, form=form)


def password_change(request: HttpRequest) -> HttpResponse:
    """One's own password: the current one, then the new one twice. Other sessions end; this one stays."""
    form = OwnPasswordChangeForm(request.user, request.POST if request.method == "POST" else None, request=request)
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = ""
    if request.method == "POST" and form.is_valid():
        user = services.password_change(user=request.user, password=form.cleaned_data["new_password1"])
        update_session_auth_hash(request, user)
        messages.success(request, "Password changed. You were signed out everywhere else.")
        return redirect(next_url or "accounts:profile")
    throttled = any(e.code == "throttled" for e in form.errors.as_data().get("old_password", []))
    return render(request, "accounts/password_change.html", {"form": form, "next": next_url},
                  status=429 if throttled else 400 if form.errors else 200)


def two_factor(request: HttpRequest) -> HttpResponse:
    """My account > two-factor: set it up (scan, confirm with a code, see the recovery codes once), or its state."""
    user = request.user
    device = twofactor.authenticator(user)
    if device is not None:
        return _two_factor_page(request, device=device)
    key = request.session.get(ENROL_KEY)
    if key is None:
        key = request.session[ENROL_KEY] = twofactor.new_key()
    form = EnrolForm(request.POST if request.method == "POST" else None, key=key)
    if request.method == "POST" and form.is_valid():
        device, codes = services.two_factor_enable(user=user, key=key, step=form.step)
        del request.session[ENROL_KEY]
        otp_login(request, device)  # this session has just proved the new device
        messages.success(request, "Two-factor sign-in is on: from now on you sign in with your password and a code.")
        return _two_factor_page(request, device=device, recovery_codes=codes)
    return _two_factor_page(request, form=form, key=key, status=400 if form.errors else 200)


def _two_factor_page(request, *, device=None, form=None, key=None, recovery_codes=None, code_form=None, status=200):
    user = request.user
    context = {"device": device, "form": form, "required": twofactor.is_required(user),
               "code_form": code_form or CodeForm(user=user, where="account"), "recovery_codes": recovery_codes,
               "codes_left": twofactor.recovery_codes_left(user) if device else 0}
    if key:
        context |= {"qr": twofactor.qr_svg(user, key), "secret": twofactor.secret_for_typing(key)}
    response = render(request, "accounts/two_factor.html", context, status=status)
    if recovery_codes or key:
        add_never_cache_headers(response)  # secrets are in this page only
    return response


def _code_checked(request, where: str):
    """The device a posted code proves, or a page answering why not (the person's devices, throttled, audited)."""
    device = twofactor.authenticator(request.user)
    if device is None:
        messages.info(request, "Two-factor sign-in is off.")
        return None, redirect("accounts:two-factor")
    form = CodeForm(request.POST, user=request.user, where=where)
    if form.is_valid():
        return form.device, None
    return None, _two_factor_page(request, device=device, code_form=form, status=429 if form.throttled else 400)


@require_POST
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    _, refusal = _code_checked(request, "turn off")
    if refusal:
        return refusal
    services.two_factor_disable(actor=request.user, user=request.user)
    messages.success(request, "Two-factor sign-in is off; your recovery codes no longer work."
                     + (" Your role requires it: set it up again to continue." if twofactor.is_required(request.user)
                        else ""))
    return redirect("accounts:two-factor")


@require_POST
def two_factor_recovery(request: HttpRequest) -> HttpResponse:
    _, refusal = _code_checked(request, "new recovery codes")
    if refusal:
        return refusal
    codes = services.recovery_codes_renew(user=request.user)
    messages.success(request, "New recovery codes: the earlier ones no longer work.")
    return _two_factor_page(request, device=twofactor.authenticator(request.user), recovery_codes=codes)


@require_POST
def token_rotate(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(request.user.api_tokens, pk=token_id)
    form = ApiTokenRotateForm(request.POST)
    try:
        if not form.is_valid():
            raise ValidationError(form.errors["grace_hours"])
        _, new_token = api_token_rotate(token=token, actor=request.user, grace_hours=form.cleaned_data["grace_hours"])
    except ValidationError as exc:
        messages.error(request, f"Token “{token.name}” not rotated: {' '.join(exc.messages)}")
        return redirect("accounts:profile")
    token.refresh_from_db()
    until = timezone.localtime(token.expires_at)
    messages.success(request, f"Token “{token.name}” rotated. The old one works until {until:%Y-%m-%d %H:%M %Z}; "
                              "switch your scripts to the new one.")
    return _profile_page(request, new_token=new_token)


@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(request.user.api_tokens, pk=token_id)
    api_token_revoke(token=token, actor=request.user)
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("accounts:profile")


# --- people (Admin) -----------------------------------------------------------------------------------------------

def _require_manager(request: HttpRequest) -> None:
    if not perms.can_manage_users(request.user):
        raise PermissionDenied("Only an admin can manage people.")


def user_list(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    filters = selectors.UserFilters(
        q=request.GET.get("q", "").strip()[:100],
        role=request.GET.get("role", "") if request.GET.get("role") in [*Role.values, "none"] else "",
        status=request.GET.get("status", "") if request.GET.get("status") in selectors.STATUSES else "",
    )
    context = {"page": selectors.user_page(filters, request.GET.get("page")), "filters": filters,
               "roles": Role.choices, "querystring": request.GET.copy()}
    partial = request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request
    response = render(request, "accounts/users.html#results" if partial else "accounts/users.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _user_page(request, target, *, form=None, password_form=None, one_time_password=None, status=200):
    context = {
        "target": target,
        "form": form or UserEditForm(user=target),
        "password_form": password_form or PasswordResetForm(user=target),
        "owned_systems": services.active_owned_systems(target),
        "active_tokens": target.api_tokens.filter(revoked_at__isnull=True).count(),
        "authenticator": twofactor.authenticator(target), "two_factor_required": twofactor.is_required(target),
        "one_time_password": one_time_password,
    }
    response = render(request, "accounts/user_edit.html", context, status=status)
    if one_time_password:
        add_never_cache_headers(response)  # the password is in this page only
    return response


def user_create(request: HttpRequest) -> HttpResponse:
    _require_manager(request)
    form = UserCreateForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        user, generated = services.user_create(actor=request.user, email=data["email"], full_name=data["full_name"],
                                               roles=data["roles"], password=form.chosen_password)
        messages.success(request, f"{user} added. They sign in with {user.email}.")
        if generated:
            return _user_page(request, user, one_time_password=generated)
        return redirect("accounts:user-edit", user.pk)
    return render(request, "accounts/user_create.html", {"form": form}, status=400 if form.errors else 200)


def user_edit(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    target = get_object_or_404(User, pk=pk)
    form = UserEditForm(request.POST if request.method == "POST" else None, user=target)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        was_active = target.is_active
        try:
            target = services.user_update(actor=request.user, user=target, full_name=data["full_name"],
                                          roles=data["roles"], is_active=data["is_active"])
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            if was_active and not target.is_active:
                messages.success(request, f"{target} deactivated; their API tokens were revoked.")
            else:
                messages.success(request, "Changes saved.")
            return redirect("accounts:user-edit", target.pk)
    return _user_page(request, target, form=form, status=400 if form.errors else 200)


@require_POST
def user_two_factor_reset(request: HttpRequest, pk: int) -> HttpResponse:
    """For a person who lost their phone and their recovery codes: they sign in with the password alone again (and
    are sent to set it up anew if their role requires it)."""
    _require_manager(request)
    target = get_object_or_404(User, pk=pk)
    services.two_factor_disable(actor=request.user, user=target)
    messages.success(request, f"Two-factor sign-in of {target} removed.")
    return redirect("accounts:user-edit", target.pk)


@require_POST
def user_password(request: HttpRequest, pk: int) -> HttpResponse:
    _require_manager(request)
    target = get_object_or_404(User, pk=pk)
    form = PasswordResetForm(request.POST, user=target)
    if not form.is_valid():
        return _user_page(request, target, password_form=form, status=400)
    if form.change_only:
        services.user_password_change_require(actor=request.user, user=target)
        messages.success(request, f"{target} must choose a new password: every page sends them to do so.")
        return redirect("accounts:user-edit", target.pk)
    generated = services.user_password_reset(actor=request.user, user=target, password=form.chosen_password)
    if target.pk == request.user.pk:
        target.refresh_from_db()
        update_session_auth_hash(request, target)  # keep the admin who reset their own password signed in
    messages.success(request, f"Password of {target} reset; their other sessions have ended."
                              + (" They choose their own at their next sign-in." if target.pk != request.user.pk else ""))
    if generated:
        return _user_page(request, target, one_time_password=generated)
    return redirect("accounts:user-edit", target.pk)
