# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""End to end: the postgresql_restore role and the playbooks, on the emulator, with real PostgreSQL behind it.

Every restore is checked on the real target cluster against the source's content AS OF the recovery point: rows
are inserted into the source after the backup, and must not be in the restored database.

The run that starts with no permission and no secret (demo world) is in test_secrets.py: it runs at -vvvv, so
that the same run also proves that no secret leaks.
"""

from __future__ import annotations

import subprocess
import time

import pytest

RESTORE_TASK = 'Restore (recovery point, earlier restore, permissions, validation, restore, wait)'


def database_vars(emulator, database, **extra):
    role_vars = {
        'postgresql_restore_vault_name': 'TestBkpVault',
        'postgresql_restore_vault_resource_group': 'testBkpVaultRG',
        'postgresql_restore_datasource_id': emulator.server_id('sourceossserver', 'sourcerg') + '/databases/empdb11',
        'postgresql_restore_target_server_id': emulator.server_id('targetossserver'),
        'postgresql_restore_target_database_name': database,
        'postgresql_restore_secret_uri': emulator.kv_uri() + 'secrets/targetossserver-conn',
    }
    role_vars.update(extra)
    return role_vars


def restore_counts(emulator):
    counters = emulator.counters()
    return counters.get('restores_requested', 0), counters.get('restore_jobs_created', 0)


def role_result(result):
    """postgresql_restore_result, from the play's last debug task."""
    return result.task('Show the result')['result']['postgresql_restore_result']


def jobs_to(emulator, destination_suffix):
    return [j for j in emulator.restore_jobs()
            if str(j['properties']['extendedInfo'].get('recoveryDestination') or '').lower().rstrip('/')
            .endswith(destination_suffix.lower())]


# ------------------------------------------------------------------------------------------------ database


def test_restore_as_database_from_a_vault_point_then_rerun_changes_nothing(
        emulator, run_role, unique_name, restore_checks):
    tag, database = unique_name('vault'), unique_name('e2edb')
    point, state = restore_checks.backup_between_markers(emulator, tag)
    # a later backup holds the 'after' row: the role must restore the point asked for, not the latest one
    later = emulator.backup('empdb11')
    role_vars = database_vars(emulator, database,
                              postgresql_restore_recovery_point_before=point['properties']['recoveryPointTime'])
    before = restore_counts(emulator)

    # check mode: the service validates, nothing is started
    validations = emulator.counters().get('validations_requested', 0)
    checked = run_role(role_vars, check=True).assert_ok()
    assert role_result(checked)['status'].startswith('NotStarted')
    assert role_result(checked)['recovery_point_id'] == point['name']
    # validated by the service (by pg_restore_validate, and again by pg_restore in check mode)
    assert emulator.counters().get('validations_requested', 0) > validations
    assert restore_counts(emulator) == before and database not in emulator.databases('targetossserver')

    first = run_role(role_vars).assert_ok()
    summary = role_result(first)
    assert summary['recovery_point_id'] == point['name'] != later['name']
    assert summary['status'] == 'Completed' and summary['earlier_restore'] is False
    assert summary['source_datastore'] == 'VaultStore'
    assert summary['target'].endswith('/servers/targetossserver/databases/' + database)
    assert first.changed >= 1
    assert restore_counts(emulator) == (before[0] + 1, before[1] + 1)
    assert [j['name'] for j in jobs_to(emulator, '/databases/' + database)] == [summary['job_id']]
    restore_checks.assert_restored_as_of(emulator, database, state, tag)
    assert 'Status: Completed' in first.stdout

    # the same inputs again: nothing changes, no second restore, the first job is reported
    second = run_role(role_vars).assert_ok()
    assert second.changed == 0, second.tail()
    again = role_result(second)
    assert again['job_id'] == summary['job_id'] and again['earlier_restore'] is True
    assert again['status'] == 'Completed'
    assert restore_counts(emulator) == (before[0] + 1, before[1] + 1)
    assert len(jobs_to(emulator, '/databases/' + database)) == 1
    restore_checks.assert_restored_as_of(emulator, database, state, tag)


def test_without_progress_lines_pg_restore_waits_in_one_process(emulator, run_role, unique_name, restore_checks):
    """postgresql_restore_progress false: no progress lines, and the role still ends with the job's final state and
    the restored rows."""
    tag, database = unique_name('quiet'), unique_name('e2equiet')
    point, state = restore_checks.backup_between_markers(emulator, tag)
    role_vars = database_vars(emulator, database, postgresql_restore_progress=False,
                              postgresql_restore_recovery_point_id=point['name'])
    result = run_role(role_vars).assert_ok()
    assert 'restore job ' not in result.stdout  # no progress line
    trigger = result.task(RESTORE_TASK)['result']
    summary = role_result(result)
    assert trigger['job']['status'] == summary['status'] == 'Completed' and trigger['job_id'] == summary['job_id']
    assert summary['duration'] and summary['earlier_restore'] is False
    restore_checks.assert_restored_as_of(emulator, database, state, tag)


def test_restore_an_archive_only_point_rehydrates_it(emulator, run_role, unique_name, restore_checks):
    tag, database = unique_name('arch'), unique_name('e2earch')
    point, state = restore_checks.backup_between_markers(emulator, tag)
    emulator.archive('empdb11', point['name'])
    archived = [p for p in emulator.recovery_points('empdb11') if p['name'] == point['name']][0]
    assert [d['type'] for d in archived['properties']['recoveryPointDataStoresDetails']] == ['ArchiveStore']

    result = run_role(database_vars(emulator, database, postgresql_restore_datastore='archive',
                                    postgresql_restore_rehydration_priority='High',
                                    postgresql_restore_rehydration_retention_days=12)).assert_ok()
    summary = role_result(result)
    assert summary['recovery_point_id'] == point['name']
    assert summary['source_datastore'] == 'ArchiveStore' and summary['status'] == 'Completed'
    job = [j for j in emulator.restore_jobs() if j['name'] == summary['job_id']][0]
    sub_tasks = [t['taskName'] for t in job['properties']['extendedInfo']['subTasks']]
    assert sub_tasks[0] == 'Rehydrate Recovery Point', sub_tasks
    assert job['properties']['extendedInfo'].get('rehydrationPriority', 'High') == 'High'
    # the point now also has a rehydrated copy in the vault store
    stores = [p for p in emulator.recovery_points('empdb11') if p['name'] == point['name']][0][
        'properties']['recoveryPointDataStoresDetails']
    rehydrated = [d for d in stores if d['type'] == 'VaultStore']
    assert rehydrated and rehydrated[0]['rehydrationStatus'] == 'COMPLETED', stores
    restore_checks.assert_restored_as_of(emulator, database, state, tag)
    assert 'archive tier only' in result.stdout


def test_restore_as_files_then_pg_restore_them(emulator, run_playbook, unique_name, restore_checks, tmp_path):
    tag, prefix = unique_name('files'), unique_name('e2efiles')
    point, state = restore_checks.backup_between_markers(emulator, tag)
    extravars = {'vault_name': 'TestBkpVault', 'vault_resource_group': 'testBkpVaultRG',
                 'backup_instance_name': emulator.backup_instance('empdb11')['name'],
                 'recovery_point_id': point['name'], 'target_container_url': emulator.container_url(),
                 'target_file_prefix': prefix, 'poll_interval': 1, 'validate_delay': 1, 'busy_delay': 1}
    result = run_playbook('restore_files', extravars=extravars).assert_ok()
    assert 'Status: Completed' in result.stdout
    assert emulator.blobs(prefix=prefix) == [prefix + '.dump']

    # the dump is a real pg_dump of the recovery point: restore it into a fresh database and compare
    dump = emulator.download_blob('targetossstorage', 'restored-files', prefix + '.dump', tmp_path / 'x.dump')
    database = unique_name('fromfiles')
    emulator.psql('targetossserver', 'postgres', 'CREATE DATABASE %s' % database)
    proc = subprocess.run(['pg_restore', '--no-owner', '--no-acl', '--exit-on-error', '-d', database, str(dump)],
                          env=emulator.pg_env('targetossserver'), capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    restore_checks.assert_restored_as_of(emulator, database, state, tag)


# ------------------------------------------------------------------------------------------------ interruption


def test_interrupted_after_the_trigger_then_run_again(emulator, run_role, unique_name, restore_checks):
    tag, database = unique_name('intr'), unique_name('e2eintr')
    state = restore_checks.backup_between_markers(emulator, tag)[1]
    before = restore_counts(emulator)
    knobs = emulator.knobs()
    emulator.set_knobs(job_duration=6)  # the job is still running when the run is killed and when it restarts
    try:
        running = run_role(database_vars(emulator, database), start=True)
        deadline = time.monotonic() + 300
        while restore_counts(emulator)[1] == before[1]:
            assert running.proc.poll() is None, running.wait().tail()
            assert time.monotonic() < deadline, 'the restore was never triggered'
            time.sleep(0.1)
        running.kill()
        killed = running.wait()
        assert killed.rc != 0 and killed.stats is None, 'the run was not interrupted'
        jobs = jobs_to(emulator, '/databases/' + database)
        assert len(jobs) == 1 and jobs[0]['properties']['status'] == 'InProgress'

        resumed = run_role(database_vars(emulator, database)).assert_ok()
    finally:
        emulator.set_knobs(job_duration=knobs['job_duration'])
    summary = role_result(resumed)
    assert summary['job_id'] == jobs[0]['name'] and summary['earlier_restore'] is True
    assert summary['status'] == 'Completed'
    assert restore_counts(emulator) == (before[0] + 1, before[1] + 1), 'a second restore was started'
    assert len(jobs_to(emulator, '/databases/' + database)) == 1
    restore_checks.assert_restored_as_of(emulator, database, state, tag)


# ------------------------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize('case', ['lower_version', 'existing_database'])
def test_the_service_refusal_is_shown_with_its_recommended_action(emulator, run_role, unique_name, case):
    emulator.wait_idle()
    database = unique_name('refused')
    if case == 'lower_version':
        role_vars = database_vars(emulator, database,
                                  postgresql_restore_target_server_id=emulator.server_id('oldossserver'),
                                  postgresql_restore_secret_uri=emulator.kv_uri() + 'secrets/oldossserver-conn')
        code, server = 'UserErrorRestoreToLowerVersion', 'oldossserver'
    else:
        emulator.psql('targetossserver', 'postgres', 'CREATE DATABASE %s' % database)
        role_vars = database_vars(emulator, database)
        code, server = 'UserErrorDatabaseNameAlreadyInUse', 'targetossserver'
    before = restore_counts(emulator)

    validations = emulator.counters().get('validations_requested', 0)
    result = run_role(role_vars).assert_failed()
    assert restore_counts(emulator) == before, 'a restore was started'
    failure = result.task(RESTORE_TASK)
    assert failure['status'] == 'failed'
    if case == 'existing_database':
        # refused before anything is sent: no restore of ours created that database
        assert 'already exists' in failure['result']['msg'] and 'no restore of this backup instance' in \
            failure['result']['msg']
        assert emulator.counters().get('validations_requested', 0) == validations
    else:
        error = failure['result']['error']
        assert error['code'] == code, error
        assert error['recommended_actions'], error
        assert emulator.counters().get('validations_requested', 0) == validations + 1, \
            'a refusal that cannot pass was retried'
        for text in (code, error['message'], error['recommended_actions'][0]):
            assert text in failure['result']['msg'], failure['result']['msg']
            assert ' '.join(text.split()) in ' '.join(result.stdout.split()), text
    if case == 'existing_database':
        assert emulator.psql(server, database, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == \
            [('0',)]
    else:
        assert database not in emulator.databases(server)


# ------------------------------------------------------------------------------------------------ repeated drill


def test_repeated_drill_after_the_restored_database_was_dropped(emulator, run_module, run_role, unique_name):
    """A drill repeated with the same names after the restored database was dropped: a new restore is right (the
    module's documented behaviour), and the role must treat it as one: validated, not reported as an earlier one."""
    emulator.wait_idle()
    point = emulator.backup('empdb11')
    database = unique_name('drill')
    role_vars = database_vars(emulator, database, postgresql_restore_recovery_point_id=point['name'])
    first, record = run_module('pg_restore', {
        'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG',
        'backup_instance_name': emulator.backup_instance('empdb11')['name'], 'recovery_point_id': point['name'],
        'target_server_id': role_vars['postgresql_restore_target_server_id'], 'target_database_name': database,
        'secret_uri': role_vars['postgresql_restore_secret_uri'], 'wait': True, 'poll_interval': 1})
    first.assert_ok()
    emulator.psql('targetossserver', 'postgres', 'DROP DATABASE %s' % database)
    before = restore_counts(emulator)
    validations = emulator.counters().get('validations_requested', 0)

    again = run_role(role_vars).assert_ok()
    summary = role_result(again)
    assert database in emulator.databases('targetossserver')
    assert restore_counts(emulator) == (before[0] + 1, before[1] + 1)  # a new restore, as pg_restore documents
    assert summary['job_id'] != record['result']['job_id']
    assert summary['earlier_restore'] is False, 'the new restore is reported as started by an earlier run'
    assert emulator.counters().get('validations_requested', 0) > validations, 'the new restore was not validated'
    # the steps of a first run ran for the new restore (bugs-found.md I1): permissions checked, validated
    restore = again.task(RESTORE_TASK)['result']
    assert 'permissions' in restore, 'the permissions were not checked'
    assert any('but that database no longer exists' in w for w in restore.get('warnings', [])), restore
    assert 'started by an earlier run' not in again.stdout
    assert summary['status'] == 'Completed'
