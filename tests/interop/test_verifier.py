"""The harness's own token check must be able to fail: a token verified against the wrong
audience, issuer or key set is refused."""

import jwt
import pytest

from conftest import Resource


def _token(server, agent, resource):
    import requests

    r = requests.post(
        server.token_endpoint,
        data={"grant_type": "client_credentials", "scope": resource.default_scope},
        auth=(agent.client_id, agent.secret),
        verify=server.ca,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.headers["Cache-Control"] == "no-store"
    return r.json()["access_token"]


def test_wrong_audience_is_refused(server, agent, entra_resource, verify_token):
    token = _token(server, agent, entra_resource)
    verify_token(token, entra_resource)
    with pytest.raises(jwt.InvalidAudienceError):
        verify_token(token, Resource(identifier="api://someone-else", profile="entra"))


def test_profile_mismatch_is_refused(server, agent, entra_resource, rfc9068_resource, verify_token):
    token = _token(server, agent, rfc9068_resource)
    with pytest.raises(jwt.InvalidIssuerError):
        verify_token(token, Resource(identifier=rfc9068_resource.identifier, profile="entra"))
    entra = _token(server, agent, entra_resource)
    with pytest.raises(jwt.InvalidIssuerError):
        verify_token(entra, Resource(identifier=entra_resource.identifier, profile="rfc9068"))


def test_both_jwks_routes_publish_the_same_keys(server, ssl_ctx):
    entra = jwt.PyJWKClient(f"{server.base}/{server.tenant}/discovery/v2.0/keys", ssl_context=ssl_ctx)
    plain = jwt.PyJWKClient(f"{server.base}/oauth2/jwks", ssl_context=ssl_ctx)
    assert {k.key_id for k in entra.get_signing_keys()} == {k.key_id for k in plain.get_signing_keys()}
