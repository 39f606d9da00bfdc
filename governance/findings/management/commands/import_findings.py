import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from governance.findings.imports import FORMAT_CHOICES, ImportRequestError, import_run_create
from governance.findings.models import ImportRun
from governance.inventory.models import AISystem
from worker.scanners import format_name


class Command(BaseCommand):
    help = "Queue a scanner report for import; with --wait, wait for the worker and print the counts."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--format", default="auto", type=format_name, choices=FORMAT_CHOICES,
                            help="the report's format as the tool names it (pip-audit, osv-scanner …) or auto")
        parser.add_argument("--system", help="slug of the AI system; omit to route by mapping rules")
        parser.add_argument("--source", default="", help="names the feed; defaults to the (detected) format")
        parser.add_argument("--repository", default="")
        parser.add_argument("--wait", action="store_true", help="wait until the worker has finished")
        parser.add_argument("--timeout", type=int, default=600)

    def handle(self, *args, file, format, system, source, repository, wait, timeout, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file.")
        target = None
        if system:
            target = AISystem.objects.filter(slug=system).first()
            if target is None:
                raise CommandError(f"No AI system with slug {system!r}.")
        try:
            with path.open("rb") as stream:
                run = import_run_create(actor=None, stream=stream, filename=path.name, fmt=format, system=target,
                                        source=source, repository=repository, via=ImportRun.Via.CLI)
        except ImportRequestError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"import #{run.pk} {run.status} (sha256 {run.sha256})")
        if wait:
            deadline = time.monotonic() + timeout
            while run.status in (ImportRun.Status.QUEUED, ImportRun.Status.RUNNING) and time.monotonic() < deadline:
                time.sleep(0.5)
                run.refresh_from_db()
        if run.status == ImportRun.Status.FAILED:
            raise CommandError(f"import #{run.pk} failed: {run.error}")
        if run.status == ImportRun.Status.DONE:
            self.stdout.write("  ".join(f"{k}={run.counts.get(k, 0)}" for k in ("created", "updated", "unchanged", "closed", "reopened")))
        elif wait:
            raise CommandError(f"import #{run.pk} still {run.status} after {timeout}s; is a worker running?")
