"""`manage.py posture_backfill [--days 365] [--queue]`: reconstruct past days' posture snapshots from history.

What history allows is said in governance/dashboard/snapshots.py. Days that already have a live snapshot are kept.
"""
from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.utils import timezone

from governance import queueing
from governance.dashboard.snapshots import snapshots_backfill


class Command(BaseCommand):
    help = "Reconstruct the daily posture snapshots of past days (up to yesterday) from findings' state history, " \
           "risk decisions and audited RMF changes."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=365, help="how many days back from yesterday (default 365)")
        parser.add_argument("--queue", action="store_true", help="send the work to the worker instead of doing it here")

    def handle(self, *args, days: int, queue: bool, **options):
        last = timezone.localdate() - timedelta(days=1)
        first = last - timedelta(days=max(days, 1) - 1)
        if queue:
            sent = queueing.send("posture_backfill", first.isoformat(), last.isoformat())
            self.stdout.write(f"{'Sent' if sent else 'Could not send'} the backfill of {first}..{last} to the worker.")
            return
        written = snapshots_backfill(first=first, last=last)
        self.stdout.write(f"Backfilled {first}..{last}: {written} snapshot rows written.")
