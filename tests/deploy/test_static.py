"""Static files as production serves them: collectstatic names each file by its content and gzips it; pages then
link the hashed names, and whitenoise serves them compressed and cached for a year. Before collectstatic (this
suite's other tests) pages link plain names, which still load."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    var = tmp_path_factory.mktemp("var")
    env = {**os.environ, "RAMPART_VAR_DIR": str(var)}
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    return var / "staticfiles"


def test_collectstatic_names_files_by_content_and_gzips_them(collected):
    hashed = sorted(p.name for p in (collected / "css").glob("rampart.*.css"))
    assert any(re.fullmatch(r"rampart\.[0-9a-f]{12}\.css", name) for name in hashed), hashed
    assert (collected / "css" / f"{hashed[0]}.gz").exists()
    assert any(re.fullmatch(r"plotly\.min\.[0-9a-f]{12}\.js", p.name) for p in (collected / "vendor").iterdir())
    assert (collected / "staticfiles.json").exists()


def test_pages_link_hashed_names_served_compressed_and_cached_for_a_year(collected, settings, ciso):
    settings.STATIC_ROOT = collected
    settings.WHITENOISE_USE_FINDERS = False  # only what collectstatic wrote, as in production
    client = Client()  # a new handler: whitenoise reads STATIC_ROOT when it starts
    page = client.get("/accounts/login/").content.decode()
    css = re.search(r'href="(/static/css/rampart\.[0-9a-f]{12}\.css)"', page)
    assert css, page[:800]
    response = client.get(css.group(1), HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200 and response["Content-Encoding"] == "gzip"
    assert "immutable" in response["Cache-Control"] and "max-age=315360000" in response["Cache-Control"]


def test_without_collectstatic_pages_link_plain_names_that_load(client, tmp_path, settings):
    settings.STATIC_ROOT = tmp_path  # nothing collected there
    page = client.get("/accounts/login/").content.decode()
    assert 'href="/static/css/rampart.css"' in page
    assert Client().get("/static/css/rampart.css").status_code == 200
