"""Scheduled pulls: fetch a report from an HTTP(S) URL or take files from a drop folder."""
from __future__ import annotations

import ipaddress
import logging
import socket
import tempfile
import urllib.request
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from governance.findings.intake import import_run_create
from governance.findings.models import ImportRun, PullSource

log = logging.getLogger(__name__)


class PullError(Exception):
    pass


def check_url(url: str) -> None:
    """Refuse non-http(s) schemes and link-local / metadata addresses unless the host is allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PullError("Only http:// and https:// URLs can be pulled.")
    if parts.hostname in settings.RAMPART_OUTBOUND_ALLOWED_HOSTS:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except socket.gaierror as exc:
        raise PullError(f"Cannot resolve {parts.hostname}: {exc}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_link_local or address.is_multicast or address.is_unspecified or str(address) == "169.254.169.254":
            raise PullError(f"{parts.hostname} resolves to {address}, a link-local/metadata address; an admin must allow it.")


def _download(url: str) -> tempfile.SpooledTemporaryFile:
    check_url(url)
    cap = settings.RAMPART_MAX_REPORT_BYTES
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    request = urllib.request.Request(url, headers={"User-Agent": "Rampart/1"})
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - scheme checked above
        size = 0
        while chunk := response.read(1024 * 1024):
            size += len(chunk)
            if size > cap:
                raise PullError(f"The report at {url} is larger than {cap / 1e6:.0f} MB.")
            out.write(chunk)
    out.seek(0)
    return out


def pull_source(source: PullSource) -> list[ImportRun]:
    runs = []
    if source.kind == PullSource.Kind.URL:
        with _download(source.location) as stream:
            runs.append(import_run_create(actor=None, stream=stream, filename=source.location.rsplit("/", 1)[-1] or "report",
                                          fmt=source.format, system=source.system, source=source.name,
                                          via=ImportRun.Via.PULL, pull_source=source))
    else:
        folder = Path(source.location)
        if not folder.is_dir():
            raise PullError(f"Drop folder {folder} does not exist.")
        done = folder / "imported"
        done.mkdir(exist_ok=True)
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            with path.open("rb") as stream:
                runs.append(import_run_create(actor=None, stream=stream, filename=path.name, fmt=source.format,
                                              system=source.system, source=source.name, via=ImportRun.Via.PULL,
                                              pull_source=source))
            path.rename(done / f"{timezone.now():%Y%m%dT%H%M%S}-{path.name}")
    return runs


def pull_due_sources() -> int:
    now, pulled = timezone.now(), 0
    sources = PullSource.objects.filter(enabled=True).select_related("system")
    due = [s for s in sources if s.last_pulled_at is None or s.last_pulled_at <= now - timedelta(minutes=s.every_minutes)]
    for source in due:
        try:
            pull_source(source)
            error = ""
            pulled += 1
        except Exception as exc:  # one failing source must not block the others
            log.warning("Pull of %s failed: %s", source.name, exc)
            error = f"{type(exc).__name__}: {exc}"[:1000]
        PullSource.objects.filter(pk=source.pk).update(last_pulled_at=now, last_error=error)
    return pulled
