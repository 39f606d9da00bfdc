from django.db import migrations
from django.db.models import Max

# Imports with format "auto" and no source name used to share the source "auto": a gitleaks report closed a
# system's SARIF findings as vanished, and the other way round. An unnamed feed is now named after the detected
# format (ingest._named_source). Move what the "auto" feeds hold to the feed each finding's format names
# (its fingerprint version, "sarif/v1", says which), so the next unnamed upload reimports them instead of
# duplicating them. A finding whose new scope already holds its fingerprint stays where it is.


def forwards(apps, schema_editor):
    Finding = apps.get_model("findings", "Finding")
    FindingScope = apps.get_model("findings", "FindingScope")
    ImportRun = apps.get_model("findings", "ImportRun")
    pairs = {(key, version.split("/", 1)[0]) for key, version in
             Finding.objects.filter(source="auto").values_list("scope_key", "fingerprint_version").distinct()}
    for old_key, fmt in sorted(pairs):
        new_key = f"{old_key.rsplit(':', 1)[0]}:{fmt}"
        taken = Finding.objects.filter(scope_key=new_key).values("fingerprint")
        Finding.objects.filter(scope_key=old_key, fingerprint_version__startswith=f"{fmt}/").exclude(
            fingerprint__in=taken).update(scope_key=new_key, source=fmt)
        old = FindingScope.objects.filter(key=old_key).first()
        if old is None:
            continue
        scope, created = FindingScope.objects.get_or_create(
            key=new_key, defaults={"last_import_id": old.last_import_id, "last_seen": old.last_seen})
        if not created and old.last_seen and (scope.last_seen is None or old.last_seen > scope.last_seen):
            scope.last_import_id, scope.last_seen = old.last_import_id, old.last_seen
            scope.save(update_fields=["last_import_id", "last_seen"])
    for fmt in ImportRun.objects.filter(source="auto").exclude(detected_format="").values_list(
            "detected_format", flat=True).distinct():
        ImportRun.objects.filter(source="auto", detected_format=fmt).update(source=fmt)


class Migration(migrations.Migration):

    dependencies = [
        ('findings', '0009_refold_search_words'),
    ]

    operations = [
        migrations.RunPython(forwards, migrations.RunPython.noop, elidable=True),
    ]
