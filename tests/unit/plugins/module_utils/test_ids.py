# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ARM id, Key Vault secret URI and blob container URL parsing."""

from __future__ import annotations

import pytest

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _ids

SUB = '11111111-2222-3333-4444-555555555555'
VAULT = f'/subscriptions/{SUB}/resourceGroups/testBkpVaultRG/providers/Microsoft.DataProtection/backupVaults/TestBkpVault'
BI = VAULT + '/backupInstances/testpostgresql-empdb11-957d23b1'
JOB_GUID = '3e4fdc1b-2c4b-4f8b-9d2a-0c6a1e2f7a10'


@pytest.mark.parametrize('arm_id, expected', [
    (BI, {'subscription': SUB, 'resource_group': 'testBkpVaultRG', 'provider': 'Microsoft.DataProtection',
          'types': ['backupVaults', 'backupInstances'], 'names': ['TestBkpVault', 'testpostgresql-empdb11-957d23b1'],
          'name': 'testpostgresql-empdb11-957d23b1', 'type': _ids.BACKUP_INSTANCE_TYPE}),
    # lower-case segment names and a trailing slash, as some responses have them
    (f'/subscriptions/{SUB}/resourcegroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver/'
     'databases/emprestored21/', {'resource_group': 'targetrg', 'name': 'emprestored21',
                                  'type': 'Microsoft.DBforPostgreSQL/servers/databases'}),
    # subscription scope (operation status URLs)
    (f'/subscriptions/{SUB}/providers/Microsoft.DataProtection/locations/westeurope/operationStatus/abc=',
     {'resource_group': None, 'name': 'abc=', 'type': 'Microsoft.DataProtection/locations/operationStatus'}),
    (f'/subscriptions/{SUB}/resourceGroups/targetrg', {'type': 'Microsoft.Resources/resourceGroups',
                                                       'name': 'targetrg', 'resource_group': 'targetrg'}),
    (f'/subscriptions/{SUB}', {'type': 'Microsoft.Resources/subscriptions', 'resource_group': None}),
])
def test_parse_resource_id_good(arm_id, expected):
    parsed = _ids.parse_resource_id(arm_id)
    assert {k: parsed[k] for k in expected} == expected


@pytest.mark.parametrize('arm_id', [
    None, '', 'TestBkpVault', '/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.X/y/z',
    f'/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DataProtection/backupVaults',  # no name
    f'/subscriptions/{SUB}/resourceGroups/rg/Microsoft.DataProtection/backupVaults/v',  # no providers
    f'/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.DataProtection/backupVaults//backupInstances/x',
])
def test_parse_resource_id_bad(arm_id):
    with pytest.raises(ValueError, match='is not a valid ARM id: expected /subscriptions/<guid>/resourceGroups/<rg>'):
        _ids.parse_resource_id(arm_id)


def test_parse_resource_id_wrong_type_says_what_is_expected():
    with pytest.raises(ValueError) as info:
        _ids.parse_resource_id(VAULT, expected_type=_ids.BACKUP_INSTANCE_TYPE, option='backup_instance_id')
    assert str(info.value) == (
        f"backup_instance_id '{VAULT}' is not a valid ARM id: expected /subscriptions/<guid>/resourceGroups/<rg>/"
        'providers/Microsoft.DataProtection/backupVaults/<vault>/backupInstances/<name>')


def test_parse_resource_id_expected_type_is_case_insensitive():
    parsed = _ids.parse_resource_id(BI.lower(), expected_type=_ids.BACKUP_INSTANCE_TYPE)
    assert parsed['name'] == 'testpostgresql-empdb11-957d23b1'


def test_builders_round_trip():
    assert _ids.vault_id(SUB, 'testBkpVaultRG', 'TestBkpVault') == VAULT
    assert _ids.backup_instance_id(SUB, 'testBkpVaultRG', 'TestBkpVault', 'testpostgresql-empdb11-957d23b1') == BI
    assert _ids.job_id(SUB, 'testBkpVaultRG', 'TestBkpVault', JOB_GUID) == VAULT + '/backupJobs/' + JOB_GUID


def test_builders_reject_names_with_slashes():
    with pytest.raises(ValueError, match="vault_name 'a/b' is not valid"):
        _ids.vault_id(SUB, 'rg', 'a/b')


@pytest.mark.parametrize('value', [JOB_GUID, JOB_GUID.upper(), VAULT + '/backupJobs/' + JOB_GUID,
                                   VAULT.replace('backupVaults', 'Backupvaults') + '/backupJobs/' + JOB_GUID + '/'])
def test_job_guid_accepts_guid_and_arm_id(value):
    assert _ids.job_guid(value).lower() == JOB_GUID


@pytest.mark.parametrize('value', [None, '', 'job-1', VAULT + '/backupJobs/not-a-guid'])
def test_job_guid_rejects(value):
    with pytest.raises(ValueError, match='neither a job GUID nor a job ARM id: expected <guid> or /subscriptions/'):
        _ids.job_guid(value)


@pytest.mark.parametrize('uri, expected', [
    ('https://kv.vault.azure.net/secrets/pgconn', ('https://kv.vault.azure.net', 'pgconn', None)),
    ('https://kv.vault.azure.net/secrets/pgconn/0123abcd/', ('https://kv.vault.azure.net', 'pgconn', '0123abcd')),
    ('HTTPS://127.0.0.1:8443/keyvaults/kv/secrets/pg-conn', ('https://127.0.0.1:8443/keyvaults/kv', 'pg-conn', None)),
])
def test_parse_secret_uri_good(uri, expected):
    assert _ids.parse_secret_uri(uri) == expected


@pytest.mark.parametrize('uri, message', [
    ('http://kv.vault.azure.net/secrets/x', 'is not an https URL'),
    ('kv.vault.azure.net/secrets/x', 'is not an https URL'),
    ('https://kv.vault.azure.net/keys/x', 'is not a Key Vault secret URI'),
    ('https://kv.vault.azure.net/secrets/', 'is not a Key Vault secret URI'),
    ('https://kv.vault.azure.net/secrets/a_b', 'is not a Key Vault secret URI'),
    ('https://kv.vault.azure.net/secrets/a/v/extra', 'is not a Key Vault secret URI'),
])
def test_parse_secret_uri_bad(uri, message):
    with pytest.raises(ValueError, match=message) as info:
        _ids.parse_secret_uri(uri)
    assert 'https://<vault>.vault.azure.net/secrets/<name>' in str(info.value)


@pytest.mark.parametrize('url, expected', [
    ('https://acct.blob.core.windows.net/restores', ('https://acct.blob.core.windows.net', 'restores')),
    ('https://acct.blob.core.windows.net/restores/', ('https://acct.blob.core.windows.net', 'restores')),
    ('https://127.0.0.1:8443/blob/acct/pg-files', ('https://127.0.0.1:8443/blob/acct', 'pg-files')),
])
def test_parse_container_url_good(url, expected):
    assert _ids.parse_container_url(url) == expected


@pytest.mark.parametrize('url', ['http://acct.blob.core.windows.net/c1c', 'https://acct.blob.core.windows.net/',
                                 'https://acct.blob.core.windows.net/Upper', 'https://acct.blob.core.windows.net/a--b',
                                 'https://acct.blob.core.windows.net/ab'])
def test_parse_container_url_bad(url):
    with pytest.raises(ValueError, match='target_container_url'):
        _ids.parse_container_url(url)
