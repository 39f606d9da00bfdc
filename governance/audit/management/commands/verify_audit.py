from django.core.management.base import BaseCommand, CommandError

from governance.audit.selectors import verify_chain


class Command(BaseCommand):
    help = "Check the hash chain of the audit trail; exit 1 naming the first broken event."

    def handle(self, *args, **options):
        checked, problem = verify_chain()
        if problem is not None:
            raise CommandError(f"Audit trail broken at event #{problem.seq}: {problem.reason} ({checked} events verified before it)")
        from governance.risks.selectors import decisions_verify

        broken = decisions_verify()
        if broken:
            raise CommandError("Signed decisions altered: " + "; ".join(broken[:10]))
        self.stdout.write(self.style.SUCCESS(f"Audit trail intact: {checked} events verified."))
