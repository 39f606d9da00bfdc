"""Outbound requests (worker/outbound.py, configured by governance/outbound.py): pull sources and lineage connectors
cannot be turned into a port scanner of the worker's network.

Private and loopback targets — however the address is written — are refused in the forms, the services and the
pulls unless an operator allows them in RAMPART_OUTBOUND_ALLOWED_HOSTS (names, addresses, CIDR networks); the
address is checked again when the socket connects (DNS rebinding) and on every redirect; credentials do not follow
a redirect to another host; errors say what failed, never what the other side sent.
"""
from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.exceptions import ImproperlyConfigured

from governance import outbound
from governance.findings import pull, sources
from governance.findings.models import ImportRun, PullSource
from governance.lineage import connectors
from governance.lineage.connectors import ConnectorError, connector_run, connector_save
from governance.lineage.models import Connector
from tests.lineage.conftest import JsonServer
from worker.outbound import Client, OutboundError, Policy, Refused, classify

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
BANDIT = ROOT / "tests" / "data" / "scanners" / "sarif" / "bandit.sarif"
PUBLIC = "93.184.216.34"  # what the made-up names resolve to for the check before the request
FAST = {"timeout": 1.0, "retries": 1, "backoff": 0.0}

# The hardening issue's list: Redis and PostgreSQL on loopback, and loopback written every other way.
ISSUE_TARGETS = ["127.0.0.1:6379", "127.0.0.1:5432", "[::1]", "2130706433", "0x7f000001", "0177.0.0.1", "127.1"]


@pytest.fixture(autouse=True)
def _policy(settings, monkeypatch):
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = []  # nothing private allowed unless a test says so
    monkeypatch.setattr(pull, "HTTP_OPTIONS", FAST)
    monkeypatch.setattr(connectors, "HTTP_OPTIONS", FAST)


# ---------------------------------------------------------------- helpers


def redirect(location, status: int = 302):
    """A route answering a redirect to `location` (or to location(query) when it is a function)."""
    return lambda q, b: (status, b"", {"Location": location(q) if callable(location) else location})


def report(q, b):
    return 200, BANDIT.read_bytes()


def answers_empty(server: JsonServer) -> JsonServer:
    """Marquez and MLflow routes answering that there is nothing new."""
    server.routes["/api/v1/events/lineage"] = lambda q, b: (200, {"events": []})
    server.routes["/api/2.0/mlflow/registered-models/search"] = lambda q, b: (200, {"registered_models": []})
    return server


@pytest.fixture
def server():
    """A local server (tests/lineage/conftest.py); unknown paths answer 404, requests are (method, path, query,
    headers)."""
    s = JsonServer()
    yield s
    s.close()


@pytest.fixture
def other_server():
    s = JsonServer()
    yield s
    s.close()


class Resolver:
    """socket.getaddrinfo for made-up names: `names[name]` lists the answer of each lookup (the last one repeats);
    every other name goes to the real resolver."""

    def __init__(self, monkeypatch):
        self.real = socket.getaddrinfo
        self.names: dict[str, list[str]] = {}
        self.lookups: list[str] = []
        monkeypatch.setattr(socket, "getaddrinfo", self)

    def __call__(self, host, port, *args, **kwargs):
        if host not in self.names:
            return self.real(host, port, *args, **kwargs)
        self.lookups.append(host)
        answers = self.names[host]
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        port = int(port or 0)
        if ":" in address:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]


@pytest.fixture
def resolver(monkeypatch):
    return Resolver(monkeypatch)


def url_source(url: str, name: str = "src") -> PullSource:
    """Stored without the service's check, as a source saved before the policy (or a stale form) would be."""
    return PullSource.objects.create(name=name, kind=PullSource.Kind.URL, location=url, format="auto")


def saved_connector(ciso, url: str, kind: str = "marquez", credential: str | None = None) -> Connector:
    """Through the service, which checks the URL as the form does."""
    return connector_save(actor=ciso, credential=credential, data={
        "kind": kind, "name": kind, "base_url": url, "auth": "bearer" if credential else "none", "every_minutes": 30,
        "system_mapping": [], "enabled": True})


def stored_connector(url: str, kind: str = "marquez", name: str = "conn", **kw) -> Connector:
    return Connector.objects.create(kind=kind, name=name, base_url=url, every_minutes=30, **kw)


def source_form(url: str, name: str = "bandit-nightly") -> dict:
    return {"name": name, "kind": "url", "location": url, "format": "auto", "system": "", "every_minutes": "60",
            "enabled": "on"}


def connector_form(url: str, name: str = "marquez-prod") -> dict:
    return {"kind": "marquez", "name": name, "base_url": url, "auth": "none", "credential": "", "every_minutes": "30",
            "system_mapping": "", "enabled": "on"}


def form_refuses(client, user, path: str, data: dict) -> None:
    client.force_login(user)
    response = client.post(path, data)
    body = response.content.decode()
    assert response.status_code == 400 and "refused: " in body and "RAMPART_OUTBOUND_ALLOWED_HOSTS" in body


def pulled(source: PullSource) -> str:
    pull.source_pull(source.pk)
    source.refresh_from_db()
    return source.last_error


def ran(connector: Connector) -> str:
    connector_run(connector_id=connector.pk)
    connector.refresh_from_db()
    return connector.last_error


def without_url(message: str) -> str:
    """The part of a pull or connector error after the URL."""
    return message.split("/report.sarif: ", 1)[-1].split("/api/v1/events/lineage: ", 1)[-1]


# ---------------------------------------------------------------- the policy


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.0.0.5", "private"), ("172.16.0.1", "private"),
    ("192.168.1.10", "private"), ("100.64.0.1", "carrier-grade NAT"), ("169.254.10.1", "link-local"),
    ("fe80::1", "link-local"), ("169.254.169.254", "metadata"), ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"), ("224.0.0.1", "multicast"), ("ff02::1", "multicast"), ("0.0.0.0", "unspecified"),
    ("::", "unspecified"), ("240.0.0.1", "reserved"), ("fc00::1", "unique local"), ("fd12:3456::1", "unique local"),
    ("::ffff:127.0.0.1", "loopback"), ("::ffff:10.0.0.5", "private"), ("64:ff9b::a00:5", "private"),
    ("2002:7f00:1::", "loopback"), ("2002:a9fe:a9fe::", "metadata"), ("::7f00:1", "loopback"),
    ("2001:db8::1", "private"),
])
def test_addresses_that_are_not_globally_routable_are_refused(address, kind):
    refused = classify(address)
    assert refused is not None and kind in refused[0]


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8",
                                     "64:ff9b::808:808", "2002:808:808::"])
def test_globally_routable_addresses_pass(address):
    assert classify(address) is None


def test_the_allow_list_takes_names_addresses_and_networks(settings):
    policy = Policy(("Marquez.Internal.", "10.20.0.0/16", "[::1]", "127.0.0.1"))
    assert policy.names == {"marquez.internal"}
    for url in ("http://10.20.3.4/", "http://[::ffff:10.20.3.4]/", "http://[::1]:5000/", "http://127.0.0.1/",
                "http://2130706433/"):
        policy.check_url(url)
    for url in ("http://10.21.0.1/", "http://127.0.0.2/", "http://169.254.169.254/"):
        with pytest.raises(Refused):
            policy.check_url(url)
    for bad in ("10.0.0.0/33", "127.1", "http://x", "a b"):
        with pytest.raises(ValueError, match="'"):
            Policy((bad,))
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["10.0.0.0/33"]
    with pytest.raises(ImproperlyConfigured, match="RAMPART_OUTBOUND_ALLOWED_HOSTS"):
        outbound.check_url("http://example.com/")


# ---------------------------------------------------------------- the issue's addresses, everywhere


@pytest.mark.parametrize("target", ISSUE_TARGETS)
def test_the_issues_addresses_are_refused_for_pull_sources(target, client, engineer):
    url = f"http://{target}/report.sarif"
    form_refuses(client, engineer, "/findings/sources/new/", source_form(url))
    with pytest.raises(pull.PullError, match="loopback address"):
        sources.source_save(actor=engineer, data={"name": "x", "kind": PullSource.Kind.URL, "location": url,
                                                  "format": "auto", "every_minutes": 60, "enabled": True})
    assert not PullSource.objects.exists()
    error = pulled(url_source(url))
    assert "refused: " in error and "loopback address" in error and not ImportRun.objects.exists()


@pytest.mark.parametrize("target", ISSUE_TARGETS)
def test_the_issues_addresses_are_refused_for_connectors(target, client, ciso):
    url = f"http://{target}"
    form_refuses(client, ciso, "/lineage/connectors/new/", connector_form(url))
    with pytest.raises(ConnectorError, match="loopback address"):
        saved_connector(ciso, url)
    assert not Connector.objects.exists()
    for kind in ("marquez", "mlflow"):
        error = ran(stored_connector(url, kind=kind, name=kind))
        assert error.startswith("ConnectorError: ") and "refused: " in error and "loopback address" in error


def test_an_open_port_and_a_closed_one_fail_alike(server):
    """Redis and PostgreSQL listen on 6379 and 5432, the test server on its port, nothing on port 1: the errors are
    the same refusal, so they say nothing about what listens where."""
    errors = {port: pulled(url_source(f"http://127.0.0.1:{port}/report.sarif", name=f"p{port}"))
              for port in (6379, 5432, server.port, 1)}
    assert len({without_url(e) for e in errors.values()}) == 1
    assert without_url(errors[1]).startswith("refused: 127.0.0.1 is a loopback address")
    connector_errors = {port: ran(stored_connector(f"http://127.0.0.1:{port}", name=f"c{port}"))
                        for port in (6379, 5432, server.port, 1)}
    assert len({without_url(e) for e in connector_errors.values()}) == 1
    assert server.requests == []


# ---------------------------------------------------------------- allowed by an operator


def test_a_host_allowed_by_name_passes(settings, server, resolver, ciso):
    answers_empty(server).routes["/report.sarif"] = report
    resolver.names["reports.internal"] = ["127.0.0.1"]
    url = f"http://reports.internal:{server.port}/report.sarif"
    assert "reports.internal resolves to a loopback address" in pulled(url_source(url, name="before"))
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["reports.internal"]
    assert pulled(url_source(url)) == "" and ImportRun.objects.count() == 1
    connector = saved_connector(ciso, f"http://reports.internal:{server.port}")
    assert ran(connector) == ""


def test_a_host_allowed_by_network_passes(settings, server, ciso):
    answers_empty(server).routes["/report.sarif"] = report
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.0/8", "10.20.0.0/16"]
    assert pulled(url_source(f"{server.url}/report.sarif")) == "" and ImportRun.objects.count() == 1
    connector = saved_connector(ciso, server.url, kind="mlflow")
    assert ran(connector) == ""
    pull.check_location("url", "http://10.20.3.4:5000/r.sarif")
    with pytest.raises(pull.PullError, match="10.21.0.1 is a private address"):
        pull.check_location("url", "http://10.21.0.1:5000/r.sarif")


# ---------------------------------------------------------------- DNS rebinding


def _rebind(resolver) -> None:
    """The next lookup of rebind.test answers a public address (the check before the request), every later one
    127.0.0.1 (the socket's connect)."""
    resolver.names["rebind.test"] = [PUBLIC, "127.0.0.1"]
    resolver.lookups.clear()


def test_rebinding_is_refused_for_a_url_pull(server, resolver, engineer):
    server.routes["/report.sarif"] = report
    resolver.names["rebind.test"] = [PUBLIC]
    source = sources.source_save(actor=engineer, data={
        "name": "rebind", "kind": PullSource.Kind.URL, "location": f"http://rebind.test:{server.port}/report.sarif",
        "format": "auto", "every_minutes": 60, "enabled": True})
    _rebind(resolver)
    error = pulled(source)
    assert "refused: rebind.test resolves to a loopback address" in error and "(when connecting)" in error
    assert resolver.lookups == ["rebind.test", "rebind.test"]  # passed before the request, refused at connect
    assert server.requests == [] and not ImportRun.objects.exists()


@pytest.mark.parametrize("kind", ["marquez", "mlflow"])
def test_rebinding_is_refused_for_lineage_connectors(kind, server, resolver, ciso):
    resolver.names["rebind.test"] = [PUBLIC]
    connector = saved_connector(ciso, f"http://rebind.test:{server.port}", kind=kind)
    _rebind(resolver)
    error = ran(connector)
    assert error.startswith("ConnectorError: ") and "refused: rebind.test resolves to a loopback address" in error
    assert "(when connecting)" in error
    assert resolver.lookups == ["rebind.test", "rebind.test"]
    assert server.requests == []


# ---------------------------------------------------------------- redirects


@pytest.mark.parametrize("location, refused", [
    ("http://10.0.0.5/report.sarif", "10.0.0.5 is a private address"),
    ("http://[::1]:{port}/report.sarif", "::1 is a loopback address"),
    ("http://0x7f000002:{port}/report.sarif", "0x7f000002 (127.0.0.2) is a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
    ("file:///etc/passwd", "only http:// and https://"),
])
def test_a_redirect_to_a_private_address_is_refused(location, refused, settings, server, ciso):
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]  # the first hop only
    target = location.format(port=server.port)
    server.routes["/report.sarif"] = redirect(target)
    server.routes["/api/v1/events/lineage"] = redirect(target, 307)
    error = pulled(url_source(f"{server.url}/report.sarif"))
    assert f"a redirect: refused: {refused}" in error and not ImportRun.objects.exists()
    connector = saved_connector(ciso, server.url)
    assert f"a redirect: refused: {refused}" in ran(connector)
    assert len(server.requests) == 2  # one each: the redirect was not followed


def test_credentials_do_not_follow_a_redirect_to_another_host(settings, server, other_server, resolver, ciso):
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1", "other.test"]
    resolver.names["other.test"] = ["127.0.0.1"]
    server.routes["/api/v1/events/lineage"] = redirect(
        lambda q: f"http://other.test:{other_server.port}/api/v1/events/lineage?{urlencode(q)}", 307)
    answers_empty(other_server)
    connector = saved_connector(ciso, server.url, credential="s3cret-token")
    assert ran(connector) == ""
    assert server.requests[0][3]["Authorization"] == "Bearer s3cret-token"
    assert other_server.requests and all("Authorization" not in r[3] for r in other_server.requests)

    # Same origin: the credentials stay. Another port is another origin: Authorization and Cookie are dropped.
    server.routes["/hop"] = redirect("/final", 307)
    server.routes["/final"] = other_server.routes["/final"] = lambda q, b: (200, b"ok")
    server.routes["/away"] = redirect(f"http://127.0.0.1:{other_server.port}/final", 307)
    client = outbound.client(headers={"Authorization": "Bearer t", "Cookie": "session=1"}, **FAST)
    client.request("GET", f"{server.url}/hop")
    assert server.requests[-1][1] == "/final" and server.requests[-1][3]["Authorization"] == "Bearer t"
    client.request("GET", f"{server.url}/away")
    final = other_server.requests[-1][3]
    assert "Authorization" not in final and "Cookie" not in final


# ---------------------------------------------------------------- errors


def test_errors_never_echo_the_body_or_the_servers_reason_phrase(settings, server, ciso):
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    secret = b"-ERR redis_version:7.2.4 internal-secret-body"
    for path in ("/report.sarif", "/api/v1/events/lineage"):
        server.routes[path] = lambda q, b: (403, secret, {}, "Secret-Reason-Phrase")
    server.routes["/busy.sarif"] = lambda q, b: (503, secret, {}, "Secret-Reason-Phrase")
    errors = [pulled(url_source(f"{server.url}/report.sarif", name="a")),
              pulled(url_source(f"{server.url}/busy.sarif?token=query-secret", name="b")),
              ran(saved_connector(ciso, server.url))]
    assert "HTTP 403 Forbidden" in errors[0] and "HTTP 503 Service Unavailable" in errors[1]
    assert "gave up after 2 attempts" in errors[1] and "HTTP 403 Forbidden" in errors[2]
    for error in errors:
        assert "Secret-Reason" not in error and "secret-body" not in error and "redis" not in error
        assert "query-secret" not in error


def test_one_list_of_transient_statuses_for_pulls_and_connectors(settings, server, ciso):
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    reports, events = [(408, b""), report(None, None)], [(425, b""), (200, {"events": []})]
    server.routes.update({"/report.sarif": lambda q, b: reports.pop(0), "/api/v1/events/lineage": lambda q, b: events.pop(0)})
    assert pulled(url_source(f"{server.url}/report.sarif")) == "" and ImportRun.objects.count() == 1
    assert ran(saved_connector(ciso, server.url)) == ""
    assert len(server.requests) == 4


def test_a_response_over_the_cap_is_refused_by_the_json_client(settings, server):
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    server.routes["/big"] = lambda q, b: (200, b"x" * 5000)
    with pytest.raises(OutboundError, match="larger than 4096 bytes"):
        outbound.client(max_bytes=4096, **FAST).request("GET", f"{server.url}/big")
    assert outbound.client(**FAST).request("GET", f"{server.url}/big") == b"x" * 5000


def test_every_outbound_request_goes_through_worker_outbound():
    """No other module of the application opens HTTP connections of its own."""
    clients = ("urllib.request", "http.client", "import requests", "import httpx", "urllib3", "create_connection")
    offenders = []
    for folder in ("governance", "worker"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "worker" / "outbound.py":
                continue
            text = path.read_text()
            offenders += [f"{path.relative_to(ROOT)}: {c}" for c in clients if c in text]
    assert offenders == []
    assert isinstance(outbound.client(), Client)


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rampart-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("tls.test")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_goes_through_the_same_checks(settings, server, resolver, monkeypatch, tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    server.routes["/ok"] = lambda q, b: (200, b"fine")
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["127.0.0.1"]
    url = f"https://127.0.0.1:{server.port}/ok"
    with pytest.raises(OutboundError, match="TLS certificate not accepted"):
        outbound.client(**FAST).request("GET", url)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted from now on (read by ssl.create_default_context)
    assert outbound.client(**FAST).request("GET", url) == b"fine"

    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = []
    resolver.names["tls.test"] = [PUBLIC, "127.0.0.1"]
    with pytest.raises(Refused, match=r"tls.test resolves to a loopback address.*\(when connecting\)"):
        outbound.client(**FAST).request("GET", f"https://tls.test:{server.port}/ok")
    settings.RAMPART_OUTBOUND_ALLOWED_HOSTS = ["tls.test"]
    assert outbound.client(**FAST).request("GET", f"https://tls.test:{server.port}/ok") == b"fine"
