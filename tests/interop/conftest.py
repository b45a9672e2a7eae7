"""Interoperability harness: a real agentauth server, driven by the official client libraries.

Builds nothing. Expects the binary at ``target/debug/agentauth`` (or ``$AGENTAUTH_BIN``),
starts it once per session with ``--tls-self-signed`` on a free port in a temporary data dir,
and stops it at the end. Every token a library receives is verified with PyJWT against the
server's JWKS (see ``verify_token``).

TLS trust: every client is given ``<data dir>/tls/ca.pem`` explicitly. ``requests`` lets
``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` from the environment override a session's
``verify=`` (psf/requests#3829), which silently defeats MSAL's ``verify=``; this module removes
both variables from the test process so that the explicit settings are the ones in force
(``test_msal.py::test_ca_bundle_variables_override_msal_verify`` shows the trap).
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

# See the module docstring: the environment must not override the CA given to each client.
for _var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
    os.environ.pop(_var, None)

REPO = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("AGENTAUTH_BIN", REPO / "target" / "debug" / "agentauth"))
SPONSOR = "interop-tests@example.com"
# The audience Entra uses for federated (workload identity) credentials and for T1.
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


@dataclass
class Server:
    base: str
    tenant: str
    ca: str
    data_dir: Path
    log: Path
    admin_creds: dict
    process: subprocess.Popen

    @property
    def authority(self) -> str:
        """The MSAL authority: ``https://127.0.0.1:PORT/<tenant>``."""
        return f"{self.base}/{self.tenant}"

    @property
    def entra_token_endpoint(self) -> str:
        return f"{self.base}/{self.tenant}/oauth2/v2.0/token"

    @property
    def token_endpoint(self) -> str:
        return f"{self.base}/oauth2/token"

    @property
    def entra_issuer(self) -> str:
        return f"{self.base}/{self.tenant}/v2.0"

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Server:
    if not BIN.exists():
        pytest.exit(f"agentauth binary not found at {BIN}; run `cargo build` (or set AGENTAUTH_BIN)", 2)
    data_dir = tmp_path_factory.mktemp("agentauth-data")
    log = data_dir / "server.log"
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between probing and binding
        port = free_port()
        base = f"https://127.0.0.1:{port}"
        env = dict(os.environ, AGENTAUTH_LOG_FORMAT="pretty", NO_COLOR="1")
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [str(BIN), "serve", "--data-dir", str(data_dir), "--bind", f"127.0.0.1:{port}", "--tls-self-signed"],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=data_dir,
                env=env,
            )
        ca = data_dir / "tls" / "ca.pem"
        deadline = time.monotonic() + 30
        ready = False
        while time.monotonic() < deadline and proc.poll() is None:
            if ca.exists():
                try:
                    r = requests.get(f"{base}/readyz", verify=str(ca), timeout=2)
                    if r.status_code == 200:
                        ready = True
                        break
                except requests.RequestException as e:
                    last_error = repr(e)
            time.sleep(0.1)
        if ready:
            break
        proc.kill()
        proc.wait()
    else:
        pytest.exit(f"agentauth did not become ready: {last_error}\n{log.read_text(errors='replace')[-3000:]}", 2)
    creds = json.loads((data_dir / "admin-credentials.json").read_text())
    srv = Server(
        base=base,
        tenant=creds["tenant_id"],
        ca=str(ca),
        data_dir=data_dir,
        log=log,
        admin_creds=creds,
        process=proc,
    )
    yield srv
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def ca_path(server) -> str:
    return server.ca


@pytest.fixture(scope="session")
def ssl_ctx(server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=server.ca)


# --------------------------------------------------------------------------------------------
# Admin API
# --------------------------------------------------------------------------------------------


class AdminApi:
    """The admin API under /admin/v1, as the bootstrap admin."""

    def __init__(self, server: Server):
        self.server = server
        self.http = requests.Session()
        self.http.verify = server.ca
        self._token: str | None = None
        self._token_exp = 0.0

    def _bearer(self) -> str:
        if self._token is None or time.time() > self._token_exp - 60:
            c = self.server.admin_creds
            r = requests.post(
                c["token_endpoint"],
                data={"grant_type": "client_credentials", "scope": c["scope"]},
                auth=(c["client_id"], c["client_secret"]),
                verify=self.server.ca,
                timeout=10,
            )
            r.raise_for_status()
            body = r.json()
            self._token = body["access_token"]
            self._token_exp = time.time() + body["expires_in"]
        return self._token

    def call(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201, 204)) -> Any:
        r = self.http.request(
            method,
            f"{self.server.base}/admin/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {self._bearer()}"},
            timeout=10,
        )
        if r.status_code not in expect:
            raise AssertionError(f"admin {method} {path} -> {r.status_code}: {r.text}")
        return r.json() if r.content else None

    def post(self, path: str, body: Any) -> Any:
        return self.call("POST", path, body)

    def put(self, path: str, body: Any) -> Any:
        return self.call("PUT", path, body)

    def get(self, path: str) -> Any:
        return self.call("GET", path)


@pytest.fixture(scope="session")
def admin(server) -> AdminApi:
    return AdminApi(server)


# --------------------------------------------------------------------------------------------
# Resources, agents, blueprints
# --------------------------------------------------------------------------------------------

ROLES = ["Data.Read", "Data.Write"]
SCOPES = ["data.read", "data.write"]


@dataclass
class Resource:
    identifier: str
    profile: str
    roles: list = field(default_factory=lambda: list(ROLES))
    scopes: list = field(default_factory=lambda: list(SCOPES))

    @property
    def default_scope(self) -> str:
        return f"{self.identifier}/.default"


def _make_resource(admin: AdminApi, profile: str) -> Resource:
    res = Resource(identifier=f"api://{unique('interop-' + profile)}", profile=profile)
    admin.post(
        "/resources",
        {
            "identifier": res.identifier,
            "name": f"interop {profile} {res.identifier}",
            "roles": res.roles,
            "scopes": res.scopes,
            "token_profile": profile,
        },
    )
    return res


@pytest.fixture(scope="session")
def entra_resource(admin) -> Resource:
    """A resource with ``token_profile: "entra"``."""
    return _make_resource(admin, "entra")


@pytest.fixture(scope="session")
def rfc9068_resource(admin) -> Resource:
    """A resource with ``token_profile: "rfc9068"``."""
    return _make_resource(admin, "rfc9068")


@dataclass
class Agent:
    id: str
    name: str
    secret: str | None = None
    blueprint_id: str | None = None

    @property
    def client_id(self) -> str:
        return self.id


class AgentFactory:
    """Registers agents: a name, a sponsor, optionally a secret, roles and delegations."""

    def __init__(self, admin: AdminApi):
        self.admin = admin

    def __call__(
        self,
        resources: list[Resource] = (),
        secret: bool = True,
        roles: bool = True,
        delegations: bool = True,
        blueprint_id: str | None = None,
    ) -> Agent:
        body = {"name": unique("interop-agent"), "sponsors": [SPONSOR]}
        if blueprint_id:
            body["blueprint_id"] = blueprint_id
        created = self.admin.post("/agents", body)
        agent = Agent(id=created["id"], name=created["name"], blueprint_id=blueprint_id)
        assert created["client_id"] == agent.id
        if secret:
            agent.secret = self.admin.post(f"/agents/{agent.id}/credentials", {"type": "client_secret"})["secret"]
        for res in resources:
            if roles:
                self.admin.put(f"/agents/{agent.id}/roles", {"resource": res.identifier, "roles": res.roles})
            if delegations:
                self.admin.put(f"/agents/{agent.id}/delegations", {"resource": res.identifier, "scopes": res.scopes})
        return agent

    def add_certificate(self, agent: Agent, cert_pem: str) -> dict:
        return self.admin.post(f"/agents/{agent.id}/credentials", {"type": "public_key", "certificate": cert_pem})

    def add_jwk(self, agent: Agent, jwk: dict) -> dict:
        return self.admin.post(f"/agents/{agent.id}/credentials", {"type": "public_key", "jwk": jwk})

    def add_federated(self, agent: Agent, issuer: str, subject: str, audience: str = TOKEN_EXCHANGE_AUDIENCE) -> dict:
        return self.admin.post(
            f"/agents/{agent.id}/credentials",
            {"type": "federated", "issuer": issuer, "subject": subject, "audience": audience},
        )


@pytest.fixture(scope="session")
def make_agent(admin) -> AgentFactory:
    return AgentFactory(admin)


@pytest.fixture(scope="session")
def agent(make_agent, entra_resource, rfc9068_resource) -> Agent:
    """An agent with a client secret, every role and every delegated scope on both resources."""
    return make_agent([entra_resource, rfc9068_resource])


@dataclass
class Blueprint:
    id: str
    secret: str


@pytest.fixture(scope="session")
def make_blueprint(admin):
    def make() -> Blueprint:
        created = admin.post("/blueprints", {"name": unique("interop-blueprint"), "sponsors": [SPONSOR]})
        secret = admin.post(f"/blueprints/{created['id']}/credentials", {"type": "client_secret"})["secret"]
        return Blueprint(id=created["id"], secret=secret)

    return make


# --------------------------------------------------------------------------------------------
# Keys and certificates for private_key_jwt
# --------------------------------------------------------------------------------------------


@dataclass
class CertKey:
    key_pem: str
    cert_pem: str
    sha1_hex: str
    sha256_hex: str

    @property
    def combined_pem(self) -> bytes:
        """Private key then certificate, as azure-identity's CertificateCredential reads it."""
        return (self.key_pem + self.cert_pem).encode()


def make_cert(common_name: str = "interop-agent") -> CertKey:
    """A self-signed RSA-2048 X.509 certificate and its key, in PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = time.time()
    import datetime as dt

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.fromtimestamp(now - 300, dt.timezone.utc))
        .not_valid_after(dt.datetime.fromtimestamp(now + 86400, dt.timezone.utc))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    return CertKey(
        key_pem=key_pem,
        cert_pem=cert_pem,
        sha1_hex=cert.fingerprint(hashes.SHA1()).hex(),
        sha256_hex=cert.fingerprint(hashes.SHA256()).hex(),
    )


@pytest.fixture(scope="session")
def cert_factory():
    return make_cert


# --------------------------------------------------------------------------------------------
# A fake external IdP: an EC key whose JWKS is served on 127.0.0.1 over plain HTTP
# --------------------------------------------------------------------------------------------


class FakeIdp:
    def __init__(self):
        self.key = ec.generate_private_key(ec.SECP256R1())
        nums = self.key.public_key().public_numbers()
        self.kid = unique("idp-key")
        self.jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(nums.x.to_bytes(32, "big")),
            "y": b64url(nums.y.to_bytes(32, "big")),
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
        }
        self.private_pem = self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        self.jwks_hits = 0
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                if self.path.split("?")[0] == "/jwks.json":
                    idp.jwks_hits += 1
                    body = json.dumps({"keys": [idp.jwk]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_error(404)

            def log_message(self, *args):  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.issuer = f"http://127.0.0.1:{self.port}/idp"
        self.jwks_uri = f"http://127.0.0.1:{self.port}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def mint(self, sub: str, aud: str, lifetime: int = 600, **claims) -> str:
        now = int(time.time())
        body = {
            "iss": self.issuer,
            "sub": sub,
            "aud": aud,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
        }
        body.update(claims)
        return jwt.encode(body, self.private_pem, algorithm="ES256", headers={"kid": self.kid, "typ": "JWT"})

    def user_token(self, agent: Agent, user: str = "alice@example.com", **claims) -> str:
        """A user's token addressed to the agent (aud = its client id), for OBO / token exchange."""
        return self.mint(sub=user, aud=agent.client_id, name="Alice", **claims)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def fake_idp(admin) -> FakeIdp:
    idp = FakeIdp()
    admin.post(
        "/trusted-issuers",
        {
            "issuer": idp.issuer,
            "jwks_uri": idp.jwks_uri,
            "audiences": ["api://interop-users"],
            "use": ["subject_tokens", "federated_credentials"],
        },
    )
    yield idp
    idp.close()


# --------------------------------------------------------------------------------------------
# Verifying what the libraries received
# --------------------------------------------------------------------------------------------

ALGORITHMS = ["ES256", "ES384", "EdDSA", "RS256", "PS256"]


class TokenVerifier:
    """Checks a token's signature against the server's JWKS (with PyJWKClient), its audience,
    issuer and profile shape."""

    def __init__(self, server: Server, ctx: ssl.SSLContext):
        self.server = server
        self.entra_jwks = jwt.PyJWKClient(f"{server.base}/{server.tenant}/discovery/v2.0/keys", ssl_context=ctx)
        self.jwks = jwt.PyJWKClient(f"{server.base}/oauth2/jwks", ssl_context=ctx)

    def __call__(
        self,
        token: str,
        resource: Resource,
        *,
        azp: str | None = None,
        roles: list | None = None,
        scopes: list | None = None,
        sub: str | None = None,
    ) -> dict:
        header = jwt.get_unverified_header(token)
        assert "kid" in header, header
        if resource.profile == "entra":
            client, issuer = self.entra_jwks, self.server.entra_issuer
        else:
            client, issuer = self.jwks, self.server.base
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            audience=resource.identifier,
            issuer=issuer,
            options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
        )
        delegated = scopes is not None
        if resource.profile == "entra":
            assert header["typ"] == "JWT", header
            assert claims["ver"] == "2.0"
            assert claims["tid"] == self.server.tenant
            assert claims["idtyp"] == ("user" if delegated else "app")
            assert isinstance(claims["uti"], str) and claims["uti"]
            assert "jti" not in claims
            assert claims["oid"] == claims["sub"]
            assert claims["azpacr"] in ("1", "2")
            if azp is not None:
                assert claims["azp"] == azp
            if roles is not None:
                assert sorted(claims.get("roles", [])) == sorted(roles)
            if scopes is not None:
                assert sorted(claims["scp"].split()) == sorted(scopes)
        else:
            assert header["typ"] == "at+jwt", header
            assert claims["jti"]
            if azp is not None:
                assert claims["client_id"] == azp
            if roles is not None:
                assert sorted(claims.get("roles", [])) == sorted(roles)
            if scopes is not None:
                assert sorted(claims["scope"].split()) == sorted(scopes)
        if sub is not None:
            assert claims["sub"] == sub
        return claims


@pytest.fixture(scope="session")
def verify_token(server, ssl_ctx) -> TokenVerifier:
    return TokenVerifier(server, ssl_ctx)


@pytest.fixture(autouse=True)
def _server_log_on_failure(request, server):
    """On a failing test, print the tail of the server log (pytest shows it with the failure)."""
    yield
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print("---- agentauth log (tail) ----")
        print(server.log_tail())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
