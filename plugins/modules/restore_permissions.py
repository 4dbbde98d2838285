#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: restore_permissions
short_description: Grant a Backup vault's managed identity what a PostgreSQL restore needs
version_added: 1.0.0
description:
  - Works out which permissions the managed identity of an Azure Backup vault needs for one restore of an Azure
    Database for PostgreSQL backup, and grants the missing ones. Neither the Azure CLI nor Azure PowerShell does this
    for single server restores.
  - Restore as a new database (single server) needs C(Reader) on the target server and read access to the secret
    that holds the connection string, which is C(Key Vault Secrets User) on the key vault when the key vault uses the
    Azure RBAC permission model, or an access policy with secret permissions C(get) and C(list) when it uses access
    policies.
  - Restore as files (single and flexible servers) needs C(Storage Blob Data Contributor) on the target storage
    account.
  - A permission counts as present when the identity already has that exact role at the resource or at any scope
    above it (resource group, subscription, management group). Other roles never count, in particular C(Owner) and
    C(Contributor) do not include the data-plane roles (C(Key Vault Secrets User), C(Storage Blob Data Contributor)).
  - It never changes firewalls or network rules. It reads them and warns when they would block the restore (target
    server without "Allow access to Azure services", key vault or storage account that denies public traffic without
    the trusted Microsoft services exception).
  - New role assignments can take several minutes to apply. Validate the restore with retries afterwards (the
    C(azure_backup.dataprotection.postgresql_restore) role retries the validation while the service reports missing
    permissions).
author:
  - Azure Backup Data Protection collection contributors (@azure-backup)
options:
  vault_name:
    description:
      - Name of the Backup vault whose managed identity performs the restore.
    type: str
    required: true
  resource_group:
    description:
      - Resource group of the Backup vault.
    type: str
    required: true
  user_assigned_identity_id:
    description:
      - ARM id of a user-assigned managed identity attached to the vault, when the restore uses it instead of the
        vault's system-assigned identity (the same value as the restore modules' O(user_assigned_identity_id)).
    type: str
  target_server_id:
    description:
      - Restore as database. ARM id of the target Azure Database for PostgreSQL single server (a database id under it
        is cut to the server).
      - Needs O(secret_uri) or O(key_vault_id).
    type: str
  secret_uri:
    description:
      - Restore as database. Key Vault secret URI of the connection string the restore uses
        (C(https://<vault>.vault.azure.net/secrets/<name>)). The key vault is found from it.
    type: str
  key_vault_id:
    description:
      - Restore as database. ARM id of the key vault that holds O(secret_uri).
      - When not set, the key vaults of the subscription are listed and the one whose C(vaultUri) matches
        O(secret_uri) is used; set it when the key vault is in another subscription.
    type: str
  target_storage_account_id:
    description:
      - Restore as files. ARM id of the target storage account (a container id under it is cut to the account).
    type: str
  target_container_url:
    description:
      - Restore as files. URL of the target blob container (C(https://<account>.blob.core.windows.net/<container>)).
        When O(target_storage_account_id) is not set, the storage accounts of the subscription are listed and the
        one whose blob endpoint matches is used.
    type: str
  scope:
    description:
      - Where new role assignments are created. V(resource) (the narrowest) assigns on the server, key vault or
        storage account itself; V(resource_group) on its resource group; V(subscription) on its subscription.
      - Key Vault access policies always belong to the key vault.
      - Existing assignments at the resource or above count whatever this option says.
    type: str
    choices: [resource, resource_group, subscription]
    default: resource
extends_documentation_fragment:
  - azure_backup.dataprotection.auth
  - azure_backup.dataprotection.attributes
  - azure_backup.dataprotection.attributes.ACTION_GROUP
attributes:
  check_mode:
    support: full
    details:
      - Reads the vault, the targets and the existing assignments and reports what it would grant; writes nothing.
  diff_mode:
    support: full
    details:
      - The diff lists the permissions present before and after.
notes:
  - "The identity that runs Ansible needs to read the vault and the targets (C(Reader)), to create role assignments on
    the chosen scope (C(Owner), C(User Access Administrator) or C(Role Based Access Control Administrator)) and, for
    key vaults with access policies, C(Microsoft.KeyVault/vaults/accessPolicies/write) (C(Key Vault Contributor) or
    C(Contributor))."
  - Role assignments are created with a new random name (GUID) and C(principalType=ServicePrincipal). When Azure answers
    C(RoleAssignmentExists), the permission counts as already present.
  - O(api_version) applies to the Backup vault request only; the other providers are called with fixed versions
    (Microsoft.Authorization 2022-04-01, Microsoft.KeyVault 2023-07-01, Microsoft.Storage 2023-05-01,
    Microsoft.DBforPostgreSQL 2017-12-01).
seealso:
  - module: azure_backup.dataprotection.pg_restore_validate
  - module: azure_backup.dataprotection.keyvault_secret
  - name: Azure Backup support matrix and prerequisites for PostgreSQL
    description: Permissions the vault identity needs.
    link: https://learn.microsoft.com/azure/backup/backup-azure-database-postgresql-overview
'''

EXAMPLES = r'''
- name: Grant the vault identity what a restore as database needs
  azure_backup.dataprotection.restore_permissions:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    target_server_id: /subscriptions/{{ sub }}/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver
    secret_uri: https://targetosskv.vault.azure.net/secrets/targetossserver-restore
  register: grants

- name: Show what was granted
  ansible.builtin.debug:
    msg: "{{ grants.granted | map(attribute='role') | list }}"

- name: Restore as files - grant Storage Blob Data Contributor on the storage account's resource group
  azure_backup.dataprotection.restore_permissions:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    target_container_url: https://targetossstorage.blob.core.windows.net/restored-files
    scope: resource_group

- name: Only report what is missing
  azure_backup.dataprotection.restore_permissions:
    vault_name: TestBkpVault
    resource_group: testBkpVaultRG
    target_server_id: /subscriptions/{{ sub }}/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver
    key_vault_id: /subscriptions/{{ sub }}/resourceGroups/targetrg/providers/Microsoft.KeyVault/vaults/targetosskv
  check_mode: true
  diff: true
'''

RETURN = r'''
principal_id:
  description: Object id of the managed identity the permissions are for.
  returned: success
  type: str
  sample: c5e3d1a9-7b2f-4e8d-a6c4-0f1e2d3c4b10
required:
  description: Every permission the restore needs, with where a missing one is (or would be) granted.
  returned: success
  type: list
  elements: dict
  contains:
    kind:
      description: V(role_assignment) or V(access_policy).
      type: str
      sample: role_assignment
    role:
      description: Role name, or a description of the access policy.
      type: str
      sample: Reader
    role_definition_id:
      description: ARM id of the role definition (null for an access policy).
      type: str
      sample: /subscriptions/5c0d5bfa-2a34-4b6e-9f4e-6a1a2f6c1c11/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7
    scope:
      description: Scope a missing grant is created at (see O(scope)).
      type: str
      sample: /subscriptions/5c0d5bfa-2a34-4b6e-9f4e-6a1a2f6c1c11/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver
    resource_id:
      description: The resource the restore uses the permission on.
      type: str
      sample: /subscriptions/5c0d5bfa-2a34-4b6e-9f4e-6a1a2f6c1c11/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver
    principal_id:
      description: The identity's object id.
      type: str
      sample: c5e3d1a9-7b2f-4e8d-a6c4-0f1e2d3c4b10
    permissions:
      description: Secret permissions of an access policy (access policies only).
      type: list
      elements: str
      sample: [get, list]
    reason:
      description: Why the restore needs it.
      type: str
      sample: The restore reads the target server's properties.
granted:
  description:
    - Permissions this task granted (in check mode, would grant). Same fields as RV(required), plus
      C(assignment_id), the ARM id of the new role assignment (null in check mode and for access policies).
  returned: success
  type: list
  elements: dict
  sample:
    - kind: role_assignment
      role: Reader
      role_definition_id: /subscriptions/5c0d.../providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7
      scope: /subscriptions/5c0d.../resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver
      principal_id: c5e3d1a9-7b2f-4e8d-a6c4-0f1e2d3c4b10
      assignment_id: /subscriptions/5c0d.../providers/Microsoft.Authorization/roleAssignments/3f1c...
already_present:
  description:
    - Permissions the identity already had. Same fields as RV(required); C(scope) is where the existing assignment
      is (it can be above the resource), C(assignment_id) its ARM id when known.
  returned: success
  type: list
  elements: dict
network_warnings:
  description:
    - Network settings that would block the restore (also emitted as warnings). The module never changes them.
  returned: success
  type: list
  elements: str
  sample:
    - "Key vault targetosskv denies public network access and does not let trusted Microsoft services bypass its firewall..."
targets:
  description: The resources the permissions are for, as found.
  returned: success
  type: dict
  contains:
    server_id:
      description: Target server (restore as database).
      type: str
    key_vault_id:
      description: Key vault that holds the secret (restore as database).
      type: str
    key_vault_rbac:
      description: Whether the key vault uses the Azure RBAC permission model.
      type: bool
    storage_account_id:
      description: Target storage account (restore as files).
      type: str
msg:
  description: Summary.
  returned: always
  type: str
  sample: Granted 2 permission(s) to c5e3d1a9-...; new role assignments can take several minutes to apply.
error:
  description:
    - The error, structured (same keys as RV(azure_backup.dataprotection.pg_restore_validate#module:error)), when the task
      failed because of the service or of an input the service rejected (code, message, recommended actions, HTTP status and
      request ids to give to Azure support).
  returned: on failure
  type: dict
  sample:
    what: 'Could not find the identity of the Backup vault TestBkpVault'
    code: VaultMSIUnauthorized
    message: 'the vault has no system-assigned managed identity.'
    recommended_actions: ['Enable the system-assigned identity of the vault, or give user_assigned_identity_id.']
    status: null
'''

import time
import uuid

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import (
    DataProtectionError, error_from_response,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._ids import (
    parse_container_url, parse_resource_id, parse_secret_uri, vault_id,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._module import DataProtectionModule

AUTHORIZATION_API = '2022-04-01'
KEYVAULT_API = '2023-07-01'
STORAGE_API = '2023-05-01'
POSTGRES_SINGLE_API = '2017-12-01'

READER = ('Reader', 'acdd72a7-3385-48ef-bd42-f606fba81ae7')
KV_SECRETS_USER = ('Key Vault Secrets User', '4633458b-17de-408a-b874-0445c86b69e6')
BLOB_CONTRIBUTOR = ('Storage Blob Data Contributor', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
ACCESS_POLICY_NAME = 'Key Vault access policy (secrets: get, list)'
ACCESS_POLICY_PERMISSIONS = ['get', 'list']

SINGLE_SERVER_TYPE = 'microsoft.dbforpostgresql/servers'
FLEX_SERVER_TYPE = 'microsoft.dbforpostgresql/flexibleservers'
KEY_VAULT_TYPE = 'microsoft.keyvault/vaults'
STORAGE_TYPE = 'microsoft.storage/storageaccounts'

# A new identity (or one just attached) may not have replicated to Microsoft Entra ID yet.
PRINCIPAL_RETRIES = 6
PRINCIPAL_RETRY_DELAY = 10
_ASSIGN_ADVICE = ("The identity that runs Ansible needs Microsoft.Authorization/roleAssignments/write on {scope} "
                  "(Owner, User Access Administrator or Role Based Access Control Administrator), or grant "
                  "'{role}' to the vault identity {principal} there by hand.")
_POLICY_ADVICE = ("The identity that runs Ansible needs Microsoft.KeyVault/vaults/accessPolicies/write on the key vault "
                  "{kv} (Key Vault Contributor or Contributor), or add an access policy with secret permissions get "
                  "and list for {principal} by hand.")


# ---------------------------------------------------------------- pure helpers (unit tested)

def norm(value):
    return str(value or '').strip().rstrip('/').lower()


def scope_covers(scope, resource_id):
    """True when an assignment at `scope` applies to `resource_id` (the same scope or an ancestor)."""
    s, r = norm(scope), norm(resource_id)
    return s in ('', '/') or r == s or r.startswith(s + '/')


def role_guid(role_definition_id):
    return norm(role_definition_id).rsplit('/', 1)[-1]


def cut_to(resource_id, depth_type, option):
    """The id cut to its first `depth_type` resource (server from a database id, account from a container id)."""
    try:
        parts = parse_resource_id(resource_id, option=option)
    except ValueError as exc:
        raise DataProtectionError(f'Invalid {option}', str(exc), code='InvalidResourceId') from exc
    provider, kind = depth_type.lower().split('/', 1)
    if parts['provider'].lower() != provider or parts['types'][0].lower() != kind:
        raise DataProtectionError(f'Invalid {option}', f"'{resource_id}' is not a {depth_type} resource id",
                                  code='InvalidResourceId')
    rg = parts['resource_group']
    return (f"/subscriptions/{parts['subscription']}/resourceGroups/{rg}/providers/{parts['provider']}/"
            f"{parts['types'][0]}/{parts['names'][0]}")


def widen(resource_id, scope):
    """The scope a new assignment for `resource_id` goes to: the resource, its resource group or subscription."""
    parts = parse_resource_id(resource_id)
    if scope == 'subscription':
        return f"/subscriptions/{parts['subscription']}"
    if scope == 'resource_group':
        return f"/subscriptions/{parts['subscription']}/resourceGroups/{parts['resource_group']}"
    return resource_id


def role_definition_id(scope, guid):
    subscription = parse_resource_id(scope)['subscription']
    return f'/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/{guid}'


def find_assignment(assignments, principal_id, guid, resource_id):
    """The first assignment of role `guid` to `principal_id` at `resource_id` or above, else None."""
    for item in assignments:
        props = item.get('properties') or {}
        if (norm(props.get('principalId')) == norm(principal_id) and role_guid(props.get('roleDefinitionId')) == guid
                and scope_covers(props.get('scope'), resource_id)):
            return item
    return None


def policy_permissions(key_vault, principal_id):
    """Secret permissions (lower case) the key vault's access policies give the principal itself."""
    found = set()
    for policy in (key_vault.get('properties') or {}).get('accessPolicies') or []:
        if norm(policy.get('objectId')) == norm(principal_id) and not policy.get('applicationId'):
            found.update(str(p).lower() for p in (policy.get('permissions') or {}).get('secrets') or [])
    return found


def policy_covers(permissions):
    return 'all' in permissions or set(ACCESS_POLICY_PERMISSIONS) <= permissions


def _acl_blocks(acls):
    acls = acls or {}
    bypass = [b.strip().lower() for b in str(acls.get('bypass') or 'None').split(',')]
    return str(acls.get('defaultAction') or 'Allow').lower() == 'deny' and 'azureservices' not in bypass


def key_vault_warnings(key_vault):
    props = key_vault.get('properties') or {}
    name = key_vault.get('name') or key_vault.get('id')
    found = []
    if str(props.get('publicNetworkAccess') or 'Enabled').lower() == 'disabled':
        found.append(f'Key vault {name} has public network access disabled: Azure Backup cannot read the secret. '
                     'Enable public network access with "Allow trusted Microsoft services to bypass this firewall" '
                     '(the Azure CLI refuses such key vaults too).')
    elif _acl_blocks(props.get('networkAcls')):
        found.append(f'Key vault {name} denies public traffic and does not let trusted Microsoft services bypass its '
                     'firewall: Azure Backup cannot read the secret. Set networkAcls.bypass to AzureServices '
                     '(az keyvault update --bypass AzureServices).')
    return found


def storage_warnings(account):
    props = account.get('properties') or {}
    name = account.get('name') or account.get('id')
    found = []
    if str(props.get('publicNetworkAccess') or 'Enabled').lower() == 'disabled':
        found.append(f'Storage account {name} has public network access disabled: Azure Backup may not be able to '
                     'write the restored files. Allow trusted Microsoft services or use a reachable account.')
    elif _acl_blocks(props.get('networkAcls')):
        found.append(f'Storage account {name} denies public traffic and does not let trusted Microsoft services '
                     'bypass its firewall: Azure Backup cannot write the restored files. Add the AzureServices '
                     'bypass (az storage account update --bypass AzureServices).')
    return found


def server_warnings(server, firewall_rules):
    props = server.get('properties') or {}
    name = server.get('name') or server.get('id')
    found = []
    if str(props.get('publicNetworkAccess') or 'Enabled').lower() == 'disabled':
        found.append(f'Server {name} denies public network access: Azure Backup cannot connect to restore into it '
                     '(set "Deny public network access" to No).')
    if firewall_rules is not None and not any(
            (r.get('properties') or {}).get('startIpAddress') == '0.0.0.0'
            and (r.get('properties') or {}).get('endIpAddress') == '0.0.0.0' for r in firewall_rules):
        found.append(f'Server {name} does not allow access from Azure services (no firewall rule 0.0.0.0-0.0.0.0, '
                     'usually named AllowAllWindowsAzureIps): the restore fails with '
                     'UserErrorMissingNetworkSecurityPermissions. Turn on "Allow access to Azure services" '
                     '(az postgres server firewall-rule create --name AllowAllWindowsAzureIps '
                     '--start-ip-address 0.0.0.0 --end-ip-address 0.0.0.0 ...).')
    return found


def describe(item):
    """One line per permission, for the diff."""
    where = item['scope']
    if item['kind'] == 'access_policy':
        return f"{ACCESS_POLICY_NAME} on {where}"
    return f"{item['role']} on {where}"


# ---------------------------------------------------------------- the planner

class RestorePermissions:
    """Reads the vault, the targets and the existing grants; grants what is missing."""

    sleep = staticmethod(time.sleep)

    def __init__(self, client, subscription_id, warn):
        self.client = client
        self.subscription_id = subscription_id
        self.warn = warn
        self.network_warnings = []
        self.targets = {}

    # ------------------------------------------------------------ reads

    def _get(self, path, api_version, what):
        params = {'api-version': api_version} if api_version else None
        return self.client.json_or_raise(self.client.get(path, params=params), what)

    def _pages(self, path, params):
        return self.client.iter_pages(path, params=params)

    def principal(self, vault_name, resource_group, user_assigned_identity_id):
        vault = self._get(vault_id(self.subscription_id, resource_group, vault_name), None,
                          f'Could not read the Backup vault {vault_name}')
        identity = vault.get('identity') or {}
        if user_assigned_identity_id:
            for key, value in (identity.get('userAssignedIdentities') or {}).items():
                if norm(key) == norm(user_assigned_identity_id) and (value or {}).get('principalId'):
                    return value['principalId']
            raise DataProtectionError(
                f'Could not find the identity of the Backup vault {vault_name}',
                f"the user-assigned identity '{user_assigned_identity_id}' is not attached to the vault.",
                code='UserAssignedIdentityNotAttached', recommended_actions=[
                    'Attach the identity to the vault (Identity blade, or az dataprotection backup-vault update '
                    '--uami), or leave user_assigned_identity_id out to use the system-assigned identity.'])
        if not identity.get('principalId'):
            raise DataProtectionError(
                f'Could not find the identity of the Backup vault {vault_name}',
                'the vault has no system-assigned managed identity.', code='VaultMSIUnauthorized',
                recommended_actions=['Enable the system-assigned identity of the vault (az dataprotection '
                                     'backup-vault update --type SystemAssigned) or give user_assigned_identity_id.'])
        return identity['principalId']

    def key_vault(self, secret_uri, key_vault_id):
        base = parse_secret_uri(secret_uri)[0] if secret_uri else None
        if key_vault_id:
            kv_id = cut_to(key_vault_id, 'microsoft.keyvault/vaults', 'key_vault_id')
            kv = self._get(kv_id, KEYVAULT_API, 'Could not read the key vault')
            uri = (kv.get('properties') or {}).get('vaultUri')
            if base and uri and norm(uri) != norm(base):
                self.warn(f"secret_uri points at {base} but key_vault_id's vaultUri is {uri}; "
                          'permissions are granted on key_vault_id.')
            return kv
        for item in self._pages(f'/subscriptions/{self.subscription_id}/providers/Microsoft.KeyVault/vaults',
                                {'api-version': KEYVAULT_API}):
            if norm((item.get('properties') or {}).get('vaultUri')) == norm(base):
                # The list may leave out properties (access policies): read the vault itself.
                return self._get(item['id'], KEYVAULT_API, 'Could not read the key vault')
        raise DataProtectionError(
            'Could not find the key vault', f'no key vault in subscription {self.subscription_id} has the vault URI '
            f'{base}.', code='KeyVaultNotFound', recommended_actions=[
                'Give key_vault_id (the ARM id of the key vault), for example when it is in another subscription.'])

    def storage_account(self, account_id, container_url):
        if account_id:
            return self._get(cut_to(account_id, 'microsoft.storage/storageAccounts', 'target_storage_account_id'),
                             STORAGE_API, 'Could not read the storage account')
        try:
            base = parse_container_url(container_url)[0]
        except ValueError as exc:
            raise DataProtectionError('Invalid target_container_url', str(exc), code='InvalidContainerUrl') from exc
        for item in self._pages(f'/subscriptions/{self.subscription_id}/providers/Microsoft.Storage/storageAccounts',
                                {'api-version': STORAGE_API}):
            endpoints = (item.get('properties') or {}).get('primaryEndpoints') or {}
            if norm(endpoints.get('blob')) == norm(base):
                return self._get(item['id'], STORAGE_API, 'Could not read the storage account')
        raise DataProtectionError(
            'Could not find the storage account', f'no storage account in subscription {self.subscription_id} '
            f'has the blob endpoint {base}.', code='StorageAccountNotFound', recommended_actions=[
                'Give target_storage_account_id, for example when the account is in another subscription.'])

    def check_server_network(self, server_id):
        server = self._get(server_id, POSTGRES_SINGLE_API, 'Could not read the target server')
        try:
            rules = list(self._pages(server_id + '/firewallRules', {'api-version': POSTGRES_SINGLE_API}))
        except DataProtectionError as err:
            self._note_unchecked(f'the firewall rules of {server_id}', err)
            rules = None
        self.network_warnings.extend(server_warnings(server, rules))

    def _note_unchecked(self, what, err):
        self.warn(f'Could not check {what} ({err.code or err.status}); the restore may still be blocked by them.')

    def assignments(self, resource_id):
        """Role assignments at `resource_id` and above (inherited)."""
        try:
            return list(self._pages(resource_id + '/providers/Microsoft.Authorization/roleAssignments',
                                    {'api-version': AUTHORIZATION_API, '$filter': 'atScope()'}))
        except DataProtectionError as err:
            err.what = f'Could not list the role assignments on {resource_id}'
            if err.status == 403:
                err.recommended_actions = ['The identity that runs Ansible needs to read role assignments '
                                           '(Microsoft.Authorization/roleAssignments/read, in Reader) on the target.']
            raise

    # ------------------------------------------------------------ plan

    def plan(self, principal_id, params):
        """(required, present) lists for the restore described by `params`."""
        required, present = [], []
        scope = params['scope']

        def need_role(role, resource_id, reason):
            name, guid = role
            target_scope = widen(resource_id, scope)
            item = {'kind': 'role_assignment', 'role': name, 'role_definition_id': role_definition_id(target_scope, guid),
                    'scope': target_scope, 'resource_id': resource_id, 'principal_id': principal_id,
                    'reason': reason}
            required.append(item)
            existing = find_assignment(self.assignments(resource_id), principal_id, guid, resource_id)
            if existing:
                props = existing.get('properties') or {}
                present.append(dict(item, scope=props.get('scope'), assignment_id=existing.get('id'),
                                    role_definition_id=props.get('roleDefinitionId') or item['role_definition_id']))

        if params.get('target_server_id'):
            server_id = self._server_id(params['target_server_id'])
            self.targets['server_id'] = server_id
            need_role(READER, server_id, 'The restore reads the target server (Reader on the server).')
            self.check_server_network(server_id)
            kv = self.key_vault(params.get('secret_uri'), params.get('key_vault_id'))
            kv_id = cut_to(kv['id'], 'microsoft.keyvault/vaults', 'key vault id')
            rbac = bool((kv.get('properties') or {}).get('enableRbacAuthorization'))
            self.targets.update(key_vault_id=kv_id, key_vault_rbac=rbac)
            if rbac:
                need_role(KV_SECRETS_USER, kv_id, 'The restore reads the connection string secret (Azure RBAC key vault).')
            else:
                item = {'kind': 'access_policy', 'role': ACCESS_POLICY_NAME, 'role_definition_id': None,
                        'scope': kv_id, 'resource_id': kv_id, 'principal_id': principal_id,
                        'permissions': list(ACCESS_POLICY_PERMISSIONS), 'tenant_id': (kv.get('properties') or {}).get('tenantId'),
                        'reason': 'The restore reads the connection string secret (access-policy key vault).'}
                required.append(item)
                if policy_covers(policy_permissions(kv, principal_id)):
                    present.append(dict(item))
            self.network_warnings.extend(key_vault_warnings(kv))
        else:
            account = self.storage_account(params.get('target_storage_account_id'), params.get('target_container_url'))
            account_id = cut_to(account['id'], 'microsoft.storage/storageAccounts', 'storage account id')
            self.targets['storage_account_id'] = account_id
            need_role(BLOB_CONTRIBUTOR, account_id, 'The restore writes the backup files into the container.')
            self.network_warnings.extend(storage_warnings(account))
        return required, present

    @staticmethod
    def _server_id(value):
        try:
            parts = parse_resource_id(value, option='target_server_id')
        except ValueError as exc:
            raise DataProtectionError('Invalid target_server_id', str(exc), code='InvalidResourceId') from exc
        if f"{parts['provider']}/{parts['types'][0]}".lower() == FLEX_SERVER_TYPE:
            raise DataProtectionError(
                'Invalid target_server_id', 'a flexible server can only be restored as files.',
                code='FlexibleServerRestoreAsFilesOnly', recommended_actions=[
                    'Give target_storage_account_id or target_container_url instead of target_server_id.'])
        return cut_to(value, 'microsoft.dbforpostgresql/servers', 'target_server_id')

    # ------------------------------------------------------------ writes

    def grant(self, item):
        """Grant one missing permission. Returns the granted item, or None when Azure says it already exists."""
        if item['kind'] == 'access_policy':
            return self._add_access_policy(item)
        return self._assign_role(item)

    def _assign_role(self, item):
        name = str(uuid.uuid4())
        path = f"{item['scope']}/providers/Microsoft.Authorization/roleAssignments/{name}"
        body = {'properties': {'roleDefinitionId': item['role_definition_id'], 'principalId': item['principal_id'],
                               'principalType': 'ServicePrincipal'}}
        what = f"Could not assign {item['role']} to {item['principal_id']} on {item['scope']}"
        for attempt in range(1, PRINCIPAL_RETRIES + 1):
            response = self.client.put(path, body, params={'api-version': AUTHORIZATION_API})
            if response.status_code == 409:
                err = error_from_response(what, response)
                if (err.code or '').lower() == 'roleassignmentexists':
                    return None
                raise err
            if response.status_code == 400 and attempt < PRINCIPAL_RETRIES:
                err = error_from_response(what, response)
                if (err.code or '').lower() == 'principalnotfound':
                    self.warn(f"The identity {item['principal_id']} is not known to Microsoft Entra ID yet "
                              f'(PrincipalNotFound); retrying in {PRINCIPAL_RETRY_DELAY}s '
                              f'({attempt} of {PRINCIPAL_RETRIES - 1})')
                    self.sleep(PRINCIPAL_RETRY_DELAY)
                    continue
            if response.status_code == 403:
                err = error_from_response(what, response)
                err.recommended_actions = [_ASSIGN_ADVICE.format(scope=item['scope'], role=item['role'],
                                                                 principal=item['principal_id'])]
                raise err
            created = self.client.json_or_raise(response, what)
            return dict(item, assignment_id=created.get('id') or path)
        raise DataProtectionError(what, 'the identity was still not found after retries.', code='PrincipalNotFound')

    def _add_access_policy(self, item):
        what = f"Could not add an access policy for {item['principal_id']} to {item['scope']}"
        body = {'properties': {'accessPolicies': [{
            'tenantId': item.get('tenant_id'), 'objectId': item['principal_id'],
            'permissions': {'secrets': list(ACCESS_POLICY_PERMISSIONS)}}]}}
        response = self.client.put(item['scope'] + '/accessPolicies/add', body, params={'api-version': KEYVAULT_API})
        if response.status_code == 403:
            err = error_from_response(what, response)
            err.recommended_actions = [_POLICY_ADVICE.format(kv=item['scope'], principal=item['principal_id'])]
            raise err
        self.client.json_or_raise(response, what)
        return dict(item, assignment_id=None)


def _public(item):
    """An item as returned: no internal fields."""
    return {k: v for k, v in item.items() if k != 'tenant_id'}


def run(module, planner):
    params = module.params
    principal_id = planner.principal(params['vault_name'], params['resource_group'],
                                     params.get('user_assigned_identity_id'))
    required, present = planner.plan(principal_id, params)
    present_keys = {(p['kind'], p['resource_id'], p['role']) for p in present}
    missing = [r for r in required if (r['kind'], r['resource_id'], r['role']) not in present_keys]
    granted = []
    result = {'principal_id': principal_id, 'required': [_public(r) for r in required], 'granted': granted,
              'already_present': [_public(p) for p in present], 'targets': planner.targets,
              'network_warnings': planner.network_warnings}
    for item in missing:
        if module.check_mode:
            granted.append(_public(dict(item, assignment_id=None)))
            continue
        try:
            done = planner.grant(item)
        except DataProtectionError as err:
            module.fail_from_error(err, changed=bool(granted), **result)
        if done is None:  # RoleAssignmentExists: created meanwhile, or hidden from our read
            result['already_present'].append(_public(dict(item, assignment_id=None)))
        else:
            granted.append(_public(done))
    return result


def main():
    argument_spec = {
        'vault_name': {'type': 'str', 'required': True},
        'resource_group': {'type': 'str', 'required': True},
        'user_assigned_identity_id': {'type': 'str'},
        'target_server_id': {'type': 'str'},
        'secret_uri': {'type': 'str', 'no_log': False},  # an address, not a secret
        'key_vault_id': {'type': 'str'},
        'target_storage_account_id': {'type': 'str'},
        'target_container_url': {'type': 'str'},
        'scope': {'type': 'str', 'choices': ['resource', 'resource_group', 'subscription'], 'default': 'resource'},
    }
    module = DataProtectionModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_one_of=[('target_server_id', 'target_storage_account_id', 'target_container_url')],
        mutually_exclusive=[('target_server_id', 'target_storage_account_id'),
                            ('target_server_id', 'target_container_url')],
    )
    params = module.params
    if params.get('target_server_id') and not (params.get('secret_uri') or params.get('key_vault_id')):
        module.fail_json(msg='target_server_id needs secret_uri or key_vault_id: the restore reads the connection '
                             'string from that key vault, so the vault identity needs access to it.')
    if params.get('secret_uri'):
        try:
            parse_secret_uri(params['secret_uri'])
        except ValueError as exc:
            module.fail_json(msg=str(exc))

    try:
        planner = RestorePermissions(module.client, module.subscription_id, module.warn)
        result = run(module, planner)
    except DataProtectionError as err:
        module.fail_from_error(err, changed=False)

    for text in result['network_warnings']:
        module.warn(text)
    granted = result['granted']
    before = sorted(describe(p) for p in result['already_present'])
    after = sorted(before + [describe(g) for g in granted])
    if granted:
        verb = 'Would grant' if module.check_mode else 'Granted'
        msg = (f"{verb} {len(granted)} permission(s) to {result['principal_id']}: "
               + '; '.join(describe(g) for g in granted)
               + ('' if module.check_mode else '. New role assignments can take several minutes to apply.'))
    else:
        msg = f"The identity {result['principal_id']} already has every permission the restore needs."
    if module._diff:
        result['diff'] = {'before': {'permissions': before}, 'after': {'permissions': after}}
    module.exit_json(changed=bool(granted), msg=msg, **result)


if __name__ == '__main__':
    main()
