# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""dataprotection_job_info: one job by GUID or ARM id, paged lists with client-side filters, bad input."""

from __future__ import annotations

import pytest

from ansible_collections.azure_backup.dataprotection.plugins.modules import dataprotection_job_info as module

from ansible_collections.azure_backup.dataprotection.tests.unit.plugins.modules.dp_fakes import (
    BI_NAME, FLEX_BI_PATH, FLEX_SERVER, JOB_ID, SOURCE_DB, TARGET_DB, VAULT_ARGS, VAULT_PATH, FakeArm,
    assert_no_leak, deep, load,
)

G2 = '0d6f3a8e-7a43-4c9b-9d8c-9b3d1a4c2e11'
G3 = '7f1c2b3a-4d5e-4f60-8a9b-0c1d2e3f4a5b'
G4 = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d'
G5 = 'b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e'


@pytest.fixture
def arm(rsps, monkeypatch, exit_fail):  # pylint: disable=unused-argument
    return FakeArm(rsps, monkeypatch)


def job(guid, fixture='job_restore_completed', start='2024-05-01T10:00:00.1234567Z', operation='Restore',
        flexible=False):
    body = deep(load(fixture))
    body['name'] = guid
    body['id'] = VAULT_PATH + '/backupJobs/' + guid
    props = body['properties']
    props['startTime'] = start
    props['operation'] = props['operationCategory'] = operation
    if flexible:
        props['backupInstanceId'] = FLEX_BI_PATH
        props['backupInstanceFriendlyName'] = 'pgflex01'
        props['dataSourceId'] = FLEX_SERVER
        props['dataSourceType'] = 'Microsoft.DBforPostgreSQL/flexibleServers'
    if operation != 'Restore':
        props['extendedInfo']['sourceRecoverPoint'] = None
        props['extendedInfo']['recoveryDestination'] = None
    return body


PAGES = [
    [job(JOB_ID, start='2024-05-01T10:00:00Z'), job(G2, 'job_restore_failed', start='2024-05-03T08:00:00Z')],
    [job(G3, 'job_restore_inprogress', start='2024-05-04T09:00:00Z', operation='Backup', flexible=True)],
    [],  # an empty page in the middle happens; the nextLink must still be followed
    [job(G4, start='2024-04-20T00:00:00Z', flexible=True), job(G5, 'job_restore_inprogress', start='2024-05-05T00:00:00Z')],
]


def ids(result):
    return [j['job_id'] for j in result['jobs']]


def test_all_jobs_over_pages_newest_first(arm):
    arm.jobs(PAGES)
    result, failed = arm.run(module, VAULT_ARGS)
    assert not failed and result['changed'] is False
    assert ids(result) == [G5, G3, G2, JOB_ID, G4]
    assert len(arm.calls('GET', '/backupJobs')) == 4
    assert 'job' not in result


@pytest.mark.parametrize('filters,expected', [
    ({'operation': 'restore'}, [G5, G2, JOB_ID, G4]),
    ({'operation': 'Backup'}, [G3]),
    ({'status': ['Failed']}, [G2]),
    ({'status': ['inprogress', 'COMPLETED']}, [G5, G3, JOB_ID, G4]),
    ({'backup_instance_name': BI_NAME}, [G5, G2, JOB_ID]),
    ({'datasource_id': FLEX_SERVER.lower()}, [G3, G4]),
    ({'start_time': '2024-05-03T08:00:00Z'}, [G5, G3, G2]),
    ({'end_time': '2024-05-01T12:00:00+02:00'}, [JOB_ID, G4]),
    ({'start_time': '2024-05-01', 'end_time': '2024-05-04', 'operation': 'Restore', 'status': ['Completed', 'Failed']},
     [G2, JOB_ID]),
])
def test_filters_over_all_pages(arm, filters, expected):
    arm.jobs(PAGES)
    result, failed = arm.run(module, dict(VAULT_ARGS, **filters))
    assert not failed, result
    assert ids(result) == expected


def test_normalised_fields(arm):
    arm.jobs(PAGES)
    result, failed = arm.run(module, dict(VAULT_ARGS, status=['Failed']))
    assert not failed
    failed_job = result['jobs'][0]
    assert failed_job == {
        'job_id': G2, 'id': VAULT_PATH + '/backupJobs/' + G2, 'operation': 'Restore', 'operation_category': 'Restore',
        'status': 'Failed', 'is_terminal': True, 'succeeded': False, 'start_time': '2024-05-03T08:00:00Z',
        'end_time': '2021-07-08T20:49:02.1209734Z', 'duration': 'PT5M43.1188607S',
        'backup_instance_id': VAULT_PATH + '/backupInstances/' + BI_NAME, 'backup_instance_name': BI_NAME,
        'backup_instance_friendly_name': 'testpostgresql/empdb11', 'datasource_id': SOURCE_DB,
        'datasource_name': 'empdb11', 'datasource_type': 'Microsoft.DBforPostgreSQL/servers/databases',
        'vault_name': 'TestBkpVault', 'restore_type': None, 'rehydration_priority': None,
        'source_recovery_point': {'id': 'eb006fde78cb47198be5a320fbe45e9b', 'time': '2021-10-21T16:31:16.8316716Z'},
        'recovery_destination': TARGET_DB, 'data_transferred_bytes': None,
        'sub_tasks': [{'id': 1, 'name': 'Trigger Restore', 'status': 'Failed', 'progress': None}],
        'errors': [{'code': 'UserErrorDBUserAuthFailed',
                    'message': 'The database user could not be authenticated on the target server.',
                    'recommended_actions': ['Check the user id and password in the connection string of the Key Vault '
                                            'secret, and that the user can log in to the server.'],
                    'is_retryable': False, 'is_user_error': True}],
        'warnings': [],
    }


@pytest.mark.parametrize('job_id', [JOB_ID, JOB_ID.upper(), VAULT_PATH + '/backupJobs/' + JOB_ID,
                                    VAULT_PATH.replace('TestBkpVault', 'testbkpvault') + '/backupJobs/' + JOB_ID + '/'])
def test_one_job_by_guid_or_arm_id(arm, job_id):
    arm.rsps.add('GET', 'https://management.example.test%s/backupJobs/%s' % (VAULT_PATH, job_id.rstrip('/').rsplit('/', 1)[-1]),
                 json=load('job_restore_inprogress'))
    result, failed = arm.run(module, dict(VAULT_ARGS, job_id=job_id))
    assert not failed, result
    assert result['job']['job_id'] == JOB_ID
    assert result['job']['is_terminal'] is False
    assert result['job']['end_time'] is None  # the service's 0001-01-01 "not yet"
    assert result['jobs'] == [result['job']]


def test_unknown_job_is_a_clear_failure(arm):
    arm.get_404(VAULT_PATH + '/backupJobs/' + G2, code='ResourceNotFound', message='Job not found')
    result, failed = arm.run(module, dict(VAULT_ARGS, job_id=G2))
    assert failed
    assert result['msg'].startswith("Get job %s: ResourceNotFound: no job '%s' in vault 'TestBkpVault' (resource group "
                                    "'testBkpVaultRG')." % (G2, G2))
    assert result['error']['status'] == 404


@pytest.mark.parametrize('extra,message', [
    ({'job_id': 'not-a-guid'}, "job_id 'not-a-guid' is neither a job GUID nor a job ARM id"),
    ({'job_id': VAULT_PATH.replace('TestBkpVault', 'OtherVault') + '/backupJobs/' + JOB_ID},
     "is a job of vault 'OtherVault', not of vault_name 'TestBkpVault'"),
    ({'job_id': JOB_ID, 'status': ['Failed']}, 'mutually exclusive'),
    ({'start_time': 'soon'}, "start_time 'soon' is not a valid date/time"),
    ({'start_time': '2024-05-02', 'end_time': '2024-05-01'}, 'is after end_time'),
    ({'datasource_id': 'empdb11'}, "datasource_id 'empdb11' is not a valid ARM id"),
])
def test_bad_input_fails_before_any_call(arm, extra, message):
    result, failed = arm.run(module, dict(VAULT_ARGS, **extra))
    assert failed
    assert message in result['msg']
    assert not arm.rsps.calls


def test_check_mode_and_no_leak(arm):
    arm.jobs(PAGES)
    result, failed = arm.run(module, dict(VAULT_ARGS, operation='Restore'), check_mode=True)
    assert not failed and result['changed'] is False
    assert len(result['jobs']) == 4
    assert_no_leak(result)
