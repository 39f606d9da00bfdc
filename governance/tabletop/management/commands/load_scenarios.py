"""Load the scenarios shipped in governance/tabletop/scenarios/ (idempotent: unchanged files change nothing)."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from governance.tabletop.loader import load_builtin_scenarios


class Command(BaseCommand):
    help = "Load or update the built-in tabletop scenarios."

    def handle(self, *args, **options):
        for slug, outcome in load_builtin_scenarios():
            self.stdout.write(f"{outcome:10} {slug}")
