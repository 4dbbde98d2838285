# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Authentication options of the controller plugins other than modules (inventory), with their environment
variables declared so that Ansible's config system fills them (module_utils/_auth.py ENV_VARS is the same list)."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r'''
options:
  auth_source:
    description:
      - Where the credentials come from, as the O(auth_source) option of the collection's modules
        (V(auto) tries a service principal, a user, workload identity, C(~/.azure/credentials), a managed identity, then
        the Azure CLI login).
    type: str
    choices: [auto, cli, credential_file, env, msi]
    env:
      - name: ANSIBLE_AZURE_AUTH_SOURCE
  profile:
    description: Profile (ini section) of C(~/.azure/credentials).
    type: str
    env:
      - name: AZURE_PROFILE
  subscription_id:
    description:
      - Default subscription (what AWX's Azure credential injects); the vaults of O(subscriptions) may be in others.
    type: str
    env:
      - name: AZURE_SUBSCRIPTION_ID
  client_id:
    description: Client id of a service principal or of a user-assigned managed identity.
    type: str
    env:
      - name: AZURE_CLIENT_ID
  secret:
    description: Client secret of the service principal (E(AZURE_SECRET) wins over E(AZURE_CLIENT_SECRET)).
    type: str
    env:
      - name: AZURE_CLIENT_SECRET
      - name: AZURE_SECRET
  tenant:
    description: Tenant id (E(AZURE_TENANT) wins over E(AZURE_TENANT_ID)).
    type: str
    env:
      - name: AZURE_TENANT_ID
      - name: AZURE_TENANT
  ad_user:
    description: User name for a username and password sign-in.
    type: str
    env:
      - name: AZURE_AD_USER
  password:
    description: Password of O(ad_user).
    type: str
    env:
      - name: AZURE_PASSWORD
  cloud_environment:
    description:
      - V(AzureCloud) when not set, V(AzureUSGovernment), V(AzureChinaCloud), or the https URL of an Azure Resource
        Manager endpoint that serves C(/metadata/endpoints) (Azure Stack Hub, the collection's emulator), or the
        absolute path of a JSON file holding that document for one cloud (no metadata request).
      - Trust a private CA with E(REQUESTS_CA_BUNDLE).
    type: str
    env:
      - name: AZURE_CLOUD_ENVIRONMENT
  cert_validation_mode:
    description: V(ignore) turns TLS certificate checks off (throw-away test set-ups only).
    type: str
    choices: [validate, ignore]
    env:
      - name: AZURE_CERT_VALIDATION_MODE
  disable_instance_discovery:
    description: Skip the authority's instance discovery.
    type: bool
    env:
      - name: AZURE_DISABLE_INSTANCE_DISCOVERY
  x509_certificate_path:
    description: PEM file with the certificate and private key of a service principal.
    type: path
    env:
      - name: AZURE_CLIENT_CERTIFICATE_PATH
      - name: AZURE_X509_CERTIFICATE_PATH
  token_cache:
    description: Keep the sign-in and the cloud metadata for the tasks that follow, as the modules do.
    type: bool
    default: true
    env:
      - name: AZURE_BACKUP_TOKEN_CACHE
  cache_dir:
    description: Folder of that token cache (mode 0700); default C(~/.cache/azure_backup.dataprotection).
    type: path
    env:
      - name: AZURE_BACKUP_CACHE_DIR
'''
