# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The restore request bodies, spelled out field by field from the 2024-04-01 spec (reference §2)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _restore_request as rr

SUB = '11111111-2222-3333-4444-555555555555'
SOURCE_DB = (f'/subscriptions/{SUB}/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/servers/'
             'testpostgresql/databases/empdb11')
SOURCE_FLEX = f'/subscriptions/{SUB}/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/flexibleServers/pgflex01'
TARGET_SERVER = f'/subscriptions/{SUB}/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/targetossserver'
SECRET_URI = 'https://vikottur-test.vault.azure.net/secrets/dbauth3'
CONTAINER_URL = 'https://testossstorageaccount.blob.core.windows.net/testcontainerrestore'
CONTAINER_ID = (f'/subscriptions/{SUB}/resourceGroups/storagerg/providers/Microsoft.Storage/storageAccounts/'
                'testossstorageaccount/blobServices/default/containers/testcontainerrestore')
UAMI = f'/subscriptions/{SUB}/resourceGroups/idrg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/backup-uami'
RP = 'eb006fde78cb47198be5a320fbe45e9b'
DB_TYPE = 'Microsoft.DBforPostgreSQL/servers/databases'
FLEX_TYPE = 'Microsoft.DBforPostgreSQL/flexibleServers'

DATABASE_TARGET = rr.DatabaseTarget(TARGET_SERVER, 'emprestored21', SECRET_URI)
FILES_TARGET = rr.FilesTarget(CONTAINER_URL, 'empdb11_postgresql-westus_1628853549768')

EXPECTED_DB_TARGET_INFO = {
    'objectType': 'RestoreTargetInfo',
    'recoveryOption': 'FailIfExists',
    'restoreLocation': 'westus',
    'datasourceInfo': {
        'objectType': 'Datasource',
        'resourceID': TARGET_SERVER + '/databases/emprestored21',
        'resourceName': 'emprestored21',
        'resourceType': 'Microsoft.DBforPostgreSQL/servers/databases',
        'datasourceType': 'Microsoft.DBforPostgreSQL/servers/databases',
        'resourceUri': '',
        'resourceLocation': 'westus',
    },
    'datasourceSetInfo': {
        'objectType': 'DatasourceSet',
        'resourceID': TARGET_SERVER,
        'resourceName': 'targetossserver',
        'resourceType': 'Microsoft.DBforPostgreSQL/servers',
        'datasourceType': 'Microsoft.DBforPostgreSQL/servers/databases',
        'resourceUri': '',
        'resourceLocation': 'westus',
    },
    'datasourceAuthCredentials': {
        'objectType': 'SecretStoreBasedAuthCredentials',
        'secretStoreResource': {'secretStoreType': 'AzureKeyVault', 'uri': SECRET_URI},
    },
}


def test_single_server_database_body_is_exactly_the_spec():
    body = rr.build_restore_request(SOURCE_DB, DB_TYPE, RP, 'VaultStore', DATABASE_TARGET, 'westus')
    assert body == {
        'objectType': 'AzureBackupRecoveryPointBasedRestoreRequest',
        'recoveryPointId': RP,
        'sourceDataStoreType': 'VaultStore',
        'sourceResourceId': SOURCE_DB,
        'restoreTargetInfo': EXPECTED_DB_TARGET_INFO,
    }


def test_single_server_files_body():
    body = rr.build_restore_request(SOURCE_DB, DB_TYPE, RP, 'VaultStore', FILES_TARGET, 'westus')
    assert body == {
        'objectType': 'AzureBackupRecoveryPointBasedRestoreRequest',
        'recoveryPointId': RP,
        'sourceDataStoreType': 'VaultStore',
        'sourceResourceId': SOURCE_DB,
        'restoreTargetInfo': {
            'objectType': 'RestoreFilesTargetInfo',
            'recoveryOption': 'FailIfExists',
            'restoreLocation': 'westus',
            'targetDetails': {
                'url': CONTAINER_URL,
                'filePrefix': 'empdb11_postgresql-westus_1628853549768',
                'restoreTargetLocationType': 'AzureBlobs',
            },
        },
    }


def test_flexible_files_body_with_target_container_id_and_trailing_slash():
    target = rr.FilesTarget(CONTAINER_URL + '/', 'pgflex01-drill', CONTAINER_ID)
    body = rr.build_restore_request(SOURCE_FLEX, FLEX_TYPE, RP, 'VaultStore', target, 'westeurope')
    assert body == {
        'objectType': 'AzureBackupRecoveryPointBasedRestoreRequest',
        'recoveryPointId': RP,
        'sourceDataStoreType': 'VaultStore',
        'sourceResourceId': SOURCE_FLEX,
        'restoreTargetInfo': {
            'objectType': 'RestoreFilesTargetInfo',
            'recoveryOption': 'FailIfExists',
            'restoreLocation': 'westeurope',
            'targetDetails': {
                'url': CONTAINER_URL,
                'filePrefix': 'pgflex01-drill',
                'restoreTargetLocationType': 'AzureBlobs',
                'targetResourceArmId': CONTAINER_ID,
            },
        },
    }


@pytest.mark.parametrize('priority,days,duration', [('Standard', 15, 'P15D'), ('High', 10, 'P10D'), ('Standard', 30, 'P30D')])
def test_archive_gives_a_rehydration_request(priority, days, duration):
    body = rr.build_restore_request(SOURCE_DB, DB_TYPE, RP, 'ArchiveStore', DATABASE_TARGET, 'westus',
                                    rehydration=rr.Rehydration(priority, days))
    assert body == {
        'objectType': 'AzureBackupRestoreWithRehydrationRequest',
        'recoveryPointId': RP,
        'sourceDataStoreType': 'ArchiveStore',
        'sourceResourceId': SOURCE_DB,
        'restoreTargetInfo': EXPECTED_DB_TARGET_INFO,
        'rehydrationPriority': priority,
        'rehydrationRetentionDuration': duration,
    }
    # None of the article's snake_case or wrongly cased names (reference §8).
    text = json.dumps(body)
    for wrong in ('rehydration_priority', 'rehydration_retention_duration', 'dataSourceInfo', 'dataSourceSetInfo',
                  '"restoreTargetInfo"', 'resourceId"', 'ValidateRestoreRequestObject'):
        if wrong == '"restoreTargetInfo"':
            assert '"objectType": "restoreTargetInfo"' not in text
        else:
            assert wrong not in text


def test_archive_without_rehydration_uses_standard_15_days():
    body = rr.build_restore_request(SOURCE_FLEX, FLEX_TYPE, RP, 'ArchiveStore', FILES_TARGET, 'westus')
    assert body['objectType'] == 'AzureBackupRestoreWithRehydrationRequest'
    assert body['rehydrationPriority'] == 'Standard'
    assert body['rehydrationRetentionDuration'] == 'P15D'


def test_vault_store_ignores_rehydration():
    body = rr.build_restore_request(SOURCE_DB, DB_TYPE, RP, 'VaultStore', DATABASE_TARGET, 'westus',
                                    rehydration=rr.Rehydration('High', 20))
    assert 'rehydrationPriority' not in body and 'rehydrationRetentionDuration' not in body
    assert body['objectType'] == 'AzureBackupRecoveryPointBasedRestoreRequest'


def test_user_assigned_identity_adds_identity_details_only_when_given():
    body = rr.build_restore_request(SOURCE_DB, DB_TYPE, RP, 'VaultStore', DATABASE_TARGET, 'westus', identity=UAMI)
    assert body['identityDetails'] == {'useSystemAssignedIdentity': False, 'userAssignedIdentityArmUrl': UAMI}
    plain = rr.build_restore_request(SOURCE_DB, DB_TYPE, RP, 'VaultStore', DATABASE_TARGET, 'westus')
    assert 'identityDetails' not in plain


def test_identity_must_be_a_user_assigned_identity_id():
    with pytest.raises(ValueError, match='user_assigned_identity_id'):
        rr.build_restore_request(SOURCE_DB, DB_TYPE, RP, 'VaultStore', DATABASE_TARGET, 'westus', identity=TARGET_SERVER)


def test_validate_body_wraps_only():
    body = rr.build_restore_request(SOURCE_DB, DB_TYPE, RP, 'VaultStore', DATABASE_TARGET, 'westus')
    wrapped = rr.validate_body(body)
    assert wrapped == {'restoreRequestObject': body}
    assert list(wrapped) == ['restoreRequestObject']  # no objectType, no top-level recoveryPointId


def test_no_secret_value_is_ever_sent():
    body = rr.build_restore_request(SOURCE_DB, DB_TYPE, RP, 'VaultStore', DATABASE_TARGET, 'westus')
    store = body['restoreTargetInfo']['datasourceAuthCredentials']['secretStoreResource']
    assert 'value' not in store
    assert set(store) == {'secretStoreType', 'uri'}


def test_recovery_point_arm_id_is_accepted():
    arm = ('/subscriptions/%s/resourceGroups/testBkpVaultRG/providers/Microsoft.DataProtection/backupVaults/TestBkpVault/'
           'backupInstances/testpostgresql-empdb11-957d23b1/recoveryPoints/%s' % (SUB, RP))
    assert rr.normalize_recovery_point_id(arm) == RP
    assert rr.normalize_recovery_point_id(RP) == RP


@pytest.mark.parametrize('value', ['', '   ', '/subscriptions/x/backupJobs/abc', 'has space', 'a?b'])
def test_bad_recovery_point_ids(value):
    with pytest.raises(ValueError, match='recovery_point_id'):
        rr.normalize_recovery_point_id(value)


@pytest.mark.parametrize('days', [9, 31, 0, -1, 100])
def test_retention_outside_10_30_is_refused(days):
    with pytest.raises(ValueError, match='between 10 and 30'):
        rr.rehydration_duration(days)


@pytest.mark.parametrize('days', ['15', 15.0, True, None])
def test_retention_must_be_an_int(days):
    with pytest.raises(ValueError, match='whole number'):
        rr.rehydration_duration(days)


def test_bad_priority_refused():
    with pytest.raises(ValueError, match='rehydration_priority'):
        rr.check_rehydration(rr.Rehydration('Invalid', 15))


def test_flexible_server_database_target_refused():
    with pytest.raises(ValueError) as err:
        rr.build_restore_request(SOURCE_FLEX, FLEX_TYPE, RP, 'VaultStore', DATABASE_TARGET, 'westus')
    assert str(err.value).startswith(
        'Flexible servers can only be restored as files: give target_container_url and target_file_prefix')


def test_flexible_target_server_for_database_refused():
    target = rr.DatabaseTarget(TARGET_SERVER.replace('/servers/', '/flexibleServers/'), 'db1', SECRET_URI)
    with pytest.raises(ValueError, match='is a flexible server'):
        rr.check_target(DB_TYPE, target)


@pytest.mark.parametrize('target,message', [
    (rr.DatabaseTarget('/subscriptions/x/resourceGroups/r/providers/Microsoft.DBforPostgreSQL/servers/s', 'db', SECRET_URI),
     'target_server_id'),
    (rr.DatabaseTarget(f'/subscriptions/{SUB}/resourceGroups/r/providers/Microsoft.Sql/servers/s', 'db', SECRET_URI),
     'not the ARM id of a PostgreSQL server'),
    (rr.DatabaseTarget(TARGET_SERVER, 'bad/name', SECRET_URI), 'target_database_name'),
    (rr.DatabaseTarget(TARGET_SERVER, 'x' * 64, SECRET_URI), 'target_database_name'),
    (rr.DatabaseTarget(TARGET_SERVER, 'db', 'http://kv.vault.azure.net/secrets/x'), 'secret_uri'),
    (rr.DatabaseTarget(TARGET_SERVER, 'db', 'https://kv.vault.azure.net/keys/x'), 'secret_uri'),
    (rr.DatabaseTarget(TARGET_SERVER, 'db', ''), 'secret_uri is required'),
    (rr.FilesTarget('https://acct.blob.core.windows.net/Bad_Container', 'p'), 'target_container_url'),
    (rr.FilesTarget('ftp://acct.blob.core.windows.net/c01', 'p'), 'target_container_url'),
    (rr.FilesTarget(CONTAINER_URL, ''), 'target_file_prefix'),
    (rr.FilesTarget(CONTAINER_URL, '/abs'), 'target_file_prefix'),
    (rr.FilesTarget(CONTAINER_URL, 'p', TARGET_SERVER), 'target_container_id'),
])
def test_bad_targets_are_refused_with_the_option_name(target, message):
    with pytest.raises(ValueError, match=message):
        rr.check_target(DB_TYPE, target)


def test_unknown_datasource_type_refused():
    with pytest.raises(ValueError, match="protects datasource type 'Microsoft.Compute/disks'"):
        rr.build_restore_request(SOURCE_DB, 'Microsoft.Compute/disks', RP, 'VaultStore', FILES_TARGET, 'westus')


def test_restore_location_required():
    with pytest.raises(ValueError, match='restore_location'):
        rr.build_restore_request(SOURCE_DB, DB_TYPE, RP, 'VaultStore', FILES_TARGET, '')


@pytest.mark.parametrize('requested,stores,expected', [
    ('auto', ['VaultStore'], ('VaultStore', False)),
    ('auto', ['VaultStore', 'ArchiveStore'], ('VaultStore', False)),
    ('auto', ['ArchiveStore'], ('ArchiveStore', True)),
    ('ArchiveStore', ['VaultStore', 'ArchiveStore'], ('ArchiveStore', True)),
    ('VaultStore', ['VaultStore'], ('VaultStore', False)),
])
def test_choose_source_datastore(requested, stores, expected):
    point = {'recovery_point_id': RP, 'datastores': stores}
    assert rr.choose_source_datastore(requested, point) == expected


def test_choose_vault_store_for_archive_only_point_fails_clearly():
    with pytest.raises(ValueError) as err:
        rr.choose_source_datastore('VaultStore', {'recovery_point_id': RP, 'datastores': ['ArchiveStore']})
    assert 'is not in VaultStore (it is in ArchiveStore)' in str(err.value)
    assert 'auto or ArchiveStore' in str(err.value)


def test_choose_auto_with_no_usable_store():
    with pytest.raises(ValueError, match='no datastore'):
        rr.choose_source_datastore('auto', {'recovery_point_id': RP, 'datastores': ['OperationalStore']})


def test_recovery_destination():
    assert rr.recovery_destination(DATABASE_TARGET) == TARGET_SERVER + '/databases/emprestored21'
    assert rr.recovery_destination(rr.FilesTarget(CONTAINER_URL + '/', 'pre')) == CONTAINER_URL + '/pre'


@pytest.mark.parametrize('value,expected_type', [
    (SOURCE_DB, DB_TYPE),
    (SOURCE_FLEX, FLEX_TYPE),
    (SOURCE_DB.replace('Microsoft.DBforPostgreSQL', 'microsoft.dbforpostgresql') + '/', DB_TYPE),
])
def test_parse_datasource_id(value, expected_type):
    normalised, kind = rr.parse_datasource_id(value)
    assert kind == expected_type
    assert not normalised.endswith('/')


@pytest.mark.parametrize('value', [TARGET_SERVER, 'empdb11', '/subscriptions/not-a-guid/resourceGroups/r/providers/'
                                   'Microsoft.DBforPostgreSQL/flexibleServers/s'])
def test_parse_datasource_id_refuses(value):
    with pytest.raises(ValueError, match='datasource_id'):
        rr.parse_datasource_id(value)
