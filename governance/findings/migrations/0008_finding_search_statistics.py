from django.db import migrations

# PostgreSQL only: statistics on the three expressions the queue's text search filters on (UPPER(col) LIKE, as
# Django writes icontains). The trigram index they replace gave the planner those statistics as a side effect;
# without them it takes a common term ("sql inj", in 1 finding of 12) for a rare one and scans the whole table
# (565 ms at 1M findings) instead of walking the sort index (a few ms). A statistics object costs nothing on
# insert: ANALYZE fills it.
CREATE = ("CREATE STATISTICS IF NOT EXISTS finding_search_stats ON (upper(title::text)), (upper(location::text)),"
          " (upper(rule_id::text)) FROM findings_finding")


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)
        schema_editor.execute("ANALYZE findings_finding")


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP STATISTICS IF EXISTS finding_search_stats")


class Migration(migrations.Migration):

    dependencies = [
        ('findings', '0007_finding_system_no_db_fk'),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
