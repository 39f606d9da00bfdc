"""Keyed audit chain: every column covered by an HMAC from here on (hash_version 2).

Existing events keep their SHA-256 hashes (hash_version 1) and are not rewritten. The head records up to
which event version 1 is accepted (legacy_seq) and is sealed with the MAC key, so the boundary cannot be
moved without the key (governance/audit/chain.py).
"""
from django.db import migrations, models


def seal_legacy_head(apps, schema_editor):
    from governance.audit.chain import head_seal

    AuditHead = apps.get_model("audit", "AuditHead")
    for head in AuditHead.objects.all():
        head.legacy_seq = head.seq
        head.seal = head_seal(head)
        head.save(update_fields=["legacy_seq", "seal"])


class Migration(migrations.Migration):

    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="hash_version",
            field=models.PositiveSmallIntegerField(default=1, help_text="1: SHA-256 (legacy); 2: keyed MAC."),
            preserve_default=False,
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash_version",
            field=models.PositiveSmallIntegerField(default=2, help_text="1: SHA-256 (legacy); 2: keyed MAC."),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="actor_key",
            field=models.CharField(blank=True, default="", help_text="User id when written, hashed.", max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="audithead",
            name="legacy_seq",
            field=models.BigIntegerField(default=0, help_text="Events up to here may be legacy (version 1)."),
        ),
        migrations.AddField(
            model_name="audithead",
            name="seal",
            field=models.CharField(blank=True, default="", help_text="Keyed MAC of seq, last_hash and legacy_seq.",
                                   max_length=64),
            preserve_default=False,
        ),
        migrations.RunPython(seal_legacy_head, migrations.RunPython.noop),
    ]
