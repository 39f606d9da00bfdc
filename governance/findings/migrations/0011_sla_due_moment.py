"""The SLA due becomes a moment: first seen + the SLA days of the finding's severity, to the second.

It used to be a calendar date compared with the local date (N to N+1 days, depending on TIME_ZONE), and a
reimport that changed a finding's severity kept the old due date. Every finding's due is recomputed here from
its first seen and its current severity, with the SLA days configured when the migration runs.
"""
from datetime import timedelta

from django.conf import settings
from django.db import migrations, models
from django.db.models import F


def recompute(apps, schema_editor):
    Finding = apps.get_model("findings", "Finding")
    days = settings.RAMPART_SLA_DAYS
    for severity in ("critical", "high", "medium", "low", "info"):
        due = F("first_seen") + timedelta(days=days[severity]) if severity in days else None
        Finding.objects.filter(severity=severity).update(sla_due=due)


class Migration(migrations.Migration):
    dependencies = [("findings", "0010_name_auto_sources")]

    operations = [
        migrations.AlterField(
            model_name="finding", name="sla_due",
            field=models.DateTimeField(blank=True, null=True, help_text="first seen + the SLA days of its severity"),
        ),
        migrations.RunPython(recompute, migrations.RunPython.noop),
    ]
