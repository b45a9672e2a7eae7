"""MSAL Python (``ConfidentialClientApplication``) against the Entra-compatible routes.

Offline settings MSAL needs: ``authority="https://127.0.0.1:PORT/<tenant_id>"``,
``instance_discovery=False`` (or the server's own ``<base>/common/discovery/instance``), and the
local CA: ``verify=<data dir>/tls/ca.pem`` (or an ``http_client`` session whose ``verify`` is the
CA) with ``REQUESTS_CA_BUNDLE`` and ``CURL_CA_BUNDLE`` unset or pointing at the same CA.
"""

from __future__ import annotations

import inspect

import jwt
import msal
import pytest
import requests

from conftest import ROLES, SCOPES, TOKEN_EXCHANGE_AUDIENCE
from recording import RecordingSession


def cca(server, client_id, credential, **kwargs) -> tuple[msal.ConfidentialClientApplication, RecordingSession]:
    http = RecordingSession(verify=server.ca)
    kwargs.setdefault("instance_discovery", False)
    app = msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=server.authority,
        http_client=http,
        **kwargs,
    )
    return app, http


def token_of(result: dict, http: RecordingSession) -> str:
    assert "access_token" in result, f"{result}\nlast request: {http.last_post().redacted() if http.posts() else None}"
    assert result["token_type"].lower() == "bearer"
    assert result["expires_in"] > 0
    return result["access_token"]


def test_client_secret(server, agent, entra_resource, verify_token):
    app, http = cca(server, agent.client_id, agent.secret)
    result = app.acquire_token_for_client(scopes=[entra_resource.default_scope])
    token = token_of(result, http)
    sent = http.last_post()
    assert sent.url == server.entra_token_endpoint
    assert sent.form["client_secret"] and sent.form["client_id"] == agent.client_id
    claims = verify_token(token, entra_resource, azp=agent.id, roles=ROLES, sub=agent.id)
    assert claims["azpacr"] == "1"
    assert claims["xms_sub_fct"] == "3 9 11"


def test_second_client_credentials_call_is_served_from_msal_cache(server, agent, entra_resource):
    app, http = cca(server, agent.client_id, agent.secret)
    first = app.acquire_token_for_client(scopes=[entra_resource.default_scope])
    token_of(first, http)
    again = app.acquire_token_for_client(scopes=[entra_resource.default_scope])
    assert again.get("token_source") == "cache", http.last_post().redacted()
    assert again["access_token"] == first["access_token"]


def test_client_secret_with_plain_verify_parameter(server, agent, entra_resource, verify_token):
    """The documented constructor parameter ``verify=`` works too (when REQUESTS_CA_BUNDLE is unset)."""
    app = msal.ConfidentialClientApplication(
        agent.client_id,
        client_credential=agent.secret,
        authority=server.authority,
        instance_discovery=False,
        verify=server.ca,
    )
    result = app.acquire_token_for_client(scopes=[f"{entra_resource.identifier}/Data.Read"])
    assert "access_token" in result, result
    verify_token(result["access_token"], entra_resource, azp=agent.id, roles=["Data.Read"])


def test_instance_discovery_against_the_server(server, agent, entra_resource, verify_token):
    """MSAL's instance discovery, pointed at the server's own ``/common/discovery/instance``
    (MSAL drops the port when it asks; the answer must bring it back)."""
    app, http = cca(
        server,
        agent.client_id,
        agent.secret,
        instance_discovery=f"{server.base}/common/discovery/instance",
    )
    result = app.acquire_token_for_client(scopes=[entra_resource.default_scope])
    token = token_of(result, http)
    asked = [s for s in http.sent if "/common/discovery/instance" in s.url]
    assert asked and asked[0].status == 200
    verify_token(token, entra_resource, azp=agent.id, roles=ROLES)


def test_oidc_authority(server, agent, entra_resource, verify_token):
    """``oidc_authority=<base>/<tenant>/v2.0``: MSAL checks the metadata's issuer against it."""
    http = RecordingSession(verify=server.ca)
    app = msal.ConfidentialClientApplication(
        agent.client_id,
        client_credential=agent.secret,
        oidc_authority=server.entra_issuer,
        http_client=http,
    )
    result = app.acquire_token_for_client(scopes=[entra_resource.default_scope])
    verify_token(token_of(result, http), entra_resource, azp=agent.id, roles=ROLES)


def test_certificate_thumbprint_rs256(server, make_agent, entra_resource, cert_factory, verify_token):
    agent = make_agent([entra_resource], secret=False)
    cert = cert_factory()
    make_agent.add_certificate(agent, cert.cert_pem)
    app, http = cca(server, agent.client_id, {"private_key": cert.key_pem, "thumbprint": cert.sha1_hex})
    token = token_of(app.acquire_token_for_client(scopes=[entra_resource.default_scope]), http)
    sent = http.last_post()
    header = sent.assertion_header()
    assert header["alg"] == "RS256" and "x5t" in header and "kid" not in header, header
    assert sent.assertion_claims()["aud"] == server.entra_token_endpoint
    claims = verify_token(token, entra_resource, azp=agent.id, roles=ROLES, sub=agent.id)
    assert claims["azpacr"] == "2"


def test_certificate_public_certificate_ps256(server, make_agent, entra_resource, cert_factory, verify_token):
    agent = make_agent([entra_resource], secret=False)
    cert = cert_factory()
    make_agent.add_certificate(agent, cert.cert_pem)
    app, http = cca(server, agent.client_id, {"private_key": cert.key_pem, "public_certificate": cert.cert_pem})
    token = token_of(app.acquire_token_for_client(scopes=[entra_resource.default_scope]), http)
    header = http.last_post().assertion_header()
    assert header["alg"] == "PS256" and "x5t#S256" in header and "x5c" in header, header
    claims = verify_token(token, entra_resource, azp=agent.id, roles=ROLES)
    assert claims["azpacr"] == "2"


def test_certificate_from_a_pfx_file(server, make_agent, entra_resource, cert_factory, verify_token, tmp_path):
    """``private_key_pfx_path``: MSAL computes both thumbprints itself and sends PS256 + x5t#S256."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12, NoEncryption

    agent = make_agent([entra_resource], secret=False)
    cert = cert_factory()
    make_agent.add_certificate(agent, cert.cert_pem)
    pfx = tmp_path / "agent.pfx"
    pfx.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"agent",
            load_pem_private_key(cert.key_pem.encode(), None),
            x509.load_pem_x509_certificate(cert.cert_pem.encode()),
            None,
            NoEncryption(),
        )
    )
    app, http = cca(server, agent.client_id, {"private_key_pfx_path": str(pfx)})
    token = token_of(app.acquire_token_for_client(scopes=[entra_resource.default_scope]), http)
    header = http.last_post().assertion_header()
    assert header["alg"] == "PS256" and "x5t#S256" in header, header
    verify_token(token, entra_resource, azp=agent.id, roles=ROLES)


def test_certificate_assertion_reused_for_a_second_request(
    server, make_agent, entra_resource, cert_factory, verify_token
):
    agent = make_agent([entra_resource], secret=False)
    cert = cert_factory()
    make_agent.add_certificate(agent, cert.cert_pem)
    app, http = cca(server, agent.client_id, {"private_key": cert.key_pem, "thumbprint": cert.sha1_hex})
    first = app.acquire_token_for_client(scopes=[f"{entra_resource.identifier}/Data.Read"])
    verify_token(token_of(first, http), entra_resource, azp=agent.id, roles=["Data.Read"])
    second = app.acquire_token_for_client(scopes=[f"{entra_resource.identifier}/Data.Write"])
    sent = http.posts()
    assert sent[-1].form["client_assertion"] == sent[-2].form["client_assertion"]  # MSAL's reuse
    verify_token(token_of(second, http), entra_resource, azp=agent.id, roles=["Data.Write"])


def test_certificate_of_another_agent_is_refused(server, make_agent, entra_resource, cert_factory):
    agent = make_agent([entra_resource], secret=False)
    make_agent.add_certificate(agent, cert_factory().cert_pem)
    stranger = cert_factory()
    app, _ = cca(server, agent.client_id, {"private_key": stranger.key_pem, "thumbprint": stranger.sha1_hex})
    result = app.acquire_token_for_client(scopes=[entra_resource.default_scope])
    assert result.get("error") == "invalid_client", result


def test_on_behalf_of(server, agent, entra_resource, fake_idp, verify_token):
    user_token = fake_idp.user_token(agent)
    app, http = cca(server, agent.client_id, agent.secret)
    result = app.acquire_token_on_behalf_of(user_assertion=user_token, scopes=[entra_resource.default_scope])
    token = token_of(result, http)
    sent = http.last_post()
    assert sent.form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert sent.form["requested_token_use"] == "on_behalf_of"
    assert {"openid", "profile", "offline_access"} <= set(sent.form["scope"].split())
    claims = verify_token(token, entra_resource, azp=agent.id, scopes=SCOPES, sub="alice@example.com")
    assert claims["act"]["sub"] == agent.id
    assert claims["xms_sub_fct"] == "1"


def test_fmi_path_is_a_parameter_of_acquire_token_for_client():
    """The installed MSAL exposes ``fmi_path`` as a keyword of ``acquire_token_for_client``."""
    assert "fmi_path" in inspect.signature(msal.ConfidentialClientApplication.acquire_token_for_client).parameters


def _t1(server, blueprint, agent, verify_token_jwks) -> str:
    app, http = cca(server, blueprint.id, blueprint.secret)
    result = app.acquire_token_for_client(scopes=[f"{TOKEN_EXCHANGE_AUDIENCE}/.default"], fmi_path=agent.id)
    t1 = token_of(result, http)
    sent = http.last_post()
    assert sent.form["fmi_path"] == agent.id
    assert sent.form["client_id"] == blueprint.id
    key = verify_token_jwks.get_signing_key_from_jwt(t1)
    claims = jwt.decode(
        t1, key, algorithms=["ES256", "EdDSA", "RS256"], audience=TOKEN_EXCHANGE_AUDIENCE, issuer=server.base
    )
    assert claims["sub"] == agent.id
    assert claims["azp"] == blueprint.id
    return t1


def test_blueprint_leg_then_agent_client_credentials(
    server, make_agent, make_blueprint, entra_resource, verify_token
):
    blueprint = make_blueprint()
    agent = make_agent([entra_resource], secret=False, blueprint_id=blueprint.id)
    t1 = _t1(server, blueprint, agent, verify_token.jwks)

    app, http = cca(server, agent.client_id, {"client_assertion": lambda: t1})
    token = token_of(app.acquire_token_for_client(scopes=[entra_resource.default_scope]), http)
    sent = http.last_post()
    assert sent.form["client_assertion"] == t1
    assert sent.form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    claims = verify_token(token, entra_resource, azp=agent.id, roles=ROLES, sub=agent.id)
    assert claims["xms_par_app_azp"] == blueprint.id
    assert claims["azpacr"] == "2"


def test_blueprint_leg_then_agent_on_behalf_of(
    server, make_agent, make_blueprint, entra_resource, fake_idp, verify_token
):
    blueprint = make_blueprint()
    agent = make_agent([entra_resource], secret=False, blueprint_id=blueprint.id)
    t1 = _t1(server, blueprint, agent, verify_token.jwks)
    app, http = cca(server, agent.client_id, {"client_assertion": lambda: t1})
    result = app.acquire_token_on_behalf_of(
        user_assertion=fake_idp.user_token(agent, user="bob@example.com"),
        scopes=[f"{entra_resource.identifier}/data.read"],
    )
    claims = verify_token(
        token_of(result, http), entra_resource, azp=agent.id, scopes=["data.read"], sub="bob@example.com"
    )
    assert claims["xms_par_app_azp"] == blueprint.id
    assert claims["act"]["sub"] == agent.id


def test_blueprint_leg_with_a_certificate(server, admin, make_agent, make_blueprint, entra_resource, cert_factory, verify_token):
    """The blueprint proves itself with a certificate (MSAL: PS256, x5t#S256, x5c) to get T1."""
    blueprint = make_blueprint()
    cert = cert_factory("interop-blueprint")
    admin.post(f"/blueprints/{blueprint.id}/credentials", {"type": "public_key", "certificate": cert.cert_pem})
    agent = make_agent([entra_resource], secret=False, blueprint_id=blueprint.id)
    bp_app, bp_http = cca(server, blueprint.id, {"private_key": cert.key_pem, "public_certificate": cert.cert_pem})
    t1 = token_of(
        bp_app.acquire_token_for_client(scopes=[f"{TOKEN_EXCHANGE_AUDIENCE}/.default"], fmi_path=agent.id), bp_http
    )
    app, http = cca(server, agent.client_id, {"client_assertion": lambda: t1})
    claims = verify_token(
        token_of(app.acquire_token_for_client(scopes=[entra_resource.default_scope]), http),
        entra_resource,
        azp=agent.id,
        roles=ROLES,
    )
    assert claims["xms_par_app_azp"] == blueprint.id


def test_fmi_path_for_an_agent_of_another_blueprint_is_refused(server, make_agent, make_blueprint, entra_resource):
    mine, other = make_blueprint(), make_blueprint()
    agent = make_agent([entra_resource], secret=False, blueprint_id=other.id)
    app, _ = cca(server, mine.id, mine.secret)
    result = app.acquire_token_for_client(scopes=[f"{TOKEN_EXCHANGE_AUDIENCE}/.default"], fmi_path=agent.id)
    assert "access_token" not in result
    assert result["error"] == "unauthorized_client", result
    assert result.get("error_codes"), result


def test_wrong_secret_is_invalid_client(server, agent, entra_resource):
    app, http = cca(server, agent.client_id, "x" * 43)
    result = app.acquire_token_for_client(scopes=[entra_resource.default_scope])
    assert "access_token" not in result
    assert result["error"] == "invalid_client", result
    assert result.get("error_codes") and isinstance(result["error_codes"][0], int), result
    assert result["error_description"].startswith("AADSTS")
    assert http.last_post().status == 401


def test_unknown_role_is_invalid_scope(server, agent, entra_resource):
    app, _ = cca(server, agent.client_id, agent.secret)
    result = app.acquire_token_for_client(scopes=[f"{entra_resource.identifier}/Data.Delete"])
    assert result.get("error") == "invalid_scope", result
    assert result.get("error_codes"), result


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_ca_bundle_variables_override_msal_verify(server, agent, monkeypatch, variable):
    """The trap the README must warn about: ``REQUESTS_CA_BUNDLE`` or ``CURL_CA_BUNDLE`` (here the
    system bundle, as many CI images set them) wins over MSAL's ``verify=``, so TLS fails although
    the CA was given (psf/requests#3829). Unset them, or point them at the same CA."""
    def build():
        return msal.ConfidentialClientApplication(
            agent.client_id,
            client_credential=agent.secret,
            authority=server.authority,
            instance_discovery=False,
            verify=server.ca,
        )

    monkeypatch.setenv(variable, requests.certs.where())
    with pytest.raises(requests.exceptions.SSLError):
        build()
    monkeypatch.setenv(variable, server.ca)
    build()


def test_agent_to_agent_chain_through_on_behalf_of(server, admin, make_agent, entra_resource, fake_idp, verify_token):
    """Agent A acts for the user towards agent B (a resource ``api://<B id>``); B then uses A's
    delegated token as its own OBO assertion: ``act`` nests B over A."""
    from conftest import Resource

    b = make_agent([entra_resource])
    b_api = Resource(identifier=f"api://{b.id}", profile="entra", roles=[], scopes=["access_as_user"])
    admin.post(
        "/resources",
        {"identifier": b_api.identifier, "name": f"agent {b.name}", "scopes": b_api.scopes, "token_profile": "entra"},
    )
    a = make_agent([b_api], roles=False)

    a_app, a_http = cca(server, a.client_id, a.secret)
    to_b = a_app.acquire_token_on_behalf_of(fake_idp.user_token(a, user="grace@example.com"), [b_api.default_scope])
    to_b = token_of(to_b, a_http)
    verify_token(to_b, b_api, azp=a.id, scopes=["access_as_user"], sub="grace@example.com")

    b_app, b_http = cca(server, b.client_id, b.secret)
    result = b_app.acquire_token_on_behalf_of(to_b, [f"{entra_resource.identifier}/data.read"])
    claims = verify_token(
        token_of(result, b_http), entra_resource, azp=b.id, scopes=["data.read"], sub="grace@example.com"
    )
    assert claims["act"] == {"sub": b.id, "act": {"sub": a.id}}
