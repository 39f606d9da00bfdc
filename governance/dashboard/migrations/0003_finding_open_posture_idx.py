"""The posture page counts open findings of the portfolio by system and severity, and those past their SLA
(governance/dashboard/selectors.py _findings_by_system). At 1M findings a scan of the table took ~450 ms; this
partial index holds exactly those columns for open findings, so PostgreSQL answers with an index-only scan
(bench/README.md, "Posture page"). It lives in the dashboard app because the posture page is its only reader.
PostgreSQL only (the embedded SQLite demo is small); built CONCURRENTLY so a big table keeps taking imports."""
from django.db import migrations

INDEX = "finding_open_posture_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON findings_finding (system_id, severity) "
            "INCLUDE (sla_due) WHERE state IN ('new', 'confirmed')")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("dashboard", "0002_posture_snapshot"),
        ("findings", "0014_repository_relative_locations"),
    ]

    operations = [migrations.RunPython(create, drop)]
