"""Scheduled pulls: fetch a report from an HTTP(S) URL or take files from a drop folder.

Beat calls `pull_due_sources` every minute: it claims each due source (a conditional UPDATE of last_pulled_at,
so the next tick does not send it again) and sends one `pull_source_now` task per source, so a slow or failing
source never holds up the others. `source_pull` does one pull and stores its outcome on the source (last_error
empty on success); it never raises.

URL sources: the address is checked before the request, again when the socket connects (a name that resolves
differently the second time cannot reach a refused address) and on every redirect. Transient failures
(timeouts, refused connections, 429 and 5xx) are retried with exponential backoff. A URL serving the same bytes
as last time (sha256) creates no new import run.

Drop folders must lie inside settings.RAMPART_DROP_ROOT (symlinks resolved). Files written in the last
SETTLE_SECONDS are left for the next pull; symlinks are never followed; every file taken, imported or failed
(oversized, empty), is moved to `imported/`.
"""
from __future__ import annotations

import hashlib
import http.client
import ipaddress
import logging
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from governance.audit.services import audit_record
from governance.findings.intake import import_run_create
from governance.findings.models import ImportRun, PullSource

log = logging.getLogger(__name__)

METADATA_ADDRESSES = {"169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2"}
HTTP_OPTIONS = {"timeout": 30.0, "retries": 3, "backoff": 2.0}  # 4 attempts, 2 s, 4 s, 8 s apart
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
SETTLE_SECONDS = 10  # a drop-folder file modified more recently may still be being written
MAX_FILES_PER_PULL = 200  # the rest wait for the next pull
MIN_EVERY_MINUTES = 5


class PullError(Exception):
    pass


class _Transient(Exception):
    """Worth another attempt: timeout, refused or reset connection, 429/5xx."""


# ---------------------------------------------------------------- outbound address checks


def _refused_address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    address = ipaddress.ip_address(raw.split("%", 1)[0])
    for a in filter(None, (address, getattr(address, "ipv4_mapped", None))):
        if a.is_link_local or a.is_multicast or a.is_unspecified or str(a) in METADATA_ADDRESSES:
            return address
    return None


def _allowed_host(host: str | None) -> bool:
    return bool(host) and host.strip("[]").lower() in {h.lower() for h in settings.RAMPART_OUTBOUND_ALLOWED_HOSTS}


def check_url(url: str) -> None:
    """Refuse non-http(s) schemes and link-local / metadata addresses unless the host is allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PullError("Only http:// and https:// URLs can be pulled.")
    if _allowed_host(parts.hostname):
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise PullError(f"The URL has an invalid port: {exc}") from exc
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PullError(f"Cannot resolve {parts.hostname}: {exc.strerror or exc}") from exc
    for info in infos:
        refused = _refused_address(info[4][0])
        if refused is not None:
            raise PullError(f"{parts.hostname} resolves to {refused}, a link-local/metadata address; an admin must "
                            "allow the host in RAMPART_OUTBOUND_ALLOWED_HOSTS.")


def _checked_create_connection(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, source_address=None, *args, **kwargs):
    """socket.create_connection that refuses link-local/metadata addresses at connect time (DNS rebinding)."""
    host, port = address
    if _allowed_host(host):
        return socket.create_connection(address, timeout, source_address)
    last: OSError | None = None
    for family, type_, proto, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        refused = _refused_address(sockaddr[0])
        if refused is not None:
            raise PullError(f"{host} resolves to {refused}, a link-local/metadata address; an admin must "
                            "allow the host in RAMPART_OUTBOUND_ALLOWED_HOSTS.")
        sock = socket.socket(family, type_, proto)
        try:
            if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    raise last or OSError(f"cannot connect to {host}")


class _CheckedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _checked_create_connection


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _checked_create_connection


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req):
        return self.do_open(_CheckedHTTPConnection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def https_open(self, req):
        kwargs = {"context": self._context}
        if getattr(self, "_check_hostname", None) is not None:
            kwargs["check_hostname"] = self._check_hostname
        return self.do_open(_CheckedHTTPSConnection, req, **kwargs)


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl)  # also refuses ftp:// and file://, which urllib would otherwise follow
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_HTTPHandler, _HTTPSHandler, _CheckedRedirects)


# ---------------------------------------------------------------- download


@dataclass
class Download:
    stream: tempfile.SpooledTemporaryFile
    sha256: str
    size: int
    oversized: bool = False


def _shown(url: str) -> str:
    """The URL without its query (which may carry a token) for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def _fetch_once(url: str, timeout: float) -> Download:
    cap = settings.RAMPART_MAX_REPORT_BYTES
    shown = _shown(url)
    out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
    digest, size = hashlib.sha256(), 0
    request = urllib.request.Request(url, headers={"User-Agent": "Rampart-pull/1", "Accept": "*/*"})
    try:
        with _opener().open(request, timeout=timeout) as response:  # noqa: S310 - scheme and address checked
            declared = response.headers.get("Content-Length")
            if declared and declared.isdecimal() and int(declared) > cap:
                out.close()
                return Download(tempfile.SpooledTemporaryFile(), "", int(declared), oversized=True)
            while chunk := response.read(1024 * 1024):
                size += len(chunk)
                if size > cap:
                    out.close()
                    return Download(tempfile.SpooledTemporaryFile(), "", size, oversized=True)
                digest.update(chunk)
                out.write(chunk)
    except PullError:
        out.close()
        raise
    except urllib.error.HTTPError as exc:
        out.close()
        message = f"{shown}: HTTP {exc.code} {exc.reason}"
        if exc.code in RETRY_STATUSES:
            raise _Transient(message) from exc
        raise PullError(message) from exc
    except urllib.error.URLError as exc:
        out.close()
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise _Transient(f"{shown}: timed out after {timeout:g} s") from exc
        if isinstance(reason, ConnectionRefusedError):
            raise _Transient(f"{shown}: connection refused") from exc
        if isinstance(reason, socket.gaierror):
            raise _Transient(f"{shown}: cannot resolve the host ({reason.strerror or reason})") from exc
        raise _Transient(f"{shown}: {getattr(reason, 'strerror', None) or reason}") from exc
    except (TimeoutError, socket.timeout) as exc:  # while reading the body
        out.close()
        raise _Transient(f"{shown}: timed out after {timeout:g} s") from exc
    except (OSError, http.client.HTTPException) as exc:  # reset, incomplete read, bad status line
        out.close()
        raise _Transient(f"{shown}: {type(exc).__name__} {exc}".strip()) from exc
    out.seek(0)
    return Download(out, digest.hexdigest(), size)


def _download(url: str, *, timeout: float = HTTP_OPTIONS["timeout"], retries: int = HTTP_OPTIONS["retries"],
              backoff: float = HTTP_OPTIONS["backoff"], sleep=None) -> Download:
    """GET the report, capped at RAMPART_MAX_REPORT_BYTES; retries transient failures with exponential backoff."""
    check_url(url)
    sleep = sleep or time.sleep
    last = ""
    for attempt in range(retries + 1):
        if attempt:
            sleep(backoff * 2 ** (attempt - 1))
        try:
            return _fetch_once(url, timeout)
        except _Transient as exc:
            last = str(exc)
            log.info("Pull attempt %d failed: %s", attempt + 1, last)
    raise PullError(f"{last} (gave up after {retries + 1} attempt{'s' if retries else ''})")


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
    if kind == PullSource.Kind.URL:
        check_url(location)
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
    """A run that failed before anything was stored (oversized), recorded like intake records its refusals."""
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


def pull_source(source: PullSource, *, http_options: dict | None = None) -> PullResult:
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
        result = pull_source(source, http_options=http_options)
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


def sources_due(now: datetime | None = None) -> list[PullSource]:
    now = now or timezone.now()
    sources = PullSource.objects.filter(enabled=True).only("pk", "every_minutes", "last_pulled_at", "enabled")
    return [s for s in sources if s.last_pulled_at is None or s.last_pulled_at <= now - timedelta(minutes=s.every_minutes)]


def _send(source_id: int) -> None:
    from worker.tasks import pull_source_now

    pull_source_now.delay(source_id)


def pull_due_sources(send=None) -> int:
    """Beat: claim every due source and send one task each. Returns how many were sent.

    The claim moves last_pulled_at to now only if nobody moved it since we read it, so a second beat (or a tick
    that comes while the task waits in the queue) does not send the same source twice.
    """
    send = send or _send
    now, sent = timezone.now(), 0
    for source in sources_due(now):
        previous = source.last_pulled_at
        same = Q(last_pulled_at__isnull=True) if previous is None else Q(last_pulled_at=previous)
        if not PullSource.objects.filter(same, pk=source.pk).update(last_pulled_at=now):
            continue
        try:
            send(source.pk)
            sent += 1
        except Exception as exc:  # broker unreachable: give the claim back, the next tick tries again
            log.warning("Could not enqueue the pull of source %s: %s", source.pk, exc)
            PullSource.objects.filter(pk=source.pk, last_pulled_at=now).update(last_pulled_at=previous)
    return sent
