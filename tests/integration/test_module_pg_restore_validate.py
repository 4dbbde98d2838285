# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pg_restore_validate on the emulator: passes when the vault identity is permitted (check mode, real run, re-run:
never changed, the service validated each time, no restore started), and fails with the service's structured
UserErrorMSIMissingPermissions error (code, message, recommended action) when it is not.
"""

from __future__ import annotations

VAULT = {'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG'}


def _params(emulator, rp_id, database, server='targetossserver'):
    return dict(VAULT, backup_instance_name=emulator.backup_instance('empdb11')['name'], recovery_point_id=rp_id,
                target_server_id=emulator.server_id(server), target_database_name=database,
                secret_uri=emulator.kv_uri() + 'secrets/%s-conn' % server)


def _phases(params, ignore_errors=False):
    """check mode (task keyword), real run, re-run: one play, in that order."""
    tasks = []
    for name, check in (('check mode', True), ('real run', False), ('re-run', False)):
        task = {'name': name, 'module': 'pg_restore_validate', 'params': params, 'check_mode': check}
        if ignore_errors:
            task['ignore_errors'] = True
        tasks.append(task)
    return tasks


def test_passes_when_permitted(emulator, run_tasks, unique_name):
    emulator.wait_idle()
    point = emulator.backup('empdb11')
    params = _params(emulator, point['name'], unique_name('validated'))
    before = emulator.counters()
    jobs_before = len(emulator.restore_jobs())

    result = run_tasks(_phases(params)).assert_ok()
    for phase in ('check mode', 'real run', 're-run'):
        record = result.task(phase)
        assert record['status'] == 'ok' and record['result']['changed'] is False, phase
        request = record['result']['request']
        assert request['recoveryPointId'] == point['name']
        assert request['sourceDataStoreType'] == 'VaultStore'
        assert request['restoreTargetInfo']['datasourceInfo']['resourceID'].endswith(
            '/servers/targetossserver/databases/' + params['target_database_name'])
        assert request['restoreTargetInfo']['datasourceAuthCredentials']['secretStoreResource']['uri'] == \
            params['secret_uri']
        assert 'value' not in request['restoreTargetInfo']['datasourceAuthCredentials']['secretStoreResource']
        assert record['result']['source_datastore'] == 'VaultStore'
    assert result.changed == 0

    after = emulator.counters()
    # the service validated three times (check mode included: validation is read-only), nothing was restored
    assert after.get('validations_requested', 0) - before.get('validations_requested', 0) == 3
    assert after.get('restores_requested', 0) == before.get('restores_requested', 0)
    assert len(emulator.restore_jobs()) == jobs_before
    assert params['target_database_name'] not in emulator.databases('targetossserver')


def test_fails_with_the_service_error_when_not_permitted(demo_emulator, run_tasks):
    demo = demo_emulator  # the vault identity has no permission on oldossserver (nobody grants it there)
    point = demo.recovery_points('empdb11')[0]
    params = _params(demo, point['name'], 'notpermitted', server='oldossserver')
    restores_before = demo.counters().get('restores_requested', 0)
    jobs_before = len(demo.restore_jobs())

    result = run_tasks(_phases(params, ignore_errors=True), emulator=demo).assert_ok()
    for phase in ('check mode', 'real run', 're-run'):
        record = result.task(phase)
        assert record['status'] == 'ignored' and record['result']['changed'] is False, phase  # failed
        error = record['result']['error']
        assert error['code'] == 'UserErrorMSIMissingPermissions', error
        assert error['message'] and error['recommended_actions'], error
        assert error['is_user_error'] is True
        # rendered once for the user: code, message and the recommended action
        msg = record['result']['msg']
        assert 'UserErrorMSIMissingPermissions' in msg and 'Recommended action' in msg, msg
        assert error['recommended_actions'][0] in msg
    assert 'UserErrorMSIMissingPermissions' in result.stdout
    assert demo.counters().get('restores_requested', 0) == restores_before
    assert len(demo.restore_jobs()) == jobs_before
