"""An agent gets a token from agentauth with azure-identity, as it would from Entra ID.

Environment: AGENTAUTH_URL, AGENTAUTH_TENANT, AGENTAUTH_CA, CLIENT_ID, CLIENT_SECRET, SCOPE.
"""
import os

from azure.identity import ClientSecretCredential

credential = ClientSecretCredential(
    tenant_id=os.environ["AGENTAUTH_TENANT"],
    client_id=os.environ["CLIENT_ID"],
    client_secret=os.environ["CLIENT_SECRET"],
    authority=os.environ["AGENTAUTH_URL"],  # https://host:port, the tenant goes in tenant_id
    disable_instance_discovery=True,
    connection_verify=os.environ["AGENTAUTH_CA"],
)
print(credential.get_token(os.environ["SCOPE"]).token)
