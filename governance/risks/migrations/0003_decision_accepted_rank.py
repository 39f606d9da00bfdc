"""Decisions record the residual rank they cover (an acceptance stays in force only while the risk is rated at or
below it). Existing decisions take it from the snapshot they signed, else from the risk as it is now."""
from django.db import migrations, models


def backfill(apps, schema_editor):
    Decision = apps.get_model("risks", "Decision")
    changed = []
    for d in Decision.objects.filter(status__in=("accepted", "rejected", "expired")).select_related("risk"):
        rank = (d.snapshot or {}).get("residual_rank")
        d.accepted_rank = rank if isinstance(rank, int) else d.risk.residual_rank
        changed.append(d)
    Decision.objects.bulk_update(changed, ["accepted_rank"], batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [("risks", "0002_gate_blocks_open_findings")]

    operations = [
        migrations.AddField(model_name="decision", name="accepted_rank",
                            field=models.PositiveSmallIntegerField(blank=True, null=True)),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
