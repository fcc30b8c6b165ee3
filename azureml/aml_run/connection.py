"""Reaching Azure: the credential (GitHub OIDC in a workflow, DefaultAzureCredential elsewhere) and the MLClient."""

import json
import urllib.request

from azure.ai.ml import MLClient

from aml_run.settings import Settings


def github_id_token(request_url: str, request_token: str) -> str:
    """A fresh GitHub OIDC token for Azure's token exchange (GitHub's tokens expire within minutes)."""
    request = urllib.request.Request(f"{request_url}&audience=api://AzureADTokenExchange",
                                     headers={"Authorization": f"Bearer {request_token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["value"]


def credential(settings: Settings):
    """In a GitHub workflow, a credential that asks GitHub for a new OIDC token whenever Azure needs one:
    `azure/login`'s session cannot renew itself, and a training run outlasts its first token. Elsewhere,
    DefaultAzureCredential (az login, a managed identity, environment variables)."""
    from azure.identity import ClientAssertionCredential, DefaultAzureCredential

    if settings.github_oidc is None:
        return DefaultAzureCredential()
    request_url, request_token, client_id, tenant_id = settings.github_oidc
    return ClientAssertionCredential(tenant_id, client_id, lambda: github_id_token(request_url, request_token))


def connect(settings: Settings) -> MLClient:
    """The one place that reaches Azure: tests pass a fake client instead of calling this."""
    return MLClient(credential(settings), settings.subscription_id, settings.resource_group, settings.workspace)
