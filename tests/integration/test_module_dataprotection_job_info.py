# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""dataprotection_job_info on the emulator: one job (by GUID and by ARM id) with its normalised fields, sub-tasks and
the error details of a failed job; the list with every filter (operation, status, backup instance, datasource,
time window). Check mode, real run and re-run give the same answers and never change anything.

The two restore jobs it reads are started with plain ARM calls (not with pg_restore), so that this test does not
depend on the module under test elsewhere: one completes, one fails through the emulator's job_failure fault.
"""

from __future__ import annotations

import datetime
import time

import pytest

VAULT = {'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG'}


def _files_restore(emulator, point, prefix):
    bi = emulator.backup_instance('empdb11')
    body = {'objectType': 'AzureBackupRecoveryPointBasedRestoreRequest', 'recoveryPointId': point['name'],
            'sourceDataStoreType': 'VaultStore',
            'restoreTargetInfo': {'objectType': 'RestoreFilesTargetInfo', 'recoveryOption': 'FailIfExists',
                                  'restoreLocation': 'westeurope',
                                  'targetDetails': {'url': emulator.container_url(), 'filePrefix': prefix,
                                                    'restoreTargetLocationType': 'AzureBlobs'}}}
    response = emulator.arm('POST', bi['id'] + '/restore', body)
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 120
    while True:
        status = emulator.arm('GET', response.headers['Azure-AsyncOperation'])
        assert status.status_code == 200, status.text
        if status.json()['status'].lower() != 'inprogress':
            break
        assert time.monotonic() < deadline
        time.sleep(0.3)
    assert status.json()['status'] == 'Succeeded', status.text
    return status.json()['properties']['jobId'].rsplit('/', 1)[-1]


@pytest.fixture(scope='module')
def jobs(emulator):
    emulator.wait_idle()
    started = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=5)
    point = emulator.backup('empdb11')
    good_prefix = 'jobinfo-ok-%d' % time.time()
    good = _files_restore(emulator, point, good_prefix)
    emulator.wait_idle()
    emulator.add_fault(kind='job_failure', method='POST', path='/restore$', count=1,
                       code='UserErrorDBUserAuthFailed', message='Injected: the login failed.')
    try:
        bad = _files_restore(emulator, point, 'jobinfo-bad-%d' % time.time())
    finally:
        emulator.clear_faults()
    emulator.wait_idle()
    return {'good': good, 'bad': bad, 'point': point, 'prefix': good_prefix, 'started': started}


def _tasks(emulator, jobs):
    bi = emulator.backup_instance('empdb11')
    since = jobs['started'].strftime('%Y-%m-%dT%H:%M:%SZ')
    future = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)).strftime('%Y-%m-%dT%H:%M:%SZ')
    tasks = [
        ('by guid', dict(VAULT, job_id=jobs['good'])),
        ('by arm id', dict(VAULT, job_id=emulator.vault_id + '/backupJobs/' + jobs['bad'])),
        ('restores', dict(VAULT, operation='Restore')),
        ('completed restores', dict(VAULT, operation='restore', status=['Completed'])),
        ('failed', dict(VAULT, status=['failed'])),
        ('of the backup instance since the start', dict(VAULT, backup_instance_name=bi['name'], start_time=since)),
        ('of the datasource', dict(VAULT, datasource_id=emulator.server_id('sourceossserver', 'sourcerg')
                                   + '/databases/empdb11')),
        ('of the flexible server from tomorrow', dict(VAULT, backup_instance_name=emulator.backup_instance(
            'sourceflexserver')['name'], start_time=future)),
    ]
    result = [{'name': name, 'module': 'dataprotection_job_info', 'params': params} for name, params in tasks]
    result.append({'name': 'unknown job', 'module': 'dataprotection_job_info', 'ignore_errors': True,
                   'params': dict(VAULT, job_id='00000000-0000-0000-0000-00000000beef')})
    return result


def _ids(result, name):
    return [j['job_id'] for j in result.task(name)['result']['jobs']]


SUBSET = ('by guid', 'by arm id', 'failed')


def test_check_mode_then_real_run_then_rerun(emulator, run_tasks, jobs):
    """One play, in order: a subset in check mode (task keyword check_mode), every query, the subset again."""
    tasks = _tasks(emulator, jobs)
    subset = [t for t in tasks if t['name'] in SUBSET]
    play = ([dict(t, name='check: ' + t['name'], check_mode=True) for t in subset] + tasks
            + [dict(t, name='rerun: ' + t['name']) for t in subset])
    writes_before = emulator.writes()

    real = run_tasks(play).assert_ok()
    assert emulator.writes() == writes_before, 'an info module wrote something'
    assert real.changed == 0 and all(r['result']['changed'] is False for r in real.results)
    assert [r['task'] for r in real.failed] == []
    for name in SUBSET:
        assert real.task('check: ' + name)['result']['jobs'] == real.task(name)['result']['jobs'] == \
            real.task('rerun: ' + name)['result']['jobs']

    good, bad = jobs['good'], jobs['bad']
    one = real.task('by guid')['result']
    assert [j['job_id'] for j in one['jobs']] == [good]
    job = one['job']
    assert job['job_id'] == good and job['id'].endswith('/backupJobs/' + good)
    assert job['operation'] == 'Restore' and job['status'] == 'Completed'
    assert job['is_terminal'] is True and job['succeeded'] is True and job['errors'] == []
    assert job['source_recovery_point']['id'] == jobs['point']['name']
    assert job['recovery_destination'].rstrip('/').endswith('/restored-files/' + jobs['prefix'])
    assert job['backup_instance_name'] == emulator.backup_instance('empdb11')['name']
    assert job['datasource_type'] == 'Microsoft.DBforPostgreSQL/servers/databases'
    assert 'Trigger Restore' in [t['name'] for t in job['sub_tasks']]
    assert job['start_time'] and job['end_time'] and job['duration']

    failed = real.task('by arm id')['result']['job']
    assert failed['job_id'] == bad and failed['status'] == 'Failed'
    assert failed['is_terminal'] is True and failed['succeeded'] is False
    assert failed['errors'][0]['code'] == 'UserErrorDBUserAuthFailed'
    assert 'Injected: the login failed.' in failed['errors'][0]['message']

    restores = _ids(real, 'restores')
    assert good in restores and bad in restores
    assert all(j['operation'] == 'Restore' for j in real.task('restores')['result']['jobs'])
    starts = [j['start_time'] for j in real.task('restores')['result']['jobs']]
    assert starts == sorted(starts, reverse=True), 'jobs are not newest first'
    assert good in _ids(real, 'completed restores') and bad not in _ids(real, 'completed restores')
    assert bad in _ids(real, 'failed') and good not in _ids(real, 'failed')
    assert set(_ids(real, 'of the backup instance since the start')) >= {good, bad}
    assert all(j['start_time'] >= jobs['started'].strftime('%Y-%m-%dT%H:%M:%S')
               for j in real.task('of the backup instance since the start')['result']['jobs'])
    assert {good, bad} <= set(_ids(real, 'of the datasource'))
    assert _ids(real, 'of the flexible server from tomorrow') == []

    unknown = real.task('unknown job')
    assert unknown['status'] == 'ignored' and unknown['result']['changed'] is False
    assert '00000000-0000-0000-0000-00000000beef' in unknown['result']['msg']
