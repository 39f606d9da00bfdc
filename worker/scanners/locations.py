"""Locations as people read them: relative to the repository, not to the CI runner that scanned it.

A scanner run in CI reports `file:///builds/acme/app/src/pkg/x.py:12`; the engineer knows the file as
`src/pkg/x.py:12`. The import stores the relative form (shown, searched, exported); the scanner's original stays in
the finding's raw entry, and the fingerprint is computed by the parser from what the tool wrote, so nothing is
re-identified. Only the workspace folders of well-known CI systems are stripped: a path that is not under one
stays as the tool wrote it (minus a file:// scheme).
"""
from __future__ import annotations

import re
from urllib.parse import unquote

# The checkout folder of each CI system (what its default clone path is), as a prefix to strip.
WORKSPACES = re.compile(
    r"^(?:"
    r"/builds/[^/]+/[^/]+/"  # GitLab: /builds/<group>/<project>/
    r"|/home/runner/work/[^/]+/[^/]+/"  # GitHub Actions: /home/runner/work/<repo>/<repo>/
    r"|/github/workspace/"  # GitHub container actions
    r"|/(?:var/lib/jenkins|var/jenkins_home|home/jenkins(?:/agent)?)/workspace/[^/]+/"  # Jenkins
    r"|/home/vsts/work/\d+/s/|/__w/\d+/s/"  # Azure Pipelines
    r"|/opt/atlassian/pipelines/agent/build/"  # Bitbucket Pipelines
    r"|/home/circleci/(?:project|repo)/"  # CircleCI
    r"|/drone/src/|/woodpecker/src/[^/]+/[^/]+/"  # Drone, Woodpecker
    r"|/workspace/(?:source/)?"  # Tekton, Cloud Build
    r")"
)


def repository_relative(location: str) -> str:
    """`location` relative to the repository when it lies in a CI workspace; otherwise as written (a file:// URI
    becomes its path)."""
    if not location or (location[0] != "/" and not location.startswith("file:")):
        return location  # the common case, already relative ("app/x.py:12", "requests@2.0.0")
    path = location
    if path.startswith("file://"):
        path = unquote(path[7:])
        if path.startswith("localhost/"):
            path = path[9:]
    elif path.startswith("file:"):
        path = unquote(path[5:])
    stripped = WORKSPACES.sub("", path, count=1)
    return stripped or path
