"""The one outbound HTTP client: every findings pull and lineage connector request goes through here. No Django.

Policy: a target is refused unless every address it resolves to is globally routable (`ipaddress` `is_global`,
and neither multicast nor reserved): loopback, RFC 1918, carrier-grade NAT (100.64/10), link-local, cloud
metadata, multicast, unspecified, reserved and unique-local (fc00::/7) addresses are refused, as are the
IPv4-mapped, IPv4-compatible, NAT64, 6to4 and Teredo forms of such addresses — unless the URL's host name, or the
address, or a network (CIDR) containing it is in the allow-list (RAMPART_OUTBOUND_ALLOWED_HOSTS). An allowed name
is trusted whatever it resolves to. The check runs before the request (so a form can say why), again on the very
addresses the socket connects to (a name that resolves elsewhere the second time, DNS rebinding, cannot reach a
refused address) and on every redirect (http and https only; Authorization, Cookie and Proxy-Authorization
are dropped when the redirect leaves the origin). Proxies from the environment are not used.

Client: one attempt per try, a timeout per socket operation and a cap on the whole attempt, retries with
exponential backoff on one list of transient failures (timeouts, refused/reset connections, DNS failures,
408/425/429/500/502/503/504), a cap on the response size. Error messages name the URL without its query and what
failed ("HTTP 404 Not Found" with the standard phrase for the code, "timed out after 15 s", "connection refused",
"refused: 10.0.0.5 is a private address; …") — never the body or the reason phrase the server sent.
"""
from __future__ import annotations

import hashlib
import http.client
import ipaddress
import logging
import re
import socket
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import quote, urljoin, urlsplit

log = logging.getLogger(__name__)

ALLOW_SETTING = "RAMPART_OUTBOUND_ALLOWED_HOSTS"
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200",
                                                       "169.254.170.2"))
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_ULA = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPATIBLE = ipaddress.ip_network("::/96")

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")
_CHUNK = 1024 * 1024
_HOSTNAME = re.compile(r"(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*")
_NUMERIC_LABEL = re.compile(r"0x[0-9a-f]*|[0-9]+")
_URL_SAFE = "".join(chr(c) for c in range(33, 127))  # only non-ASCII, spaces and controls are escaped


class OutboundError(Exception):
    """A request failed for good (after any retries): the URL without its query, and what failed."""


class Refused(OutboundError):
    """The policy refused the target: scheme, address, or a redirect to either."""


class Unresolved(OutboundError):
    """The host name did not resolve (worth another attempt in a client; a form reports it)."""


class _Transient(OutboundError):
    """Worth another attempt."""


# ---------------------------------------------------------------- addresses


def _numeric(host: str) -> bool:
    """127.1, 2130706433, 0x7f000001, 0177.0.0.1: forms inet_aton reads as an IPv4 address."""
    return all(_NUMERIC_LABEL.fullmatch(label) for label in host.split("."))


def literal_address(host: str) -> Address | None:
    """The address a URL host names literally (any form the resolver accepts), or None for a name."""
    bare = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    if _numeric(bare.lower()):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(bare))
        except OSError:
            return None
    return None


def _embedded(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    if address.ipv4_mapped:
        return "IPv4-mapped", address.ipv4_mapped
    if address in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _COMPATIBLE and int(address) > 1:
        return "IPv4-compatible", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour:
        return "6to4", address.sixtofour
    if address.teredo:
        return "Teredo", address.teredo[1]
    return None


def _kind(a: Address) -> str | None:
    if a in METADATA:
        return "a cloud metadata address"
    if a.is_unspecified:
        return "an unspecified address"
    if a.is_loopback:
        return "a loopback address"
    if a.is_link_local:
        return "a link-local address"
    if a.is_multicast:
        return "a multicast address"
    if a in _CGNAT:
        return "a shared (carrier-grade NAT) address"
    if a in _ULA:
        return "a unique local (private) address"
    if a.is_reserved:
        return "a reserved address"
    if a.is_private:
        return "a private address"
    if not a.is_global:
        return "a non-global address"
    return None


def classify(address: Address | str) -> tuple[str, str] | None:
    """None for a globally routable address; else (what it is, e.g. "a loopback address", and the embedded IPv4
    address it stands for, e.g. "IPv4-mapped 127.0.0.1", or "")."""
    a = ipaddress.ip_address(address) if isinstance(address, str) else address
    if a.version == 6:
        a = ipaddress.IPv6Address(int(a))  # drop a zone id
        embedded = _embedded(a)
        if embedded:
            form, inner = embedded
            if kind := _kind(inner):
                return kind, f"{form} {inner}"
            if form in ("IPv4-mapped", "NAT64", "IPv4-compatible"):
                return None  # another way of writing a public IPv4 address
    kind = _kind(a)
    return (kind, "") if kind else None


def parse_allowed(entries) -> tuple[frozenset[str], tuple[Network, ...]]:
    """Allow-list entries → (host names, networks). Addresses are /32 or /128 networks. ValueError names a bad entry."""
    names, networks = set(), []
    for raw in entries:
        entry = str(raw).strip().lower()
        if not entry:
            continue
        bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
        try:
            networks.append(ipaddress.ip_network(bare, strict=False))
            continue
        except ValueError as exc:
            problem = str(exc)
        if "/" in bare or ":" in bare or _numeric(bare):
            raise ValueError(f"{raw!r} is not a valid address or network ({problem}); write addresses in full, "
                             "e.g. 127.0.0.1, ::1 or 10.20.0.0/16")
        name = bare.rstrip(".")
        if not _HOSTNAME.fullmatch(name):
            raise ValueError(f"{raw!r} is neither a host name, an address nor a network (CIDR)")
        names.add(name)
    return frozenset(names), tuple(networks)


def _advice(subject: str) -> str:
    return f"an operator may allow {subject} in {ALLOW_SETTING}"


@dataclass(frozen=True)
class Policy:
    """Refuse every address that is not globally routable unless its host name, the address or a network holding
    it is in `allowed` (names, addresses or CIDR networks)."""

    allowed: tuple[str, ...] = ()
    names: frozenset = field(init=False, repr=False, compare=False)
    networks: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        names, networks = parse_allowed(self.allowed)
        object.__setattr__(self, "allowed", tuple(self.allowed))
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "networks", networks)

    def name_allowed(self, host: str) -> bool:
        return host.strip("[]").rstrip(".").lower() in self.names

    def address_allowed(self, address: Address) -> bool:
        candidates = [address]
        if address.version == 6:
            address = candidates[0] = ipaddress.IPv6Address(int(address))
            if embedded := _embedded(address):
                candidates.append(embedded[1])
        return any(a in net for net in self.networks for a in candidates)

    def refusal(self, address: Address | str) -> tuple[str, str] | None:
        """classify(address), or None when the address is global or allowed."""
        a = ipaddress.ip_address(address.split("%", 1)[0]) if isinstance(address, str) else address
        if self.address_allowed(a):
            return None
        return classify(a)

    # ------------------------------------------------------------ checks

    def check_url(self, url: str) -> None:
        """Before a request: the scheme, then the host's addresses. Raises Refused, or Unresolved for a name that
        does not resolve."""
        _, host, port = split_target(url)
        if self.name_allowed(host):
            return
        address = literal_address(host)
        if address is not None:
            self._check_literal(host, address)
            return
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise Unresolved(f"cannot resolve {host} ({exc.strerror or exc})") from exc
        self._check_resolved(host, [info[4][0] for info in infos])

    def _check_literal(self, host: str, address: Address) -> None:
        if refused := self.refusal(address):
            kind, embedded = refused
            try:
                written_so = ipaddress.ip_address(host.strip("[]")) == address
            except ValueError:
                written_so = False  # 127.1, 2130706433, 0x7f000001, 0177.0.0.1, a zone id …
            subject = host.strip("[]") if written_so else f"{host} ({address})"
            detail = f" ({embedded})" if embedded else ""
            raise Refused(f"refused: {subject} is {kind}{detail}; {_advice('it')}")

    def _check_resolved(self, host: str, addresses: list[str]) -> None:
        for raw in addresses:
            if refused := self.refusal(raw):
                # The address goes to the worker's log, not to the message: whoever can create a source need not
                # learn the internal addresses of names.
                log.warning("Outbound request refused: %s resolves to %s (%s)", host, raw, refused[0])
                raise Refused(f"refused: {host} resolves to {refused[0]}; "
                              f"{_advice('the name, the address or its network')}")

    def connect(self, address: tuple[str, int], timeout=socket._GLOBAL_DEFAULT_TIMEOUT,
                source_address=None) -> socket.socket:
        """socket.create_connection that resolves once, checks every address and connects only to checked ones."""
        host, port = address
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        if not self.name_allowed(host):
            literal = literal_address(host)
            for info in infos:
                if literal is not None:
                    self._check_literal(host, ipaddress.ip_address(info[4][0].split("%", 1)[0]))
                else:
                    self._check_resolved(host, [info[4][0]])
        last: OSError | None = None
        for family, type_, proto, _, sockaddr in infos:
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
        raise last or OSError(f"no address to connect to for {host}")


def split_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, or Refused saying what is wrong with it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"refused: the URL is not valid ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused("refused: only http:// and https:// URLs with a host are allowed")
    if parts.username is not None or parts.password is not None:
        raise Refused("refused: a user name or password in the URL would not be sent; remove it")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def shown(url: str) -> str:
    """The URL without credentials, query or fragment (a query may carry a token), for messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(invalid URL)"
    if ":" in host:
        host = f"[{host}]"
    if port:
        host = f"{host}:{port}"
    return f"{parts.scheme}://{host}{parts.path[:300]}"


def _origin(url: str) -> tuple:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


# ---------------------------------------------------------------- connections


class _CheckedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, policy: Policy, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = policy.connect


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, policy: Policy, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = policy.connect


@dataclass
class Download:
    """A response body streamed to a spooled temporary file, with its sha256; `oversized` when it exceeded the cap
    (the stream is then empty and `size` is what was declared or read)."""

    stream: tempfile.SpooledTemporaryFile
    sha256: str
    size: int
    oversized: bool = False


@dataclass
class Client:
    """One outbound client: `download(url)` streams a body to a spooled temp file (pulls), `request(...)` returns the
    body's bytes (the JSON client). Every target goes through `policy`."""

    policy: Policy
    timeout: float = 15.0  # per socket operation (connect, each read)
    retries: int = 3  # attempts = retries + 1
    backoff: float = 0.5  # waits backoff, 2 backoff, 4 backoff … between attempts
    max_bytes: int = 50 * 1024 * 1024
    max_seconds: float = 300.0  # one attempt, redirects and body included
    headers: dict = field(default_factory=dict)
    user_agent: str = "Rampart/1"
    sleep: Callable[[float], None] | None = None  # time.sleep, looked up when called
    requests: int = 0  # attempts made

    # ------------------------------------------------------------ public

    def request(self, method: str, url: str, *, body: bytes | None = None, headers: dict | None = None) -> bytes:
        """The body of a 2xx answer; OutboundError otherwise (also when it is larger than max_bytes)."""
        return self._with_retries(method, url, body, headers or {}, self._read_bytes)

    def download(self, url: str, *, headers: dict | None = None) -> Download:
        """GET url into a spooled temporary file; an answer larger than max_bytes is returned as `oversized`."""
        return self._with_retries("GET", url, None, headers or {}, self._read_to_file)

    # ------------------------------------------------------------ attempts

    def _with_retries(self, method, url, body, headers, consume):
        attempts = self.retries + 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                (self.sleep or time.sleep)(self.backoff * 2 ** (attempt - 1))
            self.requests += 1
            try:
                return self._attempt(method, url, body, headers, consume)
            except _Transient as exc:
                last = str(exc)
                log.info("Outbound attempt %d of %d failed: %s", attempt + 1, attempts, last)
        raise OutboundError(f"{last} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})")

    def _attempt(self, method, url, body, extra_headers, consume):
        deadline = time.monotonic() + self.max_seconds
        headers = {"User-Agent": self.user_agent, "Accept": "*/*", **self.headers, **extra_headers}
        current, checked = url, False
        for _ in range(MAX_REDIRECTS + 1):
            conn = None
            try:
                if not checked:  # a redirect's target was checked when it came
                    self._check(current, f"{shown(current)}: ")
                try:
                    conn, response = self._send(method, current, body, headers)
                except Refused as exc:  # the addresses the socket was about to connect to (DNS rebinding)
                    raise Refused(f"{shown(current)}: {exc} (when connecting)") from exc
                status = response.status
                location = response.getheader("Location")
                if status in REDIRECT_STATUSES and location:
                    target = urljoin(current, location.strip())
                    self._check(target, f"{shown(current)}: a redirect: ")
                    if _origin(target) != _origin(current):
                        headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
                    if status == 303 or (status in (301, 302) and method == "POST"):
                        method, body = "GET", None
                        headers = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length")}
                    current, checked = target, True
                    continue
                if not 200 <= status < 300:
                    message = f"{shown(current)}: HTTP {status} {_phrase(status)}".rstrip()
                    raise (_Transient if status in RETRY_STATUSES else OutboundError)(message)
                return consume(response, current, deadline)
            except OutboundError:
                raise
            except Exception as exc:
                raise _failure(exc, current, self.timeout) from exc
            finally:
                if conn is not None:
                    conn.close()
        raise OutboundError(f"{shown(url)}: more than {MAX_REDIRECTS} redirects")

    def _send(self, method, url, body, headers):
        parts = urlsplit(url)
        host = parts.hostname
        host = f"[{host}]" if ":" in host else host
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme == "https":
            conn = _CheckedHTTPSConnection(host, port, timeout=self.timeout, context=ssl.create_default_context(),
                                           policy=self.policy)
        else:
            conn = _CheckedHTTPConnection(host, port, timeout=self.timeout, policy=self.policy)
        target = quote(parts.path or "/", safe=_URL_SAFE) + (f"?{quote(parts.query, safe=_URL_SAFE)}" if parts.query else "")
        try:
            conn.request(method, target, body=body, headers=headers)
            return conn, conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def _check(self, url: str, where: str) -> None:
        """The policy's check before a request or a redirect; a name that does not resolve is worth another try."""
        try:
            self.policy.check_url(url)
        except Refused as exc:
            raise Refused(f"{where}{exc}") from exc
        except Unresolved as exc:
            raise _Transient(f"{where}{exc}") from exc

    # ------------------------------------------------------------ bodies

    def _chunks(self, response, url: str, deadline: float):
        while chunk := response.read1(_CHUNK):  # one read each, so the deadline is checked while data trickles in
            if time.monotonic() > deadline:
                raise _Transient(f"{shown(url)}: no complete answer within {self.max_seconds:g} s")
            yield chunk
        if response.length:  # the connection closed before Content-Length bytes came
            raise http.client.IncompleteRead(b"", response.length)

    def _read_bytes(self, response, url: str, deadline: float) -> bytes:
        out, size = [], 0
        for chunk in self._chunks(response, url, deadline):
            size += len(chunk)
            if size > self.max_bytes:
                raise OutboundError(f"{shown(url)}: the response is larger than {_size(self.max_bytes)}")
            out.append(chunk)
        return b"".join(out)

    def _read_to_file(self, response, url: str, deadline: float) -> Download:
        declared = response.getheader("Content-Length") or ""
        if declared.isdecimal() and int(declared) > self.max_bytes:
            return Download(tempfile.SpooledTemporaryFile(), "", int(declared), oversized=True)
        out = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)
        digest, size = hashlib.sha256(), 0
        try:
            for chunk in self._chunks(response, url, deadline):
                size += len(chunk)
                if size > self.max_bytes:
                    out.close()
                    return Download(tempfile.SpooledTemporaryFile(), "", size, oversized=True)
                digest.update(chunk)
                out.write(chunk)
        except BaseException:
            out.close()
            raise
        out.seek(0)
        return Download(out, digest.hexdigest(), size)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _size(n: int) -> str:
    return f"{n // 2**20} MB" if n >= 2**20 else f"{n} bytes"


def _failure(exc: BaseException, url: str, timeout: float) -> OutboundError:
    """What failed, in our words (never the text the other side sent), and whether it is worth another attempt."""
    at = shown(url)
    if isinstance(exc, TimeoutError):
        return _Transient(f"{at}: timed out after {timeout:g} s")
    if isinstance(exc, ConnectionRefusedError):
        return _Transient(f"{at}: connection refused")
    if isinstance(exc, http.client.RemoteDisconnected):
        return _Transient(f"{at}: the server closed the connection without answering")
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return _Transient(f"{at}: connection reset")
    if isinstance(exc, socket.gaierror):
        return _Transient(f"{at}: cannot resolve the host ({exc.strerror or 'resolver error'})")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return OutboundError(f"{at}: TLS certificate not accepted ({exc.verify_message or 'verification failed'})")
    if isinstance(exc, ssl.SSLError):
        return OutboundError(f"{at}: TLS handshake failed")
    if isinstance(exc, http.client.IncompleteRead):
        return _Transient(f"{at}: the answer ended early")
    if isinstance(exc, http.client.HTTPException):
        return _Transient(f"{at}: not a valid HTTP answer")
    if isinstance(exc, OSError):
        return _Transient(f"{at}: {exc.strerror or type(exc).__name__}")
    return OutboundError(f"{at}: {type(exc).__name__}")
