# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Deadline, long-running operation polling (reference §4) and the job waiter."""

from __future__ import annotations

import pytest
from responses import matchers

from ansible_collections.azure_backup.dataprotection.plugins.module_utils._errors import (
    JOB_WAIT_TIMED_OUT, OPERATION_TIMED_OUT, DataProtectionError,
)
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._lro import (
    Deadline, wait_for_job, wait_for_operation,
)

from ansible_collections.azure_backup.dataprotection.tests.unit.conftest import ARM, SUBSCRIPTION, FakeClock

VAULT = (f'/subscriptions/{SUBSCRIPTION}/resourceGroups/testBkpVaultRG/providers/Microsoft.DataProtection/'
         'backupVaults/TestBkpVault')
BI = VAULT + '/backupInstances/testpostgresql-empdb11-957d23b1'
OP_ID = 'ZmZkNmQ5OTMtNDJiNC00ZGQ2LWE2MGYtZmIzNjRjZWEwZDc3OzNmMjQ0YTI0LTQ3NmQtNGQ1Ni05ZDAyLWVlNTdhMzI3MDkzZA=='
LOC = f'{ARM}/subscriptions/{SUBSCRIPTION}/providers/Microsoft.DataProtection/locations/westus'
STATUS_URL = f'{LOC}/operationStatus/{OP_ID}?api-version=2024-04-01'
RESULT_URL = f'{LOC}/operationResults/{OP_ID}?api-version=2024-04-01'
JOB_GUID = 'c2ec5b93-2b41-4b1c-9f4b-5e1b0f0a7d21'
JOB_ARM_ID = VAULT + '/backupJobs/' + JOB_GUID
ASYNC_HEADERS = {'Azure-AsyncOperation': STATUS_URL, 'Location': RESULT_URL, 'Retry-After': '10'}
API = [matchers.query_param_matcher({'api-version': '2024-04-01'})]


def status_body(status, **extra):
    body = {'id': f'/subscriptions/{SUBSCRIPTION}/providers/Microsoft.DataProtection/locations/westus/operationStatus/'
                  + OP_ID, 'name': OP_ID, 'status': status, 'startTime': '2021-04-22T09:03:12.5476767Z',
            'endTime': '0001-01-01T00:00:00Z'}
    body.update(extra)
    return body


def trigger(rsps, client, status=202, headers=None, body=None):
    """POST /restore and return its response, as pg_restore would."""
    rsps.post(ARM + BI + '/restore', status=status, headers=ASYNC_HEADERS if headers is None else headers,
              json=body)
    return client.post(BI + '/restore', {'objectType': 'AzureBackupRecoveryPointBasedRestoreRequest'})


@pytest.fixture
def clock():
    return FakeClock()


def deadline(clock, seconds=600):
    return Deadline(seconds, clock=clock, sleep=clock.sleep)


# ---------------------------------------------------------------- Deadline

def test_deadline_never_sleeps_past_its_end(clock):
    limit = deadline(clock, 10)
    assert limit.sleep(4) == 4 and limit.remaining() == 6
    assert limit.sleep(30) == 6 and limit.expired()
    assert limit.sleep(5) == 0 and clock.sleeps == [4, 6]


def test_deadline_none_never_expires(clock):
    limit = deadline(clock, None)
    limit.sleep(1e6)
    assert not limit.expired()


# ---------------------------------------------------------------- operations

def test_inprogress_then_succeeded_with_the_job_id_in_the_status(rsps, make_client, clock):
    """A Succeeded status that names the job is the end: its Location answer would say the same (not read)."""
    client = make_client()
    response = trigger(rsps, client)
    rsps.get(STATUS_URL, json=status_body('Inprogress'), headers={'Retry-After': '5'}, match=API)
    rsps.get(STATUS_URL, json=status_body('Succeeded', endTime='2021-04-22T09:03:42Z', properties={
        'objectType': 'OperationJobExtendedInfo', 'jobId': JOB_ARM_ID}), match=API)
    result = wait_for_operation(client, response, deadline(clock), 'Trigger restore')
    assert result == {'status': 'Succeeded', 'operation_id': OP_ID, 'job_id': JOB_GUID,
                      'result': {'objectType': 'OperationJobExtendedInfo', 'jobId': JOB_ARM_ID}}
    assert clock.sleeps == [10.0, 5.0]  # Retry-After of the POST, then of the poll
    assert [c.request.method for c in rsps.calls] == ['POST', 'GET', 'GET']
    assert all(c.request.headers['Authorization'].startswith('Bearer ') for c in rsps.calls)


@pytest.mark.parametrize('result_needed, reads_location', [(True, True), (False, False)])
def test_succeeded_without_a_job_id_reads_the_location_when_the_result_is_needed(rsps, make_client, clock,
                                                                                 result_needed, reads_location):
    client = make_client()
    response = trigger(rsps, client)
    rsps.get(STATUS_URL, json=status_body('Succeeded'), match=API)
    if reads_location:
        rsps.get(RESULT_URL, json={'objectType': 'OperationJobExtendedInfo', 'jobId': JOB_GUID}, match=API)
    result = wait_for_operation(client, response, deadline(clock), 'Trigger restore', result_needed=result_needed)
    assert result['job_id'] == (JOB_GUID if reads_location else None)
    assert len(rsps.calls) == (3 if reads_location else 2)


def test_synchronous_200(rsps, make_client, clock):
    client = make_client()
    response = trigger(rsps, client, status=200, headers={},
                       body={'objectType': 'OperationJobExtendedInfo', 'jobId': JOB_ARM_ID})
    result = wait_for_operation(client, response, deadline(clock), 'Trigger restore')
    assert result['job_id'] == JOB_GUID and result['operation_id'] is None and clock.sleeps == []


def test_location_only(rsps, make_client, clock):
    client = make_client()
    response = trigger(rsps, client, headers={'Location': RESULT_URL})
    rsps.get(RESULT_URL, status=202, headers={'Location': RESULT_URL, 'Retry-After': '1'})
    rsps.get(RESULT_URL, status=202, headers={'Location': RESULT_URL})
    rsps.get(RESULT_URL, json={'objectType': 'OperationJobExtendedInfo', 'jobId': JOB_GUID})
    result = wait_for_operation(client, response, deadline(clock), 'Trigger restore', poll_interval=3)
    assert result['job_id'] == JOB_GUID and result['operation_id'] == OP_ID
    assert clock.sleeps == [3, 1.0, 3]  # no Retry-After on the POST: the poll interval


@pytest.mark.parametrize('job_id', [JOB_GUID, JOB_ARM_ID])
def test_job_id_from_status_properties(rsps, make_client, clock, job_id):
    client = make_client()
    response = trigger(rsps, client, headers={'Azure-AsyncOperation': STATUS_URL})
    rsps.get(STATUS_URL, json=status_body('SUCCEEDED', properties={'objectType': 'OperationJobExtendedInfo',
                                                                   'jobId': job_id}))
    result = wait_for_operation(client, response, deadline(clock), 'Trigger restore')
    assert result['job_id'] == JOB_GUID and result['result']['jobId'] == job_id


def test_validate_succeeded_without_properties(rsps, make_client, clock):
    client = make_client()
    rsps.post(ARM + BI + '/validateRestore', status=202, headers=ASYNC_HEADERS)
    response = client.post(BI + '/validateRestore', {'restoreRequestObject': {}})
    rsps.get(STATUS_URL, json=status_body('inprogress'))
    rsps.get(STATUS_URL, json=status_body('Succeeded'))
    rsps.get(RESULT_URL, status=204)
    result = wait_for_operation(client, response, deadline(clock), 'Validate restore')
    assert result == {'status': 'Succeeded', 'operation_id': OP_ID, 'job_id': None, 'result': {}}


USER_FACING = {
    'code': 'UserErrorRestoreToLowerVersion',
    'message': 'Restore to a server with a lower PostgreSQL version than the source is not supported.',
    'recommendedAction': ['Restore to a server with the same or a higher version.'],
    'isRetryable': False, 'isUserError': True, 'target': '', 'properties': {'ActivityId': 'a-1'},
}


def test_failed_with_user_facing_error(rsps, make_client, clock):
    client = make_client()
    response = trigger(rsps, client)
    rsps.get(STATUS_URL, json=status_body('Failed', error={
        'code': 'UserErrorRestoreToLowerVersion', 'message': USER_FACING['message'],
        'additionalInfo': [{'type': 'UserFacingError', 'info': USER_FACING}]}),
        headers={'x-ms-request-id': 'poll-req'})
    with pytest.raises(DataProtectionError) as info:
        wait_for_operation(client, response, deadline(clock), 'Trigger restore of emprestored21')
    err = info.value
    assert err.code == 'UserErrorRestoreToLowerVersion' and err.operation_id == OP_ID
    assert err.recommended_actions == ['Restore to a server with the same or a higher version.']
    assert err.request_id == 'poll-req' and err.is_user_error is True
    assert str(err).startswith('Trigger restore of emprestored21: UserErrorRestoreToLowerVersion: Restore to a server')


def test_canceled(rsps, make_client, clock):
    client = make_client()
    response = trigger(rsps, client)
    rsps.get(STATUS_URL, json=status_body('Canceled'))
    with pytest.raises(DataProtectionError) as info:
        wait_for_operation(client, response, deadline(clock), 'Trigger restore')
    assert info.value.code == 'OperationCanceled' and info.value.operation_id == OP_ID


def test_deadline_expiry_carries_the_operation_id(rsps, make_client, clock):
    client = make_client()
    response = trigger(rsps, client)
    for dummy in range(3):
        rsps.get(STATUS_URL, json=status_body('Inprogress'), headers={'Retry-After': '10'})
    with pytest.raises(DataProtectionError) as info:
        wait_for_operation(client, response, deadline(clock, 25), 'Trigger restore')
    err = info.value
    assert err.code == OPERATION_TIMED_OUT and err.operation_id == OP_ID
    assert 'may still complete' in str(err) and 'wait_timeout' in str(err)
    assert clock.sleeps == [10.0, 10.0, 5.0]  # the last wait is cut to the deadline, then one last poll
    assert err.fail_kwargs()['error']['operation_id'] == OP_ID


def test_poll_5xx_is_retried_by_the_client(rsps, make_client, clock):
    client = make_client()
    response = trigger(rsps, client, headers={'Azure-AsyncOperation': STATUS_URL})
    rsps.get(STATUS_URL, status=503)
    rsps.get(STATUS_URL, status=429, headers={'Retry-After': '2'})
    rsps.get(STATUS_URL, json=status_body('Succeeded', properties={'jobId': JOB_GUID}))
    assert wait_for_operation(client, response, deadline(clock), 'Trigger restore')['job_id'] == JOB_GUID
    assert client.slept == [0.75, 3.0] and len(client.warnings) == 2  # 429: Retry-After 2 * (1 + 0.5)


def test_202_without_a_url_to_follow(rsps, make_client, clock):
    client = make_client()
    response = trigger(rsps, client, headers={'Retry-After': '10'})
    with pytest.raises(DataProtectionError, match='InvalidResponse: .*no Azure-AsyncOperation or Location'):
        wait_for_operation(client, response, deadline(clock), 'Trigger restore')


def test_an_error_answer_raises_at_once(rsps, make_client, clock):
    client = make_client()
    response = trigger(rsps, client, status=409, headers={}, body={'error': {
        'code': 'UserErrorMaxConcurrentOperationLimitReached', 'message': 'An operation is already in progress.'}})
    with pytest.raises(DataProtectionError, match='UserErrorMaxConcurrentOperationLimitReached'):
        wait_for_operation(client, response, deadline(clock), 'Trigger restore')


# ---------------------------------------------------------------- jobs

def job(status, sub_tasks=()):
    return {'id': JOB_ARM_ID, 'name': JOB_GUID, 'type': 'Microsoft.DataProtection/Backupvaults/backupJobs',
            'properties': {'operation': 'Restore', 'operationCategory': 'Restore', 'status': status,
                           'dataSourceName': 'empdb11', 'startTime': '2021-04-22T09:04:00Z',
                           'extendedInfo': {'subTasks': [
                               {'taskId': i, 'taskName': name, 'taskStatus': state, 'additionalDetails': None}
                               for i, (name, state) in enumerate(sub_tasks)]}}}


def test_wait_for_job_reports_progress_changes(rsps, make_client, clock):
    for answer in (job('InProgress', [('Trigger Restore', 'InProgress')]),
                   job('InProgress', [('Trigger Restore', 'InProgress')]),
                   job('InProgress', [('Trigger Restore', 'Completed'), ('Restore Data', 'InProgress')]),
                   job('Completed', [('Trigger Restore', 'Completed'), ('Restore Data', 'Completed')])):
        rsps.get(ARM + JOB_ARM_ID, json=answer, match=API)
    seen = []
    final = wait_for_job(make_client(), JOB_ARM_ID, deadline(clock), poll_interval=15, on_progress=seen.append)
    assert final['properties']['status'] == 'Completed'
    assert seen == [
        {'job_id': JOB_GUID, 'status': 'InProgress', 'sub_task': 'Trigger Restore', 'sub_task_status': 'InProgress',
         'sub_task_progress': None},
        {'job_id': JOB_GUID, 'status': 'InProgress', 'sub_task': 'Restore Data', 'sub_task_status': 'InProgress',
         'sub_task_progress': None},
        {'job_id': JOB_GUID, 'status': 'Completed', 'sub_task': 'Restore Data', 'sub_task_status': 'Completed',
         'sub_task_progress': None},
    ]
    assert clock.sleeps == [15, 15, 15]


@pytest.mark.parametrize('status', ['Failed', 'Cancelled', 'CompletedWithWarnings', 'succeeded'])
def test_terminal_jobs_are_returned(rsps, make_client, clock, status):
    rsps.get(ARM + JOB_ARM_ID, json=job(status))
    assert wait_for_job(make_client(), JOB_ARM_ID, deadline(clock))['properties']['status'] == status


def test_job_wait_timeout(rsps, make_client, clock):
    for dummy in range(3):
        rsps.get(ARM + JOB_ARM_ID, json=job('InProgress'))
    with pytest.raises(DataProtectionError) as info:
        wait_for_job(make_client(), JOB_ARM_ID, deadline(clock, 20), poll_interval=10)
    assert info.value.code == JOB_WAIT_TIMED_OUT and info.value.job_id == JOB_GUID
    assert 'still InProgress' in str(info.value) and 'dataprotection_job_info' in str(info.value)


def test_job_not_visible_yet_is_tolerated(rsps, make_client, clock):
    rsps.get(ARM + JOB_ARM_ID, status=404, json={'error': {'code': 'ResourceNotFound', 'message': 'no job'}})
    rsps.get(ARM + JOB_ARM_ID, json=job('Completed'))
    assert wait_for_job(make_client(), JOB_ARM_ID, deadline(clock), poll_interval=5)['name'] == JOB_GUID


def test_job_never_found(rsps, make_client, clock):
    for dummy in range(4):
        rsps.get(ARM + JOB_ARM_ID, status=404, json={'error': {'code': 'ResourceNotFound', 'message': 'no job'}})
    with pytest.raises(DataProtectionError, match='ResourceNotFound'):
        wait_for_job(make_client(), JOB_ARM_ID, deadline(clock), poll_interval=5)
