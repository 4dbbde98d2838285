# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pg_restore: one POST at most, idempotent re-runs, check mode, existing targets, lost answers, job waits."""

from __future__ import annotations

import pytest

from ansible_collections.azure_backup.dataprotection.plugins.modules import pg_restore as module

from ansible_collections.azure_backup.dataprotection.tests.unit.plugins.modules.dp_fakes import (
    ARM, BI_NAME, BI_PATH, CONTAINER_URL, FLEX_BI_NAME, FLEX_BI_PATH, FLEX_SERVER, JOB_ID, RP_ARCHIVE, RP_VAULT,
    SECRET_URI, TARGET_DB, TARGET_SERVER, VAULT_ARGS, VAULT_PATH, FakeArm, assert_no_leak, deep, load,
    outcome_unknown_error,
)

DB_ARGS = dict(VAULT_ARGS, backup_instance_name=BI_NAME, recovery_point_id=RP_VAULT, target_server_id=TARGET_SERVER,
               target_database_name='emprestored21', secret_uri=SECRET_URI)
FILES_ARGS = dict(VAULT_ARGS, backup_instance_name=FLEX_BI_NAME, recovery_point_id=RP_VAULT,
                  target_container_url=CONTAINER_URL, target_file_prefix='pgflex01-drill')
PG_API = {'api-version': '2017-12-01'}
OTHER_JOB = '0d6f3a8e-7a43-4c9b-9d8c-9b3d1a4c2e11'


@pytest.fixture
def arm(rsps, monkeypatch, exit_fail):  # pylint: disable=unused-argument
    return FakeArm(rsps, monkeypatch)


def job(fixture='job_restore_inprogress', guid=JOB_ID, **ext):
    body = deep(load(fixture))
    body['name'] = guid
    body['id'] = VAULT_PATH + '/backupJobs/' + guid
    body['properties']['extendedInfo'].update(ext)
    return body


def backup_job(guid):
    body = job('job_restore_completed', guid)
    body['properties'].update(operation='Backup', operationCategory='Backup')
    body['properties']['extendedInfo'].update(sourceRecoverPoint=None, recoveryDestination=None)
    return body


def prepared(arm, flexible=False, jobs=None, target_exists=False, archive=False):
    """The reads every run makes before deciding: backup instance, recovery point, jobs, target database."""
    arm.backup_instance(flexible=flexible)
    arm.recovery_point(archive=archive, bi_path=FLEX_BI_PATH if flexible else BI_PATH)
    arm.jobs(jobs if jobs is not None else [[backup_job(OTHER_JOB)], []])
    if not flexible:
        if target_exists:
            arm.get(TARGET_DB, {'id': TARGET_DB, 'name': 'emprestored21', 'type': 'Microsoft.DBforPostgreSQL/servers/databases',
                                'properties': {'charset': 'UTF8', 'collation': 'English_United States.1252'}})
        else:
            arm.get_404(TARGET_DB, code='ResourceNotFound',
                        message="The Resource 'Microsoft.DBforPostgreSQL/servers/targetossserver/databases/emprestored21' "
                                "under resource group 'targetrg' was not found.")


def test_restore_starts_once_and_returns_the_job_guid(arm):
    prepared(arm)
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'), location_body={
        'objectType': 'OperationJobExtendedInfo', 'jobId': VAULT_PATH + '/backupJobs/' + JOB_ID})
    result, failed = arm.run(module, DB_ARGS)
    assert not failed, result
    assert result['changed'] is True
    assert result['job_id'] == JOB_ID
    assert 'job' not in result
    assert result['msg'] == 'Restore started: job %s restores recovery point %s (VaultStore) to %s.' % (
        JOB_ID, RP_VAULT, TARGET_DB)
    sent = arm.posted('/restore')
    assert len(sent) == 1
    assert sent[0] == result['request']
    assert sent[0]['restoreTargetInfo']['datasourceInfo']['resourceID'] == TARGET_DB
    assert not arm.calls('POST', '/validateRestore')
    assert result['target_exists'] is False
    # the target database was looked up with the PostgreSQL provider's api-version
    lookup = arm.calls('GET', '/databases/emprestored21')[0]
    assert 'api-version=2017-12-01' in lookup.request.url


def test_check_mode_validates_and_never_posts_restore(arm):
    prepared(arm)
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_succeeded'))
    result, failed = arm.run(module, DB_ARGS, check_mode=True)
    assert not failed, result
    assert result['changed'] is True
    assert result['msg'].startswith('Check mode: the restore of recovery point %s (VaultStore)' % RP_VAULT)
    assert not arm.calls('POST', '/restore')
    assert arm.posted('/validateRestore') == [{'restoreRequestObject': result['request']}]
    assert 'job_id' not in result


def test_check_mode_reports_a_failed_validation(arm):
    prepared(arm)
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_failed'))
    result, failed = arm.run(module, DB_ARGS, check_mode=True)
    assert failed
    assert result['error']['code'] == 'UserErrorRestoreToLowerVersion'
    assert not arm.calls('POST', '/restore')


@pytest.mark.parametrize('status', ['InProgress', 'Completed'])
def test_rerun_finds_the_existing_job_and_changes_nothing(arm, status):
    fixture = 'job_restore_inprogress' if status == 'InProgress' else 'job_restore_completed'
    existing = job(fixture, recoveryDestination=TARGET_DB.lower() + '/')  # case and trailing '/' do not matter
    # a running restore is enough; a completed one counts while its database exists
    prepared(arm, jobs=[[backup_job(OTHER_JOB)], [existing]], target_exists=status == 'Completed')
    if status == 'InProgress':
        arm.rsps.remove('GET', ARM + TARGET_DB)  # not even the target is looked up
    result, failed = arm.run(module, DB_ARGS)
    assert not failed, result
    assert result['changed'] is False
    assert result['job_id'] == JOB_ID
    assert result['job']['status'] == status
    assert result['msg'] == 'A restore of recovery point %s (VaultStore) to %s already exists: job %s is %s; nothing ' \
                            'was started.' % (RP_VAULT, TARGET_DB, JOB_ID, status)
    assert not arm.calls('POST')
    if status == 'Completed':
        assert result['target_exists'] is True
    else:
        assert 'target_exists' not in result  # a running restore is reused without reading the target


def test_completed_restore_whose_database_was_dropped_restores_again(arm):
    prepared(arm, jobs=[[job('job_restore_completed')]])  # the target database GET answers 404
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'))
    result, failed = arm.run(module, DB_ARGS)
    assert not failed, result
    assert result['changed'] is True
    assert len(arm.posted('/restore')) == 1
    assert len(arm.calls('GET', '/databases/emprestored21')) == 1  # read once, used twice
    assert any('no longer exists; starting a new restore' in w for w in arm.warnings)
    assert result['target_exists'] is False


@pytest.mark.parametrize('validation', ['operation_validate_succeeded', 'operation_validate_failed'])
def test_check_mode_tells_a_dropped_target_of_a_completed_restore(arm, validation):
    """What the role asks before granting anything: is the completed restore still there? `target_exists` answers,
    also when the check mode validation of the new restore then fails (before the role's grant, say)."""
    prepared(arm, jobs=[[job('job_restore_completed')]])  # the target database GET answers 404
    arm.lro(BI_PATH + '/validateRestore', load(validation))
    result, failed = arm.run(module, DB_ARGS, check_mode=True)
    assert failed is (validation == 'operation_validate_failed'), result
    assert result['target_exists'] is False
    assert 'job' not in result and 'job_id' not in result  # the completed job is not reused
    assert result['changed'] is not failed
    assert len(arm.calls('GET', '/databases/emprestored21')) == 1
    assert not arm.calls('POST', '/restore')


def test_rerun_ignores_a_failed_job_of_the_same_restore(arm):
    prepared(arm, jobs=[[job('job_restore_failed', OTHER_JOB)]])
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'))
    result, failed = arm.run(module, DB_ARGS)
    assert not failed
    assert result['changed'] is True and result['job_id'] == JOB_ID
    assert len(arm.posted('/restore')) == 1


def test_rerun_with_wait_waits_on_the_existing_job(arm):
    prepared(arm, jobs=[[job()]])
    arm.rsps.remove('GET', ARM + TARGET_DB)
    arm.job(job())
    arm.job(job('job_restore_completed'))
    result, failed = arm.run(module, dict(DB_ARGS, wait=True, poll_interval=20))
    assert not failed, result
    assert result['changed'] is False
    assert result['job']['status'] == 'Completed' and result['job']['succeeded'] is True
    assert result['job']['data_transferred_bytes'] == 52428800
    assert arm.clock.sleeps == [20]
    assert not arm.calls('POST')


def test_existing_target_database_is_refused_without_post(arm):
    prepared(arm, target_exists=True)
    result, failed = arm.run(module, DB_ARGS)
    assert failed
    assert result['target_exists'] is True
    assert result['msg'] == ("Target database 'emprestored21' already exists on server 'targetossserver' and no restore "
                             "of this backup instance by this collection created it. Choose another "
                             "target_database_name or drop it first; pg_restore never overwrites a database.")
    assert result['changed'] is False
    assert not arm.calls('POST')


def test_existing_target_is_refused_in_check_mode_too(arm):
    prepared(arm, target_exists=True)
    result, failed = arm.run(module, DB_ARGS, check_mode=True)
    assert failed and 'already exists' in result['msg']
    assert not arm.calls('POST')


def test_unreadable_target_warns_and_goes_on(arm):
    arm.backup_instance()
    arm.recovery_point()
    arm.jobs([[]])
    arm.get(TARGET_DB, {'error': {'code': 'AuthorizationFailed', 'message': 'no read'}}, status=403)
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'))
    result, failed = arm.run(module, DB_ARGS)
    assert not failed
    assert result['job_id'] == JOB_ID
    assert arm.warnings == ['Could not check whether the target database %s exists (HTTP 403); the service refuses an '
                            'existing database (UserErrorDatabaseNameAlreadyInUse).' % TARGET_DB]
    assert 'target_exists' not in result  # unknown is not reported as a guess


def test_lost_answer_is_not_reposted_and_the_job_is_found(arm):
    prepared(arm)
    arm.post_error(BI_PATH + '/restore', outcome_unknown_error())
    # the re-check lists the jobs again: nothing yet, then the job the lost POST created
    arm.jobs([[backup_job(OTHER_JOB)]])
    arm.jobs([[backup_job(OTHER_JOB), job()]])
    result, failed = arm.run(module, DB_ARGS)
    assert not failed, result
    assert len(arm.calls('POST', '/restore')) == 1
    assert result['changed'] is True
    assert result['job_id'] == JOB_ID
    assert result['job']['status'] == 'InProgress'
    assert arm.clock.sleeps == [5]  # one pause before the second look
    # The user is told that the request got no usable answer and the job found by listing (bug F4).
    assert arm.warnings == ['The restore request got no usable answer (the connection was closed before an answer '
                            'arrived); its job %s was found in the vault, so the restore was not requested again.'
                            % JOB_ID]
    assert_no_leak(result, arm.warnings)


def test_lost_answer_after_a_5xx_is_reported_with_the_status(arm):
    prepared(arm)
    arm.rsps.add('POST', ARM + BI_PATH + '/restore', status=500, json={'error': {
        'code': 'InternalServerError', 'message': 'Encountered internal server error.'}})
    arm.jobs([[backup_job(OTHER_JOB), job()]])
    result, failed = arm.run(module, DB_ARGS)
    assert not failed, result
    assert len(arm.calls('POST', '/restore')) == 1 and result['job_id'] == JOB_ID
    assert arm.warnings == ['The restore request got no usable answer (the service answered HTTP 500 '
                            '(InternalServerError: Encountered internal server error.)); its job %s was found in the '
                            'vault, so the restore was not requested again.' % JOB_ID]


def test_check_mode_validation_post_is_retried_on_a_5xx(arm):
    """The check-mode validation uses the same idempotent validateRestore as pg_restore_validate (bug F3)."""
    prepared(arm)
    arm.rsps.add('POST', ARM + BI_PATH + '/validateRestore', status=502)
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_succeeded'))
    result, failed = arm.run(module, DB_ARGS, check_mode=True)
    assert not failed, result
    assert len(arm.calls('POST', '/validateRestore')) == 2 and not arm.calls('POST', '/restore')


def test_lost_answer_and_no_job_fails_asking_to_rerun(arm):
    prepared(arm)
    arm.post_error(BI_PATH + '/restore', outcome_unknown_error())
    for dummy in range(5):
        arm.jobs([[backup_job(OTHER_JOB)]])
    result, failed = arm.run(module, DB_ARGS)
    assert failed
    assert len(arm.calls('POST', '/restore')) == 1
    assert 'may or may not have started' in result['msg']
    assert 'Run the task again' in result['msg']
    assert result['error']['code'] == 'RequestOutcomeUnknown'
    assert arm.clock.sleeps == [5, 10, 20, 40]


def test_rejected_restore_is_not_a_change(arm):
    prepared(arm)
    arm.rsps.add('POST', ARM + BI_PATH + '/restore', status=409, json={'error': {
        'code': 'UserErrorMaxConcurrentOperationLimitReached',
        'message': 'Another operation is in progress on this backup instance.'}})
    result, failed = arm.run(module, DB_ARGS)
    assert failed
    assert result['changed'] is False
    assert result['error']['code'] == 'UserErrorMaxConcurrentOperationLimitReached'
    assert result['error']['status'] == 409
    assert result['request']['recoveryPointId'] == RP_VAULT
    assert len(arm.calls('POST', '/restore')) == 1


def test_wait_for_a_failed_job_fails_with_its_error_and_job_id(arm):
    prepared(arm)
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'))
    arm.job(job())
    arm.job(job('job_restore_failed'))
    result, failed = arm.run(module, dict(DB_ARGS, wait=True))
    assert failed
    assert result['job_id'] == JOB_ID
    assert result['changed'] is True
    assert result['msg'] == (
        'Restore job %s ended Failed: UserErrorDBUserAuthFailed: The database user could not be authenticated on the '
        'target server. Recommended action: Check the user id and password in the connection string of the Key Vault '
        'secret, and that the user can log in to the server.' % JOB_ID)
    assert result['error']['code'] == 'UserErrorDBUserAuthFailed'
    assert result['error']['job_id'] == JOB_ID
    assert result['job']['errors'][0]['recommended_actions'] == [
        'Check the user id and password in the connection string of the Key Vault secret, and that the user can log '
        'in to the server.']


def test_wait_timeout_returns_the_job_id_and_how_to_resume(arm):
    prepared(arm)
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'))
    for dummy in range(4):
        arm.job(job())
    result, failed = arm.run(module, dict(DB_ARGS, wait=True, wait_timeout=100, poll_interval=30))
    assert failed
    assert result['job_id'] == JOB_ID
    assert result['error']['code'] == 'JobWaitTimedOut'
    assert 'dataprotection_job_info' in result['msg']
    assert result['changed'] is True
    assert sum(arm.clock.sleeps) <= 100


def test_wait_for_a_completed_job(arm):
    prepared(arm)
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'))
    arm.job(job('job_restore_completed'))
    result, failed = arm.run(module, dict(DB_ARGS, wait=True))
    assert not failed
    assert result['job']['succeeded'] is True
    assert result['msg'] == 'Restore of recovery point %s (VaultStore) to %s finished: job %s is Completed.' % (
        RP_VAULT, TARGET_DB, JOB_ID)


def test_flexible_server_files_restore_and_its_rerun(arm):
    destination = CONTAINER_URL + '/pgflex01-drill'
    prepared(arm, flexible=True)
    arm.lro(FLEX_BI_PATH + '/restore', load('operation_restore_succeeded'))
    result, failed = arm.run(module, FILES_ARGS)
    assert not failed, result
    assert result['request']['sourceResourceId'] == FLEX_SERVER
    assert result['request']['restoreTargetInfo']['targetDetails'] == {
        'url': CONTAINER_URL, 'filePrefix': 'pgflex01-drill', 'restoreTargetLocationType': 'AzureBlobs'}
    # the second run finds the job by its files destination
    existing = job(recoveryDestination=destination)
    existing['properties']['backupInstanceId'] = FLEX_BI_PATH
    prepared(arm, flexible=True, jobs=[[existing]])
    again, failed = arm.run(module, FILES_ARGS)
    assert not failed
    assert again['changed'] is False and again['job_id'] == JOB_ID
    assert len(arm.calls('POST', '/restore')) == 1
    assert 'target_exists' not in result and 'target_exists' not in again  # blobs are not read beforehand


def test_archive_restore_sends_a_rehydration_request(arm):
    prepared(arm, archive=True)
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'))
    result, failed = arm.run(module, dict(DB_ARGS, recovery_point_id=RP_ARCHIVE))
    assert not failed
    sent = arm.posted('/restore')[0]
    assert sent['objectType'] == 'AzureBackupRestoreWithRehydrationRequest'
    assert sent['sourceDataStoreType'] == 'ArchiveStore'
    assert sent['rehydrationPriority'] == 'Standard' and sent['rehydrationRetentionDuration'] == 'P15D'


@pytest.mark.parametrize('extra,message', [
    ({'rehydration_retention_days': 45}, 'rehydration_retention_days must be between 10 and 30 days, not 45.'),
    ({'poll_interval': 0}, 'poll_interval must be a positive number'),
    ({'target_server_id': TARGET_SERVER + '/databases/x'}, 'target_server_id'),
])
def test_bad_input_fails_before_any_call(arm, extra, message):
    result, failed = arm.run(module, dict(DB_ARGS, **extra))
    assert failed and message in result['msg']
    assert not arm.rsps.calls


def test_flexible_database_target_fails_before_any_call(arm):
    args = dict(DB_ARGS, datasource_id=FLEX_SERVER)
    del args['backup_instance_name']
    result, failed = arm.run(module, args)
    assert failed
    assert result['msg'].startswith('Flexible servers can only be restored as files')
    assert not arm.rsps.calls


def test_no_secret_or_token_in_any_result(arm):
    results = []
    prepared(arm)
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'))
    arm.job(job('job_restore_failed'))
    results.append(arm.run(module, dict(DB_ARGS, wait=True))[0])
    prepared(arm, target_exists=True)
    results.append(arm.run(module, DB_ARGS)[0])
    prepared(arm)
    arm.post_error(BI_PATH + '/restore', outcome_unknown_error())
    for dummy in range(5):
        arm.jobs([[]])
    results.append(arm.run(module, DB_ARGS)[0])
    assert_no_leak(*results)
    assert all(results)
