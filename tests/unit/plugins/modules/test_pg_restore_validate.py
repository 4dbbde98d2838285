# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pg_restore_validate: the exact validateRestore body, archive auto-selection, failures the user can act on."""

from __future__ import annotations

import pytest

from ansible_collections.azure_backup.dataprotection.plugins.modules import pg_restore_validate as module

from ansible_collections.azure_backup.dataprotection.tests.unit.plugins.modules.dp_fakes import (
    ARM, BI_NAME, BI_PATH, CONTAINER_URL, FLEX_BI_NAME, FLEX_BI_PATH, FLEX_SERVER, RP_ARCHIVE, RP_VAULT, SECRET_URI,
    SOURCE_DB, SUB, TARGET_DB, TARGET_SERVER, VAULT_ARGS, VAULT_PATH, FakeArm, assert_no_leak, deep, load,
    outcome_unknown_error,
)

DB_ARGS = dict(VAULT_ARGS, backup_instance_name=BI_NAME, recovery_point_id=RP_VAULT, target_server_id=TARGET_SERVER,
               target_database_name='emprestored21', secret_uri=SECRET_URI)
FILES_ARGS = dict(VAULT_ARGS, backup_instance_name=FLEX_BI_NAME, recovery_point_id=RP_VAULT,
                  target_container_url=CONTAINER_URL, target_file_prefix='pgflex01-drill')

# The spec's body for a database target (reference §2), written out by hand.
EXPECTED_DB_REQUEST = {
    'objectType': 'AzureBackupRecoveryPointBasedRestoreRequest',
    'recoveryPointId': RP_VAULT,
    'sourceDataStoreType': 'VaultStore',
    'sourceResourceId': SOURCE_DB,
    'restoreTargetInfo': {
        'objectType': 'RestoreTargetInfo',
        'recoveryOption': 'FailIfExists',
        'restoreLocation': 'westus',
        'datasourceInfo': {
            'objectType': 'Datasource', 'resourceID': TARGET_DB, 'resourceName': 'emprestored21',
            'resourceType': 'Microsoft.DBforPostgreSQL/servers/databases',
            'datasourceType': 'Microsoft.DBforPostgreSQL/servers/databases', 'resourceUri': '',
            'resourceLocation': 'westus'},
        'datasourceSetInfo': {
            'objectType': 'DatasourceSet', 'resourceID': TARGET_SERVER, 'resourceName': 'targetossserver',
            'resourceType': 'Microsoft.DBforPostgreSQL/servers',
            'datasourceType': 'Microsoft.DBforPostgreSQL/servers/databases', 'resourceUri': '',
            'resourceLocation': 'westus'},
        'datasourceAuthCredentials': {
            'objectType': 'SecretStoreBasedAuthCredentials',
            'secretStoreResource': {'secretStoreType': 'AzureKeyVault', 'uri': SECRET_URI}},
    },
}


@pytest.fixture
def arm(rsps, monkeypatch, exit_fail):  # pylint: disable=unused-argument
    return FakeArm(rsps, monkeypatch)


def test_database_validation_sends_exactly_the_spec_body(arm):
    arm.backup_instance()
    arm.recovery_point()
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_succeeded'), polls=2)
    result, failed = arm.run(module, DB_ARGS)
    assert not failed, result
    assert result['changed'] is False
    assert arm.posted('/validateRestore') == [{'restoreRequestObject': EXPECTED_DB_REQUEST}]
    assert result['request'] == EXPECTED_DB_REQUEST
    assert result['source_datastore'] == 'VaultStore'
    assert result['msg'] == 'The restore request is valid: recovery point %s (VaultStore) to %s.' % (RP_VAULT, TARGET_DB)
    # The operation was polled as the service asked: Retry-After 10, twice.
    assert arm.clock.sleeps == [10, 10, 10]
    assert not arm.calls('POST', '/restore')


@pytest.mark.parametrize('datasource_location', ['westus', None])
def test_restore_location_is_the_datasources_region_else_the_vaults(arm, datasource_location):
    """A server is backed up to a vault of its own region: the backup instance names it, and the vault is read only
    when it does not."""
    body = deep(load('backup_instance_single'))
    body['properties']['dataSourceInfo']['resourceLocation'] = datasource_location
    arm.get(BI_PATH, body)
    if datasource_location is None:
        arm.get(VAULT_PATH, dict(load('backup_vault'), location='eastus2'))
    arm.recovery_point()
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_succeeded'))
    result, failed = arm.run(module, DB_ARGS)
    assert not failed, result
    info = arm.posted('/validateRestore')[0]['restoreRequestObject']['restoreTargetInfo']
    assert info['restoreLocation'] == (datasource_location or 'eastus2')
    assert bool(arm.calls('GET', VAULT_PATH)) == (datasource_location is None)


def test_restore_location_option_skips_the_vault_read(arm):
    arm.backup_instance()
    arm.recovery_point()
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_succeeded'))
    result, failed = arm.run(module, dict(DB_ARGS, restore_location='eastus2'))
    assert not failed
    info = arm.posted('/validateRestore')[0]['restoreRequestObject']['restoreTargetInfo']
    assert info['restoreLocation'] == 'eastus2'
    assert info['datasourceInfo']['resourceLocation'] == 'eastus2'


def test_archive_only_point_becomes_a_rehydration_request(arm):
    arm.backup_instance()
    arm.recovery_point(archive=True)
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_succeeded'))
    result, failed = arm.run(module, dict(DB_ARGS, recovery_point_id=RP_ARCHIVE, rehydration_priority='High',
                                          rehydration_retention_days=20))
    assert not failed, result
    sent = arm.posted('/validateRestore')[0]['restoreRequestObject']
    assert sent == dict(EXPECTED_DB_REQUEST, objectType='AzureBackupRestoreWithRehydrationRequest',
                        recoveryPointId=RP_ARCHIVE, sourceDataStoreType='ArchiveStore',
                        rehydrationPriority='High', rehydrationRetentionDuration='P20D')
    assert result['source_datastore'] == 'ArchiveStore'
    assert result['recovery_point']['archive_only'] is True


def test_flexible_server_files_with_user_assigned_identity(arm):
    uami = f'/subscriptions/{SUB}/resourceGroups/idrg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/backup-uami'
    arm.backup_instance(flexible=True)
    arm.recovery_point(bi_path=FLEX_BI_PATH)
    arm.lro(FLEX_BI_PATH + '/validateRestore', load('operation_validate_succeeded'))
    result, failed = arm.run(module, dict(FILES_ARGS, user_assigned_identity_id=uami))
    assert not failed, result
    assert arm.posted('/validateRestore') == [{'restoreRequestObject': {
        'objectType': 'AzureBackupRecoveryPointBasedRestoreRequest',
        'recoveryPointId': RP_VAULT,
        'sourceDataStoreType': 'VaultStore',
        'sourceResourceId': FLEX_SERVER,
        'restoreTargetInfo': {
            'objectType': 'RestoreFilesTargetInfo', 'recoveryOption': 'FailIfExists', 'restoreLocation': 'westus',
            'targetDetails': {'url': CONTAINER_URL, 'filePrefix': 'pgflex01-drill',
                              'restoreTargetLocationType': 'AzureBlobs'}},
        'identityDetails': {'useSystemAssignedIdentity': False, 'userAssignedIdentityArmUrl': uami},
    }}]


def test_failed_validation_is_structured_for_until_loops(arm):
    arm.backup_instance()
    arm.recovery_point()
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_failed'))
    result, failed = arm.run(module, DB_ARGS)
    assert failed
    assert result['changed'] is False
    assert result['msg'].startswith(
        'Validate restore: UserErrorRestoreToLowerVersion: Restoring backups of a higher PostgreSQL version to a lower '
        'version is not supported. Recommended action: Restore to the same or a higher PostgreSQL version from which '
        'the backup was taken.')
    error = result['error']
    assert error['code'] == 'UserErrorRestoreToLowerVersion'
    assert error['message'] == 'Restoring backups of a higher PostgreSQL version to a lower version is not supported.'
    assert error['recommended_actions'] == [
        'Restore to the same or a higher PostgreSQL version from which the backup was taken.']
    assert error['is_retryable'] is False and error['is_user_error'] is False
    assert 'target' in error
    assert result['request'] == EXPECTED_DB_REQUEST


def test_rejected_post_is_structured_too(arm):
    arm.backup_instance()
    arm.recovery_point()
    body = {'error': {'code': 'UserErrorMSIMissingPermissions', 'message': 'The vault identity lacks permissions.',
                      'additionalInfo': [{'type': 'UserFacingError', 'info': {
                          'code': 'UserErrorMSIMissingPermissions', 'message': 'The vault identity lacks permissions.',
                          'recommendedAction': ['Grant Reader on the target server to the vault identity.'],
                          'isRetryable': True, 'isUserError': True, 'target': ''}}]}}
    arm.rsps.add('POST', 'https://management.example.test' + BI_PATH + '/validateRestore', json=body, status=400)
    result, failed = arm.run(module, DB_ARGS)
    assert failed
    assert result['error']['code'] == 'UserErrorMSIMissingPermissions'
    assert result['error']['is_retryable'] is True
    assert result['error']['status'] == 400
    assert 'Grant Reader on the target server' in result['msg']


@pytest.mark.parametrize('fault', ['503', 'dropped'])
def test_validation_post_with_a_lost_answer_or_5xx_is_asked_again(arm, fault):
    """validateRestore has no side effect: a 503 or a connection lost after sending is retried, never reported as
    RequestOutcomeUnknown (bug F3)."""
    arm.backup_instance()
    arm.recovery_point()
    if fault == '503':
        arm.rsps.add('POST', ARM + BI_PATH + '/validateRestore', status=503, json={'error': {
            'code': 'ServiceUnavailable', 'message': 'The service is unavailable.'}})
    else:
        arm.post_error(BI_PATH + '/validateRestore', outcome_unknown_error())
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_succeeded'))
    result, failed = arm.run(module, DB_ARGS)
    assert not failed, result
    assert arm.posted('/validateRestore') == [{'restoreRequestObject': EXPECTED_DB_REQUEST}] * 2
    assert arm.clock.sleeps[0] < 2  # the client's backoff, then the operation polls
    assert len(arm.warnings) == 1 and 'POST %s%s/validateRestore' % (ARM, BI_PATH) in arm.warnings[0]


def test_database_target_for_flexible_server_fails_before_any_call(arm):
    args = dict(DB_ARGS, datasource_id=FLEX_SERVER)
    del args['backup_instance_name']
    result, failed = arm.run(module, args)
    assert failed
    assert result['msg'].startswith('Flexible servers can only be restored as files: give target_container_url and '
                                    'target_file_prefix')
    assert not arm.rsps.calls


def test_database_target_for_flexible_backup_instance_fails_before_any_post(arm):
    arm.backup_instance(flexible=True)
    result, failed = arm.run(module, dict(DB_ARGS, backup_instance_name=FLEX_BI_NAME))
    assert failed
    assert result['msg'].startswith('Flexible servers can only be restored as files')
    assert not arm.calls('POST')


def test_unknown_recovery_point_fails_clearly_without_post(arm):
    arm.backup_instance()
    arm.get_404(BI_PATH + '/recoveryPoints/ffffffffffffffffffffffffffffffff', code='RecoveryPointNotFound',
                message='Recovery point not found')
    result, failed = arm.run(module, dict(DB_ARGS, recovery_point_id='ffffffffffffffffffffffffffffffff'))
    assert failed
    assert ("recovery point 'ffffffffffffffffffffffffffffffff' does not exist in backup instance '%s'" % BI_NAME
            in result['msg'])
    assert 'pg_recovery_point_info' in result['msg']
    assert not arm.calls('POST')


def test_vault_store_asked_for_an_archive_only_point(arm):
    arm.backup_instance()
    arm.recovery_point(archive=True)
    result, failed = arm.run(module, dict(DB_ARGS, recovery_point_id=RP_ARCHIVE, source_datastore='VaultStore'))
    assert failed
    assert result['msg'] == ("Recovery point '%s' is not in VaultStore (it is in ArchiveStore). Set source_datastore to "
                             "auto or ArchiveStore." % RP_ARCHIVE)
    assert not arm.calls('POST')


@pytest.mark.parametrize('extra,message', [
    ({'rehydration_retention_days': 31}, 'rehydration_retention_days must be between 10 and 30 days, not 31.'),
    ({'rehydration_retention_days': 9}, 'rehydration_retention_days must be between 10 and 30 days, not 9.'),
    ({'secret_uri': 'https://kv-restore.vault.azure.net/keys/targetossserver-conn'}, "secret_uri 'https://kv-restore"),
    ({'secret_uri': 'kv-restore/secrets/x'}, 'is not an https URL'),
    ({'target_server_id': '/subscriptions/%s/resourceGroups/targetrg/providers/Microsoft.Sql/servers/s' % SUB},
     'is not the ARM id of a PostgreSQL server'),
    ({'target_server_id': 'targetossserver'}, "target_server_id 'targetossserver' is not the ARM id"),
    ({'target_database_name': 'has/slash'}, 'target_database_name'),
    ({'recovery_point_id': 'not a point'}, 'recovery_point_id'),
    ({'user_assigned_identity_id': TARGET_SERVER}, 'user_assigned_identity_id'),
    ({'target_container_url': CONTAINER_URL}, 'mutually exclusive'),
    ({'secret_uri': None}, 'parameters are required together'),
    ({'wait_timeout': 0}, 'wait_timeout must be a positive number'),
    ({'restore_location': ' '}, 'restore_location must not be empty'),
    ({'source_datastore': 'OperationalStore'}, 'source_datastore'),
    ({'rehydration_priority': 'Low'}, 'rehydration_priority'),
])
def test_bad_input_fails_before_any_call(arm, extra, message):
    args = {k: v for k, v in dict(DB_ARGS, **extra).items() if v is not None}
    result, failed = arm.run(module, args)
    assert failed
    assert message in result['msg']
    assert not arm.rsps.calls


@pytest.mark.parametrize('extra,message', [
    ({'target_container_url': 'https://acct.blob.core.windows.net/Bad_Name'}, 'target_container_url'),
    ({'target_file_prefix': '/abs'}, 'target_file_prefix'),
    ({'target_container_id': TARGET_SERVER}, 'target_container_id'),
    ({'target_file_prefix': None}, 'parameters are required together'),
])
def test_bad_files_input_fails_before_any_call(arm, extra, message):
    args = {k: v for k, v in dict(FILES_ARGS, **extra).items() if v is not None}
    result, failed = arm.run(module, args)
    assert failed
    assert message in result['msg']
    assert not arm.rsps.calls


def test_check_mode_still_validates(arm):
    arm.backup_instance()
    arm.recovery_point()
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_succeeded'))
    result, failed = arm.run(module, DB_ARGS, check_mode=True)
    assert not failed and result['changed'] is False
    assert len(arm.posted('/validateRestore')) == 1


def test_no_secret_or_token_anywhere(arm):
    arm.backup_instance()
    arm.recovery_point()
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_failed'))
    failed_result, failed = arm.run(module, DB_ARGS)
    assert failed
    arm.backup_instance()
    arm.recovery_point()
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_succeeded'))
    ok_result, failed = arm.run(module, DB_ARGS)
    assert not failed
    assert_no_leak(failed_result, ok_result)
    for call in arm.calls('POST'):
        assert 'S3cr3t' not in call.request.body.decode() and '"value"' not in call.request.body.decode()
