"""`manage.py liveness worker|beat`: exit 0 while this host's worker (or beat) shows signs of life, else 1.
The health checks of docker-compose.yml run it."""
from __future__ import annotations

import socket

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from governance.dashboard.liveness import workers_seen
from worker.liveness import beat_tick_age


class Command(BaseCommand):
    help = "Exit 0 if this host's Celery worker wrote a heartbeat (or beat ticked) recently, 1 if not."

    def add_arguments(self, parser):
        parser.add_argument("service", choices=["worker", "beat"])
        parser.add_argument("--max-age", type=float, default=None,
                            help="seconds (default: RAMPART_WORKER_STALE_SECONDS)")

    def handle(self, *args, service: str, max_age: float | None, **options):
        max_age = max_age or settings.RAMPART_WORKER_STALE_SECONDS
        if service == "worker":  # Celery names a worker celery@<host> (or <name>@<host> with -n)
            age = workers_seen(name_suffix=f"@{socket.gethostname()}")["last_seen_seconds"]
        else:
            age = beat_tick_age()
        if age is None or age > max_age:
            seen = "never" if age is None else f"{age:.0f} s ago"
            raise CommandError(f"{service}: no sign of life within {max_age:.0f} s (last: {seen})", returncode=1)
        self.stdout.write(f"{service}: alive, last sign of life {age:.1f} s ago")
