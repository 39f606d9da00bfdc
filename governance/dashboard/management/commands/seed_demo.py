from django.core.management.base import BaseCommand

from governance.dashboard.demo import DEMO_PASSWORD, seed_demo


class Command(BaseCommand):
    help = "Create demo users (one per role) and a small demo portfolio (idempotent)."

    def handle(self, *args, **options):
        logins = seed_demo()
        from governance.lineage.demo import seed_lineage
        from governance.lineage.rules import rules_evaluate

        from governance.dashboard.demo_findings import seed_findings

        seed_findings()
        seed_lineage()
        rules_evaluate()
        from governance.dashboard.demo_exercises import seed_exercises
        from governance.dashboard.demo_history import seed_history

        seed_exercises()  # before the history: its replay reads when each system was first exercised

        seed_history()
        self.stdout.write("Demo logins (password: %s):" % DEMO_PASSWORD)
        for email, role in logins:
            self.stdout.write(f"  {role:<14} {email}")
