from django.db import models


class RiskPermissions(models.Model):
    """Holds the risk-register permissions until the register lands (no table)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("decide_any", "Decide on risks of any system"),
            ("decide_own", "Decide on risks of systems they own"),
            ("manage_risks", "Create and edit risks"),
        ]
