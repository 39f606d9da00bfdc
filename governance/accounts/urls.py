from django.urls import path

from governance.accounts import views

app_name = "accounts"
urlpatterns = [
    path("login/", views.login, name="login"),
    path("login/code/", views.login_code, name="login-code"),
    path("logout/", views.logout, name="logout"),
    path("me/", views.profile, name="profile"),
    path("me/password/", views.password_change, name="password-change"),
    path("me/two-factor/", views.two_factor, name="two-factor"),
    path("me/two-factor/off/", views.two_factor_disable, name="two-factor-disable"),
    path("me/two-factor/recovery-codes/", views.two_factor_recovery, name="two-factor-recovery"),
    path("me/tokens/<int:token_id>/rotate/", views.token_rotate, name="token-rotate"),
    path("me/tokens/<int:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path("users/", views.user_list, name="users"),
    path("users/new/", views.user_create, name="user-create"),
    path("users/<int:pk>/", views.user_edit, name="user-edit"),
    path("users/<int:pk>/password/", views.user_password, name="user-password"),
    path("users/<int:pk>/two-factor/reset/", views.user_two_factor_reset, name="user-two-factor-reset"),
]
