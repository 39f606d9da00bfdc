from django.db import models


class TabletopPermissions(models.Model):
    """Holds the tabletop permissions until exercises land (no table)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("run_exercises", "Plan and facilitate tabletop exercises")]
