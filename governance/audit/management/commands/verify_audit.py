from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from governance.audit.verify import WRONG_KEY, trail_verify


class Command(BaseCommand):
    help = ("Check the audit trail: the chain, each event's keyed MAC, the sealed head and the checkpoints; "
            "exit 1 naming what is wrong.")

    def add_arguments(self, parser):
        parser.add_argument("--checkpoints", action="append", type=Path, metavar="FILE",
                            help="checkpoint lines to compare (repeatable; default RAMPART_AUDIT_CHECKPOINT_FILE)")

    def handle(self, *args, checkpoints=None, **options):
        try:
            result = trail_verify(checkpoints)
        except FileNotFoundError as exc:
            raise CommandError(f"No checkpoint file at {exc.filename}.") from None
        for note in result.notes:
            self.stderr.write(note)
        if result.problems:
            for reason in result.problems:
                self.stderr.write(reason)
            if result.report.more_problems:
                self.stderr.write(f"… and {result.report.more_problems} more")
            if result.wrong_key:
                self.stderr.write(WRONG_KEY)
        if not result.ok:
            raise CommandError(result.summary)
        self.stdout.write(self.style.SUCCESS(result.summary))
