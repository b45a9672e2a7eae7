"""azure-identity credentials against the Entra-compatible routes.

Offline settings: ``authority="https://127.0.0.1:PORT"`` (scheme and port kept; the tenant goes in
``tenant_id``), ``disable_instance_discovery=True``, and the local CA as
``connection_verify=<data dir>/tls/ca.pem`` (an azure-core transport option, honoured by every
credential here, with ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` unset or pointing at the same CA).
"""

from __future__ import annotations

import jwt
import requests
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    OnBehalfOfCredential,
)

from conftest import ROLES, SCOPES, TOKEN_EXCHANGE_AUDIENCE
from recording import RecordingSession


def offline(server, http: RecordingSession | None = None) -> dict:
    """The keyword arguments every credential needs offline (plus a recording transport)."""
    kwargs = {
        "authority": server.base,
        "disable_instance_discovery": True,
        "connection_verify": server.ca,
    }
    if http is not None:
        kwargs["transport"] = RequestsTransport(session=http, session_owner=False, connection_verify=server.ca)
    return kwargs


def test_client_secret_credential(server, agent, entra_resource, verify_token):
    http = RecordingSession(verify=server.ca)
    cred = ClientSecretCredential(server.tenant, agent.client_id, agent.secret, **offline(server, http))
    at = cred.get_token(entra_resource.default_scope)
    assert at.expires_on > 0
    assert http.last_post().url == server.entra_token_endpoint
    claims = verify_token(at.token, entra_resource, azp=agent.id, roles=ROLES, sub=agent.id)
    assert claims["azpacr"] == "1"


def test_client_secret_credential_with_connection_verify_only(server, agent, entra_resource, verify_token):
    """No custom transport: ``connection_verify`` alone is enough to trust the local CA."""
    cred = ClientSecretCredential(server.tenant, agent.client_id, agent.secret, **offline(server))
    at = cred.get_token(f"{entra_resource.identifier}/.default")
    verify_token(at.token, entra_resource, azp=agent.id, roles=ROLES)


def test_certificate_credential(server, make_agent, entra_resource, cert_factory, verify_token, tmp_path):
    agent = make_agent([entra_resource], secret=False)
    cert = cert_factory()
    make_agent.add_certificate(agent, cert.cert_pem)
    pem = tmp_path / "agent.pem"
    pem.write_bytes(cert.combined_pem)
    http = RecordingSession(verify=server.ca)
    cred = CertificateCredential(server.tenant, agent.client_id, str(pem), **offline(server, http))
    at = cred.get_token(entra_resource.default_scope)
    header = http.last_post().assertion_header()
    # azure-identity hands MSAL the SHA-1 thumbprint: RS256, x5t (base64url with '=' padding), no kid.
    assert header["alg"] == "RS256" and header["x5t"].endswith("=") and "kid" not in header, header
    claims = verify_token(at.token, entra_resource, azp=agent.id, roles=ROLES, sub=agent.id)
    assert claims["azpacr"] == "2"


def test_certificate_credential_second_get_token(server, make_agent, entra_resource, cert_factory, verify_token):
    agent = make_agent([entra_resource], secret=False)
    cert = cert_factory()
    make_agent.add_certificate(agent, cert.cert_pem)
    cred = CertificateCredential(server.tenant, agent.client_id, certificate_data=cert.combined_pem, **offline(server))
    first = cred.get_token(f"{entra_resource.identifier}/Data.Read")
    verify_token(first.token, entra_resource, azp=agent.id, roles=["Data.Read"])
    second = cred.get_token(f"{entra_resource.identifier}/Data.Write")
    verify_token(second.token, entra_resource, azp=agent.id, roles=["Data.Write"])


def test_certificate_credential_same_scope_twice(server, make_agent, entra_resource, cert_factory, verify_token):
    agent = make_agent([entra_resource], secret=False)
    cert = cert_factory()
    make_agent.add_certificate(agent, cert.cert_pem)
    cred = CertificateCredential(server.tenant, agent.client_id, certificate_data=cert.combined_pem, **offline(server))
    cred.get_token(entra_resource.default_scope)
    verify_token(cred.get_token(entra_resource.default_scope).token, entra_resource, azp=agent.id, roles=ROLES)


def test_certificate_credential_sending_the_chain(server, make_agent, entra_resource, cert_factory, verify_token):
    """``send_certificate_chain=True`` (subject name / issuer auth): MSAL then adds ``x5c``."""
    agent = make_agent([entra_resource], secret=False)
    cert = cert_factory()
    make_agent.add_certificate(agent, cert.cert_pem)
    http = RecordingSession(verify=server.ca)
    cred = CertificateCredential(
        server.tenant,
        agent.client_id,
        certificate_data=cert.combined_pem,
        send_certificate_chain=True,
        **offline(server, http),
    )
    at = cred.get_token(entra_resource.default_scope)
    header = http.last_post().assertion_header()
    assert "x5c" in header, header
    verify_token(at.token, entra_resource, azp=agent.id, roles=ROLES)


def test_client_assertion_credential_with_a_federated_token(server, make_agent, entra_resource, fake_idp, verify_token):
    agent = make_agent([entra_resource], secret=False)
    workload = f"system:serviceaccount:interop:{agent.name}"
    make_agent.add_federated(agent, fake_idp.issuer, workload, TOKEN_EXCHANGE_AUDIENCE)
    calls = []

    def federated_token() -> str:
        calls.append(1)
        return fake_idp.mint(sub=workload, aud=TOKEN_EXCHANGE_AUDIENCE)

    http = RecordingSession(verify=server.ca)
    cred = ClientAssertionCredential(server.tenant, agent.client_id, federated_token, **offline(server, http))
    at = cred.get_token(entra_resource.default_scope)
    assert calls
    sent = http.last_post()
    assert sent.form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    assert jwt.decode(sent.form["client_assertion"], options={"verify_signature": False})["iss"] == fake_idp.issuer
    claims = verify_token(at.token, entra_resource, azp=agent.id, roles=ROLES, sub=agent.id)
    assert claims["azpacr"] == "2"


def test_client_assertion_credential_with_the_wrong_subject_is_refused(server, make_agent, entra_resource, fake_idp):
    agent = make_agent([entra_resource], secret=False)
    make_agent.add_federated(agent, fake_idp.issuer, "system:serviceaccount:interop:expected")
    cred = ClientAssertionCredential(
        server.tenant,
        agent.client_id,
        lambda: fake_idp.mint(sub="system:serviceaccount:interop:someone-else", aud=TOKEN_EXCHANGE_AUDIENCE),
        **offline(server),
    )
    with pytest.raises(ClientAuthenticationError) as e:
        cred.get_token(entra_resource.default_scope)
    assert "invalid_client" in str(e.value)


def test_on_behalf_of_credential(server, agent, entra_resource, fake_idp, verify_token):
    http = RecordingSession(verify=server.ca)
    cred = OnBehalfOfCredential(
        server.tenant,
        agent.client_id,
        client_secret=agent.secret,
        user_assertion=fake_idp.user_token(agent, user="carol@example.com"),
        **offline(server, http),
    )
    at = cred.get_token(entra_resource.default_scope)
    assert http.last_post().form["requested_token_use"] == "on_behalf_of"
    claims = verify_token(at.token, entra_resource, azp=agent.id, scopes=SCOPES, sub="carol@example.com")
    assert claims["act"]["sub"] == agent.id


def test_on_behalf_of_credential_with_a_certificate(
    server, make_agent, entra_resource, cert_factory, fake_idp, verify_token
):
    agent = make_agent([entra_resource], secret=False)
    cert = cert_factory()
    make_agent.add_certificate(agent, cert.cert_pem)
    cred = OnBehalfOfCredential(
        server.tenant,
        agent.client_id,
        client_certificate=cert.combined_pem,
        user_assertion=fake_idp.user_token(agent, user="dave@example.com"),
        **offline(server),
    )
    at = cred.get_token(f"{entra_resource.identifier}/data.write")
    verify_token(at.token, entra_resource, azp=agent.id, scopes=["data.write"], sub="dave@example.com")


def test_wrong_secret_raises_client_authentication_error(server, agent, entra_resource):
    cred = ClientSecretCredential(server.tenant, agent.client_id, "y" * 43, **offline(server))
    with pytest.raises(ClientAuthenticationError) as e:
        cred.get_token(entra_resource.default_scope)
    assert "invalid_client" in str(e.value) or "AADSTS7000215" in str(e.value)


def test_user_token_for_another_agent_is_refused(server, agent, make_agent, entra_resource, fake_idp):
    other = make_agent([entra_resource])
    cred = OnBehalfOfCredential(
        server.tenant,
        agent.client_id,
        client_secret=agent.secret,
        user_assertion=fake_idp.user_token(other),
        **offline(server),
    )
    with pytest.raises(ClientAuthenticationError) as e:
        cred.get_token(entra_resource.default_scope)
    assert "invalid_grant" in str(e.value)


def test_connection_verify_wins_over_requests_ca_bundle(server, agent, entra_resource, verify_token, monkeypatch):
    """Unlike MSAL's ``verify=``, azure-core passes ``connection_verify`` with each request, so a
    ``REQUESTS_CA_BUNDLE`` pointing elsewhere (the system bundle here) does not override it."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", requests.certs.where())
    cred = ClientSecretCredential(server.tenant, agent.client_id, agent.secret, **offline(server))
    verify_token(cred.get_token(entra_resource.default_scope).token, entra_resource, azp=agent.id, roles=ROLES)


def test_second_get_token_is_served_from_the_cache(server, agent, entra_resource):
    http = RecordingSession(verify=server.ca)
    cred = ClientSecretCredential(server.tenant, agent.client_id, agent.secret, **offline(server, http))
    first = cred.get_token(entra_resource.default_scope)
    posts = len(http.posts())
    again = cred.get_token(entra_resource.default_scope)
    assert len(http.posts()) == posts, http.last_post().redacted()
    assert again.token == first.token


def test_get_token_with_cae(server, agent, entra_resource, verify_token):
    """``enable_cae=True`` makes MSAL send ``claims={"access_token":{"xms_cc":{"values":["CP1"]}}}``:
    an extra parameter the server must ignore."""
    http = RecordingSession(verify=server.ca)
    cred = ClientSecretCredential(server.tenant, agent.client_id, agent.secret, **offline(server, http))
    at = cred.get_token(entra_resource.default_scope, enable_cae=True)
    assert "CP1" in http.last_post().form.get("claims", "")
    verify_token(at.token, entra_resource, azp=agent.id, roles=ROLES)


def test_get_token_info(server, agent, entra_resource, verify_token):
    """The newer ``get_token_info`` API (``AccessTokenInfo``)."""
    cred = ClientSecretCredential(server.tenant, agent.client_id, agent.secret, **offline(server))
    info = cred.get_token_info(entra_resource.default_scope)
    assert info.token_type.lower() == "bearer" and info.expires_on > 0
    verify_token(info.token, entra_resource, azp=agent.id, roles=ROLES)


def test_client_assertion_credential_with_a_blueprint_t1(
    server, make_agent, make_blueprint, entra_resource, verify_token
):
    """The Entra Agent ID pattern in azure-identity: the blueprint's T1 (``fmi_path``, obtained
    with MSAL) is the agent's client assertion in ``ClientAssertionCredential``."""
    import msal

    blueprint = make_blueprint()
    agent = make_agent([entra_resource], secret=False, blueprint_id=blueprint.id)
    bp = msal.ConfidentialClientApplication(
        blueprint.id,
        client_credential=blueprint.secret,
        authority=server.authority,
        instance_discovery=False,
        http_client=RecordingSession(verify=server.ca),
    )

    def t1() -> str:
        result = bp.acquire_token_for_client([f"{TOKEN_EXCHANGE_AUDIENCE}/.default"], fmi_path=agent.id)
        assert "access_token" in result, result
        return result["access_token"]

    cred = ClientAssertionCredential(server.tenant, agent.client_id, t1, **offline(server))
    at = cred.get_token(entra_resource.default_scope)
    claims = verify_token(at.token, entra_resource, azp=agent.id, roles=ROLES, sub=agent.id)
    assert claims["xms_par_app_azp"] == blueprint.id
