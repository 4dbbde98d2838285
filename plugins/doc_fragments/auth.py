# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Authentication and API options shared by every module (argspec: module_utils/_auth.py AUTH_ARGSPEC)."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r'''
options:
  auth_source:
    description:
      - Where the Azure credentials come from. The option names and environment variables are those of
        C(azure.azcollection), so an AWX/AAP "Microsoft Azure Resource Manager" credential works unchanged.
      - V(auto) tries, in order, a service principal with a secret (O(client_id), O(secret), O(tenant)),
        a service principal with a certificate (O(client_id), O(tenant), O(x509_certificate_path)), a user
        (O(ad_user), O(password)), workload identity (E(AZURE_FEDERATED_TOKEN_FILE) with O(client_id) and O(tenant)),
        the C(~/.azure/credentials) file when none of these is set, a managed identity, and finally the Azure CLI login.
      - V(env) uses the options and environment variables only; V(credential_file) uses the O(profile) of
        C(~/.azure/credentials); V(msi) uses a managed identity (user-assigned when O(client_id) is set);
        V(cli) uses the Azure CLI login (C(az login)) and its default subscription.
      - Can also be set with the E(ANSIBLE_AZURE_AUTH_SOURCE) environment variable.
    type: str
    choices: [auto, cli, credential_file, env, msi]
    default: auto
  profile:
    description:
      - Profile (ini section) of C(~/.azure/credentials) to read. Setting it implies O(auth_source=credential_file)
        behaviour when O(auth_source=auto).
      - Can also be set with the E(AZURE_PROFILE) environment variable.
    type: str
  subscription_id:
    description:
      - Subscription that holds the backup vault.
      - Can also be set with the E(AZURE_SUBSCRIPTION_ID) environment variable. With O(auth_source=cli) the
        Azure CLI's default subscription is used when it is not set.
    type: str
  client_id:
    description:
      - Application (client) id of a service principal, or the client id of a user-assigned managed identity.
      - Can also be set with the E(AZURE_CLIENT_ID) environment variable.
    type: str
  secret:
    description:
      - Client secret of the service principal.
      - Can also be set with the E(AZURE_SECRET) or E(AZURE_CLIENT_SECRET) environment variables.
    type: str
  tenant:
    description:
      - Tenant (directory) id of the service principal or user.
      - Can also be set with the E(AZURE_TENANT) or E(AZURE_TENANT_ID) environment variables.
    type: str
  ad_user:
    description:
      - User name for username and password sign-in (no multi-factor authentication possible).
      - Can also be set with the E(AZURE_AD_USER) environment variable.
    type: str
  password:
    description:
      - Password of O(ad_user).
      - Can also be set with the E(AZURE_PASSWORD) environment variable.
    type: str
  cloud_environment:
    description:
      - The cloud to use. A name (V(AzureCloud), V(AzureUSGovernment), V(AzureChinaCloud)) or the https URL of an
        Azure Resource Manager endpoint whose C(/metadata/endpoints) document names the endpoints (Azure Stack Hub,
        the collection's emulator). Such a custom authority is used without instance discovery.
      - Or the absolute path of a JSON file holding that C(/metadata/endpoints) document for one cloud (what
        C(dpemulator) writes as C(cloud.json)). Then no metadata request is made, as with a cloud name.
      - Can also be set with the E(AZURE_CLOUD_ENVIRONMENT) environment variable.
      - To trust a private CA, set E(REQUESTS_CA_BUNDLE) to its PEM file.
    type: str
    default: AzureCloud
  cert_validation_mode:
    description:
      - V(validate) checks TLS certificates against the trusted CAs (E(REQUESTS_CA_BUNDLE) when set).
      - V(ignore) turns the check off, for throw-away test set-ups only; prefer trusting the CA instead.
      - Can also be set with the E(AZURE_CERT_VALIDATION_MODE) environment variable.
    type: str
    choices: [validate, ignore]
    default: validate
  disable_instance_discovery:
    description:
      - Skip the authority's instance discovery (always skipped for a custom O(cloud_environment) URL).
      - Can also be set with the E(AZURE_DISABLE_INSTANCE_DISCOVERY) environment variable.
    type: bool
    default: false
  x509_certificate_path:
    description:
      - Path of a PEM file holding the certificate and private key of a service principal.
      - Can also be set with the E(AZURE_X509_CERTIFICATE_PATH) or E(AZURE_CLIENT_CERTIFICATE_PATH) environment
        variables.
    type: path
  token_cache:
    description:
      - Keep the sign-in (the access token) and the cloud's metadata for the next tasks of the run, so that a playbook
        signs in once instead of once per task.
      - The tokens go to azure-identity's persistent cache (MSAL's; the platform keyring where there is one, else a
        file of mode 0600) in O(cache_dir); the cloud metadata and the authority's OpenID configuration, which hold no
        secret, go there too and are read again for 12 hours. No secret and no password is ever written.
      - Managed identity and O(auth_source=cli) keep their own caches.
      - With O(ad_user) and O(password), a cached token of that user stands in for the password while it is valid
        (MSAL's behaviour), so a changed or wrong password shows only once the cached sign-in ends. Set O(token_cache=false)
        to check the password on every task.
      - Can also be set with the E(AZURE_BACKUP_TOKEN_CACHE) environment variable.
    type: bool
    default: true
  cache_dir:
    description:
      - Folder of that cache. It is created with mode 0700; a folder that belongs to another user or that others
        can write to is not used (a warning says so).
      - Default E(XDG_CACHE_HOME)/azure_backup.dataprotection, else C(~/.cache/azure_backup.dataprotection). In an
        AWX/AAP job it lives in the job's container, so it lasts one job.
      - Can also be set with the E(AZURE_BACKUP_CACHE_DIR) environment variable.
    type: path
  api_version:
    description:
      - C(api-version) of the Microsoft.DataProtection REST API to call.
    type: str
    default: '2024-04-01'
requirements:
  - requests >= 2.28
  - azure-identity >= 1.15
notes:
  - Secrets (O(secret), O(password)) never appear in results, warnings or errors.
'''
