# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 15 on a demo-world emulator (nothing granted): a secret or container that does not exist fails before any
grant, saying so; a relaunch after a new backup is ok and unchanged, naming the newer recovery point."""

from __future__ import annotations

import pytest

# pylint: disable-next=import-error
from test_role_postgresql_restore import RESTORE_TASK, _database_vars as _role_vars


@pytest.fixture(scope='module')
def demo(emulator_session_factory):
    return emulator_session_factory('demo')


def _database_vars(emulator, name, **extra):
    return dict(_role_vars(emulator, name), **extra)


def _validations(emulator):
    return sum(count for route, count in emulator.request_counts().items() if 'validateRestore' in route)


def test_a_secret_that_does_not_exist_fails_before_any_grant(demo, run_role, unique_name):
    """Item 2: the README's role example with a secret_uri the world does not have."""
    role_vars = {key: value for key, value in _database_vars(demo, unique_name('nosecret')).items()
                 if not key.startswith(('postgresql_restore_key_vault', 'postgresql_restore_secret',
                                        'postgresql_restore_admin'))}
    role_vars['postgresql_restore_secret_uri'] = demo.kv_uri('targetosskv') + 'secrets/no-such-secret'
    assignments, jobs = demo.status()['role_assignments'], len(demo.restore_jobs())
    demo.reset_counters()
    failed = run_role(role_vars, emulator=demo).assert_failed()
    result = failed.task(RESTORE_TASK)['result']
    assert result['error']['code'] == 'SecretNotFound', result
    assert 'The secret no-such-secret does not exist' in result['msg'] and 'Correct secret_uri' in result['msg']
    assert not result['changed']
    assert demo.status()['role_assignments'] == assignments and len(demo.restore_jobs()) == jobs
    assert _validations(demo) == 0


def test_a_container_that_does_not_exist_fails_at_once(demo, run_role, unique_name):
    """Item 4: a typo in the container URL, with grants on: no role assignment, no validation retries."""
    role_vars = {
        'postgresql_restore_vault_name': 'TestBkpVault',
        'postgresql_restore_vault_resource_group': 'testBkpVaultRG',
        'postgresql_restore_datasource_id': demo.server_id('sourceflexserver', rg='sourcerg', kind='flexibleServers'),
        'postgresql_restore_target_type': 'files',
        'postgresql_restore_target_container_url': demo.container_url('targetossstorage', 'restored-flies'),
        'postgresql_restore_target_file_prefix': unique_name('typo').replace('_', '-'),
    }
    assignments = demo.status()['role_assignments']
    demo.reset_counters()
    failed = run_role(role_vars, emulator=demo).assert_failed()
    result = failed.task(RESTORE_TASK)['result']
    assert result['error']['code'] == 'ContainerNotFound', result
    assert 'The container restored-flies does not exist' in result['msg']
    assert 'still lacked permissions' not in failed.output
    assert demo.status()['role_assignments'] == assignments and _validations(demo) == 0


def test_relaunch_after_a_new_backup_is_ok_and_names_the_newer_point(demo, run_role, unique_name):
    """Item 3: restore latest, a new backup, the same run again (an AWX relaunch)."""
    name = unique_name('relaunch')
    role_vars = _database_vars(demo, name)
    demo.wait_idle()
    first = run_role(role_vars, emulator=demo).assert_ok()
    restored = first.task('Show the result')['result']['postgresql_restore_result']
    assert restored['status'] == 'Completed'
    newest = demo.backup('empdb11')
    demo.wait_idle()
    jobs = len(demo.restore_jobs())

    again = run_role(role_vars, emulator=demo).assert_ok()
    assert again.changed == 0
    result = again.task(RESTORE_TASK)['result']
    assert result['job_id'] == restored['job_id'] and not result['changed']
    assert result['newer_recovery_point']['recovery_point_id'] == newest['name']
    warned = [w for w in result.get('warnings', []) if 'newer recovery point' in w]
    assert warned and newest['name'] in warned[0] and 'left as it is' in warned[0], result.get('warnings')
    assert len(demo.restore_jobs()) == jobs


@pytest.mark.parametrize('world, grant, outcome', [
    ('granted', True, 'validated up to the secret'),            # nothing else pending: the service checks the rest
    ('demo', False, 'UserErrorMSIMissingPermissions'),          # a real problem before the secret is found in check mode
])
def test_check_mode_with_a_secret_to_create_validates_what_does_not_need_it(emulator_session_factory, run_role,
                                                                            unique_name, world, grant, outcome):
    """Item 7: check mode says what would be created and validates what does not need the secret."""
    emulator = emulator_session_factory(world)
    role_vars = _database_vars(emulator, unique_name('checked'), postgresql_restore_grant_permissions=grant,
                               postgresql_restore_secret_name=unique_name('newsecret').replace('_', '-'))
    emulator.reset_counters()
    run = run_role(role_vars, check=True, emulator=emulator)
    result = run.task(RESTORE_TASK)['result']
    assert _validations(emulator) == 1, emulator.request_counts()
    assert all('validateRestore' in key for key in emulator.writes()), emulator.writes()  # nothing else was sent
    if outcome.startswith('UserError'):
        assert run.failed and result['error']['code'] == outcome, result
    else:
        run.assert_ok()
        assert 'would be created' in result['secret']['msg'] and outcome in result['msg'], result
