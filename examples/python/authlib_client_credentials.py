"""An agent gets a token from agentauth with Authlib (client_secret_basic) on the RFC routes.

Environment: AGENTAUTH_URL, AGENTAUTH_CA, CLIENT_ID, CLIENT_SECRET, SCOPE.
"""
import os

from authlib.integrations.requests_client import OAuth2Session

session = OAuth2Session(
    os.environ["CLIENT_ID"],
    os.environ["CLIENT_SECRET"],
    token_endpoint_auth_method="client_secret_basic",  # or client_secret_post
)
session.verify = os.environ["AGENTAUTH_CA"]
token = session.fetch_token(
    f"{os.environ['AGENTAUTH_URL']}/oauth2/token",
    grant_type="client_credentials",
    scope=os.environ["SCOPE"],
)
print(token["access_token"])
