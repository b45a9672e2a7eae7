"""azure-identity's asyncio credentials (``azure.identity.aio``, aiohttp transport). Unlike the
sync ones, they do not go through MSAL: azure-identity's own ``AadClient`` builds the requests
(and, for certificates, the client assertion: PS256, ``x5t#S256``, base64url *with* padding in
every JWS segment).

Offline settings: as for the sync credentials (``authority``, ``disable_instance_discovery=True``,
``connection_verify=<ca.pem>``, which the aiohttp transport turns into an SSL context).
"""

from __future__ import annotations

import asyncio

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    OnBehalfOfCredential,
)

from conftest import ROLES, SCOPES, TOKEN_EXCHANGE_AUDIENCE

def offline(server) -> dict:
    return {"authority": server.base, "disable_instance_discovery": True, "connection_verify": server.ca}


async def _get_token(cred, scope: str):
    async with cred:
        return await cred.get_token(scope)


def get_token(cred, scope: str):
    return asyncio.run(_get_token(cred, scope))


def test_client_secret_credential(server, agent, entra_resource, verify_token):
    at = get_token(
        ClientSecretCredential(server.tenant, agent.client_id, agent.secret, **offline(server)),
        entra_resource.default_scope,
    )
    verify_token(at.token, entra_resource, azp=agent.id, roles=ROLES, sub=agent.id)


def test_client_assertion_credential_with_a_federated_token(server, make_agent, entra_resource, fake_idp, verify_token):
    agent = make_agent([entra_resource], secret=False)
    workload = f"repo:interop/agents:{agent.name}"
    make_agent.add_federated(agent, fake_idp.issuer, workload)
    cred = ClientAssertionCredential(
        server.tenant,
        agent.client_id,
        lambda: fake_idp.mint(sub=workload, aud=TOKEN_EXCHANGE_AUDIENCE),
        **offline(server),
    )
    at = get_token(cred, entra_resource.default_scope)
    verify_token(at.token, entra_resource, azp=agent.id, roles=ROLES)


def test_on_behalf_of_credential_with_a_secret(server, agent, entra_resource, fake_idp, verify_token):
    cred = OnBehalfOfCredential(
        server.tenant,
        agent.client_id,
        client_secret=agent.secret,
        user_assertion=fake_idp.user_token(agent, user="erin@example.com"),
        **offline(server),
    )
    at = get_token(cred, entra_resource.default_scope)
    verify_token(at.token, entra_resource, azp=agent.id, scopes=SCOPES, sub="erin@example.com")


def test_certificate_credential(server, make_agent, entra_resource, cert_factory, verify_token):
    agent = make_agent([entra_resource], secret=False)
    cert = cert_factory()
    make_agent.add_certificate(agent, cert.cert_pem)
    cred = CertificateCredential(server.tenant, agent.client_id, certificate_data=cert.combined_pem, **offline(server))
    at = get_token(cred, entra_resource.default_scope)
    verify_token(at.token, entra_resource, azp=agent.id, roles=ROLES)


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
        user_assertion=fake_idp.user_token(agent),
        **offline(server),
    )
    at = get_token(cred, entra_resource.default_scope)
    verify_token(at.token, entra_resource, azp=agent.id, scopes=SCOPES)


def test_wrong_secret_raises_client_authentication_error(server, agent, entra_resource):
    cred = ClientSecretCredential(server.tenant, agent.client_id, "w" * 43, **offline(server))
    with pytest.raises(ClientAuthenticationError):
        get_token(cred, entra_resource.default_scope)
