# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pg_restore doing the role's steps in one task: select, relaunch onto an older restore, validation and busy
retries, progress lines. Each fact is read once: the requests are counted."""

from __future__ import annotations

import pytest

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _module
from ansible_collections.azure_backup.dataprotection.plugins.modules import pg_restore as module

from ansible_collections.azure_backup.dataprotection.tests.unit.plugins.modules.dp_fakes import (
    ARM, BI_NAME, BI_PATH, JOB_ID, RP_VAULT, SECRET_URI, TARGET_DB, TARGET_SERVER, VAULT_ARGS, VAULT_PATH,
    FakeArm, deep, load,
)
from ansible_collections.azure_backup.dataprotection.tests.unit.plugins.modules.test_pg_restore import job

ARGS = dict(VAULT_ARGS, backup_instance_name=BI_NAME, select='latest', target_server_id=TARGET_SERVER,
            target_database_name='emprestored21', secret_uri=SECRET_URI)
NEWER_RP = '1f0e2d3c4b5a69788796a5b4c3d2e1f0'
JOB_DONE = load('job_restore_completed')


@pytest.fixture
def arm(rsps, monkeypatch, exit_fail):  # pylint: disable=unused-argument
    fake = FakeArm(rsps, monkeypatch)
    fake.progress = []
    monkeypatch.setattr(_module.AzureParts, 'progress', lambda _self, line: fake.progress.append(line))
    return fake


def point(rp_id, time):
    body = deep(load('recovery_point_vault'))
    body['name'] = body['properties']['recoveryPointId'] = rp_id
    body['properties']['recoveryPointTime'] = time
    return body


def listed(arm, jobs=(), target_exists=False):
    """Backup instance, two recovery points (the newer one is NEWER_RP), the jobs and the target."""
    arm.backup_instance()
    arm.paged(BI_PATH + '/recoveryPoints', [[point(RP_VAULT, '2021-10-21T16:31:16Z'),
                                             point(NEWER_RP, '2021-10-22T16:31:16Z')]])
    arm.jobs([list(jobs)])
    if target_exists:
        arm.get(TARGET_DB, {'id': TARGET_DB, 'name': 'emprestored21'})
    else:
        arm.get_404(TARGET_DB)


def failed_operation(code):
    body = deep(load('operation_validate_failed'))
    body['error']['additionalInfo'][0]['info']['code'] = code
    body['error']['code'] = code
    return body


def reads(arm):
    return [(c.request.method, c.request.url.split('?')[0].replace(ARM, '')) for c in arm.calls()]


def test_select_latest_lists_the_points_once_and_reads_nothing_twice(arm):
    listed(arm)
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'), location_body={
        'objectType': 'OperationJobExtendedInfo', 'jobId': VAULT_PATH + '/backupJobs/' + JOB_ID})
    result, failed = arm.run(module, ARGS)
    assert not failed, result
    assert result['recovery_point']['recovery_point_id'] == NEWER_RP
    assert arm.posted('/restore')[0]['recoveryPointId'] == NEWER_RP
    gets = [path for method, path in reads(arm) if method == 'GET' and 'operation' not in path]
    assert len(gets) == len(set(gets)), gets  # no resource read twice
    assert not any(path.endswith('/recoveryPoints/' + NEWER_RP) for path in gets)  # the list gave the point


def test_relaunch_onto_our_older_restore_is_ok_and_warns_of_the_newer_point(arm):
    ours = job('job_restore_completed', recoveryDestination=TARGET_DB)  # restored RP_VAULT into the target
    listed(arm, jobs=[ours], target_exists=True)
    result, failed = arm.run(module, ARGS)
    assert not failed, result
    assert result['changed'] is False
    assert result['job_id'] == JOB_ID
    assert result['newer_recovery_point']['recovery_point_id'] == NEWER_RP
    assert not arm.calls('POST')
    assert len(arm.warnings) == 1
    assert 'restore job %s created it from recovery point %s' % (JOB_ID, RP_VAULT) in arm.warnings[0]
    assert 'newer recovery point %s' % NEWER_RP in arm.warnings[0]


def test_a_database_someone_else_restored_is_still_refused(arm):
    theirs = job('job_restore_completed', recoveryDestination=TARGET_SERVER + '/databases/otherdb')
    listed(arm, jobs=[theirs], target_exists=True)
    result, failed = arm.run(module, ARGS)
    assert failed
    assert 'no restore of this backup instance by this collection created it' in result['msg']
    assert not arm.calls('POST')


def test_validation_is_retried_while_permissions_propagate(arm):
    listed(arm)
    arm.lro(BI_PATH + '/validateRestore', failed_operation('UserErrorMSIMissingPermissions'))
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_succeeded'))
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'), location_body={
        'objectType': 'OperationJobExtendedInfo', 'jobId': VAULT_PATH + '/backupJobs/' + JOB_ID})
    result, failed = arm.run(module, dict(ARGS, validate=True, validate_retries=3, validate_delay=7))
    assert not failed, result
    assert len(arm.calls('POST', '/validateRestore')) == 2
    assert 7 in arm.clock.sleeps
    assert arm.progress[0] == 'validation: UserErrorMSIMissingPermissions; attempt 1 of 4, next in 7 s'
    assert arm.progress[1] == result['msg']  # then the summary


def test_validation_gives_up_after_its_retries_and_says_so(arm):
    listed(arm)
    for dummy in range(3):
        arm.lro(BI_PATH + '/validateRestore', failed_operation('UserErrorMissingPermissionsOnSecretStore'))
    result, failed = arm.run(module, dict(ARGS, validate=True, validate_retries=2, validate_delay=1))
    assert failed
    assert result['error']['code'] == 'UserErrorMissingPermissionsOnSecretStore'
    assert 'still lacked permissions after 3 attempts 1 s apart' in result['msg']
    assert not arm.calls('POST', '/restore')


def test_other_validation_errors_stop_at_once(arm):
    listed(arm)
    arm.lro(BI_PATH + '/validateRestore', load('operation_validate_failed'))
    result, failed = arm.run(module, dict(ARGS, validate=True, validate_retries=5))
    assert failed and result['error']['code'] == 'UserErrorRestoreToLowerVersion'
    assert len(arm.calls('POST', '/validateRestore')) == 1


def test_a_busy_backup_instance_is_retried_then_restored_once(arm):
    listed(arm)
    arm.rsps.add('POST', ARM + BI_PATH + '/restore', status=409, json={'error': {
        'code': 'UserErrorMaxConcurrentOperationLimitReached', 'message': 'Another operation is in progress.'}})
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'), location_body={
        'objectType': 'OperationJobExtendedInfo', 'jobId': VAULT_PATH + '/backupJobs/' + JOB_ID})
    result, failed = arm.run(module, dict(ARGS, busy_retries=2, busy_delay=11))
    assert not failed, result
    assert result['changed'] is True and result['job_id'] == JOB_ID
    assert len(arm.calls('POST', '/restore')) == 2
    assert 11 in arm.clock.sleeps
    assert 'attempt 1 of 3, next in 11 s' in arm.progress[0]


def test_progress_line_at_every_poll_says_status_subtask_and_time(arm):
    listed(arm)
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'), location_body={
        'objectType': 'OperationJobExtendedInfo', 'jobId': VAULT_PATH + '/backupJobs/' + JOB_ID})
    running = job('job_restore_inprogress')
    running['properties']['extendedInfo']['subTasks'][0]['taskProgress'] = '45%'
    for body in (running, running, JOB_DONE):
        arm.job(body)
    result, failed = arm.run(module, dict(ARGS, wait=True, poll_interval=5, wait_timeout=600))
    assert not failed, result
    polls = [line for line in arm.progress if line.startswith('restore job ')]
    assert len(polls) == 3  # one line per poll, the unchanged second one too
    assert polls[0].startswith('restore job %s: InProgress, Trigger Restore InProgress (45%%);' % JOB_ID)
    assert 'elapsed, ' in polls[0] and polls[0].endswith('left before wait_timeout')
    assert polls[-1].startswith('restore job %s: Completed' % JOB_ID)
    assert arm.progress[:3] == polls and len(arm.progress) == 3 + 7  # then the summary's 7 lines


def test_the_task_ends_with_a_summary_of_what_happened(arm):
    listed(arm)
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'), location_body={
        'objectType': 'OperationJobExtendedInfo', 'jobId': VAULT_PATH + '/backupJobs/' + JOB_ID})
    arm.job(JOB_DONE)
    result, failed = arm.run(module, dict(ARGS, wait=True))
    assert not failed, result
    assert arm.progress[-7:] == module.summary_lines(result, check_mode=False)
    assert arm.progress[-7] == result['msg'] and 'Restore of ' in result['msg']
    assert arm.progress[-6].startswith('Recovery point: %s taken ' % result['recovery_point']['recovery_point_id'])
    assert arm.progress[-5] == 'Target (database): ' + result['destination']
    assert arm.progress[-3:] == ['Job: ' + JOB_ID, 'Status: Completed, duration ' + result['job']['duration'],
                                 'Granted: nothing']


SUMMARY_BASE = {
    'changed': True, 'msg': 'Restore started.', 'source_datastore': 'VaultStore', 'destination': 'db on srv',
    'request': {'restoreTargetInfo': {'objectType': 'RestoreTargetInfo'}}, 'backup_instance': {'name': 'bi1'},
    'recovery_point': {'recovery_point_id': 'rp1', 'recovery_point_time': '2026-12-01T01:00:00Z'}, 'job_id': 'j1',
}


@pytest.mark.parametrize('change, check_mode, line, expected', [
    ({}, False, 1, 'Recovery point: rp1 taken 2026-12-01T01:00:00Z (VaultStore), backup instance bi1'),
    ({}, False, 5, 'Status: Started'),
    ({'job': {'status': 'Completed', 'duration': '0:00:10'}}, False, 5, 'Status: Completed, duration 0:00:10'),
    ({}, True, 5, 'Status: NotStarted (check mode)'),
    ({'changed': False}, False, 4, 'Job: j1 (started by an earlier run)'),
    ({'job_id': None}, True, 4, 'Job: none'),
    ({'request': {'restoreTargetInfo': {'objectType': 'RestoreFilesTargetInfo'}}}, False, 2, 'Target (files): db on srv'),
    ({}, False, 3, "Region: the vault's own region"),
    ({'cross_region': {'secondary_region': 'northeurope', 'source_region': 'westeurope'}}, False, 3,
     'Region: cross-region restore from the secondary region northeurope (the vault is in westeurope)'),
    ({'permissions': {'granted': [{'role': 'Reader', 'scope': '/s/srv'}, {'role': 'Key Vault Secrets User', 'scope': '/s/kv'}]}},
     False, 6, 'Granted: Reader on /s/srv; Key Vault Secrets User on /s/kv'),
    ({'permissions': {'granted': [{'role': 'Reader', 'scope': '/s/srv'}]}}, True, 6, 'Would grant: Reader on /s/srv'),
    ({}, False, 6, 'Granted: nothing'),
])
def test_summary_lines(change, check_mode, line, expected):
    assert module.summary_lines(dict(SUMMARY_BASE, **change), check_mode)[line] == expected


def test_no_progress_lines_when_turned_off(arm):
    listed(arm)
    arm.lro(BI_PATH + '/restore', load('operation_restore_succeeded'), location_body={
        'objectType': 'OperationJobExtendedInfo', 'jobId': VAULT_PATH + '/backupJobs/' + JOB_ID})
    arm.job(JOB_DONE)
    result, failed = arm.run(module, dict(ARGS, wait=True, progress=False))
    assert not failed, result
    assert arm.progress == []


@pytest.mark.parametrize('seconds, text', [(0, '0s'), (59.6, '1m00s'), (61, '1m01s'), (3600, '1h00m00s'),
                                           (7322, '2h02m02s')])
def test_durations_in_progress_lines(seconds, text):
    assert module.progress_line({'job_id': 'j', 'status': 'InProgress'}, seconds, 0).endswith(
        '%s elapsed, 0s left before wait_timeout' % text)
