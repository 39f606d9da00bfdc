"""Locations relative to the repository, not to the CI runner's workspace (worker/scanners/locations.py)."""
from __future__ import annotations

import pytest

from worker.scanners.locations import repository_relative


@pytest.mark.parametrize(("written", "shown"), [
    ("file:///builds/acme/app/src/pkg/x.py", "src/pkg/x.py"),  # GitLab
    ("file:///builds/acme/app/src/pkg/x.py:12", "src/pkg/x.py:12"),
    ("/home/runner/work/app/app/src/x.py:3", "src/x.py:3"),  # GitHub Actions
    ("/github/workspace/models/m.pkl", "models/m.pkl"),
    ("/var/lib/jenkins/workspace/nightly-scan/app/main.py", "app/main.py"),
    ("/home/vsts/work/1/s/train.py", "train.py"),  # Azure
    ("/opt/atlassian/pipelines/agent/build/a.py", "a.py"),  # Bitbucket
    ("file:///builds/acme/app/with%20space.py", "with space.py"),
    ("file://localhost/github/workspace/x.py", "x.py"),
    ("file:/github/workspace/x.py", "x.py"),
    ("src/x.py:1", "src/x.py:1"),  # already relative: untouched
    ("requests@2.0.0", "requests@2.0.0"),
    ("/srv/models/fraud.pkl", "/srv/models/fraud.pkl"),  # not a known workspace: as written
    ("file:///etc/app/config.yaml", "/etc/app/config.yaml"),  # a URI becomes its path
    ("/builds/acme/", "/builds/acme/"),  # a workspace prefix with nothing after it stays
    ("", ""),
])
def test_repository_relative(written, shown):
    assert repository_relative(written) == shown
