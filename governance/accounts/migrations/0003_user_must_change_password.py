"""A person whose password an admin chose changes it at their next sign-in. Everyone who exists already keeps theirs."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_api_token_scopes_expiry"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="must_change_password",
            field=models.BooleanField(
                default=False, help_text="Set when an admin chose the password (or asked for a new one): until the "
                                         "person changes it, every page sends them to do so (accounts/middleware.py)."),
        ),
    ]
