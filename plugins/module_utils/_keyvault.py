# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""Key Vault secrets data plane (api-version 7.4) over an ArmClient: shared by the keyvault_secret module and lookup."""

from __future__ import annotations

import datetime
import re
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


# ---------------------------------------------------------------- secrets as the restore reads them

CONNECTION_SPEC = {
    'host': {'type': 'str', 'required': True},
    'port': {'type': 'int', 'default': 5432},
    'database': {'type': 'str', 'default': 'postgres'},
    'user': {'type': 'str', 'required': True},
    'password': {'type': 'str', 'required': True, 'no_log': True},
    'ssl_mode': {'type': 'str', 'default': 'Require',
                 'choices': ['Disable', 'Allow', 'Prefer', 'Require', 'VerifyCA', 'VerifyFull']},
}

HIDDEN = '<hidden>'
HIDDEN_CHANGED = '<hidden: changed>'
SECRET_NAME = re.compile(r'^[0-9A-Za-z-]{1,127}$')
# Values that are quoted in the connection string: separators (';', '='), quotes, surrounding spaces and control
# characters. Quoting '=' is not strictly needed for ADO.NET but is always safe and keeps naive parsers right.
_NEEDS_QUOTES = re.compile(r'[;="\'\x00-\x1f]|^\s|\s$')


# ---------------------------------------------------------------- pure helpers (unit tested)

def quote_connection_value(value):
    """A value for an ADO.NET connection string, quoted the way DbConnectionStringBuilder does when needed."""
    text = str(value)
    if text and not _NEEDS_QUOTES.search(text):
        return text
    if '"' in text and "'" not in text:
        return "'" + text + "'"
    return '"' + text.replace('"', '""') + '"'


def build_connection_string(connection):
    """The ADO.NET connection string Azure Backup reads (reference §5). Holds the password: never return it."""
    parts = (
        ('Server', connection['host']),
        ('Database', connection.get('database') or 'postgres'),
        ('Port', connection.get('port') or 5432),
        ('User Id', connection['user']),
        ('Password', connection['password']),
        ('Ssl Mode', connection.get('ssl_mode') or 'Require'),
    )
    return ''.join(f'{key}={quote_connection_value(value)};' for key, value in parts)


def secret_metadata(bundle, vault_base_url, name):
    """The returned `secret` dict from a SecretBundle (never the value)."""
    bundle = bundle or {}
    attributes = bundle.get('attributes') or {}
    version = None
    if bundle.get('id'):
        version = str(bundle['id']).rstrip('/').rsplit('/', 1)[-1]
        if version.lower() == name.lower():
            version = None
    return {
        'id': bundle.get('id'),
        'uri': f'{vault_base_url}/secrets/{name}',
        'name': name,
        'version': version,
        'vault_uri': vault_base_url,
        'content_type': bundle.get('contentType'),
        'enabled': attributes.get('enabled'),
        'created': iso_time(attributes.get('created')),
        'updated': iso_time(attributes.get('updated')),
        'tags': bundle.get('tags') or {},
    }


def diff_view(bundle, value_marker):
    """What the diff shows of a secret: metadata and a marker in place of the value."""
    if bundle is None:
        return {}
    version = str(bundle.get('id') or '').rstrip('/').rsplit('/', 1)[-1] or None
    return {
        'value': value_marker,
        'version': version,
        'content_type': bundle.get('contentType'),
        'enabled': (bundle.get('attributes') or {}).get('enabled'),
        'tags': bundle.get('tags') or {},
    }


def _strip_value(bundle):
    """The bundle without its value (so that nothing downstream can leak it)."""
    if bundle is None:
        return None
    return {k: v for k, v in bundle.items() if k != 'value'}


def ensure_secret(store, state, value, content_type, tags, check_mode):
    """Bring the secret to `state`. Returns (changed, value_changed, bundle_after_without_value, diff, msg)."""
    current = store.get()
    current_value = current.get('value') if current else None
    current = _strip_value(current)
    before = diff_view(current, HIDDEN)
    if state == 'absent':
        if current is None:
            return False, False, None, {'before': {}, 'after': {}}, f'Secret {store.name} does not exist.'
        if not check_mode:
            store.delete()
        verb = 'would be deleted' if check_mode else 'deleted'
        return True, False, None, {'before': before, 'after': {}}, f'Secret {store.name} {verb}.'

    value_changed = current is None or current_value != value
    meta_changed = current is not None and (
        (content_type is not None and content_type != current.get('contentType'))
        or (tags is not None and tags != (current.get('tags') or {})))
    if not value_changed and not meta_changed:
        return False, False, current, {'before': before, 'after': before}, f'Secret {store.name} is up to date.'

    # A write creates a new version; keep what the user did not ask to change.
    new_content_type = content_type if content_type is not None else (current or {}).get('contentType')
    new_tags = tags if tags is not None else (current or {}).get('tags')
    if check_mode:
        after_bundle = {'id': None, 'contentType': new_content_type, 'tags': new_tags or {},
                        'attributes': {'enabled': True}}
    else:
        after_bundle = _strip_value(store.set(value, new_content_type, new_tags))
    after = diff_view(after_bundle, HIDDEN_CHANGED if value_changed else HIDDEN)
    if check_mode:
        after['version'] = '<new version>'
    verb = 'created' if current is None else 'updated'
    verb = f'would be {verb}' if check_mode else verb
    what = 'value' if value_changed else 'content type/tags'
    msg = f'Secret {store.name} {verb}.' if current is None else f'Secret {store.name} {verb} ({what} changed).'
    return True, value_changed, after_bundle, {'before': before, 'after': after}, msg
