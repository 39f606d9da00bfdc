from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from governance.audit.checkpoints import CheckpointRefused, checkpoint_write


class Command(BaseCommand):
    help = ("Record the end of the audit chain outside the database (the checkpoint file, the log, e-mail) and "
            "print the line; refused when the events since the last checkpoint do not verify.")

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, help="append here (default RAMPART_AUDIT_CHECKPOINT_FILE)")
        parser.add_argument("--email", action="append", metavar="ADDRESS",
                            help="e-mail the line (repeatable; default RAMPART_AUDIT_CHECKPOINT_EMAIL)")

    def handle(self, *args, file=None, email=None, **options):
        path = file or settings.RAMPART_AUDIT_CHECKPOINT_FILE
        try:
            checkpoint = checkpoint_write(path=path, email_to=email or settings.RAMPART_AUDIT_CHECKPOINT_EMAIL)
        except CheckpointRefused as exc:
            raise CommandError(f"Checkpoint refused, the audit trail does not verify: {exc}") from exc
        if checkpoint is None:
            self.stderr.write("Nothing to record: the audit trail is empty or has not moved since the last checkpoint.")
            return
        self.stdout.write(checkpoint.line())
        if path:
            self.stderr.write(f"Checkpoint of event #{checkpoint.seq} appended to {path}.")
