# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""Key Vault secrets data plane (api-version 7.4) over an ArmClient: shared by the keyvault_secret module and lookup."""

from __future__ import annotations

import datetime
from urllib.parse import quote, urlsplit

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import error_from_response

KEYVAULT_API_VERSION = '7.4'
DEFAULT_KEYVAULT_SCOPE = 'https://vault.azure.net/.default'


def keyvault_scope(cloud, vault_base_url):
    """The token scope for Key Vault: the cloud's audience, else one derived from the vault's host name."""
    scope = getattr(cloud, 'keyvault_scope', None)
    if scope:
        return scope
    host = urlsplit(vault_base_url).hostname or ''
    labels = host.split('.')
    if len(labels) > 2 and not host.replace('.', '').isdigit():
        return 'https://' + '.'.join(labels[1:]) + '/.default'
    return DEFAULT_KEYVAULT_SCOPE


def iso_time(epoch):
    """Key Vault attribute times are Unix seconds: UTC ISO 8601, or None."""
    if epoch in (None, ''):
        return None
    try:
        return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
    except (TypeError, ValueError, OverflowError):
        return None


def forbidden_advice(inner_code, vault_base_url, action):
    """What to grant when Key Vault answers 403 (inner codes: ForbiddenByRbac, AccessDenied/ForbiddenByPolicy,
    ForbiddenByFirewall, ForbiddenByConnection, SecretDisabled)."""
    code = (inner_code or '').lower()
    verb = {'read': 'get', 'write': 'set', 'delete': 'delete'}[action]
    if 'disabled' in code:
        return [f'The secret is disabled: enable it in the key vault {vault_base_url} (az keyvault secret '
                f'set-attributes --enabled true) or use another secret name.']
    if 'firewall' in code or 'connection' in code:
        return [f'The key vault firewall blocks this host: allow its public IP address or run Ansible from a network '
                f'the key vault accepts ({vault_base_url}).']
    role = "'Key Vault Secrets User'" if action == 'read' else "'Key Vault Secrets Officer'"
    rbac = (f'The key vault uses Azure RBAC: grant the identity that runs Ansible {role} on the key vault '
            f'{vault_base_url} (Owner and Contributor do not include secret access); new role assignments can take '
            f'a few minutes to apply.')
    policy = (f"The key vault uses access policies: add an access policy for the identity that runs Ansible with "
              f"the secret permission '{verb}' (get and list to read; get, list and set to write; delete to delete) "
              f"on {vault_base_url}.")
    if 'rbac' in code:
        return [rbac]
    if code in ('accessdenied', 'forbiddenbypolicy'):
        return [policy]
    return [f'If {rbac[0].lower()}{rbac[1:]} If {policy[0].lower()}{policy[1:]}']


def inner_code(response):
    """error.innererror.code of a Key Vault error body, or None."""
    try:
        payload = response.json()
    except ValueError:
        return None
    error = payload.get('error') if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return None
    inner = error.get('innererror') or error.get('innerError') or {}
    return inner.get('code') if isinstance(inner, dict) else None


class SecretStore:
    """The Key Vault secret calls the collection makes, over an ArmClient with the Key Vault token scope."""

    def __init__(self, client, vault_base_url, name, scope):
        self.client = client
        self.vault = vault_base_url.rstrip('/')
        self.name = name
        self.scope = scope
        self.url = f'{self.vault}/secrets/{quote(name)}'

    @staticmethod
    def _params():
        return {'api-version': KEYVAULT_API_VERSION}

    def _raise(self, what, response, action):
        err = error_from_response(what, response)
        if response.status_code == 403:
            err.recommended_actions = forbidden_advice(inner_code(response), self.vault, action)
        elif response.status_code == 409 and 'deleted' in ((err.code or '') + (err.message or '')).lower():
            err.recommended_actions = [
                f'The secret {self.name} was deleted and is still recoverable (soft delete): recover it '
                f'(az keyvault secret recover) or purge it (az keyvault secret purge), then run the task again.']
        raise err

    def get(self, version=None):
        """The SecretBundle (with its value), or None when the secret (version) does not exist."""
        url = f'{self.url}/{quote(version)}' if version else self.url
        what = f'Could not read secret {self.name} from {self.vault}'
        response = self.client.get(url, params=self._params(), scope=self.scope)
        if response.status_code == 404:
            return None
        if not 200 <= response.status_code < 300:
            self._raise(what, response, 'read')
        return self.client.json_or_raise(response, what)

    def set(self, value, content_type=None, tags=None):
        """PUT a new version; returns the SecretBundle."""
        body = {'value': value}
        if content_type is not None:
            body['contentType'] = content_type
        if tags is not None:
            body['tags'] = tags
        what = f'Could not write secret {self.name} to {self.vault}'
        response = self.client.put(self.url, body, params=self._params(), scope=self.scope)
        if not 200 <= response.status_code < 300:
            self._raise(what, response, 'write')
        return self.client.json_or_raise(response, what)

    def delete(self):
        """DELETE the secret; False when it did not exist."""
        what = f'Could not delete secret {self.name} from {self.vault}'
        response = self.client.delete(self.url, params=self._params(), scope=self.scope)
        if response.status_code == 404:
            return False
        if not 200 <= response.status_code < 300:
            self._raise(what, response, 'delete')
        return True
