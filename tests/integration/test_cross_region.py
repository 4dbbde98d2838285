# -*- coding: utf-8 -*-
# Copyright: (c) 2025, Azure Backup Data Protection collection contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The four modules with use_secondary_region on the emulator (world crr.yml), the vault's region down:

- pg_recovery_point_info lists the secondary points, which lag the primary ones (a fresh backup is not there yet);
- without the switch the same call fails and its message names use_secondary_region;
- pg_restore_validate and pg_restore (check mode, real run, re-run) restore into a server of the secondary region
  with the cross-region calls only, exactly one cross-region restore, the rows of the point;
- dataprotection_job_info reads the cross-region restore job;
- a target in the primary region, and a vault without cross-region restore, fail before anything is sent.
"""

from __future__ import annotations

import pytest

VAULT = {'vault_name': 'TestBkpVault', 'resource_group': 'testBkpVaultRG'}
PRIMARY, SECONDARY = 'westeurope', 'northeurope'
OUTAGE = {'region': PRIMARY, 'mode': 'status', 'status': 503}


@pytest.fixture(scope='module')
def crr(emulator_session_factory, dp_repo_root):
    return emulator_session_factory(str(dp_repo_root / 'tests' / 'emulator' / 'dpemulator' / 'worlds' / 'crr.yml'))


@pytest.fixture()
def outage(crr):
    crr.set_knobs(region_outage=OUTAGE)
    yield crr
    crr.set_knobs(region_outage={'region': ''})


def _bi(crr):
    return dict(VAULT, backup_instance_name=crr.backup_instance('empdb11')['name'])


def _target(crr, database, server='drtargetserver', rg='drtargetrg', kv='drtargetkv'):
    return {'target_server_id': crr.server_id(server, rg=rg), 'target_database_name': database,
            'secret_uri': crr.kv_uri(kv) + 'secrets/%s-conn' % server}


def _crr_counts(crr):
    c = crr.counters()
    return c.get('crr_restores_requested', 0), c.get('crr_validations_requested', 0), c.get('restores_requested', 0)


def test_secondary_points_lag_and_the_switch_is_named_when_the_region_is_down(crr, run_module):
    fresh = crr.backup('empdb11')['name']
    result, record = run_module('pg_recovery_point_info', dict(_bi(crr), select='latest'), emulator=crr)
    assert record['result']['recovery_point']['recovery_point_id'] == fresh
    result, record = run_module('pg_recovery_point_info', dict(_bi(crr), select='latest', use_secondary_region=True),
                                emulator=crr)
    result.assert_ok()
    secondary = record['result']['recovery_point']
    assert secondary['recovery_point_id'] != fresh       # copied to the secondary region hours later
    assert record['result']['cross_region'] == {'source_region': PRIMARY, 'secondary_region': SECONDARY}
    crr.set_knobs(region_outage=OUTAGE)
    try:
        result, record = run_module('pg_recovery_point_info', dict(_bi(crr), select='latest'), emulator=crr)
        assert record['status'] == 'failed' and 'use_secondary_region: true' in record['result']['msg']
        result, record = run_module('pg_recovery_point_info', dict(_bi(crr), select='latest',
                                                                   use_secondary_region=True), emulator=crr)
        assert record['result']['recovery_point'] == secondary
    finally:
        crr.set_knobs(region_outage={'region': ''})


def test_restore_cross_region_check_mode_run_rerun_and_job_info(outage, run_module, run_tasks, unique_name,
                                                                restore_checks):
    crr = outage
    database = unique_name('crr')
    params = dict(_bi(crr), **_target(crr, database), select='latest', use_secondary_region=True, wait=True,
                  poll_interval=1, wait_timeout=300)
    before = _crr_counts(crr)
    result, record = run_module('pg_restore', params, check=True, emulator=crr)
    result.assert_ok()
    assert record['status'] == 'changed' and not record['result'].get('job_id')
    assert record['result']['request']['restoreTargetInfo']['restoreLocation'] == SECONDARY
    after_check = _crr_counts(crr)
    assert after_check[0] == before[0] and after_check[1] > before[1]      # validated, nothing restored
    assert database not in crr.databases('drtargetserver')

    result = run_tasks([{'name': 'real run', 'module': 'pg_restore', 'params': params, 'register': 'restored'},
                        {'name': 're-run', 'module': 'pg_restore', 'params': params},
                        {'name': 'job', 'module': 'dataprotection_job_info',
                         'params': dict(VAULT, job_id='{{ restored.job_id }}', use_secondary_region=True)}],
                       emulator=crr)
    result.assert_ok()
    first, again = result.task('real run')['result'], result.task('re-run')['result']
    assert result.task('real run')['status'] == 'changed' and first['job']['status'] == 'Completed'
    assert 'cross-region, from the secondary region northeurope' in first['msg']
    assert result.task('re-run')['status'] == 'ok' and again['job_id'] == first['job_id']
    assert _crr_counts(crr)[0] == after_check[0] + 1 and _crr_counts(crr)[2] == before[2]   # one CRR, no primary
    assert result.task('job')['result']['job']['job_id'] == first['job_id']
    assert result.task('job')['result']['job']['status'] == 'Completed'
    rows = crr.psql('drtargetserver', database, 'SELECT count(*) FROM employees')[0][0]
    assert int(rows) >= 1000


def test_target_outside_the_secondary_region_and_vault_without_crr_fail_before_sending(crr, run_module, unique_name):
    # (no outage here: the target server of the primary region would not answer at all)
    before = _crr_counts(crr)
    params = dict(_bi(crr), **_target(crr, unique_name('crr'), server='targetossserver', rg='targetrg',
                                      kv='targetosskv'), select='latest', use_secondary_region=True)
    result, record = run_module('pg_restore', params, emulator=crr)
    assert record['status'] == 'failed' and 'TargetNotInSecondaryRegion' in record['result']['msg']
    assert "'westeurope'" in record['result']['msg'] and SECONDARY in record['result']['msg']
    lrs = dict(params, vault_name='TestLrsVault', **_target(crr, unique_name('crr')))
    result, record = run_module('pg_restore', lrs, emulator=crr)
    assert record['status'] == 'failed' and 'CrossRegionRestoreNotEnabled' in record['result']['msg']
    assert _crr_counts(crr) == before


def test_validate_and_job_list_cross_region(outage, run_module, unique_name):
    crr = outage
    result, record = run_module('pg_restore_validate', dict(_bi(crr), **_target(crr, unique_name('crr')),
                                                            recovery_point_id=_latest_secondary(crr, run_module),
                                                            use_secondary_region=True), emulator=crr)
    result.assert_ok()
    assert 'cross-region' in record['result']['msg'] and record['result']['cross_region']['secondary_region'] == SECONDARY
    result, record = run_module('dataprotection_job_info', dict(VAULT, use_secondary_region=True,
                                                                operation='Restore'), emulator=crr)
    result.assert_ok()
    assert all(j['operation'] == 'Restore' for j in record['result']['jobs'])


def _latest_secondary(crr, run_module):
    result, record = run_module('pg_recovery_point_info', dict(_bi(crr), select='latest', use_secondary_region=True),
                                emulator=crr)
    return record['result']['recovery_point']['recovery_point_id']


def test_a_5xx_after_the_service_took_the_cross_region_restore_finds_its_job(outage, run_module, unique_name):
    """crossRegionRestore answered 500 after it created the job: the module does not post again, it finds the job in
    fetchCrossRegionRestoreJobs and follows it; one cross-region restore in all."""
    crr = outage
    before = _crr_counts(crr)
    posts = crr.request_counts().get('POST dataprotection.crr.crossRegionRestore', 0)
    crr.add_fault(kind='status_after', path=r'/locations/northeurope/crossRegionRestore$', method='POST', count=1,
                  status=500)
    params = dict(_bi(crr), **_target(crr, unique_name('crr5xx')), select='latest', use_secondary_region=True,
                  wait=True, poll_interval=1, wait_timeout=300)
    result, record = run_module('pg_restore', params, emulator=crr)
    result.assert_ok()
    assert record['status'] == 'changed' and record['result']['job']['status'] == 'Completed'
    assert any('no usable answer' in w and record['result']['job_id'] in w for w in record['result'].get('warnings', []))
    assert _crr_counts(crr)[0] == before[0] + 1
    assert crr.request_counts().get('POST dataprotection.crr.crossRegionRestore', 0) == posts + 1   # never re-sent


def test_restore_as_files_into_a_storage_account_of_the_secondary_region(outage, run_module, unique_name):
    crr, prefix = outage, unique_name('crrfiles')
    params = dict(_bi(crr), target_container_url=crr.container_url('drtargetstorage', 'restored-files'),
                  target_file_prefix=prefix, select='latest', use_secondary_region=True, wait=True, poll_interval=1,
                  wait_timeout=300)
    result, record = run_module('pg_restore', params, emulator=crr)
    result.assert_ok()
    assert record['status'] == 'changed' and record['result']['job']['status'] == 'Completed'
    assert crr.blobs('drtargetstorage', 'restored-files', prefix=prefix) == [prefix + '.dump']
    wrong = dict(params, target_container_url=crr.container_url('targetossstorage', 'restored-files'))
    crr.set_knobs(region_outage={'region': ''})      # the primary region's account must answer to be refused
    result, record = run_module('pg_restore', wrong, emulator=crr)
    assert record['status'] == 'failed' and 'TargetNotInSecondaryRegion' in record['result']['msg']
