from django.core.management.base import BaseCommand, CommandError

from governance.accounts.models import User
from governance.accounts.services import api_token_create


class Command(BaseCommand):
    help = "Create an API token for a user and print it once (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="the user's email")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. 'ci-pipeline'")

    def handle(self, *args, user, name, **options):
        account = User.objects.filter(email__iexact=user).first()
        if account is None:
            raise CommandError(f"No user with email {user!r}.")
        if account.api_tokens.filter(name=name).exists():
            raise CommandError(f"{user} already has a token named {name!r}; choose another name.")
        _, plain = api_token_create(user=account, name=name)
        self.stdout.write(plain)
        self.stderr.write("Store this token now: it cannot be shown again.")
