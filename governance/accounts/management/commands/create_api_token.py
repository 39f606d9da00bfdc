from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from governance.accounts.models import TOKEN_DEFAULT_DAYS, Scope, User
from governance.accounts.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="the user's email")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. 'ci-pipeline'")
        parser.add_argument("--scopes", required=True,
                            help=f"comma-separated, from {','.join(Scope.values)}; e.g. 'gate' for a pipeline that "
                                 "only reads the release gate (scopes never go beyond the user's role)")
        parser.add_argument("--days", type=int, default=TOKEN_DEFAULT_DAYS,
                            help=f"days until it expires (default {TOKEN_DEFAULT_DAYS}, at most "
                                 f"RAMPART_API_TOKEN_MAX_DAYS={settings.RAMPART_API_TOKEN_MAX_DAYS})")

    def handle(self, *args, user, name, scopes, days, **options):
        account = User.objects.filter(email__iexact=user).first()
        if account is None:
            raise CommandError(f"No user with email {user!r}.")
        if account.api_tokens.holding_name().filter(name=name).exists():
            raise CommandError(f"{user} already has a token named {name!r}; choose another name.")
        chosen = [s.strip() for s in scopes.split(",") if s.strip()]
        try:
            token, plain = api_token_create(user=account, name=name, scopes=chosen, days=days)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(plain)
        self.stderr.write(f"Store this token now: it cannot be shown again. Scopes: {', '.join(token.scopes)}; "
                          f"expires {timezone.localtime(token.expires_at):%Y-%m-%d %H:%M %Z}.")
