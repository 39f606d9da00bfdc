from django.core.management.base import BaseCommand

from governance.rmf.catalogues import load_catalogues


class Command(BaseCommand):
    help = "Load NIST AI RMF, AI 600-1, trustworthiness, MITRE ATLAS and OWASP LLM catalogues (idempotent)."

    def handle(self, *args, **options):
        for name, count in load_catalogues().items():
            self.stdout.write(f"{name}: {count}")
