"""API tokens get scopes, an expiry, a lifetime, the last address used, rotation and a warning mark.

Tokens that exist already keep working as before (every scope) for 90 days after this migration, then expire:
their owners get the usual warning e-mail a week before (README, "Using it from scripts and CI").
"""
from datetime import timedelta

from django.db import migrations, models
from django.utils import timezone

EVERY_SCOPE = ["read", "import", "lineage", "gate", "write"]  # as they are now, not as Scope may read later


def every_scope():
    return list(EVERY_SCOPE)


def in_90_days():
    return timezone.now() + timedelta(days=90)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="scopes",
            field=models.JSONField(default=every_scope,
                                   help_text="Scope values (see Scope); a route needs one of the scopes it lists."),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(default=in_90_days),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="lifetime_days",
            field=models.PositiveIntegerField(default=90,
                                              help_text="Chosen at creation; a rotation's successor gets it too."),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="apitoken",
            name="last_used_ip",
            field=models.GenericIPAddressField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="rotated_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="apitoken",
            name="expiry_warned_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RemoveConstraint(
            model_name="apitoken",
            name="token_name_unique_per_user",
        ),
        migrations.AddConstraint(
            model_name="apitoken",
            constraint=models.UniqueConstraint(condition=models.Q(("revoked_at__isnull", True),
                                                                  ("rotated_at__isnull", True)),
                                               fields=("user", "name"), name="token_name_unique_per_user"),
        ),
    ]
