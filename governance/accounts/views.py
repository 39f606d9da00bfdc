from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from governance.accounts import permissions as perms
from governance.accounts import selectors, services
from governance.accounts.forms import (ApiTokenForm, ApiTokenRotateForm, EmailLoginForm, OwnPasswordChangeForm,
                                       PasswordResetForm, UserCreateForm, UserEditForm)
from governance.accounts.models import ApiToken, Role, User
from governance.accounts.services import api_token_create, api_token_revoke, api_token_rotate


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = EmailLoginForm
    redirect_authenticated_user = True  # `next` is checked by Django (same host only)

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if any(e.code == "throttled" for e in form.errors.as_data().get("__all__", [])):
            response.status_code = 429
        return response


login = login_not_required(LoginView.as_view())
logout = auth_views.LogoutView.as_view()


def _profile_page(request: HttpRequest, *, form=None, new_token: str | None = None) -> HttpResponse:
    context = {"form": form or ApiTokenForm(user=request.user), "rotate_form": ApiTokenRotateForm(),
               "tokens": selectors.api_tokens_of(request.user, at=timezone.now()), "new_token": new_token,
               "State": ApiToken.State}
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
