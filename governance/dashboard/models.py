"""Worker liveness (/healthz reads it, governance/dashboard/liveness.py) and daily posture snapshots (trends)."""
from django.db import models

from governance.findings.models import Severity


class WorkerHeartbeat(models.Model):
    """The latest sign of life of one Celery worker, written by the worker every few seconds (worker/liveness.py).

    A row per worker node name (`celery@host`): a restarted worker of the same name takes its row over. Rows of
    workers that stopped stay and age; /healthz counts only fresh ones and never shows the names."""

    name = models.CharField(max_length=255, unique=True)
    started_at = models.DateTimeField(help_text="When this worker process started.")
    seen_at = models.DateTimeField(db_index=True, help_text="Its latest heartbeat.")

    def __str__(self) -> str:
        return f"{self.name} (seen {self.seen_at:%Y-%m-%d %H:%M:%S})"


SEVERITIES = tuple(Severity.values)  # most severe first, as findings.models.Severity


class PostureSnapshot(models.Model):
    """One AI system's posture figures for one day (system empty: the findings of unassigned feeds), for the trends
    on the posture page and month-over-month changes. Written by the daily beat task (governance/dashboard/
    snapshots.py snapshot_take: the figures read with the posture page's own definitions at that moment; a re-run
    the same day updates the row) or reconstructed for past days by `manage.py posture_backfill` (backfilled=True;
    snapshots.py says which figures history allows). Only systems in the portfolio that day get a row."""

    system = models.ForeignKey("inventory.AISystem", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="posture_snapshots")
    day = models.DateField(help_text="The day (settings.TIME_ZONE) the figures describe.")
    taken_at = models.DateTimeField(help_text="The moment the figures were read at (the end of the day when "
                                              "backfilled).")
    backfilled = models.BooleanField(default=False, help_text="Reconstructed from history, not read live.")
    open_critical = models.PositiveIntegerField(default=0)
    open_high = models.PositiveIntegerField(default=0)
    open_medium = models.PositiveIntegerField(default=0)
    open_low = models.PositiveIntegerField(default=0)
    open_info = models.PositiveIntegerField(default=0)
    past_sla = models.PositiveIntegerField(default=0, help_text="Open findings past their SLA at taken_at.")
    # Findings remediated that day (moved from new/confirmed to fixed or closed) and the sum of their times to
    # remediate (first seen -> that move) in hours: a mean over any window is sum(hours) / sum(count).
    remediated_critical = models.PositiveIntegerField(default=0)
    remediated_high = models.PositiveIntegerField(default=0)
    remediated_medium = models.PositiveIntegerField(default=0)
    remediated_low = models.PositiveIntegerField(default=0)
    remediated_info = models.PositiveIntegerField(default=0)
    remediated_critical_hours = models.FloatField(default=0)
    remediated_high_hours = models.FloatField(default=0)
    remediated_medium_hours = models.FloatField(default=0)
    remediated_low_hours = models.FloatField(default=0)
    remediated_info_hours = models.FloatField(default=0)
    high_risks = models.PositiveIntegerField(default=0, help_text="High+ residual risks without an acceptance in force.")
    awaiting = models.PositiveIntegerField(default=0)
    expiring = models.PositiveIntegerField(default=0)
    accepted_in_force = models.PositiveIntegerField(default=0, help_text="Risks with an acceptance in force.")
    rmf_implemented = models.PositiveSmallIntegerField(default=0)
    rmf_partial = models.PositiveSmallIntegerField(default=0)
    rmf_applicable = models.PositiveSmallIntegerField(default=0)
    exercised = models.BooleanField(default=False, help_text="In a completed tabletop exercise by then.")

    class Meta:
        ordering = ["day", "system_id"]
        constraints = [
            models.UniqueConstraint(fields=["system", "day"], name="posture_snapshot_system_day"),
            # NULLs are distinct in a unique constraint: the unassigned feeds' row needs its own
            models.UniqueConstraint(fields=["day"], condition=models.Q(system__isnull=True),
                                    name="posture_snapshot_unassigned_day"),
        ]
        indexes = [models.Index(fields=["day"], name="posture_snapshot_day_idx")]

    def __str__(self) -> str:
        return f"posture of {self.system_id or 'unassigned'} on {self.day}"


class PortfolioDay(models.Model):
    """The day's portfolio totals of the PostureSnapshot rows (written with them, in the same transaction, by
    snapshots._write): what the trend charts and month-over-month changes read, one row a day instead of one per
    system. Sums as the posture page sums its rows: findings over systems and unassigned feeds, risks over systems;
    `coverage` is rmf.selectors.portfolio_percent of the systems' counts (None: nothing applies anywhere)."""

    day = models.DateField(unique=True)
    taken_at = models.DateTimeField()
    backfilled = models.BooleanField(default=False)
    systems = models.PositiveIntegerField(default=0, help_text="Active systems that day.")
    open_critical = models.PositiveIntegerField(default=0)
    open_high = models.PositiveIntegerField(default=0)
    open_medium = models.PositiveIntegerField(default=0)
    open_low = models.PositiveIntegerField(default=0)
    open_info = models.PositiveIntegerField(default=0)
    past_sla = models.PositiveIntegerField(default=0)
    remediated_critical = models.PositiveIntegerField(default=0)
    remediated_high = models.PositiveIntegerField(default=0)
    remediated_medium = models.PositiveIntegerField(default=0)
    remediated_low = models.PositiveIntegerField(default=0)
    remediated_info = models.PositiveIntegerField(default=0)
    remediated_critical_hours = models.FloatField(default=0)
    remediated_high_hours = models.FloatField(default=0)
    remediated_medium_hours = models.FloatField(default=0)
    remediated_low_hours = models.FloatField(default=0)
    remediated_info_hours = models.FloatField(default=0)
    high_risks = models.PositiveIntegerField(default=0)
    awaiting = models.PositiveIntegerField(default=0)
    expiring = models.PositiveIntegerField(default=0)
    accepted_in_force = models.PositiveIntegerField(default=0)
    never_exercised = models.PositiveIntegerField(default=0)
    coverage = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Portfolio RMF coverage, %.")
    coverage_exact = models.FloatField(null=True, blank=True, help_text="The same, unrounded (for the chart).")

    class Meta:
        ordering = ["day"]

    def __str__(self) -> str:
        return f"portfolio on {self.day}"
