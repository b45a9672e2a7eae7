"""Authlib's requests ``OAuth2Session``: client credentials at ``<base>/oauth2/token`` with
``client_secret_basic``, ``client_secret_post`` and ``private_key_jwt``.

Offline settings: the session's ``verify`` (or ``verify=`` on ``fetch_token``) is the local CA, with
``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` unset or pointing at the same CA (``OAuth2Session`` is a
``requests.Session``, so the same override applies as for MSAL).
"""

from __future__ import annotations

import json

import jwt
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, RSAKey

from conftest import ROLES, unique


class RecordingOAuth2Session(OAuth2Session):
    """Remembers the last token request (form and headers) Authlib sent."""

    last = None

    def request(self, method, url, *args, **kwargs):
        resp = super().request(method, url, *args, **kwargs)
        self.last = resp.request
        return resp

    def last_form(self) -> dict:
        from urllib.parse import parse_qsl

        body = self.last.body or ""
        return dict(parse_qsl(body.decode() if isinstance(body, bytes) else body))


def session(server, client_id, secret_or_key, method, **kwargs) -> RecordingOAuth2Session:
    s = RecordingOAuth2Session(client_id, secret_or_key, token_endpoint_auth_method=method, **kwargs)
    s.verify = server.ca
    return s


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_client_secret(server, agent, rfc9068_resource, verify_token, method):
    s = session(server, agent.client_id, agent.secret, method)
    token = s.fetch_token(server.token_endpoint, grant_type="client_credentials", scope=rfc9068_resource.default_scope)
    assert token["token_type"].lower() == "bearer" and "refresh_token" not in token
    form = s.last_form()
    if method == "client_secret_basic":
        assert s.last.headers["Authorization"].startswith("Basic ") and "client_secret" not in form
    else:
        assert "Authorization" not in s.last.headers and form["client_secret"] and form["client_id"] == agent.id
    claims = verify_token(token["access_token"], rfc9068_resource, azp=agent.id, roles=ROLES, sub=agent.id)
    assert claims["client_id"] == agent.id


def test_client_secret_basic_for_an_entra_profile_resource(server, agent, entra_resource, verify_token):
    """The profile follows the resource, whichever token route issued it."""
    s = session(server, agent.client_id, agent.secret, "client_secret_basic")
    token = s.fetch_token(server.token_endpoint, grant_type="client_credentials", scope=entra_resource.default_scope)
    verify_token(token["access_token"], entra_resource, azp=agent.id, roles=ROLES)


def test_bare_roles_with_resource_indicator(server, agent, rfc9068_resource, verify_token):
    """RFC 8707: bare role names with ``resource=``."""
    s = session(server, agent.client_id, agent.secret, "client_secret_post")
    token = s.fetch_token(
        server.token_endpoint, grant_type="client_credentials", scope="Data.Read", resource=rfc9068_resource.identifier
    )
    assert token["scope"] == "Data.Read"
    verify_token(token["access_token"], rfc9068_resource, azp=agent.id, roles=["Data.Read"])


def _rsa_jwk(kid: str):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": kid, "alg": "RS256", "use": "sig"})
    return pem, public


def _ec_jwk(kid: str):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    public.update({"kid": kid, "alg": "ES256", "use": "sig"})
    return pem, public


def test_private_key_jwt_rs256_with_a_registered_jwk(server, make_agent, rfc9068_resource, verify_token):
    agent = make_agent([rfc9068_resource], secret=False)
    pem, public = _rsa_jwk(unique("kid"))
    make_agent.add_jwk(agent, public)
    s = session(server, agent.client_id, pem, "private_key_jwt")
    s.register_client_auth_method(PrivateKeyJWT(server.token_endpoint))
    token = s.fetch_token(server.token_endpoint, grant_type="client_credentials", scope=rfc9068_resource.default_scope)
    form = s.last_form()
    # Authlib sends no client_id: the server finds the client by the assertion's sub.
    assert "client_id" not in form and "Authorization" not in s.last.headers
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header["alg"] == "RS256", header
    claims = verify_token(token["access_token"], rfc9068_resource, azp=agent.id, roles=ROLES, sub=agent.id)
    assert claims["client_id"] == agent.id


def test_private_key_jwt_es256_with_kid(server, make_agent, rfc9068_resource, verify_token):
    agent = make_agent([rfc9068_resource], secret=False)
    kid = unique("kid")
    pem, public = _ec_jwk(kid)
    make_agent.add_jwk(agent, public)
    s = session(server, agent.client_id, ECKey.import_key(pem), "private_key_jwt")
    s.register_client_auth_method(PrivateKeyJWT(server.token_endpoint, alg="ES256", headers={"kid": kid}))
    token = s.fetch_token(server.token_endpoint, grant_type="client_credentials", scope=rfc9068_resource.default_scope)
    header = jwt.get_unverified_header(s.last_form()["client_assertion"])
    assert header["alg"] == "ES256" and header["kid"] == kid, header
    verify_token(token["access_token"], rfc9068_resource, azp=agent.id, roles=ROLES)


def test_private_key_jwt_with_a_registered_certificate_and_no_key_hint(
    server, make_agent, rfc9068_resource, cert_factory, verify_token
):
    """No ``kid`` nor ``x5t``: each of the client's keys is tried, the certificate's among them."""
    agent = make_agent([rfc9068_resource], secret=False)
    _, decoy = _rsa_jwk(unique("decoy"))
    make_agent.add_jwk(agent, decoy)
    cert = cert_factory()
    make_agent.add_certificate(agent, cert.cert_pem)
    s = session(server, agent.client_id, RSAKey.import_key(cert.key_pem), "private_key_jwt")
    s.register_client_auth_method(PrivateKeyJWT(server.token_endpoint))
    token = s.fetch_token(server.token_endpoint, grant_type="client_credentials", scope=rfc9068_resource.default_scope)
    verify_token(token["access_token"], rfc9068_resource, azp=agent.id, roles=ROLES)


def test_private_key_jwt_signed_by_an_unregistered_key_is_refused(server, make_agent, rfc9068_resource):
    agent = make_agent([rfc9068_resource], secret=False)
    _, public = _rsa_jwk(unique("kid"))
    make_agent.add_jwk(agent, public)
    other_pem, _ = _rsa_jwk(unique("kid"))
    s = session(server, agent.client_id, other_pem, "private_key_jwt")
    s.register_client_auth_method(PrivateKeyJWT(server.token_endpoint))
    with pytest.raises(OAuthError) as e:
        s.fetch_token(server.token_endpoint, grant_type="client_credentials", scope=rfc9068_resource.default_scope)
    assert e.value.error == "invalid_client"


def test_wrong_secret_is_invalid_client(server, agent, rfc9068_resource):
    s = session(server, agent.client_id, "z" * 43, "client_secret_basic")
    with pytest.raises(OAuthError) as e:
        s.fetch_token(server.token_endpoint, grant_type="client_credentials", scope=rfc9068_resource.default_scope)
    assert e.value.error == "invalid_client"


def test_role_not_held_is_invalid_scope(server, make_agent, rfc9068_resource):
    agent = make_agent([], roles=False, delegations=False)
    agent_roles = {"resource": rfc9068_resource.identifier, "roles": ["Data.Read"]}
    make_agent.admin.put(f"/agents/{agent.id}/roles", agent_roles)
    s = session(server, agent.client_id, agent.secret, "client_secret_post")
    with pytest.raises(OAuthError) as e:
        s.fetch_token(
            server.token_endpoint, grant_type="client_credentials", scope=f"{rfc9068_resource.identifier}/Data.Write"
        )
    assert e.value.error == "invalid_scope"


def test_token_exchange_for_a_user_of_the_trusted_idp(server, agent, rfc9068_resource, fake_idp, verify_token):
    """RFC 8693 through Authlib's generic ``fetch_token`` (extra parameters go into the form)."""
    s = session(server, agent.client_id, agent.secret, "client_secret_basic")
    token = s.fetch_token(
        server.token_endpoint,
        grant_type="urn:ietf:params:oauth:grant-type:token-exchange",
        subject_token=fake_idp.user_token(agent, user="frank@example.com"),
        subject_token_type="urn:ietf:params:oauth:token-type:jwt",
        resource=rfc9068_resource.identifier,
        scope="data.read",
    )
    assert token["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert token["scope"] == "data.read"
    claims = verify_token(
        token["access_token"], rfc9068_resource, azp=agent.id, scopes=["data.read"], sub="frank@example.com"
    )
    assert claims["act"] == {"sub": agent.id}


def test_introspection_and_revocation(server, agent, make_agent, rfc9068_resource):
    """A resource server (an agent holding ``introspect`` on ``<base>/admin``) introspects with
    Authlib; the agent revokes its own token (RFC 7009) and introspection turns inactive."""
    rs = make_agent([], roles=False, delegations=False)
    make_agent.admin.put(f"/agents/{rs.id}/roles", {"resource": f"{server.base}/admin", "roles": ["introspect"]})
    caller = session(server, agent.client_id, agent.secret, "client_secret_basic")
    access_token = caller.fetch_token(
        server.token_endpoint, grant_type="client_credentials", scope=rfc9068_resource.default_scope
    )["access_token"]

    checker = session(server, rs.client_id, rs.secret, "client_secret_basic")
    r = checker.introspect_token(f"{server.base}/oauth2/introspect", token=access_token, token_type_hint="access_token")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["active"] is True and body["client_id"] == agent.id and body["aud"] in (
        rfc9068_resource.identifier,
        [rfc9068_resource.identifier],
    ), body

    r = caller.revoke_token(f"{server.base}/oauth2/revoke", token=access_token, token_type_hint="access_token")
    assert r.status_code == 200, r.text
    r = checker.introspect_token(f"{server.base}/oauth2/introspect", token=access_token)
    assert r.json() == {"active": False}


def test_introspection_without_the_permission_is_refused(server, agent, rfc9068_resource):
    s = session(server, agent.client_id, agent.secret, "client_secret_basic")
    access_token = s.fetch_token(
        server.token_endpoint, grant_type="client_credentials", scope=rfc9068_resource.default_scope
    )["access_token"]
    r = s.introspect_token(f"{server.base}/oauth2/introspect", token=access_token)
    assert r.status_code in (401, 403), r.text
