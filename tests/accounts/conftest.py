import itertools

import pytest

_serial = itertools.count()


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """Sign-in and code throttles count in the cache: each test starts with none."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                                   "LOCATION": f"accounts-{next(_serial)}"}}
