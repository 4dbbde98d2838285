# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# INTERNAL USE ONLY: private to the azure_backup.dataprotection collection; no compatibility promise.
"""What the vault's managed identity needs for a restore, read and granted (restore_permissions and pg_restore), and
the deletion of role assignments by id (restore_permissions state absent: a drill revokes what it granted)."""

from __future__ import annotations

import re
import time
import uuid

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import (
    DataProtectionError, error_from_response,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._ids import (
    parse_container_url, parse_resource_id, parse_secret_uri, vault_id,
)

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

    def __init__(self, client, subscription_id, warn, check_mode=False):
        self.client = client
        self.subscription_id = subscription_id
        self.warn = warn
        self.check_mode = check_mode
        self.network_warnings = []
        self.targets = {}

    # ------------------------------------------------------------ reads

    def _get(self, path, api_version, what):
        params = {'api-version': api_version} if api_version else None
        return self.client.json_or_raise(self.client.get(path, params=params), what)

    def _pages(self, path, params):
        return self.client.iter_pages(path, params=params)

    def principal(self, vault_name, resource_group, user_assigned_identity_id, vault=None):
        """The principal id of the vault's identity (`vault`: the raw vault when the caller read it already)."""
        if vault is None:
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

    # A typo in secret_uri or the container URL must fail before anything is granted, and say that the thing is
    # missing: the service's own errors (UserErrorInvalidSecret, UserErrorContainerNotAccessible) read like a
    # permission not yet applied. Both reads go through ARM: no value, Reader is enough, no Key Vault token.

    def check_secret(self, kv_id, secret_uri):
        """Fail when the secret is not in the key vault, or its current version is disabled."""
        name, version = parse_secret_uri(secret_uri)[1:]
        secret = self._read_if_there(f'{kv_id}/secrets/{name}', KEYVAULT_API, f'the secret {name}')
        if secret is False:
            self._missing(DataProtectionError(
                f'The secret {name} does not exist', f'the key vault {kv_id} has no secret named {name} '
                f'(secret_uri {secret_uri}).', code='SecretNotFound', recommended_actions=[
                    'Correct secret_uri, or create the secret first: pg_restore writes it when given '
                    'secret_connection (the role: postgresql_restore_admin_password without '
                    'postgresql_restore_secret_uri), or use azure_backup.dataprotection.keyvault_secret.']))
        enabled = ((secret or {}).get('properties') or {}).get('attributes', {}).get('enabled', True)
        if secret and not version and enabled is False:
            raise DataProtectionError(
                f'The secret {name} is disabled', f'the current version of {secret_uri} is disabled; the service '
                'cannot read it.', code='SecretDisabled', recommended_actions=[
                    'Enable it (az keyvault secret set-attributes --enabled true) or give a secret_uri with an '
                    'enabled version.'])

    def check_container(self, account_id, container_url):
        """Fail when the container of container_url is not in the storage account."""
        container = parse_container_url(container_url)[1]
        found = self._read_if_there(f'{account_id}/blobServices/default/containers/{container}', STORAGE_API,
                                    f'the container {container}')
        if found is False:
            self._missing(DataProtectionError(
                f'The container {container} does not exist', f'the storage account {account_id} has no container '
                f'named {container} (target_container_url {container_url}).', code='ContainerNotFound',
                recommended_actions=['Correct target_container_url, or create the container first (az storage '
                                     'container create, or azure.azcollection.azure_rm_storageblob).']))

    def _missing(self, err):
        """A real run fails at once; check mode only warns: an earlier task of the same play, skipped by check
        mode, may be the one that creates the secret or the container."""
        if not self.check_mode:
            raise err
        self.warn(f'{err} (Check mode: if an earlier task creates it, a real run goes on; otherwise it fails here.)')

    def _read_if_there(self, path, api_version, what):
        """The resource, False when ARM says it does not exist, None when we may not read it (warned)."""
        response = self.client.get(path, params={'api-version': api_version})
        if response.status_code == 404:
            return False
        if response.status_code == 403:
            err = error_from_response(f'Could not read {what}', response)
            self.warn(f'Could not check that {what} exists ({err.code or err.status}): the identity that runs '
                      'Ansible may not read it. Going on.')
            return None
        return self.client.json_or_raise(response, f'Could not read {what}')

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
            if params.get('secret_uri') and not params.get('secret_written'):
                self.check_secret(kv_id, params['secret_uri'])
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
            if params.get('target_container_url'):
                self.check_container(account_id, params['target_container_url'])
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


def ensure_permissions(module, planner, params, vault=None):
    """Grant what is missing (nothing in check mode); the result restore_permissions returns."""
    principal_id = planner.principal(params['vault_name'], params['resource_group'],
                                     params.get('user_assigned_identity_id'), vault=vault)
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


PERMISSIONS_ARGSPEC = {
    'user_assigned_identity_id': {'type': 'str'},
    'target_server_id': {'type': 'str'},
    'secret_uri': {'type': 'str', 'no_log': False},  # an address, not a secret
    'key_vault_id': {'type': 'str'},
    'target_storage_account_id': {'type': 'str'},
    'target_container_url': {'type': 'str'},
    'scope': {'type': 'str', 'choices': ['resource', 'resource_group', 'subscription'], 'default': 'resource'},
}


def check_permission_params(params):
    """The checks the argument spec cannot express; raises ValueError before any call."""
    if params.get('target_server_id') and not (params.get('secret_uri') or params.get('key_vault_id')):
        raise ValueError('target_server_id needs secret_uri or key_vault_id: the restore reads the connection '
                         'string from that key vault, so the vault identity needs access to it.')
    if params.get('secret_uri'):
        parse_secret_uri(params['secret_uri'])


def grant_restore_permissions(module, params, vault=None):
    """Read what the vault identity has, grant what the restore needs (nothing in check mode).

    `params`: vault_name, resource_group and the PERMISSIONS_ARGSPEC options; `secret_written`: the caller writes
    the secret itself (pg_restore's secret_connection), so its absence is no error. Returns restore_permissions' result
    with `changed`, `msg` and `_diff` (the caller keeps it when diff mode is on); network warnings go to
    module.warn(). A failed grant fails the task through module.fail_from_error (changed when something was granted).
    """
    check_permission_params(params)
    planner = RestorePermissions(module.client, module.subscription_id, module.warn, check_mode=module.check_mode)
    result = ensure_permissions(module, planner, params, vault=vault)
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
    result.update(changed=bool(granted), msg=msg,
                  _diff={'before': {'permissions': before}, 'after': {'permissions': after}})
    return result


# ---------------------------------------------------------------- revoke (the drill's own grants)

_ASSIGNMENT_ID = re.compile(r'^(?P<scope>/.*)?/providers/Microsoft\.Authorization/roleAssignments/(?P<name>[0-9a-f-]{36})$',
                            re.IGNORECASE)
_REVOKE_ADVICE = ("The identity that runs Ansible needs Microsoft.Authorization/roleAssignments/delete on {scope} "
                  "(Owner, User Access Administrator or Role Based Access Control Administrator), or delete the role "
                  "assignment {id} by hand.")


def check_assignment_ids(ids):
    """ValueError for an id that is not the ARM id of a role assignment (before any call)."""
    bad = [i for i in ids if not _ASSIGNMENT_ID.match(str(i or '').strip())]
    if bad:
        raise ValueError('role_assignment_ids must be ARM ids of role assignments '
                         '(<scope>/providers/Microsoft.Authorization/roleAssignments/<guid>), as granted[].assignment_id '
                         'returns them; not: ' + ', '.join(repr(b) for b in bad))


def revoke_role_assignments(module, ids):
    """Delete the role assignments of `ids` that exist, and only those (nothing in check mode). Each is read first:
    one that is gone already counts as absent, so `changed` says whether this run deleted (would delete) anything.
    Returns restore_permissions' result for state absent (with `_diff`)."""
    check_assignment_ids(ids)
    client = module.client
    revoked, absent = [], []
    params = {'api-version': AUTHORIZATION_API}
    for ra_id in dict.fromkeys(str(i).strip() for i in ids):  # once each, in order
        what = f'Could not delete the role assignment {ra_id}'
        response = client.get(ra_id, params=params)
        if response.status_code == 404:
            absent.append(ra_id)
            continue
        props = client.json_or_raise(response, f'Could not read the role assignment {ra_id}').get('properties') or {}
        item = {'assignment_id': ra_id, 'role_definition_id': props.get('roleDefinitionId'),
                'principal_id': props.get('principalId'), 'scope': props.get('scope')}
        if not module.check_mode:
            response = client.delete(ra_id, params=params)
            if response.status_code == 404:  # deleted meanwhile
                absent.append(ra_id)
                continue
            if response.status_code == 403:
                err = error_from_response(what, response)
                err.recommended_actions = [_REVOKE_ADVICE.format(scope=item['scope'] or ra_id, id=ra_id)]
                module.fail_from_error(err, changed=bool(revoked), revoked=revoked, already_absent=absent)
            client.json_or_raise(response, what)
        revoked.append(item)
    verb = 'Would delete' if module.check_mode else 'Deleted'
    listed = (': ' + ', '.join(r['assignment_id'] for r in revoked)) if revoked else ''
    msg = f'{verb} {len(revoked)} role assignment(s){listed}' + (f'; {len(absent)} already absent.' if absent else '.')
    present = sorted(r['assignment_id'] for r in revoked)
    return {'changed': bool(revoked), 'revoked': revoked, 'already_absent': absent, 'msg': msg,
            '_diff': {'before': {'role_assignments': present}, 'after': {'role_assignments': []}}}
