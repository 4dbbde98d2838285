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
    assert checked.task('Store the connection string')['status'] == 'changed'
    assert checked.task('Grant the vault identity the permissions')['status'] == 'changed'
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
    polls = real.tasks('Poll the restore job')
    assert polls, 'no progress line was printed'
    _no_secret_in(demo, real)

    again = run_role(role_vars, emulator=demo).assert_ok()
    assert again.changed == 0
    second = again.task('Show the result')['result']['postgresql_restore_result']
    assert second['job_id'] == result['job_id'] and second['earlier_restore'] and second['granted'] == []
    assert len(demo.restore_jobs()) == jobs + 1


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
    assert 'can only restore' in failed.output and 'as files' in failed.output


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
