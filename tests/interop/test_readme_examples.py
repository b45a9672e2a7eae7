"""The README's copy-paste examples (examples/python/*.py), run as they are, against the real
server: if a snippet in the README stops working, this fails."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO

EXAMPLES = REPO / "examples" / "python"


def run_example(name: str, env: dict) -> list[str]:
    full = {**os.environ, **env}
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        full.pop(var, None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], env=full, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout.split()


def base_env(server, ca_path) -> dict:
    return {"AGENTAUTH_URL": server.base, "AGENTAUTH_TENANT": server.tenant, "AGENTAUTH_CA": ca_path}


def test_msal_example(server, ca_path, agent, entra_resource, verify_token):
    env = {**base_env(server, ca_path), "CLIENT_ID": agent.id, "CLIENT_SECRET": agent.secret, "SCOPE": entra_resource.default_scope}
    [token] = run_example("msal_client_credentials.py", env)
    verify_token(token, entra_resource, azp=agent.id, roles=entra_resource.roles)


def test_azure_identity_example(server, ca_path, agent, entra_resource, verify_token):
    env = {**base_env(server, ca_path), "CLIENT_ID": agent.id, "CLIENT_SECRET": agent.secret, "SCOPE": entra_resource.default_scope}
    [token] = run_example("azure_identity_client_secret.py", env)
    verify_token(token, entra_resource, azp=agent.id, roles=entra_resource.roles)


def test_authlib_example(server, ca_path, agent, rfc9068_resource, verify_token):
    env = {**base_env(server, ca_path), "CLIENT_ID": agent.id, "CLIENT_SECRET": agent.secret, "SCOPE": rfc9068_resource.default_scope}
    [token] = run_example("authlib_client_credentials.py", env)
    verify_token(token, rfc9068_resource, azp=agent.id, roles=rfc9068_resource.roles)


def test_entra_agent_id_example(server, ca_path, admin, make_blueprint, make_agent, entra_resource, fake_idp, verify_token):
    bp = make_blueprint()
    agent = make_agent([entra_resource], secret=False, blueprint_id=bp.id)
    env = {
        **base_env(server, ca_path),
        "BLUEPRINT_ID": bp.id,
        "BLUEPRINT_SECRET": bp.secret,
        "AGENT_ID": agent.id,
        "SCOPE": entra_resource.default_scope,
        "OBO_SCOPE": entra_resource.default_scope,
        "USER_TOKEN": fake_idp.user_token(agent),
    }
    app_token, obo_token = run_example("entra_agent_id.py", env)
    verify_token(app_token, entra_resource, azp=agent.id, roles=entra_resource.roles)
    claims = verify_token(obo_token, entra_resource, azp=agent.id, scopes=entra_resource.scopes, sub="alice@example.com")
    assert claims["xms_par_app_azp"] == bp.id
