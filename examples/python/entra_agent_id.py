"""Emulate Entra Agent ID with MSAL: the blueprint gets T1 for one of its agents (fmi_path),
the agent presents T1 as its client assertion to get its own token, then acts for a user
(on-behalf-of).

Environment: AGENTAUTH_URL, AGENTAUTH_TENANT, AGENTAUTH_CA, BLUEPRINT_ID, BLUEPRINT_SECRET,
AGENT_ID, SCOPE (app roles, e.g. api://hotel/.default), USER_TOKEN (a user token from a trusted
issuer whose aud is the agent id) — if USER_TOKEN is empty the OBO step is skipped.
"""
import os

import msal

authority = f"{os.environ['AGENTAUTH_URL']}/{os.environ['AGENTAUTH_TENANT']}"
common = dict(authority=authority, instance_discovery=False, verify=os.environ["AGENTAUTH_CA"])

# 1. The blueprint asks for T1 for its agent.
blueprint = msal.ConfidentialClientApplication(
    os.environ["BLUEPRINT_ID"], client_credential=os.environ["BLUEPRINT_SECRET"], **common
)
t1 = blueprint.acquire_token_for_client(
    scopes=["api://AzureADTokenExchange/.default"], fmi_path=os.environ["AGENT_ID"]
)
if "access_token" not in t1:
    raise SystemExit(f"T1: {t1.get('error')}: {t1.get('error_description')}")

# 2. The agent authenticates with T1 as its client assertion.
agent = msal.ConfidentialClientApplication(
    os.environ["AGENT_ID"],
    client_credential={"client_assertion": lambda: t1["access_token"]},
    **common,
)
app_token = agent.acquire_token_for_client(scopes=[os.environ["SCOPE"]])
if "access_token" not in app_token:
    raise SystemExit(f"agent: {app_token.get('error')}: {app_token.get('error_description')}")
print(app_token["access_token"])

# 3. The agent acts for a user (on-behalf-of).
if os.environ.get("USER_TOKEN"):
    obo = agent.acquire_token_on_behalf_of(
        user_assertion=os.environ["USER_TOKEN"], scopes=[os.environ["OBO_SCOPE"]]
    )
    if "access_token" not in obo:
        raise SystemExit(f"obo: {obo.get('error')}: {obo.get('error_description')}")
    print(obo["access_token"])
