"""Scheduled pulls: fetch a report from an HTTP(S) URL or take files from a drop folder.

Beat calls `sources_queue_due` every minute: it claims each due source (a conditional UPDATE of last_pulled_at,
so the next tick does not send it again) and sends one `source_pull` task per source, so a slow or failing
source never holds up the others. `source_pull` does one pull and stores its outcome on the source (last_error
empty on success); it never raises.

URL sources are fetched through governance.outbound (worker/outbound.py): the address policy is checked before
the request, again when the socket connects (a name that resolves differently the second time cannot reach a
refused address) and on every redirect; transient failures (timeouts, refused connections, 408/425/429/5xx) are
retried with exponential backoff. A URL serving the same bytes as last time (sha256) creates no new import run.

Drop folders must lie inside settings.RAMPART_DROP_ROOT (symlinks resolved). Files written in the last
SETTLE_SECONDS are left for the next pull; symlinks are never followed; every file taken, imported or failed
(oversized, empty), is moved to `imported/`.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from governance import outbound
from governance import queueing
from governance.audit.services import audit_record
from governance.findings.imports import import_run_create
from governance.findings.models import ImportRun, PullSource
from worker.outbound import Download, OutboundError

log = logging.getLogger(__name__)

HTTP_OPTIONS = {"timeout": 30.0, "retries": 3, "backoff": 2.0}  # 4 attempts, 2 s, 4 s, 8 s apart
MAX_SECONDS = 900.0  # one attempt at most, body included
SETTLE_SECONDS = 10  # a drop-folder file modified more recently may still be being written
MAX_FILES_PER_PULL = 200  # the rest wait for the next pull
MIN_EVERY_MINUTES = 5


class PullError(Exception):
    pass


# ---------------------------------------------------------------- URL pulls (through governance.outbound)


def _download(url: str, *, timeout: float = HTTP_OPTIONS["timeout"], retries: int = HTTP_OPTIONS["retries"],
              backoff: float = HTTP_OPTIONS["backoff"], max_seconds: float = MAX_SECONDS, sleep=None) -> Download:
    """GET the report, capped at RAMPART_MAX_REPORT_BYTES; retries transient failures with exponential backoff."""
    client = outbound.client(timeout=timeout, retries=retries, backoff=backoff, max_seconds=max_seconds, sleep=sleep,
                             max_bytes=settings.RAMPART_MAX_REPORT_BYTES, user_agent="Rampart-pull/1")
    try:
        return client.download(url)
    except OutboundError as exc:
        raise PullError(str(exc)) from exc


# ---------------------------------------------------------------- drop folders


def drop_root() -> Path:
    return Path(settings.RAMPART_DROP_ROOT).resolve()


def check_folder(location: str) -> Path:
    """The resolved drop folder, or PullError if it is not an existing folder inside RAMPART_DROP_ROOT."""
    root = drop_root()
    if not location or not os.path.isabs(location):
        raise PullError(f"Give an absolute path inside {root}, e.g. {root / 'bandit'}.")
    path = Path(location).resolve()
    if not path.is_relative_to(root):
        raise PullError(f"A drop folder must be inside {root} (RAMPART_DROP_ROOT); {location} resolves to {path}.")
    if not path.is_dir():
        raise PullError(f"{path} is not an existing folder; create it inside {root} first.")
    return path


def check_location(kind: str, location: str) -> None:
    if kind == PullSource.Kind.URL:  # http(s) only; private, loopback, metadata … refused unless allowed
        outbound.check_url(location, raise_as=PullError)
    else:
        check_folder(location)


# ---------------------------------------------------------------- one pull


@dataclass
class PullResult:
    runs: list[ImportRun] = field(default_factory=list)
    unchanged: bool = False
    sha256: str = ""
    waiting: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        if self.unchanged:
            return "unchanged since the last pull (same sha256): no new import"
        parts = [f"{len(self.runs)} import run{'s' if len(self.runs) != 1 else ''}"]
        if self.waiting:
            parts.append(f"{self.waiting} file{'s' if self.waiting != 1 else ''} still being written, left for the next pull")
        return ", ".join(parts)


def _failed_run(source: PullSource, *, filename: str, size: int, error: str) -> ImportRun:
    """A run that failed before anything was stored (oversized), recorded like import_run_create records its refusals."""
    with transaction.atomic():
        run = ImportRun.objects.create(
            system=source.system, source=source.name[:100], format=source.format, via=ImportRun.Via.PULL,
            filename=filename[-255:], size=size, status=ImportRun.Status.FAILED, error=error,
            finished_at=timezone.now(), pull_source=source)
        audit_record(actor=None, action="import.create", obj=run, system=source.system,
                     after={"source": run.source, "format": run.format, "size": size, "status": run.status})
    return run


def _too_big(size: int) -> str:
    cap = settings.RAMPART_MAX_REPORT_BYTES
    return f"The report is {size / 1e6:.1f} MB or more; the limit is {cap / 1e6:.1f} MB (RAMPART_MAX_REPORT_BYTES)."


def _pull_url(source: PullSource, http_options: dict) -> PullResult:
    result = PullResult()
    filename = urlsplit(source.location).path.rstrip("/").rsplit("/", 1)[-1] or "report"
    download = _download(source.location, **http_options)
    with download.stream as stream:
        if download.oversized:
            run = _failed_run(source, filename=filename, size=download.size, error=_too_big(download.size))
            result.runs.append(run)
            result.problems.append(f"Import #{run.pk} failed: {run.error}")
            return result
        result.sha256 = download.sha256
        if source.last_sha256 and download.sha256 == source.last_sha256:
            result.unchanged = True
            return result
        result.runs.append(import_run_create(actor=None, stream=stream, filename=filename, fmt=source.format,
                                             system=source.system, source=source.name, via=ImportRun.Via.PULL,
                                             pull_source=source))
    return result


def _pull_folder(source: PullSource) -> PullResult:
    result = PullResult()
    folder = check_folder(source.location)
    done = folder / "imported"
    if done.is_symlink():
        raise PullError(f"{done} is a symlink; it must be a plain folder.")
    done.mkdir(exist_ok=True)
    cap, now = settings.RAMPART_MAX_REPORT_BYTES, time.time()
    with os.scandir(folder) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_symlink():
            result.problems.append(f"{entry.name}: a symlink, not followed")
            continue
        if not entry.is_file(follow_symlinks=False):
            continue
        if len(result.runs) >= MAX_FILES_PER_PULL:
            result.waiting += 1
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if now - st.st_mtime < SETTLE_SECONDS:
                result.waiting += 1
                continue
            if st.st_size > cap:
                run = _failed_run(source, filename=entry.name, size=st.st_size, error=_too_big(st.st_size))
            else:
                fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                with os.fdopen(fd, "rb") as stream:
                    run = import_run_create(actor=None, stream=stream, filename=entry.name, fmt=source.format,
                                            system=source.system, source=source.name, via=ImportRun.Via.PULL,
                                            pull_source=source)
            result.runs.append(run)
            os.replace(entry.path, done / f"{timezone.now():%Y%m%dT%H%M%S}-{run.pk}-{entry.name}")
        except FileNotFoundError:
            continue  # taken by a concurrent pull
        except OSError as exc:
            result.problems.append(f"{entry.name}: {exc.strerror or exc}")
    failed = [r for r in result.runs if r.status == ImportRun.Status.FAILED]
    for run in failed:
        result.problems.append(f"{run.filename}: import #{run.pk} failed: {run.error}")
    return result


def source_fetch(source: PullSource, *, http_options: dict | None = None) -> PullResult:
    """Pull one source now; raises PullError (or anything unexpected) when the pull itself fails."""
    if source.kind == PullSource.Kind.URL:
        return _pull_url(source, {**HTTP_OPTIONS, **(http_options or {})})
    return _pull_folder(source)


def source_pull(source_id: int, *, http_options: dict | None = None) -> str:
    """The worker's entry point: pull one source and store the outcome on it. Never raises."""
    source = PullSource.objects.select_related("system").filter(pk=source_id).first()
    if source is None:
        return "skipped: the source was deleted"
    started = timezone.now()
    update: dict = {"last_pulled_at": started}
    try:
        result = source_fetch(source, http_options=http_options)
    except Exception as exc:  # stored on the source; the other sources run in their own tasks
        log.warning("Pull of %s failed: %s", source.name, exc)
        error = str(exc) if isinstance(exc, PullError) else f"{type(exc).__name__}: {exc}"
        update["last_error"] = error[:2000]
        PullSource.objects.filter(pk=source_id).update(**update)
        return f"failed: {update['last_error']}"
    update["last_error"] = "; ".join(result.problems)[:2000]
    if result.sha256:
        update["last_sha256"] = result.sha256
    PullSource.objects.filter(pk=source_id).update(**update)
    return result.summary + (f" ({update['last_error']})" if update["last_error"] else "")


# ---------------------------------------------------------------- schedule


def next_due(source: PullSource) -> datetime | None:
    if not source.enabled:
        return None
    if source.last_pulled_at is None:
        return timezone.now()
    return source.last_pulled_at + timedelta(minutes=source.every_minutes)


def _sources_due(now: datetime | None = None) -> list[PullSource]:
    now = now or timezone.now()
    sources = PullSource.objects.filter(enabled=True).only("pk", "every_minutes", "last_pulled_at", "enabled")
    return [s for s in sources if s.last_pulled_at is None or s.last_pulled_at <= now - timedelta(minutes=s.every_minutes)]


def sources_queue_due() -> int:
    """Beat: claim every due source and send one task each. Returns how many were sent.

    The claim moves last_pulled_at to now only if nobody moved it since we read it, so a second beat (or a tick
    that comes while the task waits in the queue) does not send the same source twice.
    """
    now, sent = timezone.now(), 0
    for source in _sources_due(now):
        previous = source.last_pulled_at
        same = Q(last_pulled_at__isnull=True) if previous is None else Q(last_pulled_at=previous)
        if not PullSource.objects.filter(same, pk=source.pk).update(last_pulled_at=now):
            continue
        if queueing.send("source_pull", source.pk):
            sent += 1
        else:  # broker unreachable: give the claim back, the next tick tries again
            PullSource.objects.filter(pk=source.pk, last_pulled_at=now).update(last_pulled_at=previous)
    return sent
