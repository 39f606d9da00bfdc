from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from governance.audit.checkpoints import checkpoints_read
from governance.audit.selectors import verify_chain


class Command(BaseCommand):
    help = ("Check the audit trail: the chain, each event's keyed MAC, the sealed head and the checkpoints; "
            "exit 1 naming what is wrong.")

    def add_arguments(self, parser):
        parser.add_argument("--checkpoints", action="append", type=Path, metavar="FILE",
                            help="checkpoint lines to compare (repeatable; default RAMPART_AUDIT_CHECKPOINT_FILE)")

    def handle(self, *args, checkpoints=None, **options):
        found, bad = self._checkpoints(checkpoints)
        report = verify_chain(checkpoints=found)
        problems = [p.reason for p in sorted(report.problems, key=lambda p: p.seq)] + bad
        if problems:
            for reason in problems:
                self.stderr.write(reason)
            if report.more_problems:
                self.stderr.write(f"… and {report.more_problems} more")
            if report.wrong_key:
                self.stderr.write("No keyed event verifies: is RAMPART_AUDIT_KEY (or SECRET_KEY, when it is unset) "
                                  "the key the trail was written with? Earlier keys go in RAMPART_AUDIT_KEY_FALLBACKS.")
            first = report.problem
            where = f" at event #{first.seq}" if first else ""
            raise CommandError(f"Audit trail broken{where}: " + "; ".join(problems[:5])
                               + f" ({report.checked} events checked)")
        from governance.risks.selectors import decisions_verify

        broken = decisions_verify()
        if broken:
            raise CommandError("Signed decisions altered: " + "; ".join(broken[:10]))
        self.stdout.write(self.style.SUCCESS(self._summary(report, found)))

    def _checkpoints(self, paths):
        explicit = bool(paths)
        if not explicit:
            paths = [settings.RAMPART_AUDIT_CHECKPOINT_FILE] if settings.RAMPART_AUDIT_CHECKPOINT_FILE else []
        found, bad = [], []
        for path in paths:
            try:
                more, wrong = checkpoints_read(path)
            except FileNotFoundError:
                if explicit:
                    raise CommandError(f"No checkpoint file at {path}.") from None
                self.stderr.write(f"No checkpoint file at {path} yet (audit_checkpoint writes it).")
                continue
            found += more
            bad += wrong
        return found, bad

    @staticmethod
    def _summary(report, found) -> str:
        text = f"Audit trail intact: {report.checked} events verified"
        if report.legacy:
            text += f" ({report.legacy} written before the keyed chain, with plain SHA-256)"
        text += ", head sealed."
        cp = report.latest_checkpoint
        if cp is None:
            return text + (" No checkpoint compared: events removed from the end would go unnoticed."
                           if not found else "")
        after = report.last_seq - cp.seq
        return text + (f" {report.checkpoints_matched} checkpoints match, the latest event #{cp.seq} written at "
                       f"{cp.at}" + (f"; the {after} events after it are covered by the MAC only." if after else "."))
