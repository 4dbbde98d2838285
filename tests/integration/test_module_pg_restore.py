# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pg_restore on the emulator.

- check mode validates only: it returns the request with changed=true, the service validated it, and no restore
  was requested and no job exists;
- the real run creates exactly one restore job, waits for it, and the database is really there;
- a re-run finds that job: changed=false, the same job id, no second restore request;
- a target database that already exists is refused before anything is sent (check mode too);
- a restore as files without waiting returns the job id at once.
"""

from __future__ import annotations

VAULT = {'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG'}


def _restores(emulator):
    counters = emulator.counters()
    return counters.get('restores_requested', 0), counters.get('restore_jobs_created', 0)


def test_check_mode_real_run_rerun(emulator, run_module, run_tasks, unique_name):
    emulator.wait_idle()
    point = emulator.backup('empdb11')
    source_rows = emulator.psql('sourceossserver', 'empdb11', 'SELECT count(*) FROM employees')[0][0]
    database = unique_name('modrestore')
    params = dict(VAULT, backup_instance_name=emulator.backup_instance('empdb11')['name'],
                  recovery_point_id=point['name'], target_server_id=emulator.server_id('targetossserver'),
                  target_database_name=database, secret_uri=emulator.kv_uri() + 'secrets/targetossserver-conn',
                  wait=True, poll_interval=1, wait_timeout=300)
    jobs_before = {j['name'] for j in emulator.restore_jobs()}
    restores_before = _restores(emulator)
    validations_before = emulator.counters().get('validations_requested', 0)

    # 1. check mode: validated by the service, the request returned, nothing started
    result, record = run_module('pg_restore', params, check=True)
    result.assert_ok()
    assert record['status'] == 'changed'
    assert record['result'].get('job_id') in (None, '')
    request = record['result']['request']
    assert request['objectType'] == 'AzureBackupRecoveryPointBasedRestoreRequest'
    assert request['recoveryPointId'] == point['name']
    assert request['restoreTargetInfo']['recoveryOption'] == 'FailIfExists'
    assert request['restoreTargetInfo']['datasourceInfo']['resourceName'] == database
    assert emulator.counters().get('validations_requested', 0) > validations_before
    assert _restores(emulator) == restores_before
    assert {j['name'] for j in emulator.restore_jobs()} == jobs_before
    assert database not in emulator.databases('targetossserver')

    # 2. real run, then re-runs (normal and check mode) in the same play
    result = run_tasks([{'name': 'real run', 'module': 'pg_restore', 'params': params},
                        {'name': 're-run', 'module': 'pg_restore', 'params': params},
                        {'name': 're-run in check mode', 'module': 'pg_restore', 'params': params,
                         'check_mode': True}]).assert_ok()
    # the real run: exactly one restore job, waited for, and the database exists with the backed-up rows
    record = result.task('real run')
    assert record['status'] == 'changed'
    job_id = record['result']['job_id']
    assert job_id and record['result']['job']['job_id'] == job_id
    assert record['result']['job']['status'] == 'Completed' and record['result']['job']['succeeded'] is True
    assert record['result']['request'] == request
    assert _restores(emulator) == (restores_before[0] + 1, restores_before[1] + 1)
    new_jobs = [j for j in emulator.restore_jobs() if j['name'] not in jobs_before]
    assert [j['name'] for j in new_jobs] == [job_id]
    assert new_jobs[0]['properties']['extendedInfo']['recoveryDestination'].lower().endswith('/databases/' + database)
    assert emulator.psql('targetossserver', database, 'SELECT count(*) FROM employees')[0][0] == source_rows

    # 3. the re-runs: the same job, unchanged, no second restore
    for name in ('re-run', 're-run in check mode'):
        record = result.task(name)
        assert record['status'] == 'ok' and record['result']['changed'] is False, record['result'].get('msg')
        assert record['result']['job_id'] == job_id
        assert record['result']['job']['status'] == 'Completed'
    assert result.changed == 1


def test_existing_target_database_is_refused(emulator, run_tasks, unique_name):
    database = unique_name('taken')
    emulator.psql('targetossserver', 'postgres', 'CREATE DATABASE %s' % database)
    point = emulator.recovery_points('empdb11')[0]
    params = dict(VAULT, backup_instance_name=emulator.backup_instance('empdb11')['name'],
                  recovery_point_id=point['name'], target_server_id=emulator.server_id('targetossserver'),
                  target_database_name=database, secret_uri=emulator.kv_uri() + 'secrets/targetossserver-conn')
    restores_before = _restores(emulator)
    result = run_tasks([{'name': 'check mode', 'module': 'pg_restore', 'params': params, 'check_mode': True,
                         'ignore_errors': True},
                        {'name': 'real run', 'module': 'pg_restore', 'params': params,
                         'ignore_errors': True}]).assert_ok()
    for name in ('check mode', 'real run'):
        record = result.task(name)
        assert record['status'] == 'ignored' and record['result']['changed'] is False, name  # it failed
        msg = record['result']['msg']
        assert database in msg and ('exist' in msg.lower() or 'in use' in msg.lower()), msg
        assert not record['result'].get('job_id')
    assert _restores(emulator) == restores_before
    # the existing database is untouched
    assert emulator.psql('targetossserver', database, 'SELECT count(*) FROM pg_tables WHERE schemaname = \'public\'') \
        == [('0',)]


def test_files_without_waiting_returns_the_job(emulator, run_module, unique_name):
    emulator.wait_idle()
    point = emulator.backup('empdb11')
    prefix = unique_name('modfiles')
    params = dict(VAULT, backup_instance_name=emulator.backup_instance('empdb11')['name'],
                  recovery_point_id=point['name'], target_container_url=emulator.container_url(),
                  target_file_prefix=prefix)
    result, record = run_module('pg_restore', params)
    result.assert_ok()
    assert record['status'] == 'changed'
    job_id = record['result']['job_id']
    assert job_id
    assert record['result']['request']['restoreTargetInfo']['objectType'] == 'RestoreFilesTargetInfo'
    assert record['result']['request']['restoreTargetInfo']['targetDetails']['filePrefix'] == prefix
    job = [j for j in emulator.restore_jobs() if j['name'] == job_id]
    assert len(job) == 1
    emulator.wait_idle()
    assert emulator.blobs(prefix=prefix) == [prefix + '.dump']
