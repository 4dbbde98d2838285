# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""restore_permissions against a small stateful fake ARM: plan, grant, idempotence, check mode, diff, warnings."""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _auth
from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _permissions as perm
from ansible_collections.azure_backup.dataprotection.plugins.modules import restore_permissions as rp

from ansible_collections.azure_backup.dataprotection.tests.unit.conftest import (
    ARM, SENTINEL_TOKEN, SUBSCRIPTION, TEST_CLOUD, FakeCredential, run_main,
)

SUB = f'/subscriptions/{SUBSCRIPTION}'
VAULT_ID = f'{SUB}/resourceGroups/testBkpVaultRG/providers/Microsoft.DataProtection/backupVaults/TestBkpVault'
PRINCIPAL = 'c5e3d1a9-7b2f-4e8d-a6c4-0f1e2d3c4b10'
UAMI_ID = f'{SUB}/resourceGroups/idrg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/restore-id'
UAMI_PRINCIPAL = 'aaaaaaaa-1111-2222-3333-444444444444'
TARGET_RG = f'{SUB}/resourceGroups/targetrg'
SERVER_ID = f'{TARGET_RG}/providers/Microsoft.DBforPostgreSQL/servers/targetossserver'
FLEX_ID = f'{TARGET_RG}/providers/Microsoft.DBforPostgreSQL/flexibleServers/flex1'
KV_ID = f'{TARGET_RG}/providers/Microsoft.KeyVault/vaults/targetosskv'
KV_URI = 'https://targetosskv.vault.example.test/'
SECRET_URI = 'https://targetosskv.vault.example.test/secrets/restore-conn'
SA_ID = f'{TARGET_RG}/providers/Microsoft.Storage/storageAccounts/targetossstorage'
CONTAINER_URL = 'https://targetossstorage.blob.core.example.test/restored-files'
READER = perm.READER[1]
KVSU = perm.KV_SECRETS_USER[1]
BLOB = perm.BLOB_CONTRIBUTOR[1]
OWNER = '8e3af657-a8ff-443c-a75c-2fe8c4bcb635'
TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47'


def role_def(guid, scope=SUB):
    sub = re.match(r'^/subscriptions/[^/]+', scope).group(0)
    return f'{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}'


class FakeArm:
    """Enough of ARM for the module: vault, server + firewall rules, key vaults, storage, role assignments."""

    def __init__(self, rsps, rbac=True):
        self.rsps = rsps
        self.assignments = []
        self.writes = []
        self.vault_identity = {'type': 'SystemAssigned', 'principalId': PRINCIPAL, 'tenantId': TENANT}
        self.firewall = [{'name': 'AllowAllWindowsAzureIps',
                          'properties': {'startIpAddress': '0.0.0.0', 'endIpAddress': '0.0.0.0'}}]
        self.server_props = {'version': '11', 'publicNetworkAccess': 'Enabled'}
        self.kv_props = {'vaultUri': KV_URI, 'tenantId': TENANT, 'enableRbacAuthorization': rbac, 'accessPolicies': [],
                         'networkAcls': {'bypass': 'AzureServices', 'defaultAction': 'Allow'}}
        self.sa_props = {'primaryEndpoints': {'blob': 'https://targetossstorage.blob.core.example.test/'},
                         'networkAcls': {'bypass': 'AzureServices', 'defaultAction': 'Allow'}}
        self.put_status = {}  # kind -> (status, body) to force errors
        self.secrets = {'restore-conn': True}  # name -> enabled
        self.containers = {'restored-files'}
        self.forbidden = set()  # paths that answer 403
        self.principal_not_found = 0
        rsps.add_callback('GET', re.compile(re.escape(ARM) + r'/.*'), callback=self.get)
        rsps.add_callback('PUT', re.compile(re.escape(ARM) + r'/.*'), callback=self.put)
        rsps.add_callback('DELETE', re.compile(re.escape(ARM) + r'/.*'), callback=self.delete)
        self.deletes = []
        self.forbidden_deletes = set()  # paths whose DELETE answers 403 (the read is allowed)

    def assign(self, guid, scope, principal=PRINCIPAL, name=None):
        name = name or f'ra{len(self.assignments)}'
        self.assignments.append({
            'id': f'{scope}/providers/Microsoft.Authorization/roleAssignments/{name}', 'name': name,
            'properties': {'roleDefinitionId': role_def(guid, scope), 'principalId': principal, 'scope': scope,
                           'principalType': 'ServicePrincipal'}})

    @staticmethod
    def _reply(status, body):
        return status, {'Content-Type': 'application/json', 'x-ms-request-id': 'req-1'}, json.dumps(body)

    def get(self, request):
        parts = urlsplit(request.url)
        path, query = parts.path, parse_qs(parts.query)

        def ok(body):
            return self._reply(200, body)

        if path in self.forbidden:
            return self._reply(403, {'error': {'code': 'AuthorizationFailed', 'message': 'no read'}})
        if path.startswith(KV_ID + '/secrets/') and path.rsplit('/', 1)[1] in self.secrets:
            return ok({'properties': {'attributes': {'enabled': self.secrets[path.rsplit('/', 1)[1]]}}})
        if path.startswith(SA_ID + '/blobServices/default/containers/') and path.rsplit('/', 1)[1] in self.containers:
            return ok({'name': path.rsplit('/', 1)[1]})
        if path == VAULT_ID:
            return ok({'id': VAULT_ID, 'name': 'TestBkpVault', 'identity': self.vault_identity})
        if path.endswith('/providers/Microsoft.Authorization/roleAssignments'):
            assert query.get('$filter') == ['atScope()'] and query['api-version'] == ['2022-04-01']
            scope = path[:-len('/providers/Microsoft.Authorization/roleAssignments')]
            at_or_above = [a for a in self.assignments if perm.scope_covers(a['properties']['scope'], scope)]
            return ok({'value': at_or_above})
        if path == SERVER_ID:
            return ok({'id': SERVER_ID, 'name': 'targetossserver', 'properties': self.server_props})
        if path == SERVER_ID + '/firewallRules':
            return ok({'value': self.firewall})
        if path == f'{SUB}/providers/Microsoft.KeyVault/vaults':
            other = {'id': f'{TARGET_RG}/providers/Microsoft.KeyVault/vaults/other', 'name': 'other',
                     'properties': {'vaultUri': 'https://other.vault.example.test/'}}
            return ok({'value': [other], 'nextLink': ARM + f'{SUB}/providers/Microsoft.KeyVault/vaults?page=2'
                       '&api-version=2023-07-01'} if 'page' not in query else
                      {'value': [{'id': KV_ID, 'name': 'targetosskv', 'properties': {'vaultUri': KV_URI}}]})
        if path == KV_ID:
            return ok({'id': KV_ID, 'name': 'targetosskv', 'properties': self.kv_props})
        if path == f'{SUB}/providers/Microsoft.Storage/storageAccounts':
            return ok({'value': [{'id': SA_ID, 'name': 'targetossstorage', 'properties': self.sa_props}]})
        if path == SA_ID:
            return ok({'id': SA_ID, 'name': 'targetossstorage', 'properties': self.sa_props})
        found = self._assignment(path)
        if found:
            return ok(found)
        return self._reply(404, {'error': {'code': 'ResourceNotFound', 'message': f'{path} not found'}})

    def _assignment(self, path):
        return next((a for a in self.assignments if a['id'].lower() == path.lower()), None)

    def delete(self, request):
        path = urlsplit(request.url).path
        self.deletes.append(path)
        found = self._assignment(path)
        if path in self.forbidden_deletes:
            return self._reply(403, {'error': {'code': 'AuthorizationFailed', 'message': 'no delete'}})
        if not found:
            return 204, {}, ''
        self.assignments.remove(found)
        return self._reply(200, found)

    def put(self, request):
        path = urlsplit(request.url).path
        body = json.loads(request.body)
        self.writes.append((path, body))
        match = re.match(r'^(.*)/providers/Microsoft\.Authorization/roleAssignments/([0-9a-f-]{36})$', path)
        if match:
            if 'role' in self.put_status:
                return self._reply(*self.put_status['role'])
            if self.principal_not_found:
                self.principal_not_found -= 1
                return self._reply(400, {'error': {'code': 'PrincipalNotFound', 'message': 'Principal does not exist'}})
            props = body['properties']
            scope, name = match.groups()
            for existing in self.assignments:
                e = existing['properties']
                if (e['scope'].lower(), e['principalId'], e['roleDefinitionId'].lower()) == \
                        (scope.lower(), props['principalId'], props['roleDefinitionId'].lower()):
                    return self._reply(409, {'error': {'code': 'RoleAssignmentExists',
                                                       'message': 'The role assignment already exists.'}})
            self.assign(props['roleDefinitionId'].rsplit('/', 1)[-1], scope, props['principalId'], name)
            return self._reply(201, self.assignments[-1])
        if path == KV_ID + '/accessPolicies/add':
            if 'policy' in self.put_status:
                return self._reply(*self.put_status['policy'])
            self.kv_props['accessPolicies'].extend(body['properties']['accessPolicies'])
            return self._reply(200, {'id': path, 'properties': body['properties']})
        return self._reply(404, {'error': {'code': 'NotFound', 'message': path}})


@pytest.fixture(autouse=True)
def fake_azure(monkeypatch, exit_fail):  # pylint: disable=unused-argument
    credential = FakeCredential()
    monkeypatch.setattr(_auth, 'get_cloud', lambda *a, **k: TEST_CLOUD)
    monkeypatch.setattr(_auth, 'build_credential', lambda *a, **k: credential)
    monkeypatch.setattr(perm.RestorePermissions, 'sleep', staticmethod(lambda s: None))
    for variables in _auth.ENV_VARS.values():
        for name in variables:
            monkeypatch.delenv(name, raising=False)
    return credential


@pytest.fixture
def mock():
    """A `responses` mock that does not insist on every callback being used (read-only runs never PUT)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as requests_mock:
        yield requests_mock


@pytest.fixture
def arm(mock):
    return FakeArm(mock)


@pytest.fixture
def warnings(monkeypatch):
    """The module's warnings (exit_json is faked, so they are not added to the result)."""
    seen = []
    monkeypatch.setattr(rp.DataProtectionModule, 'warn', lambda _module, text: seen.append(text))
    return seen


def run(args, check_mode=False, diff=False):
    args = dict({'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG', 'subscription_id': SUBSCRIPTION},
                **args)
    result, failed = run_main(rp.main, args, check_mode=check_mode, diff=diff)
    assert SENTINEL_TOKEN not in json.dumps(result, default=str)
    return result, failed


DB = {'target_server_id': SERVER_ID + '/databases/emprestored21', 'secret_uri': SECRET_URI}
FILES = {'target_container_url': CONTAINER_URL}


def roles(items):
    return sorted((i['role'], i['scope']) for i in items)


# ---------------------------------------------------------------- pure helpers

@pytest.mark.parametrize('scope, resource, covers', [
    (SUB, SERVER_ID, True),
    (TARGET_RG, SERVER_ID, True),
    (SERVER_ID.upper(), SERVER_ID, True),
    (SERVER_ID, SERVER_ID + '/', True),
    (f'{SUB}/resourceGroups/target', SERVER_ID, False),  # a prefix that is not a path ancestor
    (SERVER_ID + '/databases/x', SERVER_ID, False),       # below does not count
    ('/', SERVER_ID, True),
])
def test_scope_covers(scope, resource, covers):
    assert perm.scope_covers(scope, resource) is covers


@pytest.mark.parametrize('scope, expected', [('resource', SERVER_ID), ('resource_group', TARGET_RG),
                                             ('subscription', SUB)])
def test_widen(scope, expected):
    assert perm.widen(SERVER_ID, scope) == expected


def test_cut_to_server_and_account():
    assert perm.cut_to(SERVER_ID + '/databases/db1', 'microsoft.dbforpostgresql/servers', 'x') == SERVER_ID
    assert perm.cut_to(SA_ID + '/blobServices/default/containers/c', 'microsoft.storage/storageAccounts', 'x') == SA_ID


@pytest.mark.parametrize('acls, public, blocked', [
    ({'defaultAction': 'Deny', 'bypass': 'None'}, 'Enabled', True),
    ({'defaultAction': 'Deny', 'bypass': 'Logging, AzureServices'}, 'Enabled', False),
    ({'defaultAction': 'Allow', 'bypass': 'None'}, 'Enabled', False),
    (None, 'Disabled', True),
])
def test_network_acl_warnings(acls, public, blocked):
    resource = {'name': 'x', 'properties': {'networkAcls': acls, 'publicNetworkAccess': public}}
    assert bool(perm.key_vault_warnings(resource)) is blocked
    assert bool(perm.storage_warnings(resource)) is blocked


def test_policy_permissions_match_the_principal_only():
    kv = {'properties': {'accessPolicies': [
        {'objectId': PRINCIPAL.upper(), 'permissions': {'secrets': ['Get']}},
        {'objectId': PRINCIPAL, 'permissions': {'secrets': ['List']}},
        {'objectId': PRINCIPAL, 'applicationId': 'app', 'permissions': {'secrets': ['all']}},
        {'objectId': 'someone-else', 'permissions': {'secrets': ['all']}}]}}
    assert perm.policy_covers(perm.policy_permissions(kv, PRINCIPAL))
    assert not perm.policy_covers(perm.policy_permissions({'properties': {'accessPolicies': [
        {'objectId': PRINCIPAL, 'permissions': {'secrets': ['get']}}]}}, PRINCIPAL))


# ---------------------------------------------------------------- database restore, RBAC key vault

def test_database_restore_grants_reader_and_secrets_user_then_is_idempotent(arm):
    result, failed = run(DB, diff=True)
    assert not failed and result['changed'] and result['principal_id'] == PRINCIPAL
    assert roles(result['granted']) == [('Key Vault Secrets User', KV_ID), ('Reader', SERVER_ID)]
    assert all(g['kind'] == 'role_assignment' and g['principal_id'] == PRINCIPAL and g['assignment_id']
               for g in result['granted'])
    assert roles(result['required']) == roles(result['granted']) and result['already_present'] == []
    assert result['targets'] == {'server_id': SERVER_ID, 'key_vault_id': KV_ID, 'key_vault_rbac': True}
    assert result['diff']['before'] == {'permissions': []}
    assert len(result['diff']['after']['permissions']) == 2
    assert result['network_warnings'] == []
    reader_put = next(body for path, body in arm.writes if SERVER_ID in path)
    assert reader_put == {'properties': {'roleDefinitionId': role_def(READER), 'principalId': PRINCIPAL,
                                         'principalType': 'ServicePrincipal'}}

    arm.writes.clear()
    again, failed = run(DB, diff=True)
    assert not failed and not again['changed'] and again['granted'] == [] and arm.writes == []
    assert roles(again['already_present']) == roles(result['granted'])
    assert again['diff']['before'] == again['diff']['after']


def test_check_mode_reports_and_writes_nothing(arm):
    result, failed = run(DB, check_mode=True, diff=True)
    assert not failed and result['changed'] and len(result['granted']) == 2 and arm.writes == []
    assert all(g['assignment_id'] is None for g in result['granted'])
    assert 'Would grant' in result['msg']
    assert arm.rsps.calls and all(c.request.method == 'GET' for c in arm.rsps.calls)


def test_inherited_assignments_count(arm):
    arm.assign(READER, SUB)          # Reader on the whole subscription
    arm.assign(KVSU, TARGET_RG)      # Secrets User on the key vault's resource group
    result, failed = run(DB)
    assert not failed and not result['changed'] and arm.writes == []
    assert roles(result['already_present']) == [('Key Vault Secrets User', TARGET_RG), ('Reader', SUB)]


def test_owner_does_not_count_for_data_plane_roles(arm):
    arm.assign(OWNER, SUB)
    result, failed = run(DB)
    assert not failed and roles(result['granted']) == [('Key Vault Secrets User', KV_ID), ('Reader', SERVER_ID)]


def test_other_principals_and_narrower_scopes_do_not_count(arm):
    arm.assign(READER, SERVER_ID, principal='someone-else')
    arm.assign(KVSU, KV_ID + '/secrets/restore-conn')  # below the key vault
    result, failed = run(DB)
    assert not failed and len(result['granted']) == 2


@pytest.mark.parametrize('scope, expected', [('resource_group', TARGET_RG), ('subscription', SUB)])
def test_scope_option_widens_new_assignments(arm, scope, expected):
    result, failed = run(dict(DB, scope=scope))
    assert not failed and {g['scope'] for g in result['granted']} == {expected}
    assert all(path.startswith(expected + '/providers/Microsoft.Authorization/roleAssignments/')
               for path, _body in arm.writes)
    # the second run finds them at the wider scope
    again, _failed = run(dict(DB, scope=scope))
    assert not again['changed']


def test_role_assignment_exists_conflict_counts_as_present(arm):
    arm.put_status['role'] = (409, {'error': {'code': 'RoleAssignmentExists', 'message': 'exists'}})
    result, failed = run(DB)
    assert not failed and not result['changed'] and result['granted'] == []
    assert len(result['already_present']) == 2


def test_principal_not_found_is_retried(arm, warnings):
    arm.principal_not_found = 2
    result, failed = run(DB)
    assert not failed and len(result['granted']) == 2
    assert sum(1 for w in warnings if 'PrincipalNotFound' in w) == 2


def test_forbidden_role_assignment_says_what_is_needed(arm):
    arm.put_status['role'] = (403, {'error': {'code': 'AuthorizationFailed', 'message': 'does not have authorization'}})
    result, failed = run(DB)
    assert failed and 'AuthorizationFailed' in result['msg'] and 'User Access Administrator' in result['msg']
    assert result['changed'] is False and result['granted'] == []


def test_key_vault_id_skips_the_listing(arm):
    result, failed = run({'target_server_id': SERVER_ID, 'key_vault_id': KV_ID})
    assert not failed and result['targets']['key_vault_id'] == KV_ID
    assert not any('Microsoft.KeyVault/vaults?' in c.request.url for c in arm.rsps.calls)


def test_unknown_key_vault_is_explained(arm):
    result, failed = run({'target_server_id': SERVER_ID,
                          'secret_uri': 'https://missing.vault.example.test/secrets/x'})
    assert failed and result['error']['code'] == 'KeyVaultNotFound' and 'key_vault_id' in result['msg']


def test_flexible_server_target_is_refused(arm):  # pylint: disable=unused-argument
    result, failed = run({'target_server_id': FLEX_ID, 'secret_uri': SECRET_URI})
    assert failed and 'files' in result['msg']


def test_server_without_key_vault_is_refused():
    result, failed = run({'target_server_id': SERVER_ID})
    assert failed and 'secret_uri' in result['msg']


# ---------------------------------------------------------------- access-policy key vault

def test_access_policy_model_adds_get_list_then_is_idempotent(mock):
    arm = FakeArm(mock, rbac=False)
    result, failed = run(DB, diff=True)
    assert not failed and result['changed']
    policy = next(g for g in result['granted'] if g['kind'] == 'access_policy')
    assert policy['scope'] == KV_ID and policy['permissions'] == ['get', 'list'] and policy['role_definition_id'] is None
    assert 'tenant_id' not in policy
    body = next(b for p, b in arm.writes if p.endswith('/accessPolicies/add'))
    assert body == {'properties': {'accessPolicies': [{'tenantId': TENANT, 'objectId': PRINCIPAL,
                                                       'permissions': {'secrets': ['get', 'list']}}]}}
    assert result['targets']['key_vault_rbac'] is False
    assert not any(g['role'] == 'Key Vault Secrets User' for g in result['required'])
    again, _failed = run(DB)
    assert not again['changed'] and any(p['kind'] == 'access_policy' for p in again['already_present'])


def test_partial_access_policy_is_completed(mock):
    arm = FakeArm(mock, rbac=False)
    arm.kv_props['accessPolicies'] = [{'tenantId': TENANT, 'objectId': PRINCIPAL, 'permissions': {'secrets': ['get']}}]
    arm.assign(READER, SERVER_ID)
    result, failed = run(DB)
    assert not failed and [g['kind'] for g in result['granted']] == ['access_policy']


# ---------------------------------------------------------------- network warnings (read, never changed)

def test_firewall_and_key_vault_network_warnings(arm, warnings):
    arm.firewall = [{'name': 'office', 'properties': {'startIpAddress': '10.0.0.1', 'endIpAddress': '10.0.0.9'}}]
    arm.kv_props['networkAcls'] = {'bypass': 'None', 'defaultAction': 'Deny'}
    result, failed = run(DB)
    assert not failed and len(result['network_warnings']) == 2
    assert any('AllowAllWindowsAzureIps' in w for w in result['network_warnings'])
    assert any('AzureServices' in w for w in result['network_warnings'])
    assert all(w in warnings for w in result['network_warnings'])
    assert not any('firewallRules' in p or 'networkAcls' in json.dumps(b) for p, b in arm.writes)


def test_server_public_access_disabled_warns(arm):
    arm.server_props['publicNetworkAccess'] = 'Disabled'
    result, _failed = run(DB, check_mode=True)
    assert any('public network access' in w for w in result['network_warnings'])


# ---------------------------------------------------------------- files restore

def test_files_restore_finds_the_account_from_the_container_url(arm):
    result, failed = run(FILES, diff=True)
    assert not failed and roles(result['granted']) == [('Storage Blob Data Contributor', SA_ID)]
    assert result['targets'] == {'storage_account_id': SA_ID}
    again, _failed = run(FILES)
    assert not again['changed']


def test_files_restore_with_account_id_and_storage_warning(arm):
    arm.sa_props['networkAcls'] = {'bypass': 'Logging', 'defaultAction': 'Deny'}
    arm.assign(BLOB, TARGET_RG)
    result, failed = run({'target_storage_account_id': SA_ID + '/blobServices/default/containers/restored-files'})
    assert not failed and not result['changed'] and len(result['network_warnings']) == 1


def test_user_assigned_identity(arm):
    arm.vault_identity = {'type': 'SystemAssigned,UserAssigned', 'principalId': PRINCIPAL,
                          'userAssignedIdentities': {UAMI_ID.lower(): {'principalId': UAMI_PRINCIPAL, 'clientId': 'c'}}}
    result, failed = run(dict(FILES, user_assigned_identity_id=UAMI_ID))
    assert not failed and result['principal_id'] == UAMI_PRINCIPAL
    assert result['granted'][0]['principal_id'] == UAMI_PRINCIPAL


def test_user_assigned_identity_not_attached(arm):
    result, failed = run(dict(FILES, user_assigned_identity_id=UAMI_ID))
    assert failed and result['error']['code'] == 'UserAssignedIdentityNotAttached'


def test_vault_without_identity(arm):
    arm.vault_identity = {'type': 'None'}
    result, failed = run(FILES)
    assert failed and result['error']['code'] == 'VaultMSIUnauthorized'


def test_unknown_container_url(arm):  # pylint: disable=unused-argument
    result, failed = run({'target_container_url': 'https://nope.blob.core.example.test/files1'})
    assert failed and result['error']['code'] == 'StorageAccountNotFound'


# A missing secret or container fails before any grant (issue 15, items 2 and 4); a target the runner may not read
# is only warned about.
@pytest.mark.parametrize('params, breakage, code', [
    ('db', lambda arm: arm.secrets.clear(), 'SecretNotFound'),
    ('db', lambda arm: arm.secrets.update({'restore-conn': False}), 'SecretDisabled'),
    ('files', lambda arm: arm.containers.clear(), 'ContainerNotFound'),
    ('files_with_account', lambda arm: arm.containers.clear(), 'ContainerNotFound'),
    ('db', lambda arm: arm.forbidden.add(KV_ID + '/secrets/restore-conn'), None),
    ('files', lambda arm: arm.forbidden.add(SA_ID + '/blobServices/default/containers/restored-files'), None),
    ('db_versioned', lambda arm: arm.secrets.update({'restore-conn': False}), None),  # that version may be enabled
])
def test_missing_secret_or_container_fails_before_any_grant(arm, warnings, params, breakage, code):
    given = {'db': DB, 'db_versioned': dict(DB, secret_uri=SECRET_URI + '/0123abcd'), 'files': FILES,
             'files_with_account': dict(FILES, target_storage_account_id=SA_ID)}[params]
    breakage(arm)
    result, failed = run(given)
    if code is None:
        assert not failed and result['changed'] and arm.writes
        assert any('Could not check that' in w for w in warnings) == (params != 'db_versioned')
        return
    assert failed and result['error']['code'] == code and not result['changed'] and arm.writes == []
    assert ('does not exist' in result['msg']) == code.endswith('NotFound')


def test_check_mode_only_warns_of_a_missing_secret_or_container(arm, warnings):
    """An earlier task of the play (skipped by check mode) may create them: check mode warns, a real run fails."""
    arm.secrets.clear()
    arm.containers.clear()
    for params in (DB, FILES):
        result, failed = run(params, check_mode=True)
        assert not failed and result['changed'] and arm.writes == []
    assert sum('does not exist' in w and 'Check mode' in w for w in warnings) == 2, warnings


def test_database_and_files_are_exclusive():
    result, failed = run(dict(DB, **FILES))
    assert failed and 'mutually exclusive' in result['msg']


# ---------------------------------------------------------------- state absent: delete by id (a drill's own grants)

def revoke(ids, check_mode=False, diff=False):
    result, failed = run_main(rp.main, {'state': 'absent', 'role_assignment_ids': ids,
                                        'subscription_id': SUBSCRIPTION}, check_mode=check_mode, diff=diff)
    assert SENTINEL_TOKEN not in json.dumps(result, default=str)
    return result, failed


def test_absent_deletes_exactly_the_given_assignments_and_keeps_the_others(arm):
    arm.assign(READER, SERVER_ID, name='0b7c7a2e-0000-4000-8000-000000000001')  # there before: kept
    granted, _failed = run(DB)
    granted_too, _failed = run(FILES)
    ids = [g['assignment_id'] for g in granted['granted'] + granted_too['granted']]
    assert len(ids) == 2 and len(arm.assignments) == 3  # Key Vault Secrets User and Blob Data Contributor

    checked, failed = revoke(ids, check_mode=True, diff=True)
    assert not failed and checked['changed'] and 'Would delete 2' in checked['msg']
    assert arm.deletes == [] and len(arm.assignments) == 3
    assert sorted(checked['diff']['before']['role_assignments']) == sorted(ids)

    result, failed = revoke(ids + [ids[0]])  # a repeated id is deleted once
    assert not failed and result['changed'] and sorted(r['assignment_id'] for r in result['revoked']) == sorted(ids)
    assert [r['principal_id'] for r in result['revoked']] == [PRINCIPAL, PRINCIPAL]
    assert [a['name'] for a in arm.assignments] == ['0b7c7a2e-0000-4000-8000-000000000001']
    assert sorted(arm.deletes) == sorted(ids)

    again, failed = revoke(ids)  # gone: nothing to do, nothing deleted
    assert not failed and not again['changed'] and again['revoked'] == [] and sorted(again['already_absent']) == sorted(ids)
    assert len(arm.deletes) == 2


def test_absent_with_no_ids_changes_nothing(arm):
    result, failed = revoke([])
    assert not failed and not result['changed'] and result['revoked'] == [] and arm.deletes == []


def test_absent_refuses_what_is_not_a_role_assignment_id(arm):
    result, failed = revoke([SERVER_ID])
    assert failed and 'role_assignment_ids must be ARM ids of role assignments' in result['msg'] and arm.deletes == []


def test_absent_forbidden_says_what_is_needed(arm):
    granted, _failed = run(FILES)
    ra_id = granted['granted'][0]['assignment_id']
    arm.forbidden_deletes.add(ra_id)
    result, failed = revoke([ra_id])
    assert failed and result['error']['code'] == 'AuthorizationFailed'
    assert 'roleAssignments/delete' in ' '.join(result['error']['recommended_actions'])


def test_absent_needs_ids_and_present_refuses_them():
    result, failed = run_main(rp.main, {'state': 'absent', 'subscription_id': SUBSCRIPTION})
    assert failed and 'role_assignment_ids' in result['msg']
    result, failed = run(dict(FILES, role_assignment_ids=['x']))
    assert failed and 'mutually exclusive' in result['msg']
