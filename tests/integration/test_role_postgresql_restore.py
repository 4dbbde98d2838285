# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The postgresql_restore role end to end on a demo-world emulator (nothing granted, no secret): check mode writes
nothing, the real run creates the secret, grants the vault identity, restores for real and prints progress, and a
re-run changes nothing and starts no second restore. Then the same for a flexible server restored as files, and the
playbooks' input checks."""

from __future__ import annotations

import pytest


RESTORE_TASK = 'Restore (recovery point, earlier restore, permissions, validation, restore, wait)'


@pytest.fixture(scope='module')
def demo(emulator_session_factory):
    return emulator_session_factory('demo')


def _no_secret_in(emulator, result):
    for value in emulator.secret_values():
        assert value not in result.output, 'a secret value shows in the output'


def _database_vars(emulator, name):
    return {
        'postgresql_restore_vault_name': 'TestBkpVault',
        'postgresql_restore_vault_resource_group': 'testBkpVaultRG',
        'postgresql_restore_datasource_id': emulator.server_id('sourceossserver', rg='sourcerg') + '/databases/empdb11',
        'postgresql_restore_target_server_id': emulator.server_id('targetossserver'),
        'postgresql_restore_target_database_name': name,
        'postgresql_restore_key_vault_uri': emulator.kv_uri('targetosskv'),
        'postgresql_restore_secret_name': 'targetossserver-restore',
        'postgresql_restore_admin_user': 'pgadmin@targetossserver',
        'postgresql_restore_admin_password': emulator.server('targetossserver')['admin_password'],
    }


def test_database_restore_check_real_rerun(demo, run_role, unique_name):
    name = unique_name('restored')
    role_vars = _database_vars(demo, name)
    assignments, jobs = demo.status()['role_assignments'], len(demo.restore_jobs())

    checked = run_role(role_vars, check=True, emulator=demo).assert_ok()
    planned = checked.task(RESTORE_TASK)['result']
    assert planned['changed'] and planned['secret']['changed'] and 'would be created' in planned['secret']['msg']
    assert sorted(g['role'] for g in planned['permissions']['granted']) == ['Key Vault Secrets User', 'Reader']
    assert 'would be validated once the permissions are granted' in planned['msg']
    assert demo.status()['role_assignments'] == assignments and len(demo.restore_jobs()) == jobs
    assert name not in demo.databases('targetossserver')
    _no_secret_in(demo, checked)

    real = run_role(role_vars, emulator=demo).assert_ok()
    result = real.task('Show the result')['result']['postgresql_restore_result']
    assert result['status'] == 'Completed' and result['job_id'] and not result['earlier_restore']
    assert sorted(g['role'] for g in result['granted']) == ['Key Vault Secrets User', 'Reader']
    assert result['target'].endswith('/databases/' + name)
    assert name in demo.databases('targetossserver')
    assert len(demo.restore_jobs()) == jobs + 1
    polls = [line for line in real.stdout.splitlines() if line.startswith('[localhost] restore job %s: ' % result['job_id'])]
    assert polls, 'no progress line was printed'
    assert all('elapsed' in line and 'left before wait_timeout' in line for line in polls), polls
    _no_secret_in(demo, real)

    again = run_role(role_vars, emulator=demo).assert_ok()
    assert again.changed == 0
    second = again.task('Show the result')['result']['postgresql_restore_result']
    assert second['job_id'] == result['job_id'] and second['earlier_restore'] and second['granted'] == []
    assert len(demo.restore_jobs()) == jobs + 1


READER = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
AUTHORIZATION_API = '2022-04-01'


def test_repeated_drill_after_drop_and_a_removed_grant_grants_and_validates_again(demo, run_role, unique_name):
    """bugs-found.md I1: the database a completed restore created was dropped, and the vault identity lost its Reader
    role on the target server since. The completed job is not an earlier restore any more: the role grants again,
    validates (the early check of the dropped target does not stop it) and starts a new restore."""
    name = unique_name('redrill')
    role_vars = _database_vars(demo, name)
    demo.wait_idle()
    first = run_role(role_vars, emulator=demo).assert_ok()
    result = first.task('Show the result')['result']['postgresql_restore_result']
    assert result['status'] == 'Completed' and not result['earlier_restore']

    demo.psql('targetossserver', 'postgres', 'DROP DATABASE %s' % name)
    server = demo.server_id('targetossserver')
    principal = demo.arm('GET', demo.vault_id).json()['identity']['principalId']
    listed = demo.arm('GET', server + '/providers/Microsoft.Authorization/roleAssignments',
                      params={'$filter': "principalId eq '%s'" % principal, 'api-version': AUTHORIZATION_API})
    assert listed.status_code == 200, listed.text
    readers = [a['id'] for a in listed.json()['value'] if a['properties']['roleDefinitionId'].lower().endswith(READER)]
    assert readers, 'the vault identity has no Reader role to remove'
    for assignment in readers:
        deleted = demo.arm('DELETE', assignment, params={'api-version': AUTHORIZATION_API})
        assert deleted.status_code in (200, 204), deleted.text
    jobs = len(demo.restore_jobs())

    again = run_role(role_vars, emulator=demo).assert_ok()
    second = again.task('Show the result')['result']['postgresql_restore_result']
    assert second['earlier_restore'] is False and second['job_id'] != result['job_id']
    assert second['status'] == 'Completed'
    assert [g['role'] for g in second['granted']] == ['Reader']
    restore = again.task(RESTORE_TASK)['result']
    assert restore['target_exists'] is False
    assert any('no longer exists' in w for w in restore.get('warnings', [])), restore
    assert len(demo.restore_jobs()) == jobs + 1
    assert name in demo.databases('targetossserver')


def test_files_restore_of_a_flexible_server_real_rerun(demo, run_role, unique_name):
    prefix = unique_name('drill').replace('_', '-')
    role_vars = {
        'postgresql_restore_vault_name': 'TestBkpVault',
        'postgresql_restore_vault_resource_group': 'testBkpVaultRG',
        'postgresql_restore_datasource_id': demo.server_id('sourceflexserver', rg='sourcerg', kind='flexibleServers'),
        'postgresql_restore_target_type': 'files',
        'postgresql_restore_target_container_url': demo.container_url('targetossstorage', 'restored-files'),
        'postgresql_restore_target_file_prefix': prefix,
    }
    demo.wait_idle()
    real = run_role(role_vars, emulator=demo).assert_ok()
    result = real.task('Show the result')['result']['postgresql_restore_result']
    assert result['status'] == 'Completed'
    assert any(blob.startswith(prefix) for blob in demo.blobs('targetossstorage', 'restored-files', prefix=prefix))
    again = run_role(role_vars, emulator=demo).assert_ok()
    assert again.changed == 0


def test_flexible_server_as_database_is_refused(demo, run_role):
    role_vars = dict(_database_vars(demo, 'never'), postgresql_restore_datasource_id=demo.server_id(
        'sourceflexserver', rg='sourcerg', kind='flexibleServers'))
    failed = run_role(role_vars, emulator=demo).assert_failed()
    assert 'can only be restored as files' in failed.output


@pytest.mark.parametrize('playbook, missing', [
    ('restore_database', 'target_server_id'),
    ('restore_files', 'target_container_url'),
    ('list_recovery_points', 'backup_instance_name'),
    ('job_status', 'vault_name'),
])
def test_playbooks_say_what_is_missing(demo, run_playbook, playbook, missing):
    failed = run_playbook(playbook, extravars={'vault_name': 'TestBkpVault'} if playbook != 'job_status' else {},
                          emulator=demo).assert_failed()
    assert missing in failed.output


def test_a_playbook_without_a_subscription_says_where_to_set_one(demo, run_playbook, unique_name):
    """The playbooks leave the credential to the module (az login and managed identities need no variable): with no
    subscription anywhere, the restore task fails with what to set in AWX and on the command line, and starts nothing."""
    database = unique_name('nosub')
    jobs_before = len(demo.restore_jobs())
    extravars = {key[len('postgresql_restore_'):]: value for key, value in _database_vars(demo, database).items()}
    failed = run_playbook('restore_database', extravars=extravars, env={'AZURE_SUBSCRIPTION_ID': None},
                          emulator=demo).assert_failed()
    result = failed.task(RESTORE_TASK)['result']
    assert result['error']['code'] == 'MissingSubscription', result
    assert 'Microsoft Azure Resource Manager' in failed.output and 'AZURE_SUBSCRIPTION_ID' in failed.output
    assert len(demo.restore_jobs()) == jobs_before
