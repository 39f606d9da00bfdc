from django.db import models


class FindingPermissions(models.Model):
    """Holds the findings permissions until the pipeline lands (no table)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("triage_findings", "Triage scanner findings")]
