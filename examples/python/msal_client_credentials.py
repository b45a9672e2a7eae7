"""An agent gets a token from agentauth with MSAL Python, exactly as it would from Entra ID.

Environment: AGENTAUTH_URL (https://127.0.0.1:8443), AGENTAUTH_TENANT (the tenant id),
AGENTAUTH_CA (<data dir>/tls/ca.pem), CLIENT_ID, CLIENT_SECRET, SCOPE (api://hotel/.default).
"""
import os

import msal

app = msal.ConfidentialClientApplication(
    os.environ["CLIENT_ID"],
    client_credential=os.environ["CLIENT_SECRET"],
    authority=f"{os.environ['AGENTAUTH_URL']}/{os.environ['AGENTAUTH_TENANT']}",
    instance_discovery=False,  # offline: do not ask login.microsoftonline.com
    verify=os.environ["AGENTAUTH_CA"],  # trust the local CA (REQUESTS_CA_BUNDLE would override this)
)
result = app.acquire_token_for_client(scopes=[os.environ["SCOPE"]])
if "access_token" not in result:
    raise SystemExit(f"{result.get('error')}: {result.get('error_description')}")
print(result["access_token"])
