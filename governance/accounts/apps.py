from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _setup_roles(sender, **kwargs):
    from governance.accounts.roles import setup_roles

    setup_roles(strict=False)


class AccountsConfig(AppConfig):
    name = "governance.accounts"
    label = "accounts"

    def ready(self):
        # Groups need the permissions that post_migrate creates, so set them up right after.
        post_migrate.connect(_setup_roles, dispatch_uid="rampart_setup_roles")
        from governance.accounts import twofactor

        twofactor.required_roles()  # a misspelt RAMPART_TOTP_REQUIRED_ROLES stops the start, naming it
