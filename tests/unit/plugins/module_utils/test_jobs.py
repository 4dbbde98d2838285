# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Job normalisation, client-side filters and finding an existing restore job."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.azure_backup.dataprotection.plugins.module_utils import _jobs
from ansible_collections.azure_backup.dataprotection.plugins.module_utils._recovery_points import parse_time

SUB = '11111111-2222-3333-4444-555555555555'
VAULT = f'/subscriptions/{SUB}/resourceGroups/testBkpVaultRG/providers/Microsoft.DataProtection/backupVaults/TestBkpVault'
BI_NAME = 'testpostgresql-empdb11-957d23b1-c679-4c94-ade6-c4d34635e149'
BI_ID = VAULT + '/backupInstances/' + BI_NAME
TARGET_DB = (f'/subscriptions/{SUB}/resourceGroups/targetrg/providers/Microsoft.DBforPostgreSQL/servers/'
             'targetossserver/databases/emprestored21')
RP = 'eb006fde78cb47198be5a320fbe45e9b'


def raw_job(guid, status='Completed', operation='Restore', rp=RP, destination=TARGET_DB, bi_id=BI_ID,
            start='2021-08-26T07:12:09.940517Z', end='2021-08-26T07:18:15.6815066Z', **extra):
    """A restore job as the live service returns it (D-DISKREST shape, adapted to PostgreSQL)."""
    job = {
        'properties': {
            'activityID': '2881cc22-f527-4af4-9b34-46c6c7b72076-Ibz',
            'subscriptionId': SUB,
            'backupInstanceId': bi_id,
            'policyId': VAULT + '/backupPolicies/osspol3',
            'dataSourceId': (f'/subscriptions/{SUB}/resourceGroups/sourcerg/providers/Microsoft.DBforPostgreSQL/servers/'
                             'testpostgresql/databases/empdb11'),
            'vaultName': 'TestBkpVault',
            'backupInstanceFriendlyName': 'testpostgresql/empdb11',
            'policyName': 'osspol3',
            'sourceResourceGroup': 'sourcerg',
            'dataSourceSetName': 'testpostgresql',
            'dataSourceName': 'empdb11',
            'sourceDataStoreName': None,
            'destinationDataStoreName': None,
            'progressEnabled': False,
            'etag': 'W/"datetime\'2021-08-26T07%3A18%3A16.157629Z\'"',
            'sourceSubscriptionID': SUB,
            'dataSourceLocation': 'westus',
            'startTime': start,
            'endTime': end,
            'dataSourceType': 'Microsoft.DBforPostgreSQL/servers/databases',
            'operationCategory': operation,
            'operation': operation,
            'status': status,
            'restoreType': 'AlternateLocation' if operation == 'Restore' else None,
            'isUserTriggered': True,
            'rehydrationPriority': None,
            'supportedActions': [''],
            'duration': 'PT6M5.7409896S',
            'progressUrl': None,
            'errorDetails': None,
            'extendedInfo': {
                'backupInstanceState': None,
                'dataTransferedInBytes': 52428800,
                'targetRecoverPoint': None,
                'sourceRecoverPoint': {'recoveryPointID': rp, 'recoveryPointTime': '2021-08-25T09:03:11.6889015Z'},
                'recoveryDestination': destination,
                'subTasks': [{'taskId': 1, 'taskName': 'Trigger Restore', 'taskStatus': 'Completed',
                              'taskProgress': None, 'additionalDetails': None}],
                'additionalDetails': None,
            },
        },
        'id': VAULT + '/backupJobs/' + guid,
        'name': guid,
        'type': 'Microsoft.DataProtection/BackupVaults/backupJobs',
    }
    job['properties'].update(extra)
    return job


G1 = '3bc62c80-913f-47fa-b829-b7df476682be'
G2 = 'c4bd49a1-0645-4eec-b207-feb818962852'
G3 = '0d6f3a8e-7a43-4c9b-9d8c-9b3d1a4c2e11'


def test_normalize_job():
    job = _jobs.normalize_job(raw_job(G1))
    assert job['job_id'] == G1
    assert job['id'].endswith('/backupJobs/' + G1)
    assert job['operation'] == 'Restore' and job['operation_category'] == 'Restore'
    assert job['status'] == 'Completed' and job['is_terminal'] is True and job['succeeded'] is True
    assert job['backup_instance_id'] == BI_ID
    assert job['backup_instance_name'] == BI_NAME
    assert job['datasource_name'] == 'empdb11'
    assert job['datasource_type'] == 'Microsoft.DBforPostgreSQL/servers/databases'
    assert job['vault_name'] == 'TestBkpVault'
    assert job['restore_type'] == 'AlternateLocation'
    assert job['source_recovery_point'] == {'id': RP, 'time': '2021-08-25T09:03:11.6889015Z'}
    assert job['recovery_destination'] == TARGET_DB
    assert job['data_transferred_bytes'] == 52428800
    assert job['duration'] == 'PT6M5.7409896S'
    assert job['sub_tasks'] == [{'id': 1, 'name': 'Trigger Restore', 'status': 'Completed', 'progress': None}]
    assert job['errors'] == [] and job['warnings'] == []


def test_data_transferred_both_spellings():
    raw = raw_job(G1)
    ext = raw['properties']['extendedInfo']
    del ext['dataTransferedInBytes']
    ext['dataTransferredInBytes'] = 1024.0
    assert _jobs.normalize_job(raw)['data_transferred_bytes'] == 1024
    ext['dataTransferredInBytes'] = None
    assert _jobs.normalize_job(raw)['data_transferred_bytes'] is None


def test_failed_job_errors_and_warnings():
    raw = raw_job(G1, status='Failed', errorDetails=[{
        'code': 'UserErrorDBUserAuthFailed',
        'message': 'The user could not be authenticated on the target server.',
        'recommendedAction': ['Check the user name and password in the Key Vault secret.'],
        'isRetryable': False, 'isUserError': True, 'target': '', 'properties': {'ActivityId': 'abc'},
    }])
    raw['properties']['extendedInfo']['warningDetails'] = [
        {'resourceName': 'emprestored21', 'warning': {'code': 'W1', 'message': 'Grants were not restored.'}}]
    job = _jobs.normalize_job(raw)
    assert job['is_terminal'] is True and job['succeeded'] is False
    assert job['errors'] == [{'code': 'UserErrorDBUserAuthFailed',
                              'message': 'The user could not be authenticated on the target server.',
                              'recommended_actions': ['Check the user name and password in the Key Vault secret.'],
                              'is_retryable': False, 'is_user_error': True}]
    assert job['warnings'] == [{'resource_name': 'emprestored21', 'code': 'W1', 'message': 'Grants were not restored.'}]


@pytest.mark.parametrize('status,terminal,succeeded', [
    ('InProgress', False, False), ('Started', False, False), ('Cancelling', False, False), ('Paused', False, False),
    ('Completed', True, True), ('Succeeded', True, True), ('CompletedWithWarnings', True, True),
    ('completed', True, True), ('Failed', True, False), ('Cancelled', True, False), ('Canceled', True, False),
    ('SomethingNew', False, False),
])
def test_status_classification(status, terminal, succeeded):
    job = _jobs.normalize_job(raw_job(G1, status=status))
    assert job['is_terminal'] is terminal
    assert job['succeeded'] is succeeded


def test_zero_end_time_is_none():
    job = _jobs.normalize_job(raw_job(G1, status='InProgress', end='0001-01-01T00:00:00Z'))
    assert job['end_time'] is None


@pytest.mark.parametrize('jobs,expected', [
    ([raw_job(G1, status='InProgress')], G1),
    ([raw_job(G1, status='Completed')], G1),
    ([raw_job(G1, status='Failed')], None),
    ([raw_job(G1, status='Cancelled')], None),
    ([raw_job(G1, status='Cancelling')], None),
    ([raw_job(G1, status='BrandNewState')], G1),                        # unknown = still running
    ([raw_job(G1, operation='Backup')], None),
    ([raw_job(G1, rp='otherpoint')], None),
    ([raw_job(G1, destination=TARGET_DB.replace('emprestored21', 'other'))], None),
    ([raw_job(G1, bi_id=VAULT + '/backupInstances/another-bi')], None),
    ([raw_job(G1, destination=TARGET_DB.upper() + '/')], G1),            # case and trailing slash tolerated
    ([raw_job(G1, rp=RP.upper())], G1),
    ([raw_job(G1, start='2021-08-26T07:00:00Z'), raw_job(G2, start='2021-08-27T07:00:00Z'),
      raw_job(G3, start='2021-08-25T07:00:00Z')], G2),                  # the most recent wins
    ([raw_job(G1, status='Failed', start='2021-08-28T07:00:00Z'), raw_job(G2, start='2021-08-27T07:00:00Z')], G2),
])
def test_find_restore_job(jobs, expected):
    found = _jobs.find_restore_job(iter(jobs), BI_ID, RP, TARGET_DB)
    assert (found['job_id'] if found else None) == expected


def test_find_restore_job_by_backup_instance_name():
    assert _jobs.find_restore_job(iter([raw_job(G1)]), BI_NAME, RP, TARGET_DB)['job_id'] == G1


def test_find_restore_job_files_destination():
    dest = 'https://testossstorageaccount.blob.core.windows.net/testcontainerrestore/empdb11-drill'
    jobs = [raw_job(G1, destination=dest)]
    assert _jobs.find_restore_job(iter(jobs), BI_ID, RP, dest + '/')['job_id'] == G1
    assert _jobs.find_restore_job(iter(jobs), BI_ID, RP, dest + '2') is None


JOBS = [
    raw_job(G1, status='Completed', start='2024-05-01T10:00:00Z'),
    raw_job(G2, status='Failed', start='2024-05-02T10:00:00Z'),
    raw_job(G3, status='InProgress', operation='Backup', start='2024-05-03T10:00:00Z', operationCategory='Backup'),
]


@pytest.mark.parametrize('filters,expected', [
    ({}, [G1, G2, G3]),
    ({'operation': 'restore'}, [G1, G2]),
    ({'operation': 'Backup'}, [G3]),
    ({'statuses': ['Failed', 'inprogress']}, [G2, G3]),
    ({'backup_instance': BI_NAME}, [G1, G2, G3]),
    ({'backup_instance': 'other'}, []),
    ({'datasource_id': JOBS[0]['properties']['dataSourceId'].lower()}, [G1, G2, G3]),
    ({'start_time': parse_time('2024-05-02')}, [G2, G3]),
    ({'end_time': parse_time('2024-05-02T10:00:00Z')}, [G1, G2]),
    ({'start_time': parse_time('2024-05-02'), 'end_time': parse_time('2024-05-02T23:59:59Z')}, [G2]),
])
def test_iter_jobs_filters(filters, expected):
    assert [j['job_id'] for j in _jobs.iter_jobs(iter(copy.deepcopy(JOBS)), **filters)] == expected
