# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
name: keyvault_secret
short_description: Read secrets from Azure Key Vault
version_added: 1.0.0
description:
  - Returns the values of Azure Key Vault secrets, read through the Key Vault data plane REST API (api-version 7.4)
    on the controller.
  - Each term is a secret URI (C(https://<vault>.vault.azure.net/secrets/<name>[/<version>])), or a secret name
    (C(<name>) or C(<name>/<version>)) together with O(vault_uri).
  - Authenticates with the same options and environment variables as the collection's modules, so an AWX/AAP
    "Microsoft Azure Resource Manager" credential (E(AZURE_CLIENT_ID), E(AZURE_SECRET), E(AZURE_TENANT),
    E(AZURE_CLOUD_ENVIRONMENT)) works unchanged; azure-identity's names (E(AZURE_CLIENT_SECRET), E(AZURE_TENANT_ID),
    workload identity, managed identity) work too.
  - "B(The lookup returns secrets.) Set C(no_log: true) on every task that uses its result, and never register or print
    the value."
author:
  - Azure Backup Data Protection collection contributors (@azure-backup)
options:
  _terms:
    description:
      - Secret URIs, or secret names (optionally C(<name>/<version>)) when O(vault_uri) is set.
    type: list
    elements: str
    required: true
  vault_uri:
    description:
      - Key vault URI (C(https://<vault>.vault.azure.net/)) for terms that are plain secret names.
    type: str
  auth_source:
    description:
      - Where the credentials come from; see the C(auth_source) option of the collection's modules.
    type: str
    choices: [auto, cli, credential_file, env, msi]
    env:
      - name: ANSIBLE_AZURE_AUTH_SOURCE
  profile:
    description:
      - Profile of C(~/.azure/credentials) to use.
    type: str
    env:
      - name: AZURE_PROFILE
  subscription_id:
    description:
      - Subscription id. Not needed to read a secret; accepted so that the same variables work everywhere.
    type: str
    env:
      - name: AZURE_SUBSCRIPTION_ID
  client_id:
    description:
      - Application (client) id of a service principal, or the client id of a user-assigned managed identity.
    type: str
    env:
      - name: AZURE_CLIENT_ID
  secret:
    description:
      - Client secret of the service principal. E(AZURE_SECRET) wins over E(AZURE_CLIENT_SECRET) when both are set.
    type: str
    env:
      - name: AZURE_CLIENT_SECRET
      - name: AZURE_SECRET
  tenant:
    description:
      - Tenant id. E(AZURE_TENANT) wins over E(AZURE_TENANT_ID) when both are set.
    type: str
    env:
      - name: AZURE_TENANT_ID
      - name: AZURE_TENANT
  ad_user:
    description:
      - User name for username and password sign-in.
    type: str
    env:
      - name: AZURE_USERNAME
      - name: AZURE_AD_USER
  password:
    description:
      - Password of O(ad_user).
    type: str
    env:
      - name: AZURE_PASSWORD
  cloud_environment:
    description:
      - V(AzureCloud) (when not set), V(AzureUSGovernment), V(AzureChinaCloud), or the https URL of an Azure
        Resource Manager endpoint that serves C(/metadata/endpoints) (Azure Stack Hub, the collection's emulator),
        or the absolute path of a JSON file holding that document for one cloud (no metadata request).
      - To trust a private CA, set E(REQUESTS_CA_BUNDLE) to its PEM file.
    type: str
    env:
      - name: AZURE_CLOUD_ENVIRONMENT
  cert_validation_mode:
    description:
      - V(ignore) turns TLS certificate checks off, for throw-away test set-ups only; prefer trusting the CA.
    type: str
    choices: [validate, ignore]
    env:
      - name: AZURE_CERT_VALIDATION_MODE
  disable_instance_discovery:
    description:
      - Skip the authority's instance discovery (always skipped for a custom O(cloud_environment) URL).
    type: bool
    env:
      - name: AZURE_DISABLE_INSTANCE_DISCOVERY
  x509_certificate_path:
    description:
      - PEM file with the certificate and private key of a service principal.
    type: path
    env:
      - name: AZURE_CLIENT_CERTIFICATE_PATH
      - name: AZURE_X509_CERTIFICATE_PATH
  token_cache:
    description:
      - Keep the sign-in and the cloud metadata for the next tasks, as the modules do (see their O(token_cache)).
    type: bool
    default: true
    env:
      - name: AZURE_BACKUP_TOKEN_CACHE
  cache_dir:
    description:
      - Folder of that cache (mode 0700); default C(~/.cache/azure_backup.dataprotection).
    type: path
    env:
      - name: AZURE_BACKUP_CACHE_DIR
notes:
  - Runs on the controller (or the AWX execution environment), not on the target host.
  - "The identity needs to read secrets: C(Key Vault Secrets User) on the key vault (RBAC permission model; C(Owner) and
    C(Contributor) are not enough), or an access policy with secret permissions C(get) (access-policy model)."
  - A secret that does not exist is an error naming the key vault and the secret.
seealso:
  - module: azure_backup.dataprotection.keyvault_secret
'''

EXAMPLES = r'''
- name: Read a secret by URI (AWX injects AZURE_CLIENT_ID, AZURE_SECRET, AZURE_TENANT)
  ansible.builtin.set_fact:
    db_password: "{{ lookup('azure_backup.dataprotection.keyvault_secret',
                            'https://targetosskv.vault.azure.net/secrets/pgadmin-password') }}"
  no_log: true

- name: Read two secrets of one key vault, one of them at a given version
  ansible.builtin.set_fact:
    creds: "{{ query('azure_backup.dataprotection.keyvault_secret', 'pg-user', 'pg-password/4387e9f3d6e14c459867679a90fd0f79',
                     vault_uri='https://targetosskv.vault.azure.net/') }}"
  no_log: true

- name: Use explicit service principal options
  ansible.builtin.set_fact:
    db_password: "{{ lookup('azure_backup.dataprotection.keyvault_secret', 'pgadmin-password',
                            vault_uri=kv_uri, client_id=sp_id, secret=sp_secret, tenant=tenant_id) }}"
  no_log: true
'''

RETURN = r'''
_raw:
  description:
    - The secret values, one per term, in the order of the terms. They are secrets; use C(no_log).
  type: list
  elements: str
'''

from urllib.parse import urlsplit

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import DataProtectionError
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._ids import parse_secret_uri
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._keyvault import SecretStore, keyvault_scope
from ansible_collections.azure_backup.dataprotection.plugins.plugin_utils._lookup_auth import build_client

display = Display()


def parse_term(term, vault_uri):
    """(vault_base_url, name, version) for a term: a secret URI, or a name[/version] with vault_uri."""
    term = str(term).strip()
    if term.lower().startswith('https://'):
        return parse_secret_uri(term)
    if not vault_uri:
        raise ValueError(f"'{term}' is not a secret URI (https://<vault>.vault.azure.net/secrets/<name>); "
                         'give a full secret URI or set vault_uri')
    parts = urlsplit(str(vault_uri).strip())
    if parts.scheme.lower() != 'https' or not parts.netloc:
        raise ValueError(f"vault_uri '{vault_uri}' is not an https URL: expected https://<vault>.vault.azure.net/")
    base = f'https://{parts.netloc}{parts.path.rstrip("/")}'
    return parse_secret_uri(f'{base}/secrets/{term.strip("/")}')


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        vault_uri = self.get_option('vault_uri')
        try:
            targets = [parse_term(term, vault_uri) for term in terms]
        except ValueError as exc:
            raise AnsibleLookupError(str(exc)) from None
        if not targets:
            return []
        values = []
        try:
            client, cloud = build_client(self, warn=display.warning)
            for base, name, version in targets:
                store = SecretStore(client, base, name, keyvault_scope(cloud, base))
                bundle = store.get(version)
                if bundle is None:
                    shown = f'{name}/{version}' if version else name
                    raise AnsibleLookupError(f'Secret {shown} was not found in the key vault {base} (SecretNotFound).')
                values.append(bundle.get('value'))
        except DataProtectionError as err:
            # str(err) holds the service's code, message and advice, never a secret value.
            raise AnsibleLookupError(str(err)) from None
        return values
