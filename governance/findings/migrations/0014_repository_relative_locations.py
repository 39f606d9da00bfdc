"""Locations written by earlier imports inside a CI workspace (file:///builds/acme/app/src/x.py) become relative to
the repository (src/x.py), as new imports store them (worker/scanners/locations.py). Fingerprints and content hashes
do not change (both come from what the tool wrote), so a reimport sees these findings as unchanged; the original
stays in each finding's raw entry."""
from django.db import migrations
from django.db.models import Q

from worker.scanners.locations import repository_relative


def relative(apps, schema_editor):
    Finding = apps.get_model("findings", "Finding")
    candidates = Finding.objects.filter(Q(location__startswith="/") | Q(location__startswith="file:"))
    batch = []
    for pk, location in candidates.values_list("pk", "location").iterator(chunk_size=5000):
        shorter = repository_relative(location)
        if shorter != location:
            batch.append(Finding(pk=pk, location=shorter))
        if len(batch) >= 5000:
            Finding.objects.bulk_update(batch, ["location"])
            batch = []
    Finding.objects.bulk_update(batch, ["location"])


class Migration(migrations.Migration):
    dependencies = [("findings", "0013_importrun_enqueued_at")]
    operations = [migrations.RunPython(relative, migrations.RunPython.noop)]
