"""Static files named by their content (cached for a year by browsers and proxies) and served gzipped by whitenoise.

`collectstatic` writes `name.<hash>.ext` and a `.gz` beside each file, plus the manifest that maps names to them
(`make run`, the Docker image and compose all run it). Before it has run (the test suite, a fresh checkout)
{% static %} falls back to the plain name, which Django's finders and whitenoise serve as they are, uncached.
"""
from __future__ import annotations

import logging

from django.contrib.staticfiles.storage import StaticFilesStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage

log = logging.getLogger(__name__)


class StaticStorage(CompressedManifestStaticFilesStorage):
    _fallback_said = False

    def url(self, name, force=False):
        try:
            return super().url(name, force)
        except ValueError:  # no manifest entry: collectstatic has not run (or not since this file was added)
            if not StaticStorage._fallback_said:
                StaticStorage._fallback_said = True
                log.info("No collected static file for %s: serving static files by their plain names", name)
            return StaticFilesStorage.url(self, name)
