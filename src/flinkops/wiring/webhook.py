"""The admission webhooks' HTTPS server and its certificates, in the operator process.

``WebhookServer`` answers ``POST /validate`` (an ``admission.k8s.io/v1`` AdmissionReview) with
``core.admission.review``'s verdict and ``POST /mutate`` with ``core.admission.mutate``'s patch; a body that is
no AdmissionReview gets HTTP 400 (the API server then applies the configuration's ``failurePolicy``). Every
replica serves, leader or standby: the webhook Service spreads the API server's calls over all of them. TLS comes
from a ``CertificateSource``, read again every ``reload`` seconds, so a renewed certificate is served without a
restart (each connection is wrapped with the newest context):

* ``SecretCertificates``: certificates the operator makes itself (no cert-manager). A self-signed CA and a serving
  certificate for the webhook Service's DNS names, both ECDSA P-256 made with ``cryptography``, kept in one Secret
  (``ca.crt``, ``ca.key``, ``tls.crt``, ``tls.key``); the CA goes into every webhook of the Validating- (and
  Mutating-) WebhookConfiguration as ``caBundle``. The serving certificate is renewed when less than a third of its
  life is left or its names changed, under the same CA (the ``caBundle`` stays valid); the CA is renewed when less
  than a third of its life is left, and the old CA stays in the bundle until it expires, so a replica still
  serving the old certificate is trusted meanwhile. Replicas race on the Secret with ``resourceVersion``
  preconditions: the loser reads the winner's certificates.
* ``FileCertificates``: ``tls.crt``/``tls.key`` in a directory (cert-manager's Secret, mounted); cert-manager's
  ``cainjector`` fills the ``caBundle``.

Called by: ``wiring.operator`` (``flinkops operator run``), and the webhook's tests and benchmark directly.
Invariants: private keys never reach logs; DELETE is never in the configuration's rules (the chart's), so a down
webhook never blocks deleting a resource.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import json
import logging
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from flinkops.api.loader import Resource
from flinkops.core.admission import Malformed, mutate, review
from flinkops.errors import Conflict, FlinkopsError, InvalidInput
from flinkops.kube.client import KubeClient
from flinkops.stores.kubernetes import to_model

__all__ = [
    "CA_LIFETIME",
    "SERVING_LIFETIME",
    "CertificateSource",
    "FileCertificates",
    "Pair",
    "SecretCertificates",
    "WebhookServer",
    "WebhookSettings",
    "api_lookup",
    "make_ca",
    "make_serving",
    "service_names",
    "start_webhook",
    "webhook_settings_from_env",
]

log = logging.getLogger("flinkops.webhook")

CA_LIFETIME = dt.timedelta(days=3650)
SERVING_LIFETIME = dt.timedelta(days=365)
MAX_BODY = 3 * 2**20  # the API server's own request limit is 3 MiB


@dataclass(frozen=True)
class Pair:
    """A certificate (PEM, leaf first) and its key (PEM)."""

    cert: bytes
    key: bytes


class CertificateSource(Protocol):
    def serving(self) -> Pair:
        """The pair to serve now (making or renewing it first when this source does that)."""
        ...


# ------------------------------------------------------------------------------------------- certificates


def service_names(service: str, namespace: str) -> list[str]:
    """The DNS names the API server may use for a Service: ``svc``, ``svc.ns``, ``svc.ns.svc`` and the FQDN."""
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_ca(now: dt.datetime, common_name: str = "flinkops-webhook-ca", lifetime: dt.timedelta = CA_LIFETIME) -> Pair:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )  # digitalSignature, keyCertSign, cRLSign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def make_serving(ca: Pair, names: Sequence[str], now: dt.datetime, lifetime: dt.timedelta = SERVING_LIFETIME) -> Pair:
    """A serving certificate for ``names`` (DNS names or IP addresses) signed by ``ca``."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = _key()
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + lifetime, ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _due(cert_pem: bytes, now: dt.datetime) -> bool:
    """Less than a third of the certificate's life left (or unreadable): renew it."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError:
        return True
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return now >= end - (end - start) / 3


def _names_of(cert_pem: bytes) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_pem)
    try:
        alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(n) for n in alt.get_values_for_type(x509.DNSName)} | {
        str(ip) for ip in alt.get_values_for_type(x509.IPAddress)
    }


def _unexpired(bundle: bytes, now: dt.datetime) -> list[bytes]:
    return [
        c.public_bytes(serialization.Encoding.PEM)
        for c in x509.load_pem_x509_certificates(bundle)
        if c.not_valid_after_utc > now
    ]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class SecretCertificates:
    """Certificates the operator makes, keeps in ``namespace/secret`` and hands to the API server through the
    ``caBundle`` of the webhook configurations named ``webhook_config`` (the Validating one, and with ``mutating``
    the Mutating one; empty: patch none). Without ``mutating`` the Mutating configuration is never read: the chart
    then grants no right on it."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        secret: str,
        names: Sequence[str],
        webhook_config: str = "",
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        *,
        mutating: bool = True,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.secret = secret
        self.names = list(names)
        self.webhook_config = webhook_config
        self.mutating = mutating
        self.now = now
        self.ca_bundle = b""

    @property
    def _path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/secrets/{self.secret}"

    def serving(self) -> Pair:
        for _ in range(5):
            try:
                data = self._ensure_secret()
                break
            except Conflict:
                continue  # another replica wrote it first: read theirs
        else:
            raise Conflict(f"the Secret {self.namespace}/{self.secret} kept changing while it was renewed")
        self.ca_bundle = data["ca.crt"]
        if self.webhook_config:
            self._patch_ca_bundle(self.ca_bundle)
        return Pair(data["tls.crt"], data["tls.key"])

    def _ensure_secret(self) -> dict[str, bytes]:
        now = self.now()
        current = self.client.get(self._path)
        data = {k: base64.b64decode(v) for k, v in ((current or {}).get("data") or {}).items()}
        complete = all(k in data for k in ("ca.crt", "ca.key", "tls.crt", "tls.key"))
        fresh = complete and not _due(data["ca.crt"], now) and not _due(data["tls.crt"], now)
        if fresh and _names_of(data["tls.crt"]) == set(self.names):
            return data
        bundle = _unexpired(data["ca.crt"], now) if complete else []
        ca = Pair(bundle[0], data["ca.key"]) if complete and bundle and not _due(bundle[0], now) else None
        if ca is None:
            ca = make_ca(now)
            bundle = [ca.cert, *bundle]  # the old CA stays trusted until it expires
            log.info("made a new webhook CA in Secret %s/%s", self.namespace, self.secret)
        leaf = make_serving(ca, self.names, now)
        new = {"ca.crt": b"".join(bundle), "ca.key": ca.key, "tls.crt": leaf.cert, "tls.key": leaf.key}
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.secret,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "flinkops", "app.kubernetes.io/component": "webhook"},
            },
            # Opaque: the chart creates it empty (so the operator needs no right to create Secrets), and a type
            # cannot change later.
            "type": (current or {}).get("type") or "Opaque",
            "data": {k: _b64(v) for k, v in new.items()},
        }
        if current is None:
            self.client.create(f"/api/v1/namespaces/{self.namespace}/secrets", body)
        else:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.client.replace(self._path, body)  # Conflict when another replica renewed it meanwhile
        log.info("renewed the webhook serving certificate in Secret %s/%s", self.namespace, self.secret)
        return new

    def _patch_ca_bundle(self, bundle: bytes) -> None:
        self._patch_config("validatingwebhookconfigurations", bundle)
        if self.mutating:  # the defaulting webhook is optional (webhook.mutating in the chart)
            self._patch_config("mutatingwebhookconfigurations", bundle)

    def _patch_config(self, plural: str, bundle: bytes) -> None:
        path = f"/apis/admissionregistration.k8s.io/v1/{plural}/{self.webhook_config}"
        config = self.client.get(path)
        if config is None:
            log.warning("%s %s not found; its caBundle waits", plural, self.webhook_config)
            return
        wanted = _b64(bundle)
        ops = [
            {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": wanted}
            for i, hook in enumerate(config.get("webhooks") or [])
            if (hook.get("clientConfig") or {}).get("caBundle") != wanted
        ]
        if ops:
            # Guarded by the version read: a configuration rewritten meanwhile (helm upgrade) is patched next round.
            test = {"op": "test", "path": "/metadata/resourceVersion", "value": config["metadata"]["resourceVersion"]}
            self.client.patch(path, [test, *ops], kind="json")
            log.info("set the caBundle of %s %s", plural, self.webhook_config)


class FileCertificates:
    """``tls.crt`` and ``tls.key`` in ``directory`` (a mounted Secret, e.g. cert-manager's)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def serving(self) -> Pair:
        return Pair((self.directory / "tls.crt").read_bytes(), (self.directory / "tls.key").read_bytes())


def _context(pair: Pair) -> ssl.SSLContext:
    """A server context for ``pair``. ``ssl`` loads keys from files only: they go through a private temporary
    file that is removed at once."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    fd, name = tempfile.mkstemp(prefix="flinkops-webhook-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pair.cert + b"\n" + pair.key)
        context.load_cert_chain(name)
    finally:
        os.unlink(name)
    return context


# ------------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class WebhookSettings:
    """Where the webhook listens and where its certificates come from: files in ``cert_dir`` (cert-manager's)
    when set, else the Secret ``namespace/secret`` the operator keeps for the Service ``service`` and whose CA it
    puts into ``config`` (the ValidatingWebhookConfiguration)."""

    port: int = 9443
    address: str = "0.0.0.0"
    namespace: str = "default"
    service: str = "flinkops-webhook"
    secret: str = "flinkops-webhook-tls"
    config: str = "flinkops"
    cert_dir: str = ""
    #: The defaulting webhook is installed too (its configuration's caBundle is kept).
    mutating: bool = True


def webhook_settings_from_env(namespace: str, port: int | None = None) -> WebhookSettings | None:
    """The settings the Helm chart passes in ``FLINKOPS_WEBHOOK_*``; None (no webhook) when the port is 0 or
    unset."""
    chosen = port if port is not None else int(os.environ.get("FLINKOPS_WEBHOOK_PORT") or 0)
    if chosen <= 0:
        return None
    defaults = WebhookSettings()
    return WebhookSettings(
        port=chosen,
        address="0.0.0.0" if os.environ.get("KUBERNETES_SERVICE_HOST") else "127.0.0.1",
        namespace=namespace,
        service=os.environ.get("FLINKOPS_WEBHOOK_SERVICE") or defaults.service,
        secret=os.environ.get("FLINKOPS_WEBHOOK_SECRET") or defaults.secret,
        config=os.environ.get("FLINKOPS_WEBHOOK_CONFIG") or defaults.config,
        cert_dir=os.environ.get("FLINKOPS_WEBHOOK_CERT_DIR") or "",
        mutating=os.environ.get("FLINKOPS_WEBHOOK_MUTATING", "true").strip().lower() != "false",
    )


def start_webhook(client: KubeClient, settings: WebhookSettings) -> WebhookServer:
    source: CertificateSource
    if settings.cert_dir:
        source = FileCertificates(Path(settings.cert_dir))
    else:
        names = service_names(settings.service, settings.namespace)
        source = SecretCertificates(
            client, settings.namespace, settings.secret, names, settings.config, mutating=settings.mutating
        )
    server = WebhookServer(source, settings.address, settings.port, lookup=api_lookup(client)).start()
    log.info("admission webhook serving /validate on %s:%d over TLS", settings.address, server.port)
    return server


# ------------------------------------------------------------------------------------------------ server


Lookup = Callable[[tuple[str, str, str]], Resource | None]


def api_lookup(client: KubeClient) -> Lookup:
    """A stored FlinkDeployment read from the API server (None when absent, unreadable or out of reach): the
    webhook asks only for a session job's cluster."""

    def lookup(key: tuple[str, str, str]) -> Resource | None:
        kind, namespace, name = key
        if kind != "FlinkDeployment":
            return None
        try:
            obj = client.get(f"/apis/flink.apache.org/v1beta1/namespaces/{namespace}/flinkdeployments/{name}")
            return to_model(obj) if obj is not None else None
        except (FlinkopsError, InvalidInput):
            return None

    return lookup


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: WebhookServer

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        # The handshake runs on the handler's thread (first read), never on the accepting one.
        wrapped = self.owner.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self.owner.lock:
            self.owner.connections.add(wrapped)
        return wrapped, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that does not trust the certificate (or drops the connection) fails the handshake on the
        # handler's thread: one log line, not socketserver's traceback on stderr.
        log.debug("webhook connection from %s failed", client_address, exc_info=True)

    def shutdown_request(self, request: Any) -> None:
        with self.owner.lock:
            self.owner.connections.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the API server reuses its connections
    # Headers and body leave in separate writes; with Nagle's algorithm on, the body waits for the client's
    # delayed ACK (40 ms on Linux) on every kept-alive connection.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per review would drown the operator's log

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        route = self.path.split("?", 1)[0]
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0 or length > MAX_BODY:
            self.close_connection = True  # an unread body would be taken for the next request on this connection
            self._send(400, b'{"error": "a body of 1 byte to 3 MiB (with its Content-Length) is expected"}')
            return
        body = self.rfile.read(length)  # read even for a path that does not exist: the connection stays usable
        if route not in ("/validate", "/mutate"):
            self._send(404, b"not found\n", "text/plain")
            return
        try:
            verdict = review(body, self.server.owner.lookup) if route == "/validate" else mutate(body)
        except Malformed as exc:
            self._send(400, json.dumps({"error": str(exc)}).encode())
            return
        if not verdict.allowed:
            log.info("denied %s", verdict.message[:500])
        self._send(200, json.dumps(verdict.response()).encode())


class WebhookServer:
    """HTTPS on ``address:port`` (0: a free port, see ``port``), certificates from ``source`` re-read every
    ``reload`` seconds. ``start()`` reads them once first: an error there (no Secret rights, no mounted files)
    fails the start."""

    def __init__(
        self,
        source: CertificateSource,
        address: str = "0.0.0.0",
        port: int = 9443,
        *,
        lookup: Lookup | None = None,
        reload: float = 60.0,
    ) -> None:
        self.source = source
        self.lookup = lookup
        self.reload = reload
        self.pair = source.serving()
        self.context = _context(self.pair)
        self._httpd = _Server((address, port), _Handler)
        self._httpd.owner = self
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.lock = threading.Lock()
        #: open connections: the API server keeps them alive, so stopping must close them too
        self.connections: set[socket.socket] = set()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> WebhookServer:
        serve = threading.Thread(target=self._httpd.serve_forever, name="webhook", daemon=True)
        renew = threading.Thread(target=self._renew, name="webhook-certificates", daemon=True)
        self._threads = [serve, renew]
        for thread in self._threads:
            thread.start()
        return self

    def refresh(self) -> None:
        """Read the certificates again (renewing them when due); serve the new pair from the next connection."""
        pair = self.source.serving()
        if pair != self.pair:
            self.context = _context(pair)
            self.pair = pair
            log.info("serving a new webhook certificate")

    def _renew(self) -> None:
        while not self._stop.wait(self.reload):
            try:
                self.refresh()
            except (FlinkopsError, OSError, ValueError, ssl.SSLError) as exc:
                log.warning("webhook certificates not refreshed (the current ones stay): %s", exc)

    def stop(self) -> None:
        """Stop answering: no new connections, and the kept-alive ones are closed."""
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self.lock:
            open_now = list(self.connections)
        for connection in open_now:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout=5)
