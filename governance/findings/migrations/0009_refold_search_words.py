import importlib

from django.db import migrations

# The search's words were lower-cased before; they are now capitalised one character at a time, as PostgreSQL's
# UPPER (governance.findings.search.fold). Words written the old way would never match a search: if the
# dictionary holds any (a lower-case ASCII letter cannot be in a new word), rebuild it and every finding's hashes.


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return  # only PostgreSQL searches through the words
    FindingTerm = apps.get_model("findings", "FindingTerm")
    if not FindingTerm.objects.filter(word__regex="[a-z]").exists():
        return
    FindingTerm.objects.all().delete()
    importlib.import_module("governance.findings.migrations.0006_search_terms_scopes").backfill_terms(
        apps, schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('findings', '0008_finding_search_statistics'),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
