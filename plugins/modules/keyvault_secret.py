#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: keyvault_secret
short_description: Create, update or delete an Azure Key Vault secret (for example the restore connection string)
version_added: 1.0.0
description:
  - Creates, updates or deletes a secret through the Key Vault data plane REST API (api-version 7.4).
  - Made for the secret an Azure Backup restore of Azure Database for PostgreSQL reads. With O(connection) it
    builds the ADO.NET connection string the backup service expects
    (C(Server=<host>;Database=<db>;Port=<port>;User Id=<user>;Password=<password>;Ssl Mode=Require;)).
  - Idempotent. The current value is read and compared; a new secret version is written only when the value,
    O(content_type) or O(tags) differ.
  - Works with key vaults that use the Azure RBAC permission model and with those that use access policies (both
    are the same data plane). When Key Vault answers 403 the error says which role or access policy the identity that
    runs Ansible needs.
  - The secret value never appears in the result, the diff, warnings or errors.
author:
  - Azure Backup Data Protection collection contributors (@azure-backup)
options:
  secret_uri:
    description:
      - The secret identifier, C(https://<vault>.vault.azure.net/secrets/<name>).
      - A version at the end of the URI is not allowed; a write always creates a new version.
      - Mutually exclusive with O(vault_uri) and O(name).
    type: str
  vault_uri:
    description:
      - The key vault URI, C(https://<vault>.vault.azure.net/) (the C(vaultUri) property of the key vault).
      - Use with O(name).
    type: str
  name:
    description:
      - The secret name (letters, digits and C(-)). Use with O(vault_uri).
    type: str
  value:
    description:
      - The secret value. Mutually exclusive with O(connection).
      - One of O(value) and O(connection) is required with O(state=present).
    type: str
  connection:
    description:
      - Build the value as the ADO.NET connection string that Azure Backup reads to restore into an
        Azure Database for PostgreSQL server.
      - Values with C(;), quotes or leading/trailing spaces are quoted as ADO.NET connection strings require.
    type: dict
    suboptions:
      host:
        description:
          - Host name of the target server, for example C(targetserver.postgres.database.azure.com).
        type: str
        required: true
      port:
        description:
          - Port of the server.
        type: int
        default: 5432
      database:
        description:
          - Database to connect to. It must exist; the restored database is created next to it.
        type: str
        default: postgres
      user:
        description:
          - Login of a user with C(CREATEDB) and membership in C(azure_pg_admin).
          - Single server logins are usually written C(<user>@<servername>), as the Azure portal shows them.
            The value is stored as given.
        type: str
        required: true
      password:
        description:
          - Password of O(connection.user).
        type: str
        required: true
      ssl_mode:
        description:
          - The C(Ssl Mode) part of the connection string.
        type: str
        default: Require
        choices: [Disable, Allow, Prefer, Require, VerifyCA, VerifyFull]
  content_type:
    description:
      - Content type of the secret. When not set, the current content type is kept (new secrets get none).
    type: str
  tags:
    description:
      - Tags of the secret. When not set, the current tags are kept.
    type: dict
  state:
    description:
      - V(present) makes sure the secret has the value; V(absent) deletes it (Key Vault soft-deletes it when the
        vault has soft delete on; it is not purged).
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - azure_backup.dataprotection.auth
  - azure_backup.dataprotection.attributes
  - azure_backup.dataprotection.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details:
      - Reads the secret and reports what would change; never writes.
  diff_mode:
    support: full
    details:
      - The diff shows the version, content type, tags and whether the value changes, never the value itself.
notes:
  - The token is requested for the cloud's Key Vault audience (for example C(https://vault.azure.net)), not for
    Azure Resource Manager. O(subscription_id) and O(api_version) are not used by this module.
  - "Permissions the identity running Ansible needs: RBAC model, C(Key Vault Secrets Officer) on the key vault
    (C(Owner) and C(Contributor) do not include data-plane access); access-policy model, an access policy with
    secret permissions C(get), C(list), C(set) (and C(delete) for O(state=absent))."
  - After O(state=absent) the name stays reserved while the secret is soft-deleted; creating it again fails with
    C(ObjectIsDeletedButRecoverable) until the deleted secret is recovered or purged.
seealso:
  - plugin: azure_backup.dataprotection.keyvault_secret
    plugin_type: lookup
  - module: azure_backup.dataprotection.restore_permissions
  - module: azure_backup.dataprotection.pg_restore
'''

EXAMPLES = r'''
- name: Store the restore connection string for the target server
  azure_backup.dataprotection.keyvault_secret:
    vault_uri: https://targetosskv.vault.azure.net/
    name: targetossserver-restore
    connection:
      host: targetossserver.postgres.database.azure.com
      user: pgadmin@targetossserver
      password: "{{ target_admin_password }}"
    content_type: ADO.NET connection string
  register: restore_secret

- name: Show the secret URI to give the restore (secret_uri)
  ansible.builtin.debug:
    msg: "secret_uri: {{ restore_secret.secret.uri }}"

- name: Store a plain value, addressed by its URI
  azure_backup.dataprotection.keyvault_secret:
    secret_uri: https://targetosskv.vault.azure.net/secrets/app-password
    value: "{{ app_password }}"
  no_log: true

- name: Delete the secret after the restore
  azure_backup.dataprotection.keyvault_secret:
    secret_uri: https://targetosskv.vault.azure.net/secrets/targetossserver-restore
    state: absent
'''

RETURN = r'''
secret:
  description:
    - The secret's metadata after the task (in check mode, what it would be). Never the value.
    - Empty after O(state=absent).
  returned: always
  type: dict
  contains:
    id:
      description: The versioned secret identifier (null in check mode when a new version would be written).
      type: str
      sample: https://targetosskv.vault.azure.net/secrets/targetossserver-restore/4387e9f3d6e14c459867679a90fd0f79
    uri:
      description: The secret identifier without version; the value to give pg_restore as C(secret_uri).
      type: str
      sample: https://targetosskv.vault.azure.net/secrets/targetossserver-restore
    name:
      description: The secret name.
      type: str
      sample: targetossserver-restore
    version:
      description: The current version (null in check mode when a new version would be written).
      type: str
      sample: 4387e9f3d6e14c459867679a90fd0f79
    vault_uri:
      description: The key vault URI.
      type: str
      sample: https://targetosskv.vault.azure.net
    content_type:
      description: The content type.
      type: str
      sample: ADO.NET connection string
    enabled:
      description: Whether the secret is enabled.
      type: bool
      sample: true
    created:
      description: Creation time of the current version (UTC, ISO 8601).
      type: str
      sample: '2025-01-31T10:00:00Z'
    updated:
      description: Last update time of the current version (UTC, ISO 8601).
      type: str
      sample: '2025-01-31T10:00:00Z'
    tags:
      description: The tags.
      type: dict
      sample: {purpose: restore}
value_changed:
  description: Whether the value was (or, in check mode, would be) written.
  returned: always
  type: bool
  sample: true
msg:
  description: What the task did.
  returned: always
  type: str
  sample: Secret targetossserver-restore created.
error:
  description:
    - The error, structured (same keys as RV(azure_backup.dataprotection.pg_restore_validate#module:error)), when the task
      failed because of the service or of an input the service rejected (code, message, recommended actions, HTTP status and
      request ids to give to Azure support).
  returned: on failure
  type: dict
  sample:
    what: 'Could not read secret restore-conn from https://kv-restore.vault.azure.net'
    code: Forbidden
    message: 'Caller is not authorized to perform action on resource.'
    recommended_actions: ["The key vault uses Azure RBAC: grant the identity that runs Ansible 'Key Vault Secrets User' on the key vault."]
    status: 403
    request_id: 9f0a3c1e-2b4d-4c6e-8f10-123456789abc
    correlation_id: 0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0
'''

from urllib.parse import urlsplit

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _arm_client
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._ids import parse_secret_uri
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._keyvault import (
    CONNECTION_SPEC, SECRET_NAME, SecretStore, build_connection_string, ensure_secret, keyvault_scope, secret_metadata,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._module import DataProtectionModule


# ---------------------------------------------------------------- module

def _address(params):
    """(vault_base_url, name) from secret_uri or vault_uri + name; ValueError with a helpful message."""
    if params.get('secret_uri'):
        base, name, version = parse_secret_uri(params['secret_uri'])
        if version:
            raise ValueError(f"secret_uri '{params['secret_uri']}' names a version: give the secret URI without the "
                             "version (a write always creates a new version)")
        return base, name
    parts = urlsplit(str(params['vault_uri']).strip())
    if parts.scheme.lower() != 'https' or not parts.netloc:
        raise ValueError(f"vault_uri '{params['vault_uri']}' is not an https URL: expected "
                         "https://<vault>.vault.azure.net/")
    if not SECRET_NAME.match(params['name'] or ''):
        raise ValueError(f"name '{params['name']}' is not a valid secret name (1-127 letters, digits and '-')")
    return f'https://{parts.netloc}{parts.path.rstrip("/")}', params['name']


ARGSPEC = {
    'secret_uri': {'type': 'str', 'no_log': False},  # an address, not a secret
    'vault_uri': {'type': 'str'},
    'name': {'type': 'str'},
    'value': {'type': 'str', 'no_log': True},
    'connection': {'type': 'dict', 'options': CONNECTION_SPEC},
    'content_type': {'type': 'str'},
    'tags': {'type': 'dict'},
    'state': {'type': 'str', 'choices': ['present', 'absent'], 'default': 'present'},
}
CONSTRAINTS = {
    'mutually_exclusive': [('secret_uri', 'vault_uri'), ('secret_uri', 'name'), ('value', 'connection')],
    'required_together': [('vault_uri', 'name')],
    'required_one_of': [('secret_uri', 'name')],
    'required_if': [('state', 'present', ('value', 'connection'), True)],
}


def run(module):
    params = module.params
    result = {'changed': False, 'secret': {}, 'value_changed': False}
    try:
        vault_base_url, name = _address(params)
    except ValueError as exc:
        module.fail_json(msg=str(exc), **result)

    value = params.get('value')
    if params['state'] == 'present' and params.get('connection'):
        value = build_connection_string(params['connection'])
    if value:
        module.no_log_values.add(value)  # the built connection string too, in case anything echoes it

    try:
        # The data plane needs no subscription: the client is built without module.client's check for one.
        client = _arm_client.ArmClient(
            module.credential, module.cloud, module.auth_params.get('subscription_id'), verify=module.verify,
            warn=module.warn, session=module.session)
        store = SecretStore(client, vault_base_url, name, keyvault_scope(module.cloud, vault_base_url))
        changed, value_changed, bundle, diff, msg = ensure_secret(
            store, params['state'], value, params.get('content_type'), params.get('tags'), module.check_mode)
    except DataProtectionError as err:
        module.fail_from_error(err, **result)

    result.update(changed=changed, value_changed=value_changed, msg=msg,
                  # its address is known before it exists: check mode says which secret a real run would write
                  secret=secret_metadata(bundle, vault_base_url, name)
                  if bundle is not None or params['state'] == 'present' else {})
    if module._diff:
        result['diff'] = diff
    return result


def main():
    module = DataProtectionModule(argument_spec=ARGSPEC, supports_check_mode=True, **CONSTRAINTS)
    module.exit_with(run)


if __name__ == '__main__':
    main()
